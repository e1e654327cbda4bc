"""The `lockgate` command line. Exit codes: 0 success, 1 the run did not succeed, 2 user error,
3 internal error (a bug: the traceback is printed)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from lockgate.config import Project
from lockgate.errors import DefinitionError, LockgateError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="lockgate: run data pipelines fast, and keep the data they move safe.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(no_args_is_help=True, help="Manage the metadata database.")
app.add_typer(db_app, name="db")

ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="A run parameter as KEY=VALUE (repeatable)."),
]
ExecutorOpt = Annotated[
    str | None,
    typer.Option("--executor", "-e", help="inline, threads (default), processes or dask."),
]


def _dask_address(value: str | None) -> str | None:
    """`--dask-address` reaches the Dask executor the way $LOCKGATE_DASK_ADDRESS does."""
    if value:
        os.environ["LOCKGATE_DASK_ADDRESS"] = value
    return value


def pick_executor(executor: str | None, dask_address: str | None) -> str | None:
    """`--dask-address` means the Dask executor; given with another `--executor` it is a
    mistake worth a word rather than an address silently ignored."""
    if dask_address is None:
        return executor
    if not dask_address.strip():
        fail("--dask-address needs the scheduler's address, e.g. tcp://127.0.0.1:8786")
    if executor not in (None, "dask"):
        fail(f"--dask-address is for --executor dask, not {executor}: drop one of the two")
    return "dask"


DaskAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--dask-address",
        metavar="tcp://HOST:PORT",
        callback=_dask_address,
        help="The Dask scheduler for --executor dask (default: $LOCKGATE_DASK_ADDRESS, "
        "\\[dask] address, else a local cluster); implies --executor dask.",
    ),
]
ConcurrencyOpt = Annotated[
    int | None, typer.Option("--concurrency", "-c", min=1, help="Most tasks running at once.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document (see docs/cli.md).")]
DateOpt = Annotated[
    str | None,
    typer.Option(
        "--logical-date",
        "-d",
        metavar="DATE",
        help="The run's logical date (templates' ds), as 2024-01-31 or an ISO date-time; "
        "default now (UTC).",
    ),
]


def _logical_date(text: str | None) -> Any:
    """`--logical-date` as an aware datetime (dates and naive times are UTC)."""
    if text is None:
        return None
    from datetime import UTC, datetime

    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"--logical-date {text!r} is not a date; use YYYY-MM-DD or an ISO 8601 date-time")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _shown_path(path: str | os.PathLike[str]) -> str:
    """A path as shown to people: relative to the working folder when it is inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _error_text(exc: LockgateError) -> str:
    if isinstance(exc, DefinitionError) and exc.file:
        return str(DefinitionError(exc.detail, _shown_path(exc.file), exc.line, exc.column))
    return str(exc)


def fail(message: str, code: int = 2) -> NoReturn:
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"{what} {item!r} must look like KEY=VALUE")
        out[key.strip()] = value
    return out


def _plain(text: str) -> str:
    """User text for rich output: `[...]` in it is shown, not taken as markup."""
    from rich.markup import escape

    return escape(text)


def _console() -> Any:
    from rich.console import Console

    # piped output (CI logs, `make demo`) is not cut to 80 columns: ids must stay copyable
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _load(ref: str, project: Project) -> Any:
    from lockgate.authoring.discovery import find_pipeline

    return find_pipeline(ref, project.pipelines_dir)


def _find_run(ref: str, project: Project) -> dict[str, Any] | None:
    """The run `ref` names (an id or a unique prefix), when it does not name a pipeline file
    and the project has a database already (looking never creates one)."""
    import re

    if not re.fullmatch(r"[0-9]{8}T[0-9]{0,6}(-[0-9a-f]*)?", ref) or os.path.exists(ref):
        return None
    if project.db_url.startswith("sqlite:///") and not os.path.exists(
        project.db_url[len("sqlite:///") :]
    ):
        return None
    from lockgate import api

    found: dict[str, Any] | None = api.open_store(project).find_run(ref)
    return found


def _use_live(json_out: bool) -> bool:
    return not json_out and sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


