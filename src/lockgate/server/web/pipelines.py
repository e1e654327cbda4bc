"""The pipelines list and a pipeline's page (graph, grid of recent runs x tasks, trigger form,
versions); pause, unpause and trigger forms post here and run the API's own code."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from lockgate.auth.accounts import Principal
from lockgate.auth.roles import READ, RUN
from lockgate.errors import ConfigError
from lockgate.server.api.common import CursorQ
from lockgate.server.api.pipelines import (
    RECENT,
    _set_paused,
    _shown_file,
    list_pipelines,
    pipeline_grid,
    show_pipeline,
)
from lockgate.server.api.runs import PipelineId, TriggerBody, queue_run
from lockgate.server.deps import principal, require, server_state
from lockgate.server.errors import ApiError
from lockgate.server.state import ServerState
from lockgate.server.web import svg
from lockgate.server.web.account import form_text
from lockgate.server.web.errorpages import PageRoute
from lockgate.server.web.render import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

GRID_RUNS = 25
"""Runs (columns) in a pipeline page's grid; the page's script polls the same number."""
PAGE = 50
PARAM_FIELD = "param."
LIBRARY_TASKS = frozenset({"check", "copy", "mask", "read", "redact", "report", "scan", "sql"})
"""lockgate's own task kinds (YAML `copy:`, `sql:`...), shown by that name, not as Python."""
_LIBRARY_CALL = re.compile(r"lockgate\.[\w.]+\.(\w+)_task\(\)")


def task_does(kind: str, action: str) -> tuple[str, str]:
    """(the task's kind as its author wrote it, what it runs) from the API's kind and
    action: `("shell", "echo hi")`, `("copy", "data/a.csv -> out/a.csv")`,
    `("python", "build()")`."""
    if kind == "shell":
        return "shell", action
    call = _LIBRARY_CALL.fullmatch(action)
    if call and call.group(1) in LIBRARY_TASKS:
        return call.group(1), ""
    head, _, rest = action.partition(" ")
    if head in LIBRARY_TASKS and not action.endswith("()"):
        return head, rest
    return kind, action


@dataclass
class ParamField:
    """One input of the trigger form."""

    name: str
    type: str
    widget: str
    """text, number, select, json."""
    required: bool
    value: str
    description: str | None
    choices: list[tuple[str, str]]
    """(value, label) of a select."""
    minimum: float | None
    maximum: float | None
    step: str
    error: str | None = None


def _as_text(value: Any, kind: str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str) and kind in ("string", None):
        return value
    return json.dumps(value)


