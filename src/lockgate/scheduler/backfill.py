"""Backfills: one run per data interval of a date range, run here at a given parallelism.

Each interval's run has the same key as the scheduler's run for it, so a backfill never
duplicates a scheduled run, and running the same backfill again continues it: intervals whose
run succeeded are skipped, interrupted ones (cancelled, or lost with a killed process) are
resumed, failed ones are re-run with `rerun_failed` (their failed tasks only).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lockgate.config import Project
from lockgate.engine.executors import check_executor
from lockgate.engine.run import RunEngine, RunResult
from lockgate.errors import ConfigError
from lockgate.execution import coerce_params, execute_stored, new_run_id, open_store
from lockgate.model.pipeline import Pipeline
from lockgate.model.states import TaskState
from lockgate.model.timetables import ScheduledRun
from lockgate.scheduler.wakeup import wake_schedulers
from lockgate.store.owners import owner_alive
from lockgate.store.scheduling import NewRun, interval_key

if TYPE_CHECKING:
    from lockgate.store.store import Store

MAX_INTERVALS = 10_000


@dataclass
class Interval:
    """One interval of the backfill and what became of it."""

    run: ScheduledRun
    key: str
    action: str = "run"
    """run (new), resume, rerun, skip (succeeded before), busy (another process runs it),
    failed (failed before; not re-run without rerun_failed)."""
    run_id: str | None = None
    state: str | None = None
    error: str | None = None


@dataclass
class BackfillReport:
    pipeline_id: str
    intervals: list[Interval] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(i.state == "success" for i in self.intervals)

    def counts(self) -> dict[str, int]:
        """Intervals by outcome: a run state, `busy`, or `not started` (interrupted before)."""
        out: dict[str, int] = {}
        for i in self.intervals:
            key = i.state or ("not started" if i.action in ("run", "resume", "rerun") else i.action)
            out[key] = out.get(key, 0) + 1
        return out


def intervals_for(pipe: Pipeline, start: datetime, end: datetime) -> list[ScheduledRun]:
    """The data intervals whose logical date is in [start, end]; ConfigError if none."""
    table = pipe.timetable()
    if table is None:
        what = "runs on dataset updates" if pipe.datasets else "has no schedule"
        raise ConfigError(
            f"pipeline {pipe.id!r} {what}: a backfill needs a time schedule (cron or 'every')"
        )
    if end < start:
        raise ConfigError(f"--end {end:%Y-%m-%d %H:%M} is before --start {start:%Y-%m-%d %H:%M}")
    runs = []
    now = datetime.now(UTC)
    for run in table.runs_between(start, end):
        if run.end.astimezone(UTC) > now:  # not due yet: the scheduler's, when it is
            break
        runs.append(run)
        if len(runs) > MAX_INTERVALS:
            raise ConfigError(
                f"the range has more than {MAX_INTERVALS} intervals of {pipe.schedule!r}; "
                "backfill it in parts"
            )
    if not runs:
        since = (
            f" (it starts on {pipe.start_date.isoformat()})" if pipe.start_date is not None else ""
        )
        raise ConfigError(
            f"no interval of the schedule {pipe.schedule!r} of {pipe.id!r}{since} that is due "
            f"by now starts between {start.isoformat()} and {end.isoformat()}"
        )
    return runs


class Backfill:
    """Plans and runs one backfill; `cancel()` stops it (runs in progress end cancelled and
    are resumed by the next backfill of the range)."""

    def __init__(
        self,
        pipe: Pipeline,
        start: datetime,
        end: datetime,
        *,
        project: Project,
        parallel: int = 1,
        rerun_failed: bool = False,
        executor: str | None = None,
    ) -> None:
        if parallel < 1:
            raise ConfigError(f"--parallel must be 1 or more, got {parallel}")
        if executor is not None:
            check_executor(executor)
        self.pipe = pipe
        self.project = project
        self.parallel = parallel
        self.rerun_failed = rerun_failed
        self.executor = executor
        self.store: Store = open_store(project)
        self.report = BackfillReport(pipe.id)
        self._cancelled = threading.Event()
        self._engines: dict[str, RunEngine] = {}
        self._lock = threading.Lock()
        runs = intervals_for(pipe, start, end)
        self._params = coerce_params(pipe, None)
        existing = self.store.runs_by_key(
            pipe.id, [interval_key(r.start.timestamp()) for r in runs]
        )
        for run in runs:
            key = interval_key(run.start.timestamp())
            self.report.intervals.append(self._plan(Interval(run, key), existing.get(key)))

    def _plan(self, item: Interval, row: dict[str, Any] | None) -> Interval:
        """What to do with an interval, given its existing run (if any)."""
        if row is None:
            return item
        item.run_id = row["id"]
        state = row["state"]
        if state == "success":
            item.action, item.state = "skip", "success"
        elif state in ("queued", "running"):
            if row["owner"] is None or owner_alive(row["owner"], row["heartbeat_at"], time.time()):
                item.action = "busy"
                item.error = "queued or running in another process"
            else:
                item.action = "resume"  # its process died; it is marked lost when claimed
        elif state == "failed":
            item.action = "rerun" if self.rerun_failed else "failed"
            item.state = None if self.rerun_failed else "failed"
        else:  # cancelled, lost: interrupted
            item.action = "resume"
        return item

    @property
    def todo(self) -> list[Interval]:
        return [i for i in self.report.intervals if i.action in ("run", "resume", "rerun")]

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            engines = list(self._engines.values())
        for engine in engines:
            engine.cancel()

    def run(self, on_done: Callable[[Interval], None] | None = None) -> BackfillReport:
        """Run the intervals left to do, oldest first, `parallel` at a time."""
        self.store.recover_lost()  # runs of a killed earlier backfill become resumable

        def one(item: Interval) -> None:
            if self._cancelled.is_set():
                return
            try:
                result = self._execute(item)
                if result is not None:
                    item.state, item.error = (
                        result.state.value,
                        result.error or _first_error(result),
                    )
            except ConfigError as exc:
                item.state, item.error = "failed", str(exc)
            if on_done is not None:
                on_done(item)

        with ThreadPoolExecutor(self.parallel, thread_name_prefix="lockgate-backfill") as pool:
            list(pool.map(one, self.todo))
        return self.report

    def _execute(self, item: Interval) -> RunResult | None:
        db = self.store
        if item.action == "run":
            logical = item.run.start.timestamp()
            run_id = new_run_id()
            created = db.enqueue(
                [
                    NewRun(
                        run_id,
                        self.pipe.id,
                        db.record_version(self.pipe),
                        self._params,
                        "backfill",
                        (logical, logical, item.run.end.timestamp()),
                        run_key=item.key,
                        runner=None,
                        owner=db.owner,
                    )
                ]
            )
            if not created:  # a scheduler or another backfill created it meanwhile
                item.action, item.error = "busy", "created by another process meanwhile"
                return None
            item.run_id = run_id
        elif item.action == "rerun":
            assert item.run_id is not None
            failed = [
                r["task_id"]
                for r in db.task_states(item.run_id)
                if r["state"] not in (TaskState.SUCCESS, TaskState.SKIPPED)
            ]
            db.clear_tasks(item.run_id, failed, runner=None, owner=db.owner)
        else:
            assert item.run_id is not None
            db.recover_lost()
            # a killed or stopped backfill's attempts are not its tasks' fault: retries start
            # afresh
            try:
                db.claim_run(item.run_id, self.executor or self.project.executor, forgive_lost=True)
            except ConfigError:  # a scheduler (or another backfill) took it meanwhile
                item.action, item.error = "busy", "taken by another process meanwhile"
                return None
        record = db.get_run(item.run_id)
        assert record is not None
        try:
            return execute_stored(
                db,
                record,
                self.pipe,
                self.project,
                executor=self.executor,
                on_engine=lambda engine: self._track(item, engine),
            )
        finally:
            if any(t.produces for t in self.pipe.tasks.values()):
                wake_schedulers(db)

    def _track(self, item: Interval, engine: RunEngine) -> None:
        with self._lock:
            self._engines[engine.run_id] = engine
        if self._cancelled.is_set():
            engine.cancel()


def _first_error(result: RunResult) -> str | None:
    for task in result.tasks.values():
        if task.state.value == "failed" and task.error:
            return f"{task.id}: {task.error}"
    return None
