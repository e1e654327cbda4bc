"""Driving one run with its state in the store: the store per database URL, the engine with
the project's settings, signals, the run timeout, and continuing a run recorded in the store
(resumed, adopted by a scheduler, queued by a trigger or cleared).

Used by `api` (run, resume), the scheduler daemon and backfills; it sits below them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lockgate.config import Project
from lockgate.engine.events import EventBus
from lockgate.engine.executors import Executor, make_executor
from lockgate.engine.run import PriorTask, RunEngine, RunResult
from lockgate.errors import ConfigError, StoreError
from lockgate.model.durations import format_duration
from lockgate.model.intervals import RunDates
from lockgate.model.pipeline import Pipeline
from lockgate.model.states import TaskState

if TYPE_CHECKING:
    from lockgate.store.store import Store
    from lockgate.store.writer import EventWriter

log = logging.getLogger("lockgate.execution")


def coerce_params(
    pipeline: Pipeline, given: Mapping[str, Any] | None, *, from_text: bool = False
) -> dict[str, Any]:
    """The run's params: declared defaults overlaid with `given`, each checked against its
    declaration (type, choices, range); `from_text`: values are command-line strings."""
    from lockgate.model.params import resolve_params

    try:
        params = resolve_params(pipeline.params, given, from_text=from_text)
    except ValueError as exc:
        raise ConfigError(f"pipeline {pipeline.id!r}: {exc}") from None
    _refuse_secrets(pipeline, params)
    return params


def _refuse_secrets(pipeline: Pipeline, params: Mapping[str, Any]) -> None:
    """ConfigError for a param that holds a secret: params are stored, shown and sent with
    events; secrets are passed by name and read where they are used."""
    from lockgate.secrets.redaction import secret_kind, strings

    for name, value in params.items():
        for text in strings(value, keys=True):
            kind = secret_kind(text)
            if kind is not None:
                raise ConfigError(
                    f"pipeline {pipeline.id!r}: param {name!r} holds what looks like a secret "
                    f"({kind}); params are stored and shown, so pass the secret's name instead "
                    "and read it in the task with ctx.secret(NAME) or {{ secret('NAME') }}"
                )


def new_run_id() -> str:
    """Sortable, readable and unique: `20261124T031400-9f2c1a0b3e4d` (48 random bits, so a
    scheduler creating hundreds of runs in one second does not collide)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(6)}"


_STORES: OrderedDict[str, Store] = OrderedDict()
_STORES_LOCK = threading.Lock()
_STORES_KEPT = 4


def open_store(project: Project) -> Store:
    """The project's metadata DB, after marking runs whose process died as lost.

    Stores are kept open per database URL and key file (a few at most), so a process that runs
    many pipelines pays for connecting and checking the schema once. The audit chain is keyed
    by the project's keyring, loaded on the first audited write (the key file is created then,
    as `lockgate init` does, when there is none and LOCKGATE_KEYS is not set)."""
    from functools import partial

    from lockgate.governance.audit import settings
    from lockgate.privacy.keys import Keyring
    from lockgate.store.store import Store

    audit = settings(project)
    url = project.db_url
    cache_key = f"{url}\n{project.keys_file}"
    with _STORES_LOCK:
        store = _STORES.get(cache_key)
        if store is None:
            store = Store(url, keys=partial(Keyring.for_project, project, create=True))
            _STORES[cache_key] = store
            while len(_STORES) > _STORES_KEPT:
                _STORES.popitem(last=False)[1].close()
        _STORES.move_to_end(cache_key)
    store.chain.every = audit.checkpoint_every
    store.recover_lost()
    return store


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


def executor_for(
    name_or_executor: str | Executor | None, project: Project, concurrency: int | None
) -> Executor:
    if isinstance(name_or_executor, Executor):
        return name_or_executor
    return make_executor(
        name_or_executor or project.executor,
        concurrency or project.concurrency,
        project.tables.get("dask"),
        project.root,
    )