def _run_and_report(pipeline_id: str, task_ids: list[str], json_out: bool, go: Any) -> NoReturn:
    from lockgate.cli.progress import LiveProgress, PlainProgress
    from lockgate.engine.events import EventBus

    bus = EventBus()
    progress: Any = None
    if _use_live(json_out):
        progress = LiveProgress(pipeline_id, task_ids)
    elif not json_out:
        progress = PlainProgress()
    if progress is not None:
        bus.subscribe(progress)

    def announce(run_id: str) -> None:
        if not json_out:
            if task_ids:
                sys.stdout.write(f"run {run_id} of {pipeline_id}: {len(task_ids)} task(s)\n")
            else:
                sys.stdout.write(f"resuming run {run_id} of {pipeline_id}\n")
            sys.stdout.flush()

    try:
        result = go(bus, announce)
    finally:
        if progress is not None:
            progress.stop()
    if json_out:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
    else:
        _summary(result)
    raise typer.Exit(0 if result.ok else 1)


def _summary(result: Any) -> None:
    from lockgate.cli.progress import state_text

    console = _console()
    tasks = list(result.tasks.values())
    shown = tasks if len(tasks) <= 30 else [t for t in tasks if t.state.value != "success"][:30]
    if shown:
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        table.add_column("task")
        table.add_column("state")
        table.add_column("tries", justify="right")
        table.add_column("error", overflow="fold")
        for t in shown:
            table.add_row(t.id, state_text(t.state.value), str(t.attempts), _plain(t.error or ""))
        console.print(table)
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.state.value] = counts.get(t.state.value, 0) + 1
    took = result.ended_at - result.started_at
    console.print(
        f"run {result.run_id}: {state_text(result.state.value)} in {took:.2f}s  ("
        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + f")\nlogs: lockgate logs {result.run_id}"
    )


@app.command()
def run(
    pipeline: Annotated[
        str,
        typer.Argument(metavar="PIPELINE", help="A pipeline id, or a file path (file.py[:id])."),
    ],
    param: ParamOpt = None,
    executor: ExecutorOpt = None,
    dask_address: DaskAddressOpt = None,
    concurrency: ConcurrencyOpt = None,
    logical_date: DateOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a pipeline now and wait for it to finish."""
    from lockgate import api

    executor = pick_executor(executor, dask_address)
    project = Project.load()
    when = _logical_date(logical_date)
    pipe = _load(pipeline, project)
    params = api.coerce_params(pipe, _pairs(param, "--param"), from_text=True)

    def go(bus: Any, announce: Any) -> Any:
        return api.run(
            pipe,
            params=params,
            executor=executor,
            concurrency=concurrency,
            project=project,
            bus=bus,
            handle_signals=True,
            trigger="manual",
            on_start=announce,
            logical_date=when,
        )

    _run_and_report(pipe.id, list(pipe.tasks), json_out, go)


@app.command()
def resume(
    run_id: Annotated[
        str,
        typer.Argument(metavar="RUN_ID", help="The run to continue (an id or a unique prefix)."),
    ],
    executor: ExecutorOpt = None,
    dask_address: DaskAddressOpt = None,
    concurrency: ConcurrencyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Continue an interrupted run: keep what succeeded, retry lost attempts with retries left."""
    from lockgate import api

    executor = pick_executor(executor, dask_address)
    project = Project.load()
    store = api.open_store(project)
    record = store.find_run(run_id)
    store.close()
    if record is None:
        fail(f"no run {run_id!r}; list runs with `lockgate runs`")

    def go(bus: Any, announce: Any) -> Any:
        return api.resume(
            record["id"],
            executor=executor,
            concurrency=concurrency,
            project=project,
            bus=bus,
            handle_signals=True,
            on_start=announce,
            on_changed=lambda msg: sys.stderr.write(f"note: {msg}\n"),
        )

    _run_and_report(record["pipeline_id"], [], json_out, go)


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """List the pipelines in the project's pipelines folder, with their last run."""
    from lockgate import api
    from lockgate.authoring.discovery import discover

    project = Project.load()
    found = discover(project.pipelines_dir)
    store = api.open_store(project)
    last = store.last_runs(found.pipelines)
    flags = store.pipeline_flags()
    store.close()
    paused = {pid for pid, f in flags.items() if f["paused"]}
    if json_out:
        doc = {
            "pipelines": [
                {
                    "id": p.id,
                    "file": p.file,
                    "origin": p.origin,
                    "tasks": len(p.tasks),
                    "schedule": p.schedule,
                    "datasets": list(p.datasets),
                    "timezone": p.timezone,
                    "paused": p.id in paused,
                    "last_run": (last[p.id]["id"] if p.id in last else None),
                    "last_state": (last[p.id]["state"] if p.id in last else None),
                }
                for p in found.pipelines.values()
            ],
            "errors": [str(e) for e in found.errors],
        }
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        from rich.table import Table

        from lockgate.cli.progress import state_text

        console = _console()
        if not project.pipelines_dir.is_dir():
            console.print(
                f"the pipelines folder {project.pipelines_dir} does not exist (create it, set "
                "`pipelines` in lockgate.toml, or run `lockgate init`)"
            )
        elif not found.pipelines and not found.errors:
            console.print(
                f"no pipelines in {project.pipelines_dir} (create one, or run `lockgate init`)"
            )
        if found.pipelines:
            table = Table(box=None, pad_edge=False)
            for col in ("pipeline", "tasks", "schedule", "last run", "state", "file", "form"):
                table.add_column(col)
            for p in found.pipelines.values():
                lr = last.get(p.id)
                table.add_row(
                    p.id,
                    str(len(p.tasks)),
                    _plain(_when_text(p)) + (" (paused)" if p.id in paused else ""),
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(lr["created_at"]))
                    if lr
                    else "-",
                    state_text(lr["state"]) if lr else "-",
                    _plain(os.path.relpath(p.file, project.root) if p.file else "-"),
                    ORIGINS.get(p.origin, p.origin),
                )
            console.print(table)
        for err in found.errors:
            sys.stderr.write(f"error: {_error_text(err)}\n")
    raise typer.Exit(2 if found.errors else 0)


