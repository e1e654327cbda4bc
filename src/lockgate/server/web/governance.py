"""The governance pages: the audit log with its chain verification, the policy gate's
decisions (violations first in the eye) with the waivers in force, and data-quality results
(failed checks first)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from lockgate.auth.accounts import Principal
from lockgate.auth.roles import AUDIT, READ
from lockgate.server.api.audit import (
    AuditRecord,
    checkpoints,
    list_records,
    shared_verification,
)
from lockgate.server.api.common import CursorQ, encode_cursor
from lockgate.server.api.policy import list_decisions, list_waivers
from lockgate.server.api.quality import list_quality
from lockgate.server.deps import require, server_state
from lockgate.server.errors import ApiError
from lockgate.server.state import ServerState
from lockgate.server.web.datasets import chip_class
from lockgate.server.web.errorpages import PageRoute
from lockgate.server.web.render import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE = 50
WAIVERS = 50
NOISE = ("ui.request", "api.call")
"""Actions recorded for every page view and API call: hidden on the audit page unless asked
for (or filtered on), so that changes, logins and runs stand out."""
SCAN_BATCH = 100
SCAN_BATCHES = 5
"""A page hiding those looks through at most this many batches of records; a page may then
come back short, with an Older link to look further back."""
FAILED_FIRST = 20
"""Failed checks shown above every result on the quality page."""


def audit_records(
    state: ServerState,
    who: Principal,
    actor: str | None,
    action: str | None,
    cursor: str | None,
    hide: frozenset[str],
) -> tuple[list[AuditRecord], str | None, int]:
    """A page of records (the API's pages, newest first) without those whose action is in
    `hide`: (records, the next page's cursor, how many were hidden). Looks through at most
    `SCAN_BATCHES` batches of the API's pages."""
    if not hide:
        page = list_records(state, who, actor, action, None, None, None, cursor=cursor, limit=PAGE)
        return page.items, page.next_cursor, 0
    kept: list[AuditRecord] = []
    hidden = 0
    for _ in range(SCAN_BATCHES):
        page = list_records(
            state, who, actor, action, None, None, None, cursor=cursor, limit=SCAN_BATCH
        )
        for i, record in enumerate(page.items):
            if record.action in hide:
                hidden += 1
                continue
            kept.append(record)
            if len(kept) == PAGE:  # the next page starts after this record
                more = i + 1 < len(page.items) or page.next_cursor is not None
                return kept, encode_cursor(record.seq) if more else None, hidden
        cursor = page.next_cursor
        if cursor is None:
            break
    return kept, cursor, hidden


@router.get("/audit")
async def audit_page(
    request: Request,
    who: Annotated[Principal, Depends(require(AUDIT))],
    actor: Annotated[str | None, Query(max_length=255)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    cursor: CursorQ = None,
    verify: Annotated[int, Query(ge=0, le=1)] = 0,
    noise: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:
    """The newest audit records (filtered by actor or action prefix; page views and API
    calls hidden unless `noise` is set or the action filter names them), the latest signed
    checkpoint, and the whole chain verified when asked (the button)."""
    state = server_state(request)
    hide = frozenset(() if noise else (a for a in NOISE if not (action and a.startswith(action))))
    records, next_cursor, hidden = await run_in_threadpool(
        audit_records, state, who, actor or None, action or None, cursor, hide
    )
    latest = (await run_in_threadpool(checkpoints, state, who, None, 1)).items
    head = await run_in_threadpool(state.store.audit_head)
    finding = await shared_verification(request.app, state) if verify else None
    return render(
        request,
        "audit.html",
        {
            "records": records,
            "next_cursor": next_cursor,
            "cursor": cursor,
            "actor": actor or "",
            "action": action or "",
            "noise": noise,
            "hiding": bool(hide),
            "hidden": hidden,
            "checkpoint": latest[0] if latest else None,
            "head_seq": head["seq"] if head else None,
            "finding": finding,
        },
    )


@router.get("/policy")
def policy_page(
    request: Request,
    who: Annotated[Principal, Depends(require(READ))],
    outcome: Annotated[Literal["", "allowed", "waived", "refused", "violation"], Query()] = "",
    dataset: Annotated[str, Query(max_length=2048)] = "",
    cursor: CursorQ = None,
) -> Response:
    """The gate's decisions, newest first (refusals highlighted), and the waivers."""
    state = server_state(request)
    page = list_decisions(
        state,
        who,
        dataset=dataset or None,
        outcome=outcome or None,
        run=None,
        cursor=cursor,
        limit=PAGE,
    )
    try:
        waivers = list_waivers(state, who, all_=True, cursor=None, limit=WAIVERS).items
    except ApiError:  # a user with grants only: waivers concern the whole project
        waivers = None
    return render(
        request,
        "policy.html",
        {
            "decisions": page.items,
            "next_cursor": page.next_cursor,
            "cursor": cursor,
            "outcome": outcome,
            "dataset": dataset,
            "waivers": waivers,
            "chip_class": chip_class,
        },
    )


@router.get("/quality")
def quality_page(
    request: Request,
    who: Annotated[Principal, Depends(require(READ))],
    status: Annotated[Literal["", "passed", "failed"], Query()] = "",
    cursor: CursorQ = None,
) -> Response:
    """Data-quality results: the latest failed checks first, then every result, newest first
    (or one outcome only, a page at a time)."""
    state = server_state(request)
    failed = None
    if not status and not cursor:
        failed = list_quality(
            state, who, pipeline=None, status="failed", cursor=None, limit=FAILED_FIRST
        )
    page = list_quality(state, who, pipeline=None, status=status or None, cursor=cursor, limit=PAGE)
    return render(
        request,
        "quality.html",
        {
            "failed": failed.items if failed is not None else None,
            "more_failed": failed is not None and failed.next_cursor is not None,
            "rows": page.items,
            "next_cursor": page.next_cursor,
            "cursor": cursor,
            "status": status,
        },
    )
