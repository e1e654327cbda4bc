"""Notifications (being written)."""

from __future__ import annotations

from typing import Any


def subscriber_for(project: Any, pipeline: Any, store: Any) -> Any:
    return None
