"""Pipelines: list (with their recent runs and next scheduled run), show (graph, params,
versions), the grid of recent runs x tasks, pause and unpause."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from lockgate.auth.accounts import Principal
from lockgate.auth.roles import READ, RUN
from lockgate.server.api.common import (
    CursorQ,
    Limit,
    Page,
    cut_page,
    decode_cursor,
    iso,
)
from lockgate.server.api.runs import PipelineId, RunSummary, State, shown, summary
from lockgate.server.deps import check_pipeline, readable_pipelines, require
from lockgate.server.errors import ApiError, responses
from lockgate.server.paths import dataset_name, project_roots
from lockgate.server.state import ServerState

router = APIRouter(prefix="/api/v1", tags=["pipelines"])

RECENT = 10
"""Recent runs shown per pipeline in the list."""


class RecentRun(BaseModel):
    id: str
    state: str
    created_at: str | None


class PipelineSummary(BaseModel):
    id: str
    description: str | None
    tags: list[str]
    schedule: str | None
    timezone: str | None
    paused: bool
    loaded: bool
    """Its file loads now (False: known from past runs only, or its file is broken)."""
    origin: str | None
    file: str | None
    next_run: str | None
    recent_runs: list[RecentRun]


class TaskNode(BaseModel):
    id: str
    kind: str
    upstream: list[str]
    action: str
    retries: int
    timeout_s: float | None
    trigger_rule: str
    pool: str | None
    layer: int


class Version(BaseModel):
    id: int
    hash: str
    file: str | None
    created_at: str | None


class PipelineDetail(PipelineSummary):
    tasks: list[TaskNode]
    params: dict[str, Any]
    datasets: list[str]
    max_active_runs: int | None
    catchup: bool
    versions: list[Version]
    load_error: str | None


class GridRow(BaseModel):
    run: RunSummary
    tasks: dict[str, str]
    """Task id -> state in that run."""


class Grid(BaseModel):
    tasks: list[str]
    runs: list[GridRow]
    next_cursor: str | None = None


class Paused(BaseModel):
    id: str
    paused: bool
    changed: bool


def _known(state: ServerState) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    return state.pipelines(), state.store.pipeline_flags()


def _next_run(state: ServerState, pipe: Any, paused: bool) -> str | None:
    from lockgate.scheduler.planner import plan_for

    if paused or pipe is None or not pipe.schedule:
        return None
    plan = plan_for(pipe, state.store.last_scheduled(pipe.id), datetime.now(UTC))
    due = plan.next_due if plan is not None else None
    return due.isoformat() if due is not None else None


def pipeline_summary(
    state: ServerState, pid: str, pipe: Any, flags: dict[str, Any] | None
) -> PipelineSummary:
    paused = bool(flags and flags.get("paused"))
    recent = state.store.runs_page(pipelines=[pid], limit=RECENT)
    return PipelineSummary(
        id=pid,
        description=getattr(pipe, "description", None),
        tags=list(getattr(pipe, "tags", ())),
        schedule=getattr(pipe, "schedule", None),
        timezone=getattr(pipe, "timezone", None),
        paused=paused,
        loaded=pipe is not None,
        origin=getattr(pipe, "origin", None),
        file=_shown_file(state, getattr(pipe, "file", None)),
        next_run=_next_run(state, pipe, paused),
        recent_runs=[
            RecentRun(id=r["id"], state=r["state"], created_at=iso(r["created_at"])) for r in recent
        ],
    )


def _shown_file(state: ServerState, path: str | None) -> str | None:
    """A pipeline file relative to the project (the server's absolute paths stay private)."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(state.project.root.resolve()))
    except ValueError:
        return Path(path).name


@router.get("/pipelines", response_model=Page[PipelineSummary], responses=responses(401, 403, 422))
def list_pipelines(
    state: State,
    who: Annotated[Principal, Depends(require(READ))],
    tag: Annotated[str | None, Query(max_length=64)] = None,
    cursor: CursorQ = None,
    limit: Limit = 50,
) -> Page[PipelineSummary]:
    """Pipelines by id: those of the pipelines folder and those known from earlier runs."""
    pipes, flags = _known(state)
    allowed = readable_pipelines(state, who)
    after = decode_cursor(cursor, (str,))
    ids = sorted(
        pid
        for pid in set(pipes) | set(flags)
        if (allowed is None or pid in allowed)
        and (after is None or pid > after[0])
        and (tag is None or tag in getattr(pipes.get(pid), "tags", ()))
    )
    page, nxt = cut_page(ids, limit)
    return Page[PipelineSummary](
        items=[pipeline_summary(state, pid, pipes.get(pid), flags.get(pid)) for pid in page],
        next_cursor=nxt,
    )


def _check_known(state: ServerState, pid: str) -> tuple[Any, dict[str, Any] | None]:
    pipes, flags = _known(state)
    if pid not in pipes and pid not in flags:
        raise ApiError(404, f"no pipeline {pid!r}")
    return pipes.get(pid), flags.get(pid)


@router.get(
    "/pipelines/{pipeline_id}",
    response_model=PipelineDetail,
    responses=responses(401, 403, 404, 422),
)
def show_pipeline(
    pipeline_id: PipelineId, state: State, who: Annotated[Principal, Depends(require(READ))]
) -> PipelineDetail:
    """A pipeline with its task graph (tasks, upstream, layers), params and latest versions."""
    check_pipeline(state, who, READ, pipeline_id)
    pipe, flags = _check_known(state, pipeline_id)
    base = pipeline_summary(state, pipeline_id, pipe, flags)
    roots = project_roots(str(state.project.root))
    tasks: list[TaskNode] = []
    if pipe is not None:
        layer = {tid: i for i, ids in enumerate(pipe.layers()) for tid in ids}
        for tid in pipe.order:
            task = pipe.tasks[tid]
            tasks.append(
                TaskNode(
                    id=tid,
                    kind=str(task.kind),
                    upstream=list(task.upstream),
                    action=shown(state, task.describe_action()) or "",
                    retries=task.settings.retries,
                    timeout_s=task.settings.timeout,
                    trigger_rule=str(task.settings.trigger_rule),
                    pool=task.settings.pool,
                    layer=layer.get(tid, 0),
                )
            )
    errors = state.load_errors()
    file = getattr(pipe, "file", None)
    return PipelineDetail(
        **base.model_dump(),
        tasks=tasks,
        params={k: p.to_json() for k, p in (pipe.params.items() if pipe else ())},
        datasets=[dataset_name(d, roots) for d in getattr(pipe, "datasets", ())],
        max_active_runs=getattr(pipe, "max_active_runs", None),
        catchup=bool(getattr(pipe, "catchup", False)),
        versions=[_version(state, v) for v in state.store.versions_page(pipeline_id, limit=10)],
        load_error=shown(state, errors.get(str(file))) if file else None,
    )


def _version(state: ServerState, row: dict[str, Any]) -> Version:
    return Version(
        id=row["id"],
        hash=row["hash"],
        file=_shown_file(state, row["file"]),
        created_at=iso(row["created_at"]),
    )


@router.get(
    "/pipelines/{pipeline_id}/versions",
    response_model=Page[Version],
    responses=responses(401, 403, 404, 422),
)
def pipeline_versions(
    pipeline_id: PipelineId,
    state: State,
    who: Annotated[Principal, Depends(require(READ))],
    cursor: CursorQ = None,
    limit: Limit = 20,
) -> Page[Version]:
    """The versions of a pipeline that ran, newest first."""
    check_pipeline(state, who, READ, pipeline_id)
    _check_known(state, pipeline_id)
    before = decode_cursor(cursor, (int,))
    rows = state.store.versions_page(
        pipeline_id, int(before[0]) if before else None, limit=limit + 1
    )
    rows, nxt = cut_page(rows, limit, "id")
    return Page[Version](items=[_version(state, r) for r in rows], next_cursor=nxt)


@router.get(
    "/pipelines/{pipeline_id}/grid", response_model=Grid, responses=responses(401, 403, 404, 422)
)
def pipeline_grid(
    pipeline_id: PipelineId,
    state: State,
    who: Annotated[Principal, Depends(require(READ))],
    cursor: CursorQ = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> Grid:
    """Recent runs x tasks: each run's task states (the pipeline page's grid)."""
    check_pipeline(state, who, READ, pipeline_id)
    pipe, _ = _check_known(state, pipeline_id)
    before = decode_cursor(cursor, ((int, float), str))
    rows = state.store.runs_page(
        pipelines=[pipeline_id],
        before=(float(before[0]), str(before[1])) if before else None,
        limit=limit + 1,
    )
    rows, nxt = cut_page(rows, limit, "created_at", "id")
    cells: dict[str, dict[str, str]] = {r["id"]: {} for r in rows}
    for t in state.store.task_runs_of(list(cells)):
        cells[t["run_id"]][t["task_id"]] = t["state"]
    order = list(pipe.order) if pipe is not None else []
    for row_cells in cells.values():
        order += [t for t in row_cells if t not in order]
    return Grid(
        tasks=order,
        runs=[GridRow(run=summary(r, state), tasks=cells[r["id"]]) for r in rows],
        next_cursor=nxt,
    )


def _set_paused(state: ServerState, who: Principal, pipeline_id: str, paused: bool) -> Paused:
    from lockgate.scheduler.wakeup import wake_schedulers

    check_pipeline(state, who, RUN, pipeline_id)
    _check_known(state, pipeline_id)
    state.store.register_pipelines([pipeline_id])
    changed = state.store.set_paused(pipeline_id, paused)
    wake_schedulers(state.store)
    state.store.audit(
        "pipeline.pause" if paused else "pipeline.unpause",
        pipeline_id,
        {"changed": changed, "at": time.time(), "via": "api"},
        actor=who.user,
    )
    return Paused(id=pipeline_id, paused=paused, changed=changed)


@router.post(
    "/pipelines/{pipeline_id}/pause",
    response_model=Paused,
    responses=responses(401, 403, 404, 422),
)
def pause(
    pipeline_id: PipelineId, state: State, who: Annotated[Principal, Depends(require(RUN))]
) -> Paused:
    """No new scheduled, dataset-triggered or queued runs start until unpaused."""
    return _set_paused(state, who, pipeline_id, True)


@router.post(
    "/pipelines/{pipeline_id}/unpause",
    response_model=Paused,
    responses=responses(401, 403, 404, 422),
)
def unpause(
    pipeline_id: PipelineId, state: State, who: Annotated[Principal, Depends(require(RUN))]
) -> Paused:
    return _set_paused(state, who, pipeline_id, False)
