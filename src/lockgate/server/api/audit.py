"""The audit log: its records (newest first, filtered, keyset pages), verifying the chain
(as `lockgate audit verify` does) and its signed checkpoints. Needs the audit permission."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from lockgate.auth.accounts import Principal
from lockgate.auth.roles import AUDIT
from lockgate.server import redaction
from lockgate.server.api.common import (
    CursorQ,
    Limit,
    Page,
    cut_page,
    decode_cursor,
    encode_cursor,
    iso,
    parse_time,
)
from lockgate.server.deps import require, server_state
from lockgate.server.errors import responses
from lockgate.server.state import ServerState

router = APIRouter(prefix="/api/v1", tags=["audit"])

State = Annotated[ServerState, Depends(server_state)]
Auditor = Annotated[Principal, Depends(require(AUDIT))]

DETAIL_MAX = 16 * 1024
"""A record's detail longer than this (a batch of engine events) is shown cut, as text."""
_VERIFYING = "lockgate_audit_verify"


class AuditRecord(BaseModel):
    seq: int
    at: str | None
    actor: str
    action: str
    target: str | None
    run_id: str | None
    detail: Any = None
    """What the record says (JSON), redacted; text when cut (`detail_truncated`)."""
    detail_truncated: bool = False
    key_id: str
    hash: str


class Verification(BaseModel):
    """The chain checked: `ok`, or the first bad record and what is wrong with it."""

    ok: bool
    message: str
    problem: str | None = None
    """edited, forged, missing, reordered, inserted, truncated, head, checkpoint or key."""
    seq: int | None = None
    """The first bad record."""
    records: int = 0
    first: int | None = None
    last: int | None = None
    checkpoints: int = 0
    exported: int = 0
    """Exported checkpoints (the `[audit] export` setting) checked against the chain."""
    took_s: float


class CheckpointInfo(BaseModel):
    seq: int
    hash: str
    at: str | None
    key_id: str
    public_key: str
    signature: str
    exported_to: str | None


def record_of(row: dict[str, Any]) -> AuditRecord:
    raw: str | None = row["detail"]
    cut = raw is not None and len(raw) > DETAIL_MAX
    detail = redaction.text(raw[:DETAIL_MAX]) if cut and raw else redaction.stored_json(raw)
    return AuditRecord(
        seq=int(row["seq"]),
        at=iso(row["ts"]),
        actor=row["actor"],
        action=row["action"],
        target=redaction.text(row["target"]),
        run_id=row["run_id"],
        detail=detail,
        detail_truncated=cut,
        key_id=row["key_id"],
        hash=row["hash"],
    )


@router.get("/audit", response_model=Page[AuditRecord], responses=responses(401, 403, 422))
def list_records(
    state: State,
    who: Auditor,
    actor: Annotated[str | None, Query(max_length=255, description="Only this actor.")] = None,
    action: Annotated[
        str | None,
        Query(max_length=64, description="Only actions starting with this (user., run.)."),
    ] = None,
    run: Annotated[str | None, Query(max_length=64, description="Only this run's.")] = None,
    since: Annotated[str | None, Query(max_length=64, description="At or after.")] = None,
    until: Annotated[str | None, Query(max_length=64, description="Before.")] = None,
    cursor: CursorQ = None,
    limit: Limit = 50,
) -> Page[AuditRecord]:
    """Audit records, newest first; details redacted. A filtered page looks through at most
    20,000 records, so it may be short (even empty) and still have a `next_cursor`."""
    before = decode_cursor(cursor, (int,))
    rows, nxt = state.store.audit_page(
        before=int(before[0]) if before else None,
        actor=actor,
        action=action,
        run=run,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        limit=limit,
    )
    return Page[AuditRecord](
        items=[record_of(r) for r in rows],
        next_cursor=encode_cursor(nxt) if nxt is not None else None,
    )


def verify_chain(state: ServerState) -> Verification:
    """`lockgate audit verify`: the chain against its stored and exported checkpoints."""
    from lockgate.governance.audit import exported_for

    started = time.monotonic()
    finding = state.store.audit_verify(exported_for(state.project))
    return Verification(**finding.to_json(), took_s=round(time.monotonic() - started, 3))


@router.get("/audit/verify", response_model=Verification, responses=responses(401, 403, 503))
async def verify(request: Request, state: State, who: Auditor) -> Verification:
    """Check the whole chain: every record's hash, MAC and link, the head, and the signed
    checkpoints (also the exported ones). Callers asking while a check runs share its
    answer (a long chain takes seconds)."""
    return await shared_verification(request.app, state)


async def shared_verification(app: Any, state: ServerState) -> Verification:
    """`verify_chain` in a worker thread, one at a time per app: callers (the API, the audit
    page) asking while a check runs wait for its answer instead of starting another."""
    holder = app.state
    running: asyncio.Future[Verification] | None = getattr(holder, _VERIFYING, None)
    if running is None or running.done():
        running = asyncio.ensure_future(run_in_threadpool(verify_chain, state))
        setattr(holder, _VERIFYING, running)
    return await asyncio.shield(running)


@router.get(
    "/audit/checkpoints", response_model=Page[CheckpointInfo], responses=responses(401, 403, 422)
)
def checkpoints(
    state: State, who: Auditor, cursor: CursorQ = None, limit: Limit = 50
) -> Page[CheckpointInfo]:
    """Signed checkpoints of the chain, newest first."""
    before = decode_cursor(cursor, (int,))
    rows = state.store.checkpoints_page(int(before[0]) if before else None, limit + 1)
    rows, nxt = cut_page(rows, limit, "seq")
    return Page[CheckpointInfo](
        items=[
            CheckpointInfo(
                seq=int(r["seq"]),
                hash=r["hash"],
                at=iso(r["ts"]),
                key_id=r["key_id"],
                public_key=r["public_key"],
                signature=r["signature"],
                exported_to=r["exported_to"],
            )
            for r in rows
        ],
        next_cursor=nxt,
    )
