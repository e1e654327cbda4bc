"""Runs: the list (filters, older pages), a run's page (summary, Gantt timeline, tasks,
params and results, redacted), cancel and clear forms, and an attempt's log with a live tail."""

from __future__ import annotations

import hashlib
import html
import json
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as FastPath
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from lockgate.auth.accounts import Principal
from lockgate.auth.roles import READ, RUN
from lockgate.engine.context import PUBLISHED_TYPES
from lockgate.server.api.common import CursorQ, iso
from lockgate.server.api.runs import (
    LOG_CHUNK,
    Attempt,
    ClearBody,
    RunId,
    TaskId,
    TaskRun,
    cancel_run,
    clear_run,
    list_runs,
    load_run,
    log_file,
    read_log,
    run_detail,
)
from lockgate.server.deps import readable_pipelines, require, server_state
from lockgate.server.errors import ApiError
from lockgate.server.paths import relative
from lockgate.server.web import svg
from lockgate.server.web.account import form_text
from lockgate.server.web.errorpages import PageRoute
from lockgate.server.web.render import ACTIVE_STATES, render, roots_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE = 50
PIPELINE_CHOICES = 500
"""Pipelines offered in the runs filter at most."""
RunStateQ = Literal["queued", "running", "success", "failed", "cancelled", "lost"]


@router.get("/runs")
def runs_page(
    request: Request,
    who: Annotated[Principal, Depends(require(READ))],
    pipeline: Annotated[str | None, Query(max_length=128)] = None,
    run_state: Annotated[RunStateQ | Literal[""] | None, Query(alias="state")] = None,
    cursor: CursorQ = None,
) -> Response:
    """Runs newest first, filtered by pipeline and state, a page at a time."""
    state = server_state(request)
    page = list_runs(
        state,
        who,
        pipeline=[pipeline] if pipeline else None,
        run_state=[run_state] if run_state else None,
        trigger=None,
        since=None,
        until=None,
        cursor=cursor,
        limit=PAGE,
    )
    allowed = readable_pipelines(state, who)
    known = set(state.pipelines()) | set(state.store.pipeline_flags())
    choices = sorted(known if allowed is None else known & allowed)[:PIPELINE_CHOICES]
    return render(
        request,
        "runs.html",
        {
            "runs": page.items,
            "next_cursor": page.next_cursor,
            "cursor": cursor,
            "pipeline": pipeline or "",
            "run_state": run_state or "",
            "choices": choices,
        },
    )


@router.get("/runs/{run_id}")
def run_page(
    run_id: RunId, request: Request, who: Annotated[Principal, Depends(require(READ))]
) -> Response:
    state = server_state(request)
    row = load_run(state, who, run_id)
    detail = run_detail(state, row)
    pipe = state.pipelines().get(detail.pipeline)
    order = list(pipe.order) if pipe is not None else []
    rank = {t: i for i, t in enumerate(order)}
    tasks = sorted(
        detail.tasks, key=lambda t: (rank.get(t.id, len(rank)), t.started_at or "", t.id)
    )
    ended = detail.state not in ("queued", "running")
    if not ended:  # tasks not started yet are shown waiting, in the pipeline's order
        seen = {t.id for t in tasks}
        waiting = [
            TaskRun(
                id=tid,
                state="pending",
                attempts=0,
                started_at=None,
                ended_at=None,
                duration_s=None,
                error=None,
            )
            for tid in order
            if tid not in seen
        ]
        tasks = sorted([*tasks, *waiting], key=lambda t: (rank.get(t.id, len(rank)), t.id))
    attempts: dict[str, list[Any]] = {}
    for a in detail.attempts:
        attempts.setdefault(a.task, []).append(a)
    chart = svg.gantt(
        [t.id for t in tasks],
        [a.model_dump() for a in detail.attempts],
        detail.started_at,
        detail.ended_at,
        time.time(),
        f"/runs/{run_id}/tasks/",
    )
    can_run = who.can(RUN, detail.pipeline, tuple(pipe.tags) if pipe is not None else ())
    published = [
        {"id": row["id"], "task": row["task_id"], **json.loads(row["data"] or "{}")}
        for row in state.store.published(run_id)
    ]
    roots = roots_of(request)
    tasks = [t.model_copy(update={"error": relative(t.error, roots)}) for t in tasks]
    return render(
        request,
        "run.html",
        {
            "r": detail,
            "run_error": relative(detail.error, roots),
            "results": {task: relative(v, roots) for task, v in detail.results.items()},
            "tasks": tasks,
            "attempts": attempts,
            "gantt": chart,
            "can_run": can_run,
            "ended": ended,
            "live": not ended,
            "retryable": ended and any(t.state not in ("success", "skipped") for t in tasks),
            "active": ACTIVE_STATES,
            "published": published,
        },
    )


REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
"""A published file is the task's content, not the UI's: nothing in it may run or load."""
_TEXT_TYPES = {"text/markdown", "text/html", "image/svg+xml", "text/csv", "application/json"}


@router.get("/runs/{run_id}/reports/{report_id}")
def published_file(
    run_id: RunId,
    report_id: Annotated[int, FastPath(ge=1)],
    request: Request,
    who: Annotated[Principal, Depends(require(READ))],
) -> Response:
    """A file a task of the run published (`ctx.publish`), as it was then, sandboxed; text
    kinds redacted like every other page."""
    state = server_state(request)
    load_run(state, who, run_id)  # the run exists and this user may read its pipeline
    found = next((r for r in state.store.published(run_id) if r["id"] == report_id), None)
    if found is None:
        raise ApiError(404, f"run {run_id} published no file {report_id}")
    meta = json.loads(found["data"] or "{}")
    path = Path(str(meta.get("path", "")))
    media = str(meta.get("media_type", ""))
    if not path.is_absolute() or not path.resolve().is_relative_to(state.project.root.resolve()):
        raise ApiError(404, "the published file is outside this project")
    if media not in PUBLISHED_TYPES.values():
        raise ApiError(404, f"files of type {media!r} are not shown")
    try:
        content = path.read_bytes()
    except OSError:
        raise ApiError(404, f"the published file {path.name} is gone") from None
    if hashlib.sha256(content).hexdigest() != meta.get("sha256"):
        raise ApiError(409, f"{path.name} changed since run {run_id} published it")
    if media in _TEXT_TYPES or media == "text/plain":
        from lockgate.server import redaction

        text = redaction.text(content.decode("utf-8", "replace")) or ""
        if media == "text/markdown":
            from markdown_it import MarkdownIt

            title = html.escape(str(meta.get("title") or path.name))
            body = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
            text = f"<!doctype html><meta charset=utf-8><title>{title}</title>{body}"
            media = "text/html"
        content = text.encode("utf-8")
    headers = {
        "Content-Security-Policy": REPORT_CSP,
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'inline; filename="{path.name}"',
    }
    charset = "; charset=utf-8" if media.startswith("text/") else ""
    return Response(content, media_type=media + charset, headers=headers)


@router.post("/runs/{run_id}/cancel")
def cancel(
    run_id: RunId, request: Request, who: Annotated[Principal, Depends(require(RUN))]
) -> Response:
    cancel_run(run_id, server_state(request), who)
    return RedirectResponse(f"/runs/{run_id}?notice=cancelled", status_code=303)


@router.post("/runs/{run_id}/clear")
async def clear(
    run_id: RunId, request: Request, who: Annotated[Principal, Depends(require(RUN))]
) -> Response:
    """Run tasks again: the one named by the form's `task` (with its downstream tasks when
    `downstream` is set), or every task that did not succeed."""
    form = await request.form()
    task = form_text(form, "task", 128) or None
    downstream = form_text(form, "downstream") in ("1", "on", "true")
    try:
        body = ClearBody(task=task, downstream=downstream and task is not None)
    except ValueError:
        raise ApiError(422, f"{task!r} is not a task id") from None
    done = await run_in_threadpool(clear_run, run_id, body, server_state(request), who)
    return RedirectResponse(f"/runs/{done.run_id}?notice=cleared", status_code=303)


@router.get("/runs/{run_id}/tasks/{task_id}/attempts/{attempt}/log")
def log_page(
    run_id: RunId,
    task_id: TaskId,
    attempt: Attempt,
    request: Request,
    who: Annotated[Principal, Depends(require(READ))],
) -> Response:
    """The first part of an attempt's log (redacted); the page's script tails the rest."""
    state = server_state(request)
    row = load_run(state, who, run_id)
    path, ended = log_file(state, run_id, task_id, attempt)
    text, next_offset, size = read_log(path, 0, LOG_CHUNK, ended)
    tries = state.store.attempts(run_id, task_id)
    this = next(a for a in tries if a["attempt"] == attempt)
    took = (
        this["ended_at"] - this["started_at"]
        if this["ended_at"] is not None and this["started_at"] is not None
        else None
    )
    from lockgate.server import redaction

    return render(
        request,
        "log.html",
        {
            "run": row,
            "task": task_id,
            "attempt": attempt,
            "a": {
                "state": this["state"],
                "started_at": iso(this["started_at"]),
                "ended_at": iso(this["ended_at"]),
                "duration_s": took,
                "error": relative(redaction.text(this["error"]), roots_of(request)),
            },
            "tries": [(a["attempt"], a["state"]) for a in tries],
            "text": text,
            "next_offset": next_offset,
            "complete": ended and next_offset >= size,
            "has_log": path is not None,
            "stream": f"/api/v1/runs/{run_id}/tasks/{task_id}/attempts/{attempt}/log/stream",
        },
    )
