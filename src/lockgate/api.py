"""Entry points that tie the parts together: run a pipeline, resume a run, test one task.

The CLI is a thin layer over these; they are public for use from Python too.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.authoring.python import PipelineBuilder, to_pipeline
from lockgate.config import Project
from lockgate.engine.events import EventBus
from lockgate.engine.executors import Executor, make_executor
from lockgate.engine.run import PriorTask, RunEngine, RunResult
from lockgate.errors import ConfigError, LockgateError, NotFoundError
from lockgate.model.intervals import RunDates
from lockgate.model.pipeline import Pipeline
from lockgate.model.states import RunState, TaskState

if TYPE_CHECKING:
    from lockgate.store.store import Store


def new_run_id() -> str:
    """Sortable, readable and unique enough: `20261124T031400-9f2c1a`."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


_STORES: OrderedDict[str, Store] = OrderedDict()
_STORES_LOCK = threading.Lock()
_STORES_KEPT = 4


def open_store(project: Project) -> Store:
    """The project's metadata DB, after marking runs whose process died as lost.

    Stores are kept open per database URL (a few at most), so a process that runs many
    pipelines pays for connecting and checking the schema once."""
    from lockgate.store.store import Store

    url = project.db_url
    with _STORES_LOCK:
        store = _STORES.get(url)
        if store is None:
            store = Store(url)
            _STORES[url] = store
            while len(_STORES) > _STORES_KEPT:
                _STORES.popitem(last=False)[1].close()
        _STORES.move_to_end(url)
    store.recover_lost()
    return store


def coerce_params(
    pipeline: Pipeline, given: Mapping[str, Any] | None, *, from_text: bool = False
) -> dict[str, Any]:
    """The run's params: declared defaults overlaid with `given`, each checked against its
    declaration (type, choices, range); `from_text`: values are command-line strings."""
    from lockgate.model.params import resolve_params

    try:
        return resolve_params(pipeline.params, given, from_text=from_text)
    except ValueError as exc:
        raise ConfigError(f"pipeline {pipeline.id!r}: {exc}") from None


