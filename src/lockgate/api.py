"""Entry points that tie the parts together: run a pipeline, resume a run, test one task.

The CLI is a thin layer over these; they are public for use from Python too.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.authoring.python import PipelineBuilder, to_pipeline
from lockgate.config import Project
from lockgate.engine.events import EventBus
from lockgate.engine.executors import Executor
from lockgate.engine.run import PriorTask, RunResult
from lockgate.errors import ConfigError, LockgateError, NotFoundError
from lockgate.execution import (
    coerce_params,
    drive,
    engine_for,
    execute_stored,
    executor_for,
    new_run_id,
    open_store,
)
from lockgate.model.intervals import RunDates
from lockgate.model.pipeline import Pipeline
from lockgate.model.states import RunState, TaskState
from lockgate.scheduler.wakeup import wake_schedulers

if TYPE_CHECKING:
    from lockgate.store.scheduling import NewRun
    from lockgate.store.store import Store


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
    ex = executor_for(executor, project, concurrency)
    run_id = new_run_id()
    bus = bus or EventBus()
    engine = engine_for(
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
    try:
        return drive(
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
            project=project,
        )
    finally:
        if db is not None and any(t.produces for t in pipe.tasks.values()):
            wake_schedulers(db)  # pipelines triggered by its datasets may be due now


def _find_run(db: Store, run_id: str, project: Project) -> dict[str, Any]:
    """A run by id or unique prefix; NotFoundError naming where it looked."""
    record = db.find_run(run_id)
    if record is None:
        raise NotFoundError(
            f"no run {run_id!r} in {project.state_dir}; list runs with `lockgate runs`"
        )
    return record


def _recorded_pipeline(db: Store, record: dict[str, Any]) -> tuple[Pipeline, dict[str, Any]]:
    """The pipeline a run was started from, loaded again from its recorded file, and the
    recorded version."""
    from lockgate.authoring.discovery import load_file

    run_id = record["id"]
    version = db.version(record["version_id"]) if record["version_id"] is not None else None
    if version is None or not version["file"]:
        raise ConfigError(f"run {run_id} has no recorded pipeline file to load it from")
    found = {p.id: p for p in load_file(version["file"])}
    pipe = found.get(record["pipeline_id"])
    if pipe is None:
        raise NotFoundError(
            f"{version['file']} no longer defines pipeline {record['pipeline_id']!r}"
        )
    return pipe, version


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
    import time

    from lockgate.store.owners import owner_alive

    project = project or Project.load()
    db = open_store(project)  # shared by the process: not closed here
    record = _find_run(db, run_id, project)
    run_id = record["id"]
    if record["state"] in ("queued", "running") and owner_alive(
        record["owner"], record["heartbeat_at"], time.time()
    ):
        raise ConfigError(
            f"run {run_id} is still running (owner {record['owner']}); it cannot be resumed"
        )
    if record["state"] == RunState.SUCCESS.value:
        raise ConfigError(f"run {run_id} already succeeded; there is nothing to resume")
    pipe, version = _recorded_pipeline(db, record)
    if pipe.fingerprint() != version["hash"] and on_changed is not None:
        on_changed(
            f"the definition of {pipe.id!r} changed since run {run_id} started; "
            "resuming with the current definition"
        )
    db.claim_run(run_id, executor_for(executor, project, concurrency).name)
    db.forget_cancel(run_id)  # a request left by an earlier driver is not this resume's
    return execute_stored(
        db,
        db.get_run(run_id) or record,
        pipe,
        project,
        executor=executor,
        concurrency=concurrency,
        bus=bus,
        handle_signals=handle_signals,
        on_start=on_start,
    )


def scheduled_pipeline(ref: str, project: Project) -> Pipeline:
    """A pipeline that the project's schedulers run: found by id or path in its pipelines
    folder (a file elsewhere is an error: schedulers would not find it)."""
    from lockgate.authoring.discovery import find_pipeline

    pipe = find_pipeline(ref, project.pipelines_dir)
    folder = project.pipelines_dir.resolve()
    if pipe.file is not None and folder not in Path(pipe.file).resolve().parents:
        raise ConfigError(
            f"{pipe.file} is not in the pipelines folder {folder}, so a scheduler cannot run "
            "it; move it there, or run it here with `lockgate run`"
        )
    return pipe


def trigger(
    ref: str,
    *,
    params: Mapping[str, Any] | None = None,
    from_text: bool = False,
    logical_date: datetime | None = None,
    project: Project | None = None,
    kind: str = "manual",
) -> str:
    """Queue a run of a pipeline of the project for its scheduler; returns the run id.
    Params are checked now, so a bad value fails here, not in the scheduler."""
    project = project or Project.load()
    pipe = scheduled_pipeline(ref, project)
    run_params = coerce_params(pipe, params, from_text=from_text)
    db = open_store(project)
    run = queued_run(db, pipe, run_params, kind, logical_date)
    db.enqueue([run])
    wake_schedulers(db)
    return run.run_id


def queued_run(
    db: Store, pipe: Pipeline, params: dict[str, Any], kind: str, logical_date: datetime | None
) -> NewRun:
    """A run of `pipe` to queue (params already checked), its pipeline and version recorded;
    the caller enqueues it (alone, or in a transaction of its own, as the webhook does)."""
    from lockgate.store.scheduling import NewRun

    db.register_pipelines([pipe.id])
    dates = RunDates.at(logical_date).timestamps()
    return NewRun(new_run_id(), pipe.id, db.record_version(pipe), params, kind, dates)


def wait_for_run(
    run_id: str, project: Project, timeout: float | None = None, poll_s: float = 0.1
) -> dict[str, Any]:
    """Block until a run has finished; its record. TimeoutError after `timeout` seconds.

    A run whose scheduler dies meanwhile goes back to the queue (checked every 2 s here too)
    and is waited for until another scheduler finishes it."""
    import time

    db = open_store(project)
    deadline = None if timeout is None else time.monotonic() + timeout
    next_check = time.monotonic() + 2.0
    while True:
        if time.monotonic() >= next_check:
            db.recover_lost()
            next_check = time.monotonic() + 2.0
        record = db.get_run(run_id)
        if record is None:
            raise NotFoundError(f"run {run_id} no longer exists (was it cleaned?)")
        if record["state"] not in ("queued", "running"):
            return record
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(run_id)
        time.sleep(poll_s)


def set_paused(ref: str, paused: bool, project: Project | None = None) -> tuple[str, bool]:
    """Pause (no new scheduled, dataset or queued runs start) or unpause a pipeline.
    Returns its id and whether anything changed."""
    project = project or Project.load()
    db = open_store(project)
    try:
        pipeline_id = scheduled_pipeline(ref, project).id
    except LockgateError:
        # its file may be broken while a scheduler runs its last good definition: a pipeline
        # the schedulers know can be paused by id anyway
        if ref not in db.pipeline_flags():
            raise
        pipeline_id = ref
    changed = db.set_paused(pipeline_id, paused)
    wake_schedulers(db)
    return pipeline_id, changed


def clear(
    run_id: str,
    task_id: str | None = None,
    *,
    downstream: bool = False,
    project: Project | None = None,
) -> tuple[str, list[str]]:
    """Make tasks of a finished run run again: `task_id` (and its downstream tasks), or every
    task that did not succeed or get skipped. The run is queued for a scheduler (or
    `resume`). Returns the run id and the tasks cleared."""
    project = project or Project.load()
    db = open_store(project)
    record = _find_run(db, run_id, project)
    run_id = record["id"]
    pipe, _ = _recorded_pipeline(db, record)
    states = {row["task_id"]: row["state"] for row in db.task_states(run_id)}
    if task_id is None:
        if downstream:
            raise ConfigError("--downstream needs a TASK to start from")
        chosen = [
            t for t in pipe.order if states.get(t) not in (TaskState.SUCCESS, TaskState.SKIPPED)
        ]
        if not chosen:
            raise ConfigError(f"every task of run {run_id} succeeded or was skipped; name a TASK")
    else:
        if task_id not in pipe.tasks:
            raise NotFoundError(
                f"pipeline {pipe.id!r} has no task {task_id!r} (tasks: {', '.join(pipe.tasks)})"
            )
        chosen = [task_id]
        if downstream:
            below = {t for t in pipe.order if task_id in pipe.ancestors(t)}
            chosen += [t for t in pipe.order if t in below]
    db.clear_tasks(run_id, chosen)
    wake_schedulers(db)
    return run_id, chosen


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
        engine = engine_for(
            alone,
            project,
            run_id=f"test-{secrets.token_hex(3)}",
            executor=executor_for(executor, project, 1),
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
    "clear",
    "coerce_params",
    "new_run_id",
    "open_store",
    "resume",
    "run",
    "set_paused",
    "test_task",
    "trigger",
    "wait_for_run",
    "wake_schedulers",
]