def _when_text(pipe: Any) -> str:
    """When a pipeline runs, in a few words: its schedule, its datasets, or `-` (manual)."""
    if pipe.datasets:
        return "on " + ", ".join(pipe.datasets)
    return pipe.schedule or "-"


def _inside(path: str | os.PathLike[str], folder: Path) -> bool:
    """Whether `path` resolves to somewhere under `folder`."""
    return Path(path).resolve().is_relative_to(folder.resolve())


def _graph_tree(pipe: Any) -> Any:
    """The DAG as a tree: each task under its first upstream, other upstreams noted."""
    from rich.tree import Tree

    root = Tree(f"[bold]{pipe.id}[/]", guide_style="bright_black")
    nodes: dict[str, Any] = {}
    for tid in pipe.order:
        task = pipe.tasks[tid]
        if tid in pipe.compensations:
            continue
        label = f"{tid} [bright_black]{task.kind.value}{' branch' if task.branch else ''}[/]"
        if len(task.upstream) > 1:
            label += f" [bright_black](also after {', '.join(task.upstream[1:])})[/]"
        if task.compensation:
            label += f" [magenta](on failure: {task.compensation})[/]"
        parent = nodes[task.upstream[0]] if task.upstream else root
        nodes[tid] = parent.add(label)
    return root


ORIGINS = {"python": "Python", "yaml": "YAML", "airflow": "Airflow DAG file"}


def _schedule_facts(pipe: Any) -> str:
    """`start 2023-01-01 · catchup on · ...`: what the scheduler will go by, when set."""
    from lockgate.model.durations import format_duration

    def day(value: Any) -> str:
        return (
            f"{value:%Y-%m-%d}" if value.time() == value.min.time() else f"{value:%Y-%m-%d %H:%M}"
        )

    facts = []
    if pipe.timezone != "UTC":
        facts.append(f"time zone {pipe.timezone}")
    if pipe.start_date is not None:
        facts.append(f"start {day(pipe.start_date)}")
    if pipe.end_date is not None:
        facts.append(f"end {day(pipe.end_date)}")
    if pipe.schedule is not None:
        facts.append(f"catchup {'on' if pipe.catchup else 'off'}")
    if pipe.max_active_runs is not None:
        facts.append(f"at most {pipe.max_active_runs} active run(s)")
    if pipe.run_timeout is not None:
        facts.append(f"run timeout {format_duration(pipe.run_timeout)}")
    if pipe.tags:
        facts.append("tags " + ", ".join(pipe.tags))
    return _plain(" · ".join(facts)) if facts else ""


