"""The policy gate: its decisions on dataset writes, and waivers (list with their status,
record one, revoke one). Recording and revoking are audited by the store in the same
transaction as the change, with the acting user."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lockgate.auth.accounts import Principal
from lockgate.auth.roles import EDIT, READ
from lockgate.errors import LockgateError, NotFoundError
from lockgate.governance.waivers import Status, status
from lockgate.server.api.common import CursorQ, Limit, Page, decode_cursor, encode_cursor, iso
from lockgate.server.api.datasets import (
    Decision,
    dataset_key,
    decision,
    id_cursor,
    shown,
    storable,
    visible,
)
from lockgate.server.api.runs import State
from lockgate.server.deps import require
from lockgate.server.errors import ApiError, responses
from lockgate.server.state import ServerState

router = APIRouter(prefix="/api/v1", tags=["policy"])

OUTCOME_FILTERS: dict[str, tuple[str, ...]] = {
    "allowed": ("allow",),
    "waived": ("waived",),
    "refused": ("deny",),
    "violation": ("deny", "waived"),
}
"""`outcome` filter -> recorded decisions: `violation` is any write that broke a blocking rule
(refused, or let through by a waiver)."""
WaiverId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")]
_CLI_WORDS = ("rule", "dataset", "owner", "reason", "expires", "zone", "column")


class Waiver(BaseModel):
    id: str
    rule: str
    dataset: str
    columns: list[str] | None
    """Null: every column."""
    zone: str | None
    """Null: writes into any zone."""
    owner: str
    reason: str
    created_by: str
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None
    revoked_by: str | None
    status: Status
    """FORGED: not signed with the project's key (written behind lockgate's back); the gate
    ignores it."""


class WaiverBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str = Field(min_length=1, max_length=128, description="A rule id, or a pack's: pci.*")
    dataset: str = Field(
        min_length=1,
        max_length=1024,
        description="The target dataset: a path relative to the project, a URI, or a pattern "
        "differing in its last part only (exports/*.csv).",
    )
    owner: str = Field(min_length=1, max_length=255, description="Who answers for it.")
    reason: str = Field(min_length=1, max_length=4000, description="Why it is needed.")
    expires: str = Field(
        min_length=1,
        max_length=64,
        description="When it ends: a date (2026-12-31), an ISO date-time, or a duration (30d).",
    )
    columns: list[Annotated[str, Field(min_length=1, max_length=255)]] | None = Field(
        default=None, max_length=200, description="Only these columns (default: every one)."
    )
    zone: str | None = Field(
        default=None, min_length=1, max_length=64, description="Only writes into this zone."
    )

    @field_validator("rule", "dataset", "owner", "reason", "expires", "zone", "columns")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and "\x00" in t for t in texts):
            raise ValueError("a NUL character is not allowed")
        return value


def waiver(state: ServerState, row: dict[str, Any], now: float) -> Waiver:
    return Waiver(
        id=row["id"],
        rule=row["rule"],
        dataset=shown(state, row["dataset"]) or row["dataset"],
        columns=list(row["columns"]) if row.get("columns") else None,
        zone=row.get("zone"),
        owner=row["owner"],
        reason=row["reason"],
        created_by=row["created_by"],
        created_at=iso(row.get("created_at")),
        expires_at=iso(row.get("expires_at")),
        revoked_at=iso(row.get("revoked_at")),
        revoked_by=row.get("revoked_by"),
        status=status(row, now),
    )


def _api_words(message: str) -> str:
    """A governance message written for the CLI (`--rule ...`) in the API's terms (`rule`)."""
    for word in _CLI_WORDS:
        message = message.replace(f"--{word}", word)
    return message


def _global_read(who: Principal) -> None:
    if not who.can(READ):
        raise ApiError(403, "waivers concern the whole project: a global read permission is needed")