def param_fields(
    pipe: Any, given: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> list[ParamField]:
    """The trigger form's inputs for the params a pipeline declares (values `given` back
    after an error, else the defaults)."""
    out = []
    for name, decl in pipe.params.items() if pipe is not None else ():
        kind = decl.type or "string"
        default = "" if decl.required else _as_text(decl.default, decl.type)
        value = given.get(name, default) if given is not None else default
        choices: list[tuple[str, str]] = []
        widget = "text"
        if decl.enum is not None:
            widget = "select"
            choices = [(_as_text(v, decl.type), str(v)) for v in decl.enum]
        elif kind == "boolean":
            widget = "select"
            choices = [("true", "true"), ("false", "false")]
        elif kind in ("integer", "number"):
            widget = "number"
        elif kind in ("array", "object"):
            widget = "json"
        out.append(
            ParamField(
                name=name,
                type=kind,
                widget=widget,
                required=decl.required,
                value=value,
                description=decl.description,
                choices=choices,
                minimum=decl.minimum,
                maximum=decl.maximum,
                step="1" if kind == "integer" else "any",
                error=(errors or {}).get(name),
            )
        )
    return out


# -- the list ---------------------------------------------------------------------------------
@router.get("/")
def pipelines_page(
    request: Request,
    who: Annotated[Principal, Depends(require(READ))],
    tag: Annotated[str | None, Query(max_length=64)] = None,
    cursor: CursorQ = None,
) -> Response:
    """Every pipeline the user may read, with its recent runs."""
    state = server_state(request)
    page = list_pipelines(state, who, tag=tag or None, cursor=cursor, limit=PAGE)
    pipes = state.pipelines()
    rows = []
    for item in page.items:
        tags = tuple(item.tags)
        rows.append(
            {
                "p": item,
                "can_run": who.can(RUN, item.id, tags),
                "recent": list(reversed(item.recent_runs)),
            }
        )
    root = str(state.project.root.resolve()) + "/"
    broken = [
        {"file": _shown_file(state, path), "error": _first_line(err).replace(root, "")}
        for path, err in sorted(state.load_errors().items())
    ]
    return render(
        request,
        "pipelines.html",
        {
            "rows": rows,
            "tag": tag or "",
            "next_cursor": page.next_cursor,
            "cursor": cursor,
            "broken": broken,
            "empty_folder": not pipes,
            "recent_limit": RECENT,
        },
    )


def _first_line(text: str) -> str:
    from lockgate.server import redaction

    return (redaction.text(text.splitlines()[0] if text else "") or "")[:300]


# -- one pipeline -----------------------------------------------------------------------------
def pipeline_context(
    state: ServerState,
    who: Principal,
    pipeline_id: str,
    given: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    form_error: str | None = None,
) -> dict[str, Any]:
    """What the pipeline page shows (the API's detail and grid, the graph laid out)."""
    detail = show_pipeline(pipeline_id, state, who)
    grid = pipeline_grid(pipeline_id, state, who, cursor=None, limit=GRID_RUNS)
    latest = grid.runs[0].tasks if grid.runs else {}
    graph = svg.task_graph(
        [(t.id, t.layer, t.upstream) for t in detail.tasks],
        latest,
        href=f"/runs/{grid.runs[0].run.id}#task-" if grid.runs else None,
    )
    pipe = state.pipelines().get(pipeline_id)
    tags = tuple(detail.tags)
    return {
        "p": detail,
        "graph": graph,
        "grid": grid,
        "columns": list(reversed(grid.runs)),
        "latest_run": grid.runs[0].run if grid.runs else None,
        "can_run": who.can(RUN, pipeline_id, tags),
        "can_trigger": who.can(RUN, pipeline_id, tags) and pipe is not None,
        "fields": param_fields(pipe, given, errors),
        "form_error": form_error,
        "grid_limit": GRID_RUNS,
        "tasks_by_id": {t.id: t for t in detail.tasks},
        "does": {t.id: task_does(t.kind, t.action) for t in detail.tasks},
    }


@router.get("/pipelines/{pipeline_id}")
def pipeline_page(
    pipeline_id: PipelineId, request: Request, who: Annotated[Principal, Depends(require(READ))]
) -> Response:
    state = server_state(request)
    return render(request, "pipeline.html", pipeline_context(state, who, pipeline_id))


def _pause(request: Request, who: Principal, pipeline_id: str, paused: bool) -> Response:
    state = server_state(request)
    _set_paused(state, who, pipeline_id, paused)
    back = request.query_params.get("back")
    target = "/" if back == "list" else f"/pipelines/{pipeline_id}"
    notice = "paused" if paused else "unpaused"
    return RedirectResponse(f"{target}?notice={notice}", status_code=303)


@router.post("/pipelines/{pipeline_id}/pause")
def pause(
    pipeline_id: PipelineId, request: Request, who: Annotated[Principal, Depends(require(RUN))]
) -> Response:
    return _pause(request, who, pipeline_id, True)


@router.post("/pipelines/{pipeline_id}/unpause")
def unpause(
    pipeline_id: PipelineId, request: Request, who: Annotated[Principal, Depends(require(RUN))]
) -> Response:
    return _pause(request, who, pipeline_id, False)


def parse_params(pipe: Any, given: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's text values converted to the declared types: (params, errors by name).
    An empty optional field takes the default."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, decl in pipe.params.items():
        text = given.get(name, "")
        if text.strip() == "":
            if decl.required:
                errors[name] = "required"
            continue
        try:
            value = decl.parse(text if decl.type == "string" else text.strip())
            values[name] = decl.check(value, "the value")
        except ValueError as exc:
            errors[name] = str(exc)
    return values, errors


@router.post("/pipelines/{pipeline_id}/trigger")
async def trigger(
    pipeline_id: PipelineId, request: Request, who: Annotated[Principal, Depends(principal)]
) -> Response:
    """Queue a run with the form's params (checked as the API checks them): the run's page,
    or the pipeline page again with the errors by its fields (422)."""
    state = server_state(request)
    form = await request.form()
    given = {
        key[len(PARAM_FIELD) :]: form_text(form, key, 100_000)
        for key in form
        if key.startswith(PARAM_FIELD)
    }

    def work() -> Response:
        pipe = state.pipelines().get(pipeline_id)
        if pipe is None:
            show_pipeline(pipeline_id, state, who)  # 403 or 404 as the API says
            raise ApiError(404, f"no pipeline {pipeline_id!r} in the pipelines folder")
        values, errors = parse_params(pipe, given)
        form_error = None
        if not errors:
            try:
                done = queue_run(state, who, pipeline_id, TriggerBody(params=values), "web")
                return RedirectResponse(f"/runs/{done.run_id}", status_code=303)
            except ApiError as exc:
                if exc.status != 422:
                    raise
                form_error = exc.message
            except ConfigError as exc:  # the params were refused
                form_error = str(exc).splitlines()[0]
        context = pipeline_context(state, who, pipeline_id, given, errors, form_error)
        return render(request, "pipeline.html", context, status=422)

    return await run_in_threadpool(work)
