"""The web UI (server-rendered pages)."""

from __future__ import annotations

from typing import Any


def install(app: Any) -> None:
    """Add the pages and static files to `app`."""