@router.get("/policy/decisions", response_model=Page[Decision], responses=responses(401, 403, 422))
def list_decisions(
    state: State,
    who: Annotated[Principal, Depends(require(READ))],
    dataset: Annotated[
        str | None,
        Query(min_length=1, max_length=2048, description="Only decisions on this dataset."),
    ] = None,
    outcome: Annotated[
        Literal["allowed", "waived", "refused", "violation"] | None,
        Query(
            description="allowed, waived (a waiver let it through), refused, or violation "
            "(refused or waived)."
        ),
    ] = None,
    run: Annotated[
        str | None,
        Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", description="Only this run's."),
    ] = None,
    cursor: CursorQ = None,
    limit: Limit = 50,
) -> Page[Decision]:
    """The gate's decisions on dataset writes, newest first. Filtered by outcome alone, a page
    looks at a bounded stretch of decisions: it may hold fewer than `limit` items (even none)
    and still have a `next_cursor`."""
    allowed = visible(state, who)
    rows, nxt = state.store.decisions_page(
        dataset=dataset_key(state, dataset, "dataset") if dataset is not None else None,
        run_id=run,
        decisions=OUTCOME_FILTERS[outcome] if outcome else (),
        pipelines=None if allowed is None else sorted(allowed),
        before=id_cursor(cursor),
        limit=limit,
    )
    return Page[Decision](
        items=[decision(state, r) for r in rows],
        next_cursor=encode_cursor(nxt) if nxt is not None else None,
    )


@router.get("/policy/waivers", response_model=Page[Waiver], responses=responses(401, 403, 422))
def list_waivers(
    state: State,
    who: Annotated[Principal, Depends(require(READ))],
    all_: Annotated[
        bool, Query(alias="all", description="Also expired and revoked ones (default: in force).")
    ] = False,
    cursor: CursorQ = None,
    limit: Limit = 50,
) -> Page[Waiver]:
    """Waivers in force (with `all`, every one recorded), newest first, each with its status;
    a FORGED one (not signed with the project's key) is listed but ignored by the gate."""
    _global_read(who)
    before = decode_cursor(cursor, (float, str))
    now = time.time()
    rows, nxt = state.store.waivers_page(
        active_at=None if all_ else now,
        before=(float(before[0]), storable(str(before[1]), "cursor")) if before else None,
        limit=limit,
    )
    return Page[Waiver](
        items=[waiver(state, r, now) for r in rows],
        next_cursor=encode_cursor(*nxt) if nxt is not None else None,
    )


@router.post(
    "/policy/waivers",
    status_code=201,
    response_model=Waiver,
    responses=responses(401, 403, 422),
)
def create_waiver(
    body: WaiverBody, state: State, who: Annotated[Principal, Depends(require(EDIT))]
) -> Waiver:
    """Record an exception to a rule: explicit, reasoned, owned, expiring (within a year),
    signed and audited; checked as `lockgate policy waive` checks it."""
    from lockgate.governance.gate import check_waiver_scope, governance
    from lockgate.governance.waivers import dataset_pattern, expiry

    project = state.project
    try:
        gov = governance(project)
        check_waiver_scope(body.rule, body.dataset, gov.policy)
        if body.zone is not None:
            gov.zones.get(body.zone)
        until = expiry(body.expires)
        row = state.store.add_waiver(
            rule=body.rule,
            dataset=dataset_pattern(body.dataset, project.root),
            columns=list(body.columns) if body.columns else None,
            zone=body.zone,
            owner=body.owner,
            reason=body.reason,
            expires_at=until,
            actor=who.user,
        )
    except LockgateError as exc:
        raise ApiError(422, _api_words(str(exc).splitlines()[0])) from None
    return waiver(state, row, time.time())


@router.delete(
    "/policy/waivers/{waiver_id}",
    response_model=Waiver,
    responses=responses(401, 403, 404, 422),
)
def revoke_waiver(
    waiver_id: WaiverId, state: State, who: Annotated[Principal, Depends(require(EDIT))]
) -> Waiver:
    """End a waiver now (audited); 404 when there is no such waiver in force."""
    try:
        row = state.store.revoke_waiver(waiver_id, who.user)
    except NotFoundError:
        raise ApiError(
            404, f"no waiver {waiver_id!r} in force; GET /api/v1/policy/waivers lists them"
        ) from None
    return waiver(state, row, time.time())