def engine_for(
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
        artifacts=project.artifacts,
        project_root=str(project.root),
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


CANCEL_POLL_S = 0.5
"""How often a process driving runs outside a scheduler looks for cancel requests (`lockgate
cancel`, the API): one indexed query for all its runs."""


class CancelWatch:
    """Cancel requests for the runs this process drives (a scheduler checks its own): one
    daemon thread per store, alive while it has runs, asks every `CANCEL_POLL_S` which of them
    someone asked to cancel and cancels their engines (the run ends `cancelled`)."""

    _watches: weakref.WeakKeyDictionary[Store, CancelWatch] = weakref.WeakKeyDictionary()
    _watches_lock = threading.Lock()

    def __init__(self, db: Store) -> None:
        self._db = weakref.ref(db)  # not kept alive by its watch (the key of `_watches`)
        self._engines: dict[str, RunEngine] = {}
        self._asked: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @classmethod
    def of(cls, db: Store) -> CancelWatch:
        with cls._watches_lock:
            found = cls._watches.get(db)
            if found is None:
                found = cls._watches[db] = cls(db)
            return found

    def add(self, engine: RunEngine) -> None:
        with self._lock:
            self._engines[engine.run_id] = engine
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="lockgate-cancel-watch", daemon=True
                )
                self._thread.start()

    def remove(self, run_id: str) -> None:
        """The run ended: forget it, and its cancel request if there was one (also one
        made after the last look: the run was still running then)."""
        with self._lock:
            self._engines.pop(run_id, None)
            self._asked.discard(run_id)
        db = self._db()
        with contextlib.suppress(StoreError):
            if db is not None and db.cancel_requests([run_id]):
                db.forget_cancel(run_id)

    def _loop(self) -> None:
        while True:
            time.sleep(CANCEL_POLL_S)
            with self._lock:
                if not self._engines:
                    self._thread = None
                    return
                ids = [r for r in self._engines if r not in self._asked]
            db = self._db()
            try:
                asked = db.cancel_requests(ids) if ids and db is not None else {}
            except StoreError:  # the database is away: look again at the next poll
                continue
            for run_id, who in asked.items():
                with self._lock:
                    engine = self._engines.get(run_id)
                    self._asked.add(run_id)
                if engine is not None:
                    log.info("run %s: cancelled by %s", run_id, who)
                    engine.cancel()


def drive(
    engine: RunEngine,
    db: Store | None,
    handle_signals: bool,
    on_start: Callable[[str], None] | None,
    create: Callable[[Store], None],
    writer: EventWriter | None = None,
    project: Project | None = None,
    watch_cancel: bool = True,
) -> RunResult:
    """Run an engine with its events written to `db`: by a writer of its own, or by a shared
    `writer` (a scheduler's: one group commit for all its runs), flushed when the run ends.
    With the `project`, its `[lineage]` table sends the run's OpenLineage events and its
    `[notify]` table the run's notifications.
    `watch_cancel`: look for cancel requests of the run (`CancelWatch`; a scheduler, which
    looks for them itself, passes False)."""
    from lockgate.engine.logcapture import child_output, install
    from lockgate.governance.openlineage import subscriber_for

    _make_log_folder(engine)
    shared = writer is not None
    # a bad [lineage], [notify] or [secrets] table, or bad zones and policies for a pipeline
    # that moves data, fail here, before the run is recorded, not in its first task
    lineage = notifier = None
    if project is not None:
        from lockgate.notify import subscriber_for as notifier_for

        lineage = subscriber_for(project, pipeline_id=engine.pipeline.id, dates=engine.dates)
        notifier = notifier_for(project, engine.pipeline, db)
        if project.tables.get("secrets"):  # a wrong [secrets] table fails before the run
            from lockgate.secrets.chain import chain_for

            chain_for(project)
        if _moves_data(engine.pipeline):
            from lockgate.governance.gate import governance

            governance(project)
    engine.executor.prepare()  # e.g. reach the Dask cluster: its errors fail before the run
    watch = CancelWatch.of(db) if db is not None and watch_cancel else None
    try:
        if db is not None:
            create(db)
            writer = writer or db.writer()
            engine.bus.subscribe(writer)
            if watch is not None:
                watch.add(engine)
        if lineage is not None:
            engine.bus.subscribe(lineage)
        if notifier is not None:
            engine.bus.subscribe(notifier)
        if on_start is not None:
            on_start(engine.run_id)
        install()
        # tasks in threads share this process's console: what their child processes write
        # there is redacted (worker processes of other executors capture their own)
        children = child_output() if engine.executor.runs_tasks_here else contextlib.nullcontext()
        with _cancel_on_signals(engine, handle_signals), _run_timeout(engine), children:
            result = engine.run()
        return result
    finally:
        try:
            if writer is not None and db is not None:
                # raises StoreError if the run's state could not be written
                writer.flush() if shared else writer.close()
        finally:
            if db is not None:
                db.release_run(engine.run_id)
            if watch is not None:
                watch.remove(engine.run_id)
            if lineage is not None:
                lineage.close()  # sends what is queued (bounded wait); never raises
            if notifier is not None:
                notifier.close()  # delivers what is queued (bounded wait); never raises


