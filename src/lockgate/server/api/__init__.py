"""The REST API under /api/v1, one router per resource."""

from __future__ import annotations

from typing import Any


def routers() -> list[Any]:
    from lockgate.server.api import pipelines, runs, session

    return [session.router, pipelines.router, runs.router]