def _next_due_text(pipe: Any) -> str:
    """`next interval: 2026-11-24 00:00 -> 2026-11-25 00:00 (due in 3h 10m)`, from now."""
    from datetime import UTC, datetime

    from lockgate.model.durations import format_duration

    table = pipe.timetable()
    if table is None:
        return ""
    now = datetime.now(UTC)
    run = table.next_run(now)
    if run is None:
        return "no interval is due any more (past the end date)"
    zone = pipe.tz
    begin, end = run.start.astimezone(zone), run.due_at.astimezone(zone)
    wait = max(1.0, round((end - now).total_seconds()))
    return (
        f"next interval: {begin:%Y-%m-%d %H:%M:%S} -> {end:%Y-%m-%d %H:%M:%S} {end:%Z}, due in "
        f"{format_duration(wait)}"
    )


def _param_rules(decl: Any) -> str:
    rules = []
    if decl.enum is not None:
        rules.append("one of " + ", ".join(json.dumps(v) for v in decl.enum))
    if decl.minimum is not None:
        rules.append(f">= {decl.minimum:g}")
    if decl.maximum is not None:
        rules.append(f"<= {decl.maximum:g}")
    if decl.pattern is not None:
        rules.append(f"matches {decl.pattern}")
    return f"[{'; '.join(rules)}] " if rules else ""


def _setting_text(name: str, value: Any) -> str:
    from enum import Enum

    from lockgate.model.durations import format_duration

    if name in ("retry_delay", "max_retry_delay", "timeout") and value is not None:
        return format_duration(value)
    return str(value.value) if isinstance(value, Enum) else repr(value)