def _moves_data(pipeline: Pipeline) -> bool:
    """The pipeline has lockgate's data or privacy tasks (whose writes the gate checks)."""
    modules = ("lockgate.io.tasks", "lockgate.privacy.tasks")
    return any(getattr(t.fn, "__module__", None) in modules for t in pipeline.tasks.values())


@contextmanager
def _run_timeout(engine: RunEngine) -> Iterator[None]:
    """The pipeline's `run_timeout`: past it, the run is stopped and ends `failed`."""
    limit = engine.pipeline.run_timeout
    if not limit:
        yield
        return
    reason = f"the run timed out after {format_duration(limit)} (run_timeout)"
    timer = threading.Timer(limit, engine.cancel, args=(reason,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def prior_tasks(db: Store, run_id: str) -> dict[str, PriorTask]:
    """What the store recorded about a run's tasks, for a run continued from it."""
    results = db.results(run_id)
    return {
        row["task_id"]: PriorTask(
            TaskState(row["state"]),
            row["attempts"] or 0,
            results.get(row["task_id"]),
            row["error"],
            retry_base=row["retry_base"] or 0,
        )
        for row in db.task_states(run_id)
    }


def execute_stored(
    db: Store,
    record: dict[str, Any],
    pipe: Pipeline,
    project: Project,
    *,
    executor: str | Executor | None = None,
    concurrency: int | None = None,
    bus: EventBus | None = None,
    handle_signals: bool = False,
    on_start: Callable[[str], None] | None = None,
    on_engine: Callable[[RunEngine], None] | None = None,
    writer: EventWriter | None = None,
    watch_cancel: bool = True,
) -> RunResult:
    """Drive a run recorded in the store, which this process has claimed: its params and dates
    as recorded, tasks that already finished keep their states and results. `watch_cancel`:
    as for `drive`."""
    run_id = record["id"]
    ex = executor_for(executor, project, concurrency)
    dates = RunDates.from_timestamps(
        record["logical_date"] or record["created_at"],
        record["data_interval_start"],
        record["data_interval_end"],
    )
    engine = engine_for(
        pipe,
        project,
        run_id=run_id,
        executor=ex,
        bus=bus or EventBus(),
        params=json.loads(record["params"] or "{}"),
        concurrency=concurrency,
        # a run that never started has no task rows: skip the two queries (scheduling latency)
        prior=prior_tasks(db, run_id) if record["started_at"] is not None else {},
        dates=dates,
    )
    if on_engine is not None:
        on_engine(engine)
    return drive(
        engine,
        db,
        handle_signals,
        on_start,
        create=lambda s: None,
        writer=writer,
        project=project,
        watch_cancel=watch_cancel,
    )