@contextmanager
def _cancel_on_signals(engine: RunEngine, enabled: bool) -> Iterator[None]:
    """Ctrl-C or SIGTERM cancels the run cleanly instead of killing the process."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    pressed = 0

    def handler(signum: int, frame: Any) -> None:
        nonlocal pressed
        pressed += 1
        if pressed == 1:
            engine.cancel()
            if engine.executor.inline:
                sys.stderr.write("cancelling: Ctrl-C again to interrupt the running task\n")
        elif engine.executor.inline:
            raise KeyboardInterrupt  # interrupts the task running in this thread

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _executor(
    name_or_executor: str | Executor | None, project: Project, concurrency: int | None
) -> Executor:
    if isinstance(name_or_executor, Executor):
        return name_or_executor
    return make_executor(name_or_executor or project.executor, concurrency or project.concurrency)


def run(
    pipeline: Pipeline | PipelineBuilder,
    *,
    params: Mapping[str, Any] | None = None,
    executor: str | Executor | None = None,
    concurrency: int | None = None,
    project: Project | None = None,
    store: Store | None | bool = True,
    bus: EventBus | None = None,
    handle_signals: bool = False,
    trigger: str = "manual",
    on_start: Callable[[str], None] | None = None,
    logical_date: datetime | None = None,
) -> RunResult:
    """Run a pipeline now and return its result. State goes to the project's metadata DB
    (`store=False` keeps it in memory only); logs go to the project's logs folder.
    `logical_date` is what templates see as `ds`/`logical_date` (default: now, UTC)."""
    pipe = to_pipeline(pipeline)
    project = project or Project.load()
    run_params = coerce_params(pipe, params)
    dates = RunDates.at(logical_date)
    ex = _executor(executor, project, concurrency)
    run_id = new_run_id()
    bus = bus or EventBus()
    engine = _engine(
        pipe,
        project,
        run_id=run_id,
        executor=ex,
        bus=bus,
        params=run_params,
        concurrency=concurrency,
        dates=dates,
    )
    db: Store | None = open_store(project) if store is True else (store or None)
    return _drive(
        engine,
        db,
        handle_signals,
        on_start,
        create=lambda s: s.create_run(
            run_id,
            pipe.id,
            s.record_version(pipe),
            run_params,
            ex.name,
            trigger,
            dates.timestamps(),
        ),
    )


def _engine(
    pipe: Pipeline,
    project: Project,
    *,
    run_id: str,
    executor: Executor,
    logs_dir: str | None = None,
    **options: Any,
) -> RunEngine:
    """A run's engine with the project's pools, logs folder and result size limit."""
    return RunEngine(
        pipe,
        run_id=run_id,
        executor=executor,
        pools=project.pools,
        logs_dir=logs_dir or str(project.logs_dir),
        result_max_bytes=project.result_max_bytes,
        **options,
    )


def _make_log_folder(engine: RunEngine) -> None:
    """Fail before the run starts, not task by task, when logs cannot be written."""
    if engine.logs_dir is None:
        return
    folder = os.path.join(engine.logs_dir, engine.pipeline.id, engine.run_id)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the log folder {folder}: {exc.strerror}; fix its permissions or set "
            "`logs` in lockgate.toml"
        ) from None


def _drive(
    engine: RunEngine,
    db: Store | None,
    handle_signals: bool,
    on_start: Callable[[str], None] | None,
    create: Callable[[Store], None],
) -> RunResult:
    from lockgate.engine.logcapture import install

    _make_log_folder(engine)
    writer = None
    try:
        if db is not None:
            create(db)
            writer = db.writer()
            engine.bus.subscribe(writer)
        if on_start is not None:
            on_start(engine.run_id)
        install()
        with _cancel_on_signals(engine, handle_signals):
            result = engine.run()
        return result
    finally:
        try:
            if writer is not None:
                writer.close()  # raises StoreError if the run's state could not be written
        finally:
            if db is not None:
                db.release_run(engine.run_id)


def resume(
    run_id: str,
    *,
    executor: str | Executor | None = None,
    concurrency: int | None = None,
    project: Project | None = None,
    bus: EventBus | None = None,
    handle_signals: bool = False,
    on_start: Callable[[str], None] | None = None,
    on_changed: Callable[[str], None] | None = None,
) -> RunResult:
    """Continue an interrupted (lost or cancelled) run: tasks that succeeded, were skipped or
    finally failed keep their state and results; lost attempts are retried if retries are left."""
    from lockgate.authoring.discovery import load_file
    from lockgate.store.store import owner_alive

    project = project or Project.load()
    db = open_store(project)  # shared by the process: not closed here
    record = db.find_run(run_id)
    if record is None:
        raise NotFoundError(
            f"no run {run_id!r} in {project.state_dir}; list runs with `lockgate runs`"
        )
    run_id = record["id"]
    import time

    if record["state"] in ("queued", "running") and owner_alive(
        record["owner"], record["heartbeat_at"], time.time()
    ):
        raise ConfigError(
            f"run {run_id} is still running (owner {record['owner']}); it cannot be resumed"
        )
    if record["state"] == RunState.SUCCESS.value:
        raise ConfigError(f"run {run_id} already succeeded; there is nothing to resume")
    version = db.version(record["version_id"]) if record["version_id"] is not None else None
    if version is None or not version["file"]:
        raise ConfigError(f"run {run_id} has no recorded pipeline file to resume from")
    found = {p.id: p for p in load_file(version["file"])}
    pipe = found.get(record["pipeline_id"])
    if pipe is None:
        raise NotFoundError(
            f"{version['file']} no longer defines pipeline {record['pipeline_id']!r}"
        )
    if pipe.fingerprint() != version["hash"] and on_changed is not None:
        on_changed(
            f"the definition of {pipe.id!r} changed since run {run_id} started; "
            "resuming with the current definition"
        )
    results = db.results(run_id)
    prior = {
        row["task_id"]: PriorTask(
            TaskState(row["state"]),
            row["attempts"] or 0,
            results.get(row["task_id"]),
            row["error"],
        )
        for row in db.task_states(run_id)
    }
    params = json.loads(record["params"] or "{}")
    dates = RunDates.from_timestamps(
        record["logical_date"] or record["created_at"],
        record["data_interval_start"],
        record["data_interval_end"],
    )
    ex = _executor(executor, project, concurrency)
    engine = _engine(
        pipe,
        project,
        run_id=run_id,
        executor=ex,
        bus=bus or EventBus(),
        params=params,
        concurrency=concurrency,
        prior=prior,
        dates=dates,
    )
    return _drive(
        engine,
        db,
        handle_signals,
        on_start,
        create=lambda s: s.claim_run(run_id, ex.name),
    )


def test_task(
    pipeline: Pipeline | PipelineBuilder,
    task_id: str,
    *,
    inputs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    executor: str | Executor = "inline",
    logical_date: datetime | None = None,
) -> tuple[RunResult, str | None]:
    """Run one task alone, nothing recorded. `inputs` give the results of its upstream tasks
    by task id. Returns the result and the text of the attempt's log."""
    pipe = to_pipeline(pipeline)
    if task_id not in pipe.tasks:
        raise NotFoundError(
            f"pipeline {pipe.id!r} has no task {task_id!r} (tasks: {', '.join(pipe.tasks)})"
        )
    task = pipe.tasks[task_id]
    inputs = dict(inputs or {})
    # the tasks whose results it may be given: its upstream tasks, and any other task whose
    # result it reads (e.g. an ancestor an Airflow task may pull an XCom from)
    given = list(dict.fromkeys((*task.upstream, *task.data_upstream())))
    unknown = set(inputs) - set(given)
    if unknown:
        raise ConfigError(
            f"--input {', '.join(sorted(unknown))}: not an upstream task of {task_id!r} "
            f"(upstream: {', '.join(given) or 'none'})"
        )
    missing = [u for u in task.data_upstream() if u not in inputs]
    if missing:
        raise ConfigError(
            f"task {task_id!r} uses the result of {', '.join(map(repr, missing))}: "
            f"give it with --input {missing[0]}=JSON"
        )
    tasks = {u: replace(pipe.tasks[u], upstream=(), compensation=None) for u in given}
    # alone, a branch task has nothing to choose from: it runs as a plain task and its
    # result (the ids it chose) is shown; and it runs once, as `airflow tasks test` does
    tasks[task_id] = replace(
        task, compensation=None, branch=False, settings=replace(task.settings, retries=0)
    )
    alone = Pipeline(id=pipe.id, tasks=tasks, params=pipe.params, pools=pipe.pools, file=pipe.file)
    prior = {u: PriorTask(TaskState.SUCCESS, 0, json.dumps(inputs.get(u))) for u in given}
    project = Project.load()
    from lockgate.engine.logcapture import install

    install()
    with tempfile.TemporaryDirectory(prefix="lockgate-test-") as logs:
        engine = _engine(
            alone,
            project,
            run_id=f"test-{secrets.token_hex(3)}",
            executor=_executor(executor, project, 1),
            logs_dir=logs,
            params=coerce_params(pipe, params),
            prior=prior,
            dates=RunDates.at(logical_date),
        )
        result = engine.run()
        attempts = result.tasks[task_id].attempts
        log = Path(logs, pipe.id, engine.run_id, task_id, f"attempt-{attempts}.log")
        text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else None
    return result, text


__all__ = [
    "LockgateError",
    "coerce_params",
    "new_run_id",
    "open_store",
    "resume",
    "run",
    "test_task",
]
