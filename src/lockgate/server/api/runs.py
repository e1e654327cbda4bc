"""Runs: list (filters, keyset pages), show, trigger, cancel, clear; their events, task
attempts and logs (ranged reads and a live tail over server-sent events)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from lockgate.auth.accounts import Principal
from lockgate.auth.roles import READ, RUN
from lockgate.server import redaction
from lockgate.server.api.common import (
    CursorQ,
    Limit,
    Page,
    cut_page,
    decode_cursor,
    iso,
    parse_time,
)
from lockgate.server.deps import check_pipeline, readable_pipelines, require, server_state
from lockgate.server.errors import ApiError, responses
from lockgate.server.paths import project_roots, relative
from lockgate.server.state import ServerState

router = APIRouter(prefix="/api/v1", tags=["runs"])

RUN_STATES = ("queued", "running", "success", "failed", "cancelled", "lost")
RunId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
TaskId = Annotated[str, PathParam(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")]
PIPELINE_ID = r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"
PipelineId = Annotated[str, PathParam(pattern=PIPELINE_ID)]
Attempt = Annotated[int, PathParam(ge=1, le=10_000)]
LOG_CHUNK = 256 * 1024
WITHHELD = f"[a line longer than {LOG_CHUNK // 1024} KiB: not shown]\n"
TAIL_POLL_S = 0.25
TAIL_MAX_S = 3600.0
State = Annotated[ServerState, Depends(server_state)]


class RunSummary(BaseModel):
    id: str
    pipeline: str
    state: str
    trigger: str | None
    executor: str | None
    logical_date: str | None
    data_interval_start: str | None
    data_interval_end: str | None
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    duration_s: float | None
    error: str | None


class TaskRun(BaseModel):
    id: str
    state: str
    attempts: int
    started_at: str | None
    ended_at: str | None
    duration_s: float | None
    error: str | None


class AttemptInfo(BaseModel):
    task: str
    attempt: int
    state: str
    started_at: str | None
    ended_at: str | None
    duration_s: float | None
    error: str | None
    has_log: bool


class RunDetail(RunSummary):
    params: dict[str, Any] = Field(default_factory=dict)
    version_id: int | None = None
    tasks: list[TaskRun]
    attempts: list[AttemptInfo]
    results: dict[str, Any]
    cancel_requested: bool = False


class EventItem(BaseModel):
    id: int
    ts: str | None
    kind: str
    task: str | None
    attempt: int | None
    state: str | None
    data: Any = None


class LogChunk(BaseModel):
    task: str
    attempt: int
    offset: int
    next_offset: int
    size: int
    complete: bool
    """The attempt has ended and `next_offset` is the end of its log."""
    text: str


class TriggerBody(BaseModel):
    params: dict[str, Any] = Field(default_factory=dict)
    logical_date: str | None = Field(default=None, max_length=64)


class Triggered(BaseModel):
    run_id: str
    pipeline: str
    state: str


class ClearBody(BaseModel):
    task: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
    downstream: bool = False


class Cleared(BaseModel):
    run_id: str
    cleared: list[str]


class Cancelled(BaseModel):
    run_id: str
    state: str


def _took(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 3)


def shown(state: ServerState, value: Any) -> Any:
    """What a task wrote (text or JSON) as the API shows it: redacted, and with the project
    folder left out of paths."""
    if isinstance(value, str):
        value = redaction.text(value)
    return relative(value, project_roots(str(state.project.root)))


def summary(row: dict[str, Any], state: ServerState) -> RunSummary:
    return RunSummary(
        id=row["id"],
        pipeline=row["pipeline_id"],
        state=row["state"],
        trigger=row["trigger"],
        executor=row["executor"],
        logical_date=iso(row["logical_date"] or row["created_at"]),
        data_interval_start=iso(row["data_interval_start"]),
        data_interval_end=iso(row["data_interval_end"]),
        created_at=iso(row["created_at"]),
        started_at=iso(row["started_at"]),
        ended_at=iso(row["ended_at"]),
        duration_s=_took(row["started_at"], row["ended_at"]),
        error=shown(state, row["error"]),
    )


def load_run(state: ServerState, who: Principal, run_id: str) -> dict[str, Any]:
    """A run the caller may read; 404 when it does not exist, 403 when not theirs to see."""
    row = state.store.get_run(run_id)
    if row is None:
        raise ApiError(404, f"no run {run_id!r}")
    check_pipeline(state, who, READ, row["pipeline_id"])
    return row


@router.get("/runs", response_model=Page[RunSummary], responses=responses(401, 403, 422))
def list_runs(
    state: State,
    who: Annotated[Principal, Depends(require(READ))],
    pipeline: Annotated[
        list[Annotated[str, StringConstraints(pattern=PIPELINE_ID)]] | None,
        Query(max_length=50, description="Only runs of these pipelines (repeatable)."),
    ] = None,
    run_state: Annotated[
        list[Literal["queued", "running", "success", "failed", "cancelled", "lost"]] | None,
        Query(alias="state", max_length=6, description="Only runs in these states."),
    ] = None,
    trigger: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[str | None, Query(max_length=64, description="Created at or after.")] = None,
    until: Annotated[str | None, Query(max_length=64, description="Created before.")] = None,
    cursor: CursorQ = None,
    limit: Limit = 50,
) -> Page[RunSummary]:
    """Runs, newest first. Only the pipelines the caller may read are listed."""
    allowed = readable_pipelines(state, who, pipeline)
    chosen: list[str] | None = list(pipeline) if pipeline else None
    if allowed is not None:
        chosen = sorted(allowed if chosen is None else set(chosen) & allowed)
    before = decode_cursor(cursor, ((int, float), str))
    rows = state.store.runs_page(
        pipelines=chosen,
        states=list(run_state or ()),
        trigger=trigger,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        before=(float(before[0]), str(before[1])) if before else None,
        limit=limit + 1,
    )
    rows, nxt = cut_page(rows, limit, "created_at", "id")
    return Page[RunSummary](items=[summary(r, state) for r in rows], next_cursor=nxt)


def attempt_infos(state: ServerState, rows: list[dict[str, Any]]) -> list[AttemptInfo]:
    """Attempts as the API shows them (rows of `store.attempts`)."""
    return [
        AttemptInfo(
            task=a["task_id"],
            attempt=a["attempt"],
            state=a["state"],
            started_at=iso(a["started_at"]),
            ended_at=iso(a["ended_at"]),
            duration_s=_took(a["started_at"], a["ended_at"]),
            error=shown(state, a["error"]),
            has_log=bool(a["log_path"]),
        )
        for a in rows
    ]


def run_detail(state: ServerState, row: dict[str, Any]) -> RunDetail:
    store = state.store
    run_id = row["id"]
    attempts = store.attempts(run_id)
    spans: dict[str, tuple[float | None, float | None]] = {}
    for a in attempts:
        first, _ = spans.get(a["task_id"], (a["started_at"], None))
        spans[a["task_id"]] = (first, a["ended_at"])
    tasks = [
        TaskRun(
            id=t["task_id"],
            state=t["state"],
            attempts=int(t["attempts"] or 0),
            started_at=iso(spans.get(t["task_id"], (None, None))[0]),
            ended_at=iso(spans.get(t["task_id"], (None, None))[1]),
            duration_s=_took(*spans.get(t["task_id"], (None, None))),
            error=shown(state, t["error"]),
        )
        for t in store.task_states(run_id)
    ]
    return RunDetail(
        **summary(row, state).model_dump(),
        params=shown(state, redaction.stored_json(row["params"])) or {},
        version_id=row["version_id"],
        tasks=tasks,
        attempts=attempt_infos(state, attempts),
        results={
            k: shown(state, redaction.stored_json(v)) for k, v in store.results(run_id).items()
        },
        cancel_requested=store.cancel_requested(run_id),
    )


@router.get("/runs/{run_id}", response_model=RunDetail, responses=responses(401, 403, 404, 422))
def show_run(
    run_id: RunId, state: State, who: Annotated[Principal, Depends(require(READ))]
) -> RunDetail:
    """A run with its params, tasks, attempts and results (redacted)."""
    return run_detail(state, load_run(state, who, run_id))


@router.post(
    "/pipelines/{pipeline_id}/runs",
    status_code=201,
    response_model=Triggered,
    responses=responses(401, 403, 404, 422),
)
def trigger_run(
    pipeline_id: PipelineId,
    body: TriggerBody,
    state: State,
    who: Annotated[Principal, Depends(require(RUN))],
) -> Triggered:
    """Queue a run (params checked against the pipeline's declarations now)."""
    return queue_run(state, who, pipeline_id, body, "api")


def queue_run(
    state: ServerState, who: Principal, pipeline_id: str, body: TriggerBody, via: str
) -> Triggered:
    """Queue a run for `who`, recorded with its trigger `via` (`api`, or `web` for the form)."""
    from datetime import UTC, datetime

    from lockgate import api

    check_pipeline(state, who, RUN, pipeline_id)
    if pipeline_id not in state.pipelines():
        raise ApiError(404, f"no pipeline {pipeline_id!r} in the pipelines folder")
    logical = parse_time(body.logical_date, "logical_date")
    run_id = api.trigger(
        pipeline_id,
        params=body.params,
        logical_date=datetime.fromtimestamp(logical, UTC) if logical is not None else None,
        project=state.project,
        kind=via,
    )
    state.store.audit(
        "run.trigger",
        pipeline_id,
        {"params": sorted(body.params), "logical_date": body.logical_date, "via": via},
        actor=who.user,
        run_id=run_id,
    )
    return Triggered(run_id=run_id, pipeline=pipeline_id, state="queued")


@router.post(
    "/runs/{run_id}/cancel",
    status_code=202,
    response_model=Cancelled,
    responses=responses(401, 403, 404, 409, 422),
)
def cancel_run(
    run_id: RunId, state: State, who: Annotated[Principal, Depends(require(RUN))]
) -> Cancelled:
    """Cancel a queued run now, or ask the scheduler driving a running one to stop it."""
    row = load_run(state, who, run_id)
    check_pipeline(state, who, RUN, row["pipeline_id"])
    if row["state"] not in ("queued", "running"):
        raise ApiError(409, f"run {run_id} has ended ({row['state']}); nothing to cancel")
    new_state = state.store.request_cancel(run_id, who.user)
    from lockgate.scheduler.wakeup import wake_schedulers

    wake_schedulers(state.store)
    return Cancelled(run_id=run_id, state=new_state)


@router.post(
    "/runs/{run_id}/clear",
    response_model=Cleared,
    responses=responses(401, 403, 404, 409, 422),
)
def clear_run(
    run_id: RunId,
    body: ClearBody,
    state: State,
    who: Annotated[Principal, Depends(require(RUN))],
) -> Cleared:
    """Run tasks of a finished run again: `task` (and its downstream tasks), or every task
    that did not succeed; the run is queued for the scheduler."""
    from lockgate import api

    row = load_run(state, who, run_id)
    check_pipeline(state, who, RUN, row["pipeline_id"])
    if row["state"] in ("queued", "running"):
        raise ApiError(409, f"run {run_id} is {row['state']}; clear it once it has ended")
    rid, cleared = api.clear(run_id, body.task, downstream=body.downstream, project=state.project)
    state.store.audit(
        "run.clear", row["pipeline_id"], {"tasks": cleared}, actor=who.user, run_id=rid
    )
    return Cleared(run_id=rid, cleared=cleared)


@router.get(
    "/runs/{run_id}/events",
    response_model=Page[EventItem],
    responses=responses(401, 403, 404, 422),
)
def run_events(
    run_id: RunId,
    state: State,
    who: Annotated[Principal, Depends(require(READ))],
    cursor: CursorQ = None,
    limit: Limit = 200,
) -> Page[EventItem]:
    """A run's events in order (data redacted)."""
    load_run(state, who, run_id)
    after = decode_cursor(cursor, (int,))
    rows = state.store.events(run_id, after_id=int(after[0]) if after else 0, limit=limit + 1)
    rows, nxt = cut_page(rows, limit, "id")
    return Page[EventItem](
        items=[
            EventItem(
                id=r["id"],
                ts=iso(r["ts"]),
                kind=r["kind"],
                task=r["task_id"],
                attempt=r["attempt"],
                state=r["state"],
                data=shown(state, redaction.stored_json(r["data"])),
            )
            for r in rows
        ],
        next_cursor=nxt,
    )


@router.get(
    "/runs/{run_id}/tasks/{task_id}/attempts",
    response_model=list[AttemptInfo],
    responses=responses(401, 403, 404, 422),
)
def task_attempts(
    run_id: RunId,
    task_id: TaskId,
    state: State,
    who: Annotated[Principal, Depends(require(READ))],
) -> list[AttemptInfo]:
    """A task's attempts in a run."""
    load_run(state, who, run_id)
    rows = state.store.attempts(run_id, task_id)
    if not rows and task_id not in {t["task_id"] for t in state.store.task_states(run_id)}:
        raise ApiError(404, f"run {run_id} has no task {task_id!r}")
    return attempt_infos(state, rows)


def log_file(
    state: ServerState, run_id: str, task_id: str, attempt: int
) -> tuple[Path | None, bool]:
    """The log of an attempt (None when it wrote nothing) and whether the attempt ended. The
    path comes from the database, which may be shared: one outside this project's logs folder
    is refused."""
    rows = [r for r in state.store.attempts(run_id, task_id) if r["attempt"] == attempt]
    if not rows:
        raise ApiError(404, f"run {run_id} has no attempt {attempt} of task {task_id!r}")
    row = rows[0]
    ended = row["state"] not in ("running", "queued")
    if not row["log_path"]:
        return None, ended
    logs = state.project.logs_dir.resolve()
    path = Path(row["log_path"]).resolve()
    if logs not in path.parents:
        raise ApiError(
            403, "this attempt's log is outside the project's logs folder", "log_outside"
        )
    return (path if path.is_file() else None), ended


def read_log(path: Path | None, offset: int, length: int, ended: bool) -> tuple[str, int, int]:
    """(redacted text, next offset, size). Only whole lines are shown, because redaction needs
    them whole (a secret cut in two is no longer recognised): reading starts at the first line
    that starts at or after `offset`, takes as many lines as fit in `length` bytes (the first
    always), and a line longer than `LOG_CHUNK` is withheld, never shown cut. A last line
    without its line break is shown once the attempt has ended."""
    if path is None:
        return "", offset, 0
    size = os.path.getsize(path)
    if offset >= size:
        return "", size, size
    with open(path, "rb") as fh:
        if offset > 0:
            fh.seek(offset - 1)
            if fh.read(1) != b"\n":  # inside a line: go on from the next one
                rest = fh.read(LOG_CHUNK)
                cut = rest.find(b"\n")
                if cut < 0:
                    return "", offset + len(rest), size
                offset += cut + 1
                if offset >= size:
                    return "", size, size
        fh.seek(offset)
        data = fh.read(LOG_CHUNK)
    complete = ended and offset + len(data) >= size
    if not (complete and len(data) <= length):
        cut = data.rfind(b"\n", 0, length)
        if cut < 0:
            cut = data.find(b"\n")
        if cut >= 0:
            data = data[: cut + 1]
        elif len(data) == LOG_CHUNK:
            return WITHHELD, offset + len(data), size
        elif not complete:
            data = b""  # a line still being written
    text = data.decode("utf-8", errors="replace")
    return redaction.text(text) or "", offset + len(data), size


@router.get(
    "/runs/{run_id}/tasks/{task_id}/attempts/{attempt}/log",
    response_model=LogChunk,
    responses=responses(401, 403, 404, 422),
)
def attempt_log(
    run_id: RunId,
    task_id: TaskId,
    attempt: Attempt,
    state: State,
    who: Annotated[Principal, Depends(require(READ))],
    offset: Annotated[int, Query(ge=0, le=1 << 40)] = 0,
    length: Annotated[int, Query(ge=1, le=LOG_CHUNK)] = LOG_CHUNK,
) -> LogChunk:
    """An attempt's log (stdout, stderr and logging), redacted, in whole lines from `offset`
    (at most `length` bytes, but always one whole line); read on from `next_offset`."""
    load_run(state, who, run_id)
    path, ended = log_file(state, run_id, task_id, attempt)
    text, nxt, size = read_log(path, offset, length, ended)
    return LogChunk(
        task=task_id,
        attempt=attempt,
        offset=offset,
        next_offset=nxt,
        size=size,
        complete=ended and nxt >= size,
        text=text,
    )


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


@router.get(
    "/runs/{run_id}/tasks/{task_id}/attempts/{attempt}/log/stream",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "log lines as they come"},
        **responses(401, 403, 404, 422),
    },
    response_class=StreamingResponse,
)
async def tail_log(
    run_id: RunId,
    task_id: TaskId,
    attempt: Attempt,
    request: Request,
    state: State,
    who: Annotated[Principal, Depends(require(READ))],
    offset: Annotated[int, Query(ge=0, le=1 << 40)] = 0,
) -> StreamingResponse:
    """Server-sent events: `log` events with redacted text as the attempt writes it, then one
    `end` event when it has ended (reconnect with `offset` = the last `next_offset`)."""
    await run_in_threadpool(load_run, state, who, run_id)
    await run_in_threadpool(log_file, state, run_id, task_id, attempt)

    async def events() -> Any:
        at = offset
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TAIL_MAX_S
        while loop.time() < deadline:
            path, ended = await run_in_threadpool(log_file, state, run_id, task_id, attempt)
            text, at, size = await run_in_threadpool(read_log, path, at, LOG_CHUNK, ended)
            if text:
                yield _sse("log", {"text": text, "next_offset": at})
            if ended and at >= size:
                yield _sse("end", {"next_offset": at})
                return
            if await request.is_disconnected():
                return
            if not text:
                await asyncio.sleep(TAIL_POLL_S)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