@app.command()
def show(
    pipeline: Annotated[
        str,
        typer.Argument(
            metavar="PIPELINE|RUN", help="A pipeline id or file path, or a run id (or its prefix)."
        ),
    ],
    json_out: Annotated[
        bool, typer.Option("--json", help="For a run: print one JSON document (see docs/cli.md).")
    ] = False,
) -> None:
    """Show a pipeline's graph, tasks and settings; or a run's tasks, the datasets it wrote
    (with their classifications and inputs) and its data-quality results."""
    from rich.table import Table

    project = Project.load()
    run = _find_run(pipeline, project)
    if run is not None:
        from lockgate import api
        from lockgate.cli.runview import show_run

        show_run(api.open_store(project), run, json_out)
        return
    if json_out:
        fail("--json is for runs: `lockgate show RUN --json`")
    pipe = _load(pipeline, project)
    console = _console()
    where = f"{_shown_path(pipe.file)}:{pipe.line}" if pipe.file else "?"
    schedule = pipe.schedule or ("dataset updates" if pipe.datasets else "none")
    console.print(
        f"[bold]{pipe.id}[/]  {len(pipe.tasks)} task(s)  schedule: {_plain(schedule)}"
        f"  defined at {_plain(where)} ({ORIGINS.get(pipe.origin, pipe.origin)})"
    )
    if pipe.description:
        console.print(_plain(pipe.description))
    if pipe.datasets:
        console.print(_plain("runs when updated: " + ", ".join(pipe.datasets)))
    timing = _schedule_facts(pipe)
    if timing:
        console.print(timing)
    upcoming = _next_due_text(pipe)
    if upcoming:
        console.print(upcoming)
    if pipe.params:
        params = Table(box=None, pad_edge=False, title_justify="left")
        for col in ("param", "type", "default", "description"):
            params.add_column(col, overflow="fold")
        for name, decl in pipe.params.items():
            params.add_row(
                name,
                decl.type or "any",
                "(required)" if decl.required else _plain(json.dumps(decl.default)),
                _plain(_param_rules(decl) + (decl.description or "")),
            )
        console.print(params)
    console.print(_graph_tree(pipe))
    table = Table(box=None, pad_edge=False)
    for col in ("task", "kind", "after", "runs", "settings"):
        table.add_column(col, overflow="fold")
    defaults = type(pipe.defaults)()
    for depth, layer in enumerate(pipe.layers()):
        for tid in layer:
            t = pipe.tasks[tid]
            changed = [
                f"{k}={_setting_text(k, getattr(t.settings, k))}"
                for k in t.settings.__slots__
                if getattr(t.settings, k) != getattr(defaults, k)
            ]
            if t.compensation:
                changed.append(f"compensated by {t.compensation}")
            if t.produces:
                changed.append("updates " + ", ".join(t.produces))
            name = ("  " * depth) + tid  # indented by depth; "after" names the upstreams
            if tid in pipe.compensations:
                name = f"{tid} (compensation)"
            table.add_row(
                name,
                "branch" if t.branch else t.kind.value,
                ", ".join(t.upstream) or "-",
                _plain(t.describe_action()),
                _plain(" ".join(str(c) for c in changed) or "-"),
            )
    console.print(table)


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of YAML pipeline files, for editors to validate and complete them."""
    from lockgate.authoring.yaml_schema import pipeline_json_schema

    text = json.dumps(pipeline_json_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    sys.stdout.write(f"wrote {output}\n")


@app.command()
def runs(
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="Only this pipeline's runs.")
    ] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only runs in this state.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=10000, help="Show at most this many runs.")
    ] = 20,
    json_out: JsonOpt = False,
) -> None:
    """List recent runs, newest first."""
    from lockgate import api
    from lockgate.model.states import RunState

    states = [s.value for s in RunState]
    if state is not None and state not in states:
        fail(f"--state {state!r} is not a run state; use one of {', '.join(states)}")
    project = Project.load()
    store = api.open_store(project)
    rows = store.list_runs(pipeline_id=pipeline, state=state, limit=limit)
    checks = store.quality_counts([r["id"] for r in rows])
    store.close()
    if json_out:
        from lockgate.cli.scheduling import _run_doc

        docs = []
        for r in rows:
            total, failed = checks.get(r["id"], (0, 0))
            docs.append({**_run_doc(r), "checks": {"total": total, "failed": failed}})
        sys.stdout.write(json.dumps({"runs": docs}) + "\n")
        return
    from rich.table import Table

    from lockgate.cli.progress import state_text

    if not rows:
        if pipeline or state:
            _console().print("no runs match")
        else:
            _console().print("no runs yet: start one with `lockgate run PIPELINE`")
        return
    table = Table(box=None, pad_edge=False)
    columns = ["run", "pipeline", "state", "trigger", "created", "took", "error"]
    if checks:
        columns.insert(-1, "checks")
    for col in columns:
        table.add_column(col, overflow="fold", no_wrap=col != "error")
    for r in rows:
        took = (
            f"{r['ended_at'] - r['started_at']:.2f}s" if r["ended_at"] and r["started_at"] else "-"
        )
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created_at"]))
        cells = [r["id"], r["pipeline_id"], state_text(r["state"]), r["trigger"] or "-", when, took]
        if checks:
            total, failed = checks.get(r["id"], (0, 0))
            cells.append(f"{total - failed}/{total} passed" if total else "-")
        table.add_row(*cells, _plain(r["error"] or ""))
    _console().print(table)


@app.command()
def logs(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="A run id (or unique prefix).")],
    task_id: Annotated[str | None, typer.Argument(metavar="TASK", help="Only this task.")] = None,
    attempt: Annotated[
        int | None,
        typer.Option(
            "--attempt",
            "-a",
            min=1,
            help="Only this attempt (1 is the first; default: all, or the "
            "latest when TASK is given).",
        ),
    ] = None,
) -> None:
    """Print the logs of a run's task attempts (stdout, stderr and logging)."""
    from lockgate import api

    project = Project.load()
    store = api.open_store(project)
    record = store.find_run(run_id)
    if record is None:
        store.close()
        fail(f"no run {run_id!r}; list runs with `lockgate runs`")
    rows = store.attempts(record["id"], task_id)
    store.close()
    if task_id is not None and not rows:
        fail(f"run {record['id']} has no attempt of task {task_id!r}")
    if attempt is not None:
        rows = [r for r in rows if r["attempt"] == attempt]
        if not rows:
            what = f"task {task_id!r}" if task_id else "no task"
            fail(f"{what} has no attempt {attempt} in run {record['id']}")
    elif task_id is not None:
        rows = rows[-1:]
    out = sys.stdout
    for r in rows:
        out.write(f"=== {r['task_id']} · attempt {r['attempt']} · {r['state']} ===\n")
        path = r["log_path"]
        if path and not _inside(path, project.logs_dir):  # the DB may be shared: trust no path
            out.write(f"(log {path} is outside this project's logs folder: not shown)\n")
        elif path and Path(path).is_file():
            with open(path, encoding="utf-8", errors="replace") as fh:
                shutil.copyfileobj(fh, out)
        else:
            out.write("(no output)\n")
        if r["error"]:
            out.write(f"error: {r['error']}\n")
    out.flush()


