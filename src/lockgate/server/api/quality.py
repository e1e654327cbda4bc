"""Data-quality results across runs: the newest first, by pipeline and by outcome (a run's
own results are under /runs/{run_id}/quality)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from lockgate.auth.accounts import Principal
from lockgate.auth.roles import READ
from lockgate.server.api.common import CursorQ, Limit, Page, encode_cursor
from lockgate.server.api.datasets import QualityResult, id_cursor, quality_result, storable
from lockgate.server.api.runs import State
from lockgate.server.deps import readable_pipelines, require
from lockgate.server.errors import responses

router = APIRouter(prefix="/api/v1", tags=["quality"])


@router.get("/quality", response_model=Page[QualityResult], responses=responses(401, 403, 422))
def list_quality(
    state: State,
    who: Annotated[Principal, Depends(require(READ))],
    pipeline: Annotated[
        list[str] | None,
        Query(max_length=50, description="Only results of runs of these pipelines (repeatable)."),
    ] = None,
    status: Annotated[
        Literal["passed", "failed"] | None, Query(description="Only passed or failed checks.")
    ] = None,
    cursor: CursorQ = None,
    limit: Limit = 50,
) -> Page[QualityResult]:
    """Data-quality results of every run the caller may read, newest first, examples masked.
    A filtered page looks at a bounded stretch of results: it may hold fewer than `limit`
    items (even none) and still have a `next_cursor`."""
    for name in pipeline or ():
        storable(name, "pipeline")
    allowed = readable_pipelines(state, who, pipeline)
    chosen: list[str] | None = list(pipeline) if pipeline else None
    if allowed is not None:
        chosen = sorted(allowed if chosen is None else set(chosen) & allowed)
    rows, nxt = state.store.quality_page(
        pipelines=chosen,
        passed=None if status is None else status == "passed",
        before=id_cursor(cursor),
        limit=limit,
    )
    return Page[QualityResult](
        items=[quality_result(state, r) for r in rows],
        next_cursor=encode_cursor(nxt) if nxt is not None else None,
    )
