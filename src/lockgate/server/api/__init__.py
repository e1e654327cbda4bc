"""The REST API under /api/v1, one router per resource."""

from __future__ import annotations

from typing import Any


def routers() -> list[Any]:
    """Every API router, by module name (their paths do not overlap)."""
    from lockgate.server.api import (
        accounts,
        audit,
        connections,
        datasets,
        hooks,
        pipelines,
        policy,
        quality,
        runs,
        session,
    )

    return [
        accounts.router,
        audit.router,
        connections.router,
        datasets.router,
        hooks.router,
        pipelines.router,
        policy.router,
        quality.router,
        runs.router,
        session.router,
    ]