@app.command("test")
def test_(
    pipeline: Annotated[
        str, typer.Argument(metavar="PIPELINE", help="A pipeline id or file path.")
    ],
    task: Annotated[str, typer.Argument(metavar="TASK", help="The task to run.")],
    input_: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="An upstream task's result as TASK=JSON (repeatable)."),
    ] = None,
    param: ParamOpt = None,
    executor: Annotated[
        str, typer.Option("--executor", "-e", help="inline (default), threads, processes or dask.")
    ] = "inline",
    logical_date: DateOpt = None,
) -> None:
    """Run one task alone, with given inputs; nothing is recorded."""
    from lockgate import api

    project = Project.load()
    when = _logical_date(logical_date)
    pipe = _load(pipeline, project)
    if task not in pipe.tasks:
        from lockgate.errors import did_you_mean

        fail(f"pipeline {pipe.id!r} has no task {task!r}{did_you_mean(task, pipe.tasks, 'tasks:')}")
    inputs: dict[str, Any] = {}
    for key, text in _pairs(input_, "--input").items():
        try:
            inputs[key] = json.loads(text)
        except json.JSONDecodeError as exc:
            fail(f"--input {key}: {text!r} is not JSON ({exc.msg}); quote strings as '\"text\"'")
    params = api.coerce_params(pipe, _pairs(param, "--param"), from_text=True)
    result, log = api.test_task(
        pipe, task, inputs=inputs, params=params, executor=executor, logical_date=when
    )
    if log is not None:
        sys.stdout.write(log)
    summary = result.tasks[task]
    sys.stdout.write(f"{task}: {summary.state.value}")
    if summary.error:
        sys.stdout.write(f"  {summary.error}")
    sys.stdout.write("\n")
    if summary.result_json is not None:
        sys.stdout.write(f"result: {summary.result_json}\n")
    raise typer.Exit(0 if summary.state.value in ("success", "skipped") else 1)


_EXAMPLE = '''"""An example pipeline: extract >> transform >> load, as shell tasks."""

from lockgate import pipeline, shell

with pipeline("hello", description="A first pipeline", defaults={"retries": 1}) as p:
    extract = shell("extract", "echo 'Extracting data'")
    transform = shell("transform", "echo 'Transforming data'")
    load = shell("load", "echo 'Loading data'")
    extract >> transform >> load
'''

