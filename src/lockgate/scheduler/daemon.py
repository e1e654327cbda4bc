"""The scheduler daemon: creates due runs and drives them, in one process.

One loop thread decides; each run it drives has a thread of its own (the engine's
coordinating thread). The loop sleeps until the next due time or a wake-up: a run finished, a
pipeline file changed, another process triggered a run, paused a pipeline or updated a dataset
(`wakeup.py`). Every `CHECK_S` it also beats (so other processes see it alive), finds runs whose
scheduler died (`Store.recover_lost`) and adopts them, and looks at the database in case a
wake-up was lost or came from another host. On every wake-up and check it also looks for cancel
requests of the runs it drives (`lockgate cancel`, the API, which wake it) and cancels them.

Exactly once is kept by the database (see `store/scheduling.py`): run keys for intervals,
compare-and-set for dataset cursors, conditional updates for claims. Several schedulers may
share a PostgreSQL database; on SQLite a second one refuses to start.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lockgate.config import Project
from lockgate.engine.executors import check_executor
from lockgate.engine.run import RunEngine, RunResult
from lockgate.errors import ConfigError, LockgateError, StoreError
from lockgate.execution import coerce_params, execute_stored, new_run_id, open_store
from lockgate.model.pipeline import Pipeline
from lockgate.model.states import RunState
from lockgate.scheduler.planner import Plan, plan_for
from lockgate.scheduler.registry import Registry
from lockgate.store.scheduling import NewRun, interval_key

if TYPE_CHECKING:
    from lockgate.store.store import Store
    from lockgate.store.writer import EventWriter

log = logging.getLogger("lockgate.scheduler")

CHECK_S = 2.0
"""Liveness and database check period (heartbeat, adoption of orphaned runs)."""
DEFAULT_MAX_ACTIVE_RUNS = 16
"""Runs of one pipeline at once when the pipeline does not say (Airflow's default too)."""

WATCH_READY_S = 10.0
"""How long `start()` waits for the folder watcher's first scan (a walk of the folder)."""


@dataclass
class _Driving:
    pipeline_id: str
    thread: threading.Thread
    engine: RunEngine | None = None
    cancel_by: str | None = None
    """Who asked to cancel the run (it is cancelled as soon as its engine exists)."""


class Scheduler:
    """Schedules and runs the pipelines of a project until `stop()`."""

    def __init__(
        self,
        project: Project,
        *,
        executor: str | None = None,
        concurrency: int | None = None,
        on_run_finished: Callable[[str, RunResult], None] | None = None,
    ) -> None:
        self.project = project
        if executor is not None:
            check_executor(executor)
        self.executor = executor
        self.concurrency = concurrency
        self.on_run_finished = on_run_finished
        self.store: Store = open_store(project)
        self.registry = Registry(project.pipelines_dir)
        self._plans: dict[str, Plan | None] = {}
        self._versions: dict[tuple[str, str], int] = {}
        self._driving: dict[str, _Driving] = {}
        self._writer: EventWriter | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._files_changed = threading.Event()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._warned: set[str] = set()
        self._listener: Any = None
        self._watcher: Any = None
        self._flags: dict[str, dict[str, Any]] = {}

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Register (refusing a second scheduler on SQLite), load the pipelines, start the
        wake-up listener and the folder watcher."""
        from lockgate.scheduler.wakeup import WakeListener
        from lockgate.scheduler.watch import FolderWatcher

        self._listener = WakeListener()
        try:
            self.store.register_scheduler(
                self._listener.address, alone=self.store.dialect == "sqlite"
            )
        except BaseException:
            self._listener.close()
            raise
        self._listener.start(self.wake)
        self._watcher = FolderWatcher(self.project.pipelines_dir, self._on_files)
        self._watcher.start()
        # load after the watcher's first scan: a file written in between is then reported
        # as a change (loaded before the scan, it would be in the scan and never reported)
        self._watcher.wait_ready(WATCH_READY_S)
        self._reload()
        if not self.project.pipelines_dir.is_dir():
            log.warning(
                "the pipelines folder %s does not exist; waiting for it (create it, or set "
                "`pipelines` in lockgate.toml)",
                self.project.pipelines_dir,
            )

    def serve(self) -> None:
        """Run the loop in this thread until `stop()`; then stop driving runs (they go back to
        the queue for the next scheduler) and unregister."""
        try:
            self._loop()
        finally:
            self._shutdown()

    def stop(self) -> None:
        """Ask the loop to end (safe from signal handlers and other threads)."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Make the loop look at the database now."""
        self._wake.set()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def _on_files(self, paths: set[Any]) -> None:
        self._files_changed.set()
        self._wake.set()

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        next_check = 0.0
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                if self._files_changed.is_set():
                    self._files_changed.clear()
                    self._reload()
                mono = time.monotonic()
                if mono >= next_check:
                    self._check()
                    next_check = mono + CHECK_S
                self._flags = self.store.pipeline_flags()
                missing = [pid for pid in self.registry.pipelines if pid not in self._flags]
                if missing:  # e.g. their registration failed with the database
                    self.store.register_pipelines(missing)
                    self._flags = self.store.pipeline_flags()
                self._create_scheduled()
                self._create_dataset_runs()
                self._start_queued()
                self._cancel_requested()  # after starting runs: never delays them
                failures = 0
            except StoreError as exc:
                # the database restarting, a lock held too long: keep going, plan again from
                # the database (plans may have moved past runs that were not created)
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.error("the metadata database failed (%s); trying again in %.0fs", exc, delay)
                self._plans.clear()
                self._stopping.wait(delay)
                continue
            wait = next_check - time.monotonic()
            due = self._next_due()
            if due is not None:
                wait = min(wait, due - time.time())
            if wait > 0:
                self._wake.wait(wait)

    def _next_due(self) -> float | None:
        times = [
            plan.next_due.timestamp()
            for pid, plan in self._plans.items()
            if plan is not None and plan.next_due is not None and not self._paused(pid)
        ]
        return min(times) if times else None

    def _paused(self, pipeline_id: str) -> bool:
        flags = self._flags.get(pipeline_id)
        return bool(flags and flags["paused"])

    # -- pipelines ------------------------------------------------------------------------------
    def _reload(self) -> None:
        changes = self.registry.reload()
        pipelines = self.registry.pipelines
        if changes.added:
            self.store.register_pipelines(changes.added)
        for pid in changes.added + changes.changed:
            self._plans.pop(pid, None)
            verb = "added" if pid in changes.added else "changed"
            pipe = pipelines[pid]
            log.info("pipeline %s %s (%s)", pid, verb, _describe(pipe))
            if pipe.catchup and pipe.start_date is None and pipe.schedule:
                log.warning(
                    "pipeline %s: catchup needs a start_date to know where to begin; without one "
                    "only the latest interval runs",
                    pid,
                )
        for pid in changes.removed:
            self._plans.pop(pid, None)
            log.info("pipeline %s removed: no new runs", pid)

    def _plan(self, pipe: Pipeline) -> Plan | None:
        if pipe.id not in self._plans:
            if pipe.timetable() is None:
                self._plans[pipe.id] = None
                return None
            last = self.store.last_scheduled(pipe.id)
            self._plans[pipe.id] = plan_for(pipe, last, datetime.now(UTC))
        return self._plans[pipe.id]

    def _version(self, pipe: Pipeline) -> int:
        key = (pipe.id, pipe.fingerprint())
        found = self._versions.get(key)
        if found is None:
            found = self._versions[key] = self.store.record_version(pipe)
        return found

    def _default_params(self, pipe: Pipeline) -> dict[str, Any] | None:
        try:
            return coerce_params(pipe, None)
        except ConfigError as exc:
            self._warn_once(
                f"params:{pipe.id}",
                f"cannot start a run on its own: {exc}; give the param a default",
            )
            return None

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.error("%s", message)

    # -- creating runs --------------------------------------------------------------------------
    def _create_scheduled(self) -> None:
        now = datetime.now(UTC)
        new: list[NewRun] = []
        for pid, pipe in self.registry.pipelines.items():
            if self._paused(pid):
                self._plans.pop(pid, None)  # re-planned on unpause: no catchup of the pause
                continue
            plan = self._plan(pipe)
            if plan is None:
                continue
            runs = plan.due(now)
            if not runs:
                continue
            params = self._default_params(pipe)
            if params is None:
                continue
            version = self._version(pipe)
            for due in runs:
                logical = due.start.timestamp()
                new.append(
                    NewRun(
                        new_run_id(),
                        pid,
                        version,
                        params,
                        "schedule",
                        (logical, logical, due.end.timestamp()),
                        run_key=interval_key(logical),
                    )
                )
        if new:
            created = self.store.enqueue(new)
            log.debug(
                "created %d scheduled runs (%d existed)", len(created), len(new) - len(created)
            )

    def _create_dataset_runs(self) -> None:
        for pid, pipe in self.registry.pipelines.items():
            if not pipe.datasets or self._paused(pid):
                continue
            flags = self._flags.get(pid)
            if flags is None:
                continue
            cursor = int(flags["dataset_cursor"])
            updates = self.store.dataset_updates(pipe.datasets, cursor)
            if len(updates) < len(pipe.datasets):
                continue
            params = self._default_params(pipe)
            if params is None:
                continue
            now = time.time()
            run = NewRun(
                new_run_id(),
                pid,
                self._version(pipe),
                params,
                "dataset",
                (now, now, now),
                run_key=f"dataset:{cursor}",
            )
            if self.store.enqueue_dataset_run(run, cursor, max(updates.values())):
                log.info("run %s of %s: its datasets were updated", run.run_id, pid)

    # -- driving runs ---------------------------------------------------------------------------
    def _limits(self) -> dict[str, int | None]:
        return {
            pid: pipe.max_active_runs or DEFAULT_MAX_ACTIVE_RUNS
            for pid, pipe in self.registry.pipelines.items()
            if not self._paused(pid)
        }

    def _start_queued(self) -> None:
        if self._stopping.is_set():
            return
        claimed = self.store.claim_queued(self._limits())
        records = self.store.get_runs(claimed) if claimed else {}
        for run_id in claimed:
            self._drive(run_id, records.get(run_id))

    def _check(self) -> None:
        """Beat; put back in the queue the runs of schedulers that died, and runs this one
        claimed but is not driving (a database error between claiming and starting)."""
        self.store.beat_scheduler()
        with self._lock:
            driving = set(self._driving)
        for run_id in self.store.owned_scheduler_runs():
            if run_id not in driving:
                self.store.requeue(run_id, "its scheduler could not start it; queued again")
                log.warning("run %s: claimed but not started; queued again", run_id)
        for run_id in self.store.recover_lost():
            log.warning("run %s: the process driving it died; queued again", run_id)

    def _drive(self, run_id: str, record: dict[str, Any] | None) -> None:
        pipe = self.registry.pipelines.get(record["pipeline_id"]) if record else None
        if record is None or pipe is None:
            self.store.requeue(run_id, "its pipeline is no longer loaded here; queued again")
            return
        slot = _Driving(pipe.id, threading.Thread())
        thread = threading.Thread(
            target=self._run,
            args=(record, pipe, slot, self._events_writer()),
            name=f"lockgate-run-{run_id}",
            daemon=True,
        )
        slot.thread = thread
        with self._lock:
            self._driving[run_id] = slot
        thread.start()

    def _events_writer(self) -> EventWriter:
        """One group-commit writer for every run of this scheduler (50 runs starting at once
        share their commits); replaced once a batch could not be written."""
        if self._writer is None or self._writer.failed:
            if self._writer is not None:
                with contextlib.suppress(StoreError):
                    self._writer.close()
            self._writer = self.store.writer()
        return self._writer

    def _run(
        self, record: dict[str, Any], pipe: Pipeline, slot: _Driving, writer: EventWriter
    ) -> None:
        run_id = record["id"]
        result: RunResult | None = None
        try:
            result = execute_stored(
                self.store,
                record,
                pipe,
                self.project,
                executor=self.executor,
                concurrency=self.concurrency,
                on_engine=lambda engine: self._adopt_engine(slot, engine),
                writer=writer,
                watch_cancel=False,  # this loop looks for cancel requests (on wake-ups too)
            )
        except LockgateError as exc:
            log.error("run %s of %s could not run: %s", run_id, pipe.id, exc)
            self.store.fail_run(run_id, str(exc))
        except Exception:
            log.exception("run %s of %s crashed the scheduler's run thread", run_id, pipe.id)
            self.store.fail_run(run_id, "internal error in the scheduler; see its log")
        finally:
            # a run that started went back to the queue in its last commit (RunRequeued); one
            # claimed but not started yet goes back here
            if result is None and self._stopping.is_set():
                self.store.requeue(run_id, "its scheduler stopped before starting it")
            with self._lock:
                self._driving.pop(run_id, None)
            requeued = result.state is RunState.QUEUED if result else self._stopping.is_set()
            if not requeued:  # a requeued run keeps its request, for the next scheduler
                self._forget_cancel(run_id)
            self._wake.set()
        if result is not None:
            if result.state is RunState.FAILED:
                why = result.error or "; ".join(
                    f"{t.id}: {t.error}" for t in result.tasks.values() if t.state.value == "failed"
                )
                log.warning("run %s of %s: failed (%s)", run_id, pipe.id, why)
            else:
                log.info("run %s of %s: %s", run_id, pipe.id, result.state.value)
            if self.on_run_finished is not None:
                self.on_run_finished(run_id, result)

    def _adopt_engine(self, slot: _Driving, engine: RunEngine) -> None:
        with self._lock:
            slot.engine = engine
            cancel_by = slot.cancel_by
        if self._stopping.is_set():  # stopping began before the engine existed
            engine.cancel(requeue=True)
        elif cancel_by is not None:  # cancelled before the engine existed
            engine.cancel()

    def _cancel_requested(self) -> None:
        """Cancel the runs this scheduler drives that someone asked to cancel (the run ends
        `cancelled`; its request is forgotten when it has ended)."""
        with self._lock:
            todo = [run_id for run_id, slot in self._driving.items() if slot.cancel_by is None]
        if not todo:
            return
        for run_id, who in self.store.cancel_requests(todo).items():
            with self._lock:
                slot = self._driving.get(run_id)
                if slot is None:
                    continue
                slot.cancel_by = who
                engine = slot.engine
            log.info("run %s of %s: cancelled by %s", run_id, slot.pipeline_id, who)
            if engine is not None:
                engine.cancel()

    def _forget_cancel(self, run_id: str) -> None:
        """A cancel request of a run that has ended is done with (also one made after the last
        look: the run was still running then)."""
        with contextlib.suppress(StoreError):
            if self.store.cancel_requests([run_id]):
                self.store.forget_cancel(run_id)

    def running(self) -> list[str]:
        with self._lock:
            return list(self._driving)

    def _shutdown(self) -> None:
        self._stopping.set()  # also when the loop ended by an error: runs are requeued
        try:
            with self._lock:
                driving = list(self._driving.values())
            for slot in driving:
                if slot.engine is not None:
                    slot.engine.cancel(requeue=True)
            for slot in driving:
                slot.thread.join(timeout=30)
        finally:
            if self._writer is not None:
                with contextlib.suppress(StoreError):
                    self._writer.close()
            if self._watcher is not None:
                self._watcher.stop()
            if self._listener is not None:
                self._listener.close()
            self.store.unregister_scheduler()
            self._stopped.set()


def _describe(pipe: Pipeline) -> str:
    if pipe.datasets:
        return "runs when updated: " + ", ".join(pipe.datasets)
    if pipe.schedule:
        zone = "" if pipe.timezone == "UTC" else f" in {pipe.timezone}"
        return f"schedule {pipe.schedule}{zone}"
    return "manual only"