_CONFIG = """# lockgate project settings. LOCKGATE_DB_URL overrides db_url.
[lockgate]
pipelines = "pipelines"
# For PostgreSQL, set LOCKGATE_DB_URL=postgresql://user:password@host:5432/lockgate in the
# environment rather than here: this file is meant to be committed, passwords are not.
executor = "threads"
concurrency = 16

[pools]
# db = 4
"""


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Project folder (created if missing).")
    ] = Path("."),
) -> None:
    """Create a project: lockgate.toml, a pipelines/ folder with an example, the metadata DB."""
    from lockgate import api

    root = directory.resolve()
    root.mkdir(parents=True, exist_ok=True)
    created = []
    for rel, text in (("lockgate.toml", _CONFIG), ("pipelines/hello.py", _EXAMPLE)):
        path = root / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            created.append(rel)
    gitignore = root / ".gitignore"
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    if ".lockgate/" not in lines:
        gitignore.write_text("\n".join([*lines, ".lockgate/"]) + "\n", encoding="utf-8")
        created.append(".gitignore")
    project = Project.load(root)
    from lockgate.privacy.keys import ensure_key_file, keys_file_of

    keys_file = keys_file_of(project)
    if ensure_key_file(keys_file):  # owner-only (0600); the key itself is never printed
        created.append(os.path.relpath(keys_file, root))
    store = api.open_store(project)
    admin = None
    if not store.users(limit=1):  # the first admin of the server's API and UI
        from lockgate.auth.accounts import create_user
        from lockgate.store.audit import user_actor

        admin = create_user(store, "admin", "admin", actor=user_actor())
    store.close()
    from lockgate.store.db import safe_url

    sys.stdout.write(
        f"project ready in {root}\n"
        + "".join(f"  created {c}\n" for c in created)
        + f"  metadata db: {safe_url(project.db_url)}\n"
        + (
            f"  user admin, one-time password (shown once; changed at first login): {admin}\n"
            if admin
            else ""
        )
        + (f"next: cd {directory} && " if root != Path.cwd().resolve() else "next: ")
        + "lockgate run hello\n"
        + "then: lockgate up, and open http://127.0.0.1:8080 (user admin) for the web UI\n"
    )


def upgrade_db(project: Project) -> tuple[str | None, str]:
    """Create or migrate the project's metadata DB; the revisions before and after."""
    from lockgate.store import migrate
    from lockgate.store.db import check_writable_sqlite, create_db_engine

    if project.db_url.startswith("sqlite"):
        check_writable_sqlite(project.db_url)
    engine = create_db_engine(project.db_url)
    try:
        return migrate.upgrade(engine)
    finally:
        engine.dispose()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the metadata database to this version's schema."""
    from lockgate.store.db import safe_url

    project = Project.load()
    before, after = upgrade_db(project)
    what = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    sys.stdout.write(f"{safe_url(project.db_url)}: {what} revision {after}\n")


@db_app.command("migrate-to")
def db_migrate_to(
    url: Annotated[
        str,
        typer.Argument(
            metavar="URL",
            help="An empty database: postgresql://user:password@host:port/dbname, or "
            "sqlite:///path/to/file.db.",
        ),
    ],
) -> None:
    """Copy the metadata database into an empty one at URL and verify the copy.

    URL is PostgreSQL (or SQLite, for a backup). Every table is copied in one transaction, then
    row counts, per-table digests and the audit chain are checked and the copy is audited
    there. Stop the scheduler and server first; lockgate.toml is not changed."""
    from lockgate import api
    from lockgate.store.audit import user_actor
    from lockgate.store.db import safe_url
    from lockgate.store.transfer import migrate_to

    if not url.strip():
        fail("give the URL of the database to copy into, e.g. postgresql://user@host/lockgate")
    project = Project.load()
    done = migrate_to(api.open_store(project), url.strip(), actor=user_actor())
    width = max(len(t.table) for t in done.tables)
    for table in done.tables:
        sys.stdout.write(f"{table.table:<{width}}  {table.rows} row(s) copied\n")
    sys.stdout.write(
        f"verified: {len(done.tables)} tables, {done.rows} rows, audit chain intact "
        f"({done.audit_records} records)\n"
        f"audited: db.migrate_to, record {done.audit_seq} of the copy's audit chain\n"
        f'next: point the project at the copy, db_url = "{done.target.replace(":***@", "@")}" '
        "in lockgate.toml (or LOCKGATE_DB_URL)"
        + (
            " with the password given by PGPASSWORD or ~/.pgpass, not written in the file"
            if "***@" in done.target
            else ""
        )
        + f", then start lockgate again; {safe_url(project.db_url)} was left as it was\n"
    )


@db_app.command("clean")
def db_clean(
    older_than: Annotated[str, typer.Option("--older-than", help="Age, e.g. 30d, 12h.")] = "30d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
) -> None:
    """Delete finished runs older than a given age, with their events, results and logs."""
    from lockgate import api
    from lockgate.config import parse_duration

    project = Project.load()
    seconds = parse_duration(older_than)
    store = api.open_store(project)
    victims = store.clean(seconds, dry_run=dry_run)
    if not dry_run:
        from lockgate.cli import audit as audit_cli

        detail = {"older_than": older_than, "runs": len(victims)}
        audit_cli.record(project, "db.clean", None, detail, store=store)
    store.close()
    if not dry_run:
        for pipeline_id, run_id in victims:
            folder = project.logs_dir / pipeline_id / run_id
            if _inside(folder, project.logs_dir):  # ids come from the (maybe shared) DB
                shutil.rmtree(folder, ignore_errors=True)
    verb = "would delete" if dry_run else "deleted"
    sys.stdout.write(f"{verb} {len(victims)} run(s) older than {older_than}\n")


def _version(value: bool) -> None:
    if value:
        from lockgate import __version__

        sys.stdout.write(f"lockgate {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """lockgate: run data pipelines fast, and keep the data they move safe."""


from lockgate.cli import accounts as _accounts  # noqa: E402,F401  (registers its commands)
from lockgate.cli import audit as _audit  # noqa: E402,F401  (registers its commands)
from lockgate.cli import connections as _connections  # noqa: E402,F401  (registers its commands)
from lockgate.cli import data as _data  # noqa: E402,F401  (registers its commands)
from lockgate.cli import lineage as _lineage  # noqa: E402,F401  (registers its commands)
from lockgate.cli import notify as _notify  # noqa: E402,F401  (registers its commands)
from lockgate.cli import policy as _policy  # noqa: E402,F401  (registers its commands)
from lockgate.cli import privacy as _privacy  # noqa: E402,F401  (registers its commands)
from lockgate.cli import report as _report  # noqa: E402,F401  (registers its commands)
from lockgate.cli import scheduling as _scheduling  # noqa: E402,F401  (registers its commands)
from lockgate.cli import secrets as _secrets  # noqa: E402,F401  (registers its commands)
from lockgate.cli import server as _server  # noqa: E402,F401  (registers its commands)


def _click_exception_type() -> type[Exception]:
    """click's base exception: typer's vendored `typer._click` when it has one (newer typer
    raises those even when a standalone click is installed too), else click's."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click.exceptions import ClickException  # type: ignore[no-redef]
    return ClickException


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        # standalone_mode=False: typer returns the code of `typer.Exit` instead of exiting
        code = app(standalone_mode=False)
    except LockgateError as exc:
        sys.stderr.write(f"error: {_error_text(exc)}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except BrokenPipeError:  # `lockgate ... | head`: the reader left; say nothing more
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        sys.exit(141)
    except OSError as exc:  # a full disk, a read-only or missing folder, a permission
        where = f" ({exc.filename})" if exc.filename else ""
        sys.stderr.write(f"error: {exc.strerror or exc}{where}: free space or fix the path\n")
        sys.exit(2)
    except Exception as exc:
        if isinstance(exc, _click_exception_type()):  # usage errors: bad option, missing argument
            message = exc.format_message().strip()  # type: ignore[attr-defined]
            if type(exc).__name__ == "NoArgsIsHelpError":  # help was asked for by giving nothing
                if message:  # older typer returns the help text instead of printing it
                    sys.stdout.write(message + "\n")
            else:
                ctx = getattr(exc, "ctx", None)
                hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
                sys.stderr.write(f"error: {message}{hint}\n")
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if type(exc).__name__ == "Abort":
            sys.exit(1)
        import traceback

        traceback.print_exc()
        name = type(exc).__name__
        sys.stderr.write(f"error: internal error ({name}): this is a bug in lockgate\n")
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)
