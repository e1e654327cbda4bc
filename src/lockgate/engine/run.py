"""The engine: runs one pipeline run, dispatching each task the moment its upstreams allow it.

The engine keeps the authoritative state of the run in memory, in one coordinating thread,
and tells the world through events (`lockgate.engine.events`); it never writes to the database
itself. Executors run the attempts and report outcomes into the engine's inbox.
"""

from __future__ import annotations

import heapq
import json
import os
import random
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue
from typing import Any

from lockgate.engine import events as ev
from lockgate.engine.context import TaskContext
from lockgate.engine.events import Event, EventBus
from lockgate.engine.executors.base import Executor
from lockgate.engine.logcapture import capture
from lockgate.engine.rules import Verdict, evaluate
from lockgate.engine.work import FAILED, LOST, SKIPPED, SUCCESS, Outcome, Started, WorkItem
from lockgate.errors import DefinitionError, TemplateError
from lockgate.model import facts
from lockgate.model.intervals import RunDates
from lockgate.model.pipeline import Pipeline
from lockgate.model.refs import ParamRef, TaskOutput, Template
from lockgate.model.settings import retry_delay_for
from lockgate.model.states import RunState, TaskState
from lockgate.model.task import Task, TaskKind
from lockgate.model.trigger_rules import TriggerRule
from lockgate.secrets import redaction

_CANCEL = object()
_MAX_WAIT_S = 3600.0
_BUCKET = {
    TaskState.SUCCESS: 0,
    TaskState.FAILED: 1,
    TaskState.UPSTREAM_FAILED: 1,
    TaskState.CANCELLED: 1,
    TaskState.SKIPPED: 2,
}
_FINAL = frozenset(_BUCKET)


@dataclass(frozen=True, slots=True)
class PriorTask:
    """What an earlier process recorded about a task, for `resume`."""

    state: TaskState
    attempts: int
    result_json: str | None = None
    error: str | None = None
    retry_base: int = 0
    """Attempts that do not count against its retries: those made before it was cleared, or
    before the scheduler driving it died or stopped (no fault of the task)."""


@dataclass(slots=True)
class TaskSummary:
    id: str
    state: TaskState
    attempts: int
    error: str | None = None
    result_json: str | None = None


@dataclass
class RunResult:
    """The outcome of a run: its state and each task's state, attempts, error and result."""

    run_id: str
    pipeline_id: str
    state: RunState
    tasks: dict[str, TaskSummary] = field(default_factory=dict)
    started_at: float = 0.0
    ended_at: float = 0.0
    error: str | None = None
    """Why the run as a whole failed, when no task says it (e.g. its run timeout)."""

    @property
    def ok(self) -> bool:
        return self.state is RunState.SUCCESS

    def result(self, task_id: str) -> Any:
        """The decoded return value of a task (None if it returned nothing or did not succeed)."""
        text = self.tasks[task_id].result_json
        return None if text is None else json.loads(text)

    def to_json(self) -> dict[str, Any]:
        """The stable `--json` document of a run (see docs/cli.md)."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline_id,
            "state": self.state.value,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": round(self.ended_at - self.started_at, 6),
            "error": self.error,
            "tasks": [
                {
                    "id": t.id,
                    "state": t.state.value,
                    "attempts": t.attempts,
                    "error": t.error,
                }
                for t in self.tasks.values()
            ],
        }


class RunEngine:
    """Runs one pipeline run to its end. Not reusable: make one per run."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        run_id: str,
        executor: Executor,
        bus: EventBus | None = None,
        params: Mapping[str, Any] | None = None,
        concurrency: int | None = None,
        pools: Mapping[str, int] | None = None,
        logs_dir: str | None = None,
        result_max_bytes: int = 1 << 20,
        artifacts: str | None = None,
        project_root: str | None = None,
        prior: Mapping[str, PriorTask] | None = None,
        dates: RunDates | None = None,
    ) -> None:
        self.pipeline = pipeline
        # templates and task contexts see the run's dates in the pipeline's time zone
        self.dates = (dates or RunDates.at()).astimezone(pipeline.tz)
        self.run_id = run_id
        self.executor = executor
        self.bus = bus or EventBus()
        self.params = dict(params or {})
        limits = [executor.capacity]
        if concurrency:
            limits.append(concurrency)
        if pipeline.max_active_tasks:
            limits.append(pipeline.max_active_tasks)
        self.capacity = min(limits)
        self.pools = {**(pools or {}), **pipeline.pools}
        self.logs_dir = logs_dir
        self._log_prefix = (
            None if logs_dir is None else os.path.join(logs_dir, pipeline.id, run_id) + os.sep
        )
        self.result_max_bytes = result_max_bytes
        self.artifacts = artifacts
        self.project_root = project_root
        self._prior = dict(prior or {})
        tasks = pipeline.tasks
        self.state: dict[str, TaskState] = dict.fromkeys(tasks, TaskState.PENDING)
        self.attempts: dict[str, int] = dict.fromkeys(tasks, 0)
        self.errors: dict[str, str | None] = dict.fromkeys(tasks)
        self.results: dict[str, str | None] = {}
        self._counts: dict[str, list[int]] = {tid: [0, 0, 0] for tid in tasks}
        self._data_ups = {tid: t.data_upstream() for tid, t in tasks.items()}
        self._templated = frozenset(tid for tid, t in tasks.items() if _has_templates(t))
        self._ready: deque[str] = deque()
        self._pool_wait: dict[str, deque[str]] = {}
        self._pool_used: dict[str, int] = dict.fromkeys(self.pools, 0)
        self._running: dict[tuple[str, int], WorkItem] = {}
        self._deadlines: list[tuple[float, tuple[str, int]]] = []
        self._timers: list[tuple[float, int, str]] = []
        self._timer_seq = 0
        self._inbox: SimpleQueue[Any] = SimpleQueue()
        self._cancelled = False
        self._fail_reason: str | None = None
        self._requeue = False
        self._cancel_asked = False
        self._base: dict[str, int] = {}
        self._failure_for: dict[str, tuple[str | None, str | None]] = {}
        self._compensation_of = {
            t.compensation: tid for tid, t in tasks.items() if t.compensation is not None
        }
        self._check_references()

    # -- public -----------------------------------------------------------------------------
    def cancel(self, reason: str | None = None, requeue: bool = False) -> None:
        """Ask the run to stop (safe from signal handlers and other threads). With a `reason`
        (e.g. its run timeout), the run ends `failed` with that error instead of `cancelled`;
        with `requeue` (its scheduler is stopping), it ends `queued`, for another scheduler to
        continue: its last event is then `RunRequeued`, not `RunFinished`."""
        if reason is not None:
            self._fail_reason = reason
        self._requeue = self._requeue or requeue  # a stopping scheduler's requeue wins
        self._cancel_asked = True
        self._inbox.put(_CANCEL)
        self.executor.interrupt(reason or "run cancelled")

    def run(self) -> RunResult:
        started = time.time()
        self._emit(
            ev.RUN_STARTED,
            state=RunState.RUNNING.value,
            data={"executor": self.executor.name, "params": self.params},
        )
        self.executor.start(self._inbox.put)
        try:
            self._initialize()
            if self._cancel_asked:  # cancelled before it started: start no task at all
                self._cancel_all()
            self._loop()
        finally:
            self.executor.shutdown()
        return self._finish_run(started)

    # -- set-up -----------------------------------------------------------------------------
    def _check_references(self) -> None:
        for name in self.pools:
            self._pool_wait.setdefault(name, deque())
        for task in self.pipeline.tasks.values():
            pool = task.settings.pool
            if pool is not None and pool not in self.pools:
                raise DefinitionError(
                    f"task {task.id!r} uses pool {pool!r}, which is not defined; define it in "
                    "lockgate.toml [pools] or in the pipeline's pools",
                    task.file,
                    task.line,
                )
            if pool is not None and task.settings.pool_slots > self.pools[pool]:
                raise DefinitionError(
                    f"task {task.id!r} needs {task.settings.pool_slots} slots of pool {pool!r}, "
                    f"which has only {self.pools[pool]}",
                    task.file,
                    task.line,
                )

    def _initialize(self) -> None:
        tasks = self.pipeline.tasks
        for tid, prior in self._prior.items():
            if tid not in tasks:
                continue
            self.attempts[tid] = prior.attempts
            if prior.retry_base:
                self._base[tid] = prior.retry_base
            if prior.state in (
                TaskState.SUCCESS,
                TaskState.SKIPPED,
                TaskState.FAILED,
                TaskState.UPSTREAM_FAILED,
            ):
                self.state[tid] = prior.state
                self.errors[tid] = prior.error
                if prior.state is TaskState.SUCCESS:
                    self.results[tid] = prior.result_json
        # each recorded final state is counted once: propagation counts the tasks it decides
        # itself, so they must not be propagated again from this list
        finished = [tid for tid in self.pipeline.order if self.state[tid] in _FINAL]
        # interrupted attempts with no retries left fail first, so that propagation cannot
        # make them ready again
        for tid in self.pipeline.order:
            earlier = self._prior.get(tid)
            if (
                earlier is not None
                and earlier.state in (TaskState.LOST, TaskState.UP_FOR_RETRY)
                and self.state[tid] is TaskState.PENDING
                and self.attempts[tid] - self._base.get(tid, 0) >= tasks[tid].settings.retries + 1
            ):
                error = (
                    f"attempt {self.attempts[tid]} was {earlier.state.value} "
                    "and no retries are left"
                )
                self._final_failure(
                    tid,
                    self.attempts[tid],
                    error,
                    {"error": error, "attempt_state": earlier.state.value},
                )
        for tid in finished:
            self._propagate(tid, self.state[tid])
        for tid in self.pipeline.order:
            earlier = self._prior.get(tid)
            if self.state[tid] is not TaskState.PENDING:
                continue
            interrupted = earlier is not None and earlier.state in (
                TaskState.LOST,
                TaskState.UP_FOR_RETRY,
            )
            task = tasks[tid]
            if tid in self.pipeline.compensations:
                # on resume: a compensation owed for a task that had already failed still runs
                failed = self._compensation_of[tid]
                if interrupted or self.state[failed] is TaskState.FAILED:
                    self._failure_for[tid] = (failed, self.errors[failed])
                    self._make_ready(tid)
                continue
            root = not task.upstream
            # `always` does not wait for upstream tasks, except those whose results it uses
            eager = (
                task.settings.trigger_rule is TriggerRule.ALWAYS
                and self._verdict(task) is Verdict.RUN
            )
            if interrupted or root or eager:
                self._make_ready(tid)

    # -- main loop --------------------------------------------------------------------------
    def _loop(self) -> None:
        inbox = self._inbox
        while True:
            self._dispatch()
            if not self._running and not self._ready and not self._timers:
                # drain anything already reported (e.g. cancel) and finish
                try:
                    msg = inbox.get_nowait()
                except Empty:
                    return
                self._handle(msg)
                continue
            timeout = self._next_wakeup()
            try:
                msg = (
                    inbox.get(timeout=timeout)
                    if timeout is None or timeout > 0
                    else inbox.get_nowait()
                )
            except Empty:
                msg = None
            while msg is not None:  # handle everything already reported before dispatching
                self._handle(msg)
                if self._cancelled:
                    return
                try:
                    msg = inbox.get_nowait()
                except Empty:
                    msg = None
            if self._deadlines or self._timers:
                self._fire_due()

    def _handle(self, msg: Any) -> None:
        if msg is _CANCEL:
            self._cancel_all()
        elif isinstance(msg, Outcome):
            self._on_outcome(msg)
        elif isinstance(msg, list):  # outcomes an executor learnt of together
            for outcome in msg:
                self._on_outcome(outcome)
        elif isinstance(msg, Started):
            self._on_started(msg)

    def _next_wakeup(self) -> float | None:
        due = []
        if self._deadlines:
            due.append(self._deadlines[0][0])
        if self._timers:
            due.append(self._timers[0][0])
        if not due:
            return None
        # capped: a queue wait beyond the platform's time_t (a timeout of 1e12 s, or inf)
        # raises OverflowError; waking up early only means looking again
        return min(max(0.0, min(due) - time.monotonic()), _MAX_WAIT_S)

    def _fire_due(self) -> None:
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, key = heapq.heappop(self._deadlines)
            item = self._running.pop(key, None)
            if item is None:
                continue
            reason = f"timed out after {item.timeout:g}s"
            self.executor.cancel(key, reason)
            self._release_pool(key[0])
            self._failed_attempt(key[0], key[1], reason, TaskState.FAILED)
        while self._timers and self._timers[0][0] <= now:
            _, _, tid = heapq.heappop(self._timers)
            if self.state[tid] is TaskState.UP_FOR_RETRY:
                self._make_ready(tid)

    # -- dispatch ---------------------------------------------------------------------------
    def _make_ready(self, tid: str) -> None:
        self.state[tid] = TaskState.QUEUED
        self._emit(ev.TASK_QUEUED, tid, self.attempts[tid] + 1, TaskState.QUEUED.value)
        self._ready.append(tid)

    def _dispatch(self) -> None:
        tasks = self.pipeline.tasks
        while self._ready and len(self._running) < self.capacity:
            tid = self._ready.popleft()
            settings = tasks[tid].settings
            pool = settings.pool
            if pool is not None:
                if self._pool_used[pool] + settings.pool_slots > self.pools[pool]:
                    self._pool_wait[pool].append(tid)
                    continue
                self._pool_used[pool] += settings.pool_slots
            self._start(tid)

    def _release_pool(self, tid: str) -> None:
        settings = self.pipeline.tasks[tid].settings
        pool = settings.pool
        if pool is not None:
            self._pool_used[pool] -= settings.pool_slots
            waiting = self._pool_wait[pool]
            while waiting:
                self._ready.appendleft(waiting.pop())

    def _log_path(self, tid: str, attempt: int) -> str | None:
        prefix = self._log_prefix
        return None if prefix is None else f"{prefix}{tid}{os.sep}attempt-{attempt}.log"

    def _context(
        self, tid: str, attempt: int, error: str | None = None, failed_task: str | None = None
    ) -> TaskContext:
        dates = self.dates
        return TaskContext(
            self.run_id,
            self.pipeline.id,
            tid,
            attempt,
            self.params,
            self._log_path(tid, attempt),
            error=error,
            failed_task=failed_task,
            logical_date=dates.logical_date,
            data_interval_start=dates.data_interval_start,
            data_interval_end=dates.data_interval_end,
            timeout=self.pipeline.tasks[tid].settings.timeout,
        )

    def _start(self, tid: str) -> None:
        task = self.pipeline.tasks[tid]
        attempt = self.attempts[tid] + 1
        self.attempts[tid] = attempt
        failed_task, error = self._failure_for.get(tid, (None, None))
        ctx = self._context(tid, attempt, error, failed_task)
        log_path = ctx.log_path
        try:
            item = self._work_item(task, attempt, ctx)
        except (LookupError, TemplateError) as exc:
            self.state[tid] = TaskState.RUNNING
            self._emit(
                ev.TASK_STARTED, tid, attempt, TaskState.RUNNING.value, {"log_path": log_path}
            )
            self._release_pool(tid)
            error = str(exc) if isinstance(exc, TemplateError) else f"cannot resolve inputs: {exc}"
            self._final_failure(tid, attempt, error)
            return
        self.state[tid] = TaskState.RUNNING
        self._running[item.key] = item
        executor = self.executor
        if (
            task.settings.timeout is not None
            and not executor.inline
            and not executor.reports_starts
        ):
            heapq.heappush(self._deadlines, (time.monotonic() + task.settings.timeout, item.key))
        self._emit(ev.TASK_STARTED, tid, attempt, TaskState.RUNNING.value, {"log_path": log_path})
        self.executor.submit(item)

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, TaskOutput):
            text = self.results.get(value.task_id)
            return value.resolve(None if text is None else json.loads(text))
        if isinstance(value, ParamRef):
            return self.params[value.name]
        if isinstance(value, list | tuple) and value:  # references inside (authoring/python.py)
            return type(value)(self._resolve(v) for v in value)
        if isinstance(value, dict) and value:
            return {k: self._resolve(v) for k, v in value.items()}
        return value

    def _result_of(self, task_id: str, wanted: str) -> Any:
        """An upstream task's decoded result, for templates: only upstream (ancestor) tasks,
        which have all finished when `task_id` starts, so what a template sees never depends
        on which other task happened to finish first."""
        upstream = wanted in self.pipeline.ancestors(task_id)
        if not upstream or wanted not in self.results:
            from lockgate.templating import missing_result

            state = self.state.get(wanted)
            raise missing_result(
                task_id, wanted, state.value if state is not None else None, upstream
            )
        text = self.results[wanted]
        return None if text is None else json.loads(text)

    def _renderer(self, task: Task, attempt: int, secrets: list[str]) -> Any:
        """`resolve` for a task with templates: renders them (one context per task); the
        values of the secrets they read are added to `secrets`."""
        from lockgate.templating import RenderContext, render

        def secret(name: str) -> str:
            from lockgate.config import Project
            from lockgate.secrets import get_secret

            value = get_secret(name, Project.load(self.project_root))
            secrets.append(value)
            return value

        rc = RenderContext(
            self.run_id,
            self.pipeline.id,
            task.id,
            attempt,
            self.params,
            self.dates,
            lambda wanted: self._result_of(task.id, wanted),
            secret,
        )
        base = self._resolve

        def resolve(value: Any) -> Any:
            return render(value, rc) if isinstance(value, Template) else base(value)

        return resolve

    def _work_item(self, task: Task, attempt: int, ctx: TaskContext) -> WorkItem:
        if task.id not in self._templated:
            return self._build_item(task, attempt, ctx, self._resolve)
        secrets: list[str] = []
        with facts.collect() as found:  # the secrets its templates read, audited as events
            item = self._build_item(task, attempt, ctx, self._renderer(task, attempt, secrets))
        for fact in found:
            self._emit(fact["kind"], task.id, attempt, None, fact["data"])
        item.secrets = tuple(secrets)
        return item

    def _build_item(
        self, task: Task, attempt: int, ctx: TaskContext, resolve: Callable[[Any], Any]
    ) -> WorkItem:
        if task.kind is TaskKind.SHELL:
            env = {
                "LOCKGATE_RUN_ID": self.run_id,
                "LOCKGATE_PIPELINE": self.pipeline.id,
                "LOCKGATE_TASK": task.id,
                "LOCKGATE_ATTEMPT": str(attempt),
            }
            if ctx.failed_task is not None:  # a compensation task learns what it compensates
                env["LOCKGATE_FAILED_TASK"] = ctx.failed_task
                env["LOCKGATE_FAILED_ERROR"] = ctx.error or ""
            for name, value in self.params.items():
                env[f"LOCKGATE_PARAM_{name.upper()}"] = _env_text(value)
            for name, value in task.env.items():
                env[name] = _env_text(resolve(value))
            command = resolve(task.command)
            if isinstance(task.command, Template) and task.command.mode == "shell":
                env.update(command.env)  # a rendered ShellCommand: values travel as variables
                command = command.text
            return WorkItem(
                task.id,
                attempt,
                "shell",
                ctx,
                command=command if isinstance(command, str) else tuple(command),
                env=env,
                cwd=resolve(task.cwd),
                timeout=task.settings.timeout,
                skip_exit_codes=task.skip_exit_codes,
                output_result=task.output_result,
                inherit_env=task.inherit_env,
                result_max_bytes=self.result_max_bytes,
                resources=task.settings.resources,
            )
        args = tuple(resolve(a) for a in task.args) if task.args else ()
        kwargs = {k: resolve(v) for k, v in task.kwargs.items()} if task.kwargs else {}
        return WorkItem(
            task.id,
            attempt,
            "python",
            ctx,
            fn=task.fn,
            args=args,
            kwargs=kwargs,
            wants_context=task.wants_context,
            timeout=task.settings.timeout,
            result_max_bytes=self.result_max_bytes,
            resources=task.settings.resources,
            pipeline_file=self.pipeline.file,
            artifacts=self.artifacts,
            project_root=self.project_root,
        )

    # -- outcomes ---------------------------------------------------------------------------
    def _on_started(self, msg: Started) -> None:
        """An attempt queued by the executor started: its timeout counts from now."""
        key = (msg.task_id, msg.attempt)
        timeout = self.pipeline.tasks[msg.task_id].settings.timeout
        if key in self._running and timeout is not None:
            heapq.heappush(self._deadlines, (time.monotonic() + timeout, key))

    def _on_outcome(self, outcome: Outcome) -> None:
        key = (outcome.task_id, outcome.attempt)
        if self._running.pop(key, None) is None:
            return  # timed out or cancelled earlier: this late report is ignored
        tid = outcome.task_id
        self._release_pool(tid)
        for fact in outcome.facts:  # recorded before the attempt's end, whatever the outcome
            kind = str(fact.get("kind"))
            if kind in ev.FACTS and isinstance(fact.get("data"), dict):
                self._emit(kind, tid, outcome.attempt, None, fact["data"])
        timing = {"started_at": outcome.started_at, "ended_at": outcome.ended_at}
        if outcome.state == SUCCESS:
            task = self.pipeline.tasks[tid]
            if task.branch:
                error = self._apply_branch(tid, outcome.result_json)
                if error is not None:
                    self._failed_attempt(tid, outcome.attempt, error, TaskState.FAILED, timing)
                    return
            self.results[tid] = outcome.result_json
            self.errors[tid] = None  # an earlier attempt's error is not this task's
            self._finish(
                tid,
                TaskState.SUCCESS,
                ev.TASK_SUCCEEDED,
                outcome.attempt,
                {
                    **timing,
                    "result_json": outcome.result_json,
                    **({"datasets": list(task.produces)} if task.produces else {}),
                },
                produced=task.produces,
            )
            self._callbacks(task.on_success, tid, outcome.attempt, None)
        elif outcome.state == SKIPPED:
            self.errors[tid] = None
            self._finish(
                tid,
                TaskState.SKIPPED,
                ev.TASK_SKIPPED,
                outcome.attempt,
                {**timing, "reason": outcome.error},
            )
        elif outcome.final:
            error = outcome.error or "failed"
            self._final_failure(
                tid,
                outcome.attempt,
                error,
                {**timing, "error": error, "attempt_state": TaskState.FAILED.value},
            )
        elif outcome.state in (FAILED, LOST):
            state = TaskState.LOST if outcome.state == LOST else TaskState.FAILED
            self._failed_attempt(tid, outcome.attempt, outcome.error or "failed", state, timing)

    def _apply_branch(self, tid: str, result_json: str | None) -> str | None:
        chosen = json.loads(result_json) if result_json is not None else []
        if isinstance(chosen, str):
            chosen = [chosen]
        downstream = self.pipeline.downstream[tid]
        if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
            return (
                f"branch task {tid!r} must return a task id or a list of task ids, got {chosen!r}"
            )
        unknown = [c for c in chosen if c not in downstream]
        if unknown:
            return (
                f"branch task {tid!r} chose {', '.join(map(repr, unknown))}, which is not a "
                f"direct downstream task (choose from {', '.join(downstream)})"
            )
        for down in downstream:
            if down not in chosen and self.state[down] is TaskState.PENDING:
                self._finish(
                    down,
                    TaskState.SKIPPED,
                    ev.TASK_SKIPPED,
                    0,
                    {"reason": f"not chosen by branch {tid!r}"},
                )
        return None

    def _failed_attempt(
        self,
        tid: str,
        attempt: int,
        error: str,
        attempt_state: TaskState,
        timing: dict[str, float] | None = None,
    ) -> None:
        task = self.pipeline.tasks[tid]
        self.errors[tid] = error
        data = {**(timing or {}), "error": error, "attempt_state": attempt_state.value}
        if attempt - self._base.get(tid, 0) < task.settings.retries + 1 and not self._cancelled:
            delay = retry_delay_for(task.settings, attempt, random.random())
            self.state[tid] = TaskState.UP_FOR_RETRY
            self._emit(
                ev.TASK_RETRYING,
                tid,
                attempt,
                TaskState.UP_FOR_RETRY.value,
                {**data, "retry_in_s": delay},
            )
            self._callbacks(task.on_retry, tid, attempt, error)
            if delay <= 0:
                self._make_ready(tid)
            else:
                self._timer_seq += 1
                heapq.heappush(self._timers, (time.monotonic() + delay, self._timer_seq, tid))
            return
        self._final_failure(tid, attempt, error, data)

    def _final_failure(
        self, tid: str, attempt: int, error: str, data: dict[str, Any] | None = None
    ) -> None:
        task = self.pipeline.tasks[tid]
        self.errors[tid] = error
        self._finish(tid, TaskState.FAILED, ev.TASK_FAILED, attempt, data or {"error": error})
        self._callbacks(task.on_failure, tid, attempt, error)
        comp = task.compensation
        if comp is not None and self.state[comp] is TaskState.PENDING and not self._cancelled:
            self._failure_for[comp] = (tid, error)
            self._make_ready(comp)

    def _finish(
        self,
        tid: str,
        state: TaskState,
        kind: str,
        attempt: int,
        data: dict[str, Any] | None,
        produced: tuple[str, ...] = (),
    ) -> None:
        """Record a task's final state; `produced`: the datasets it updated (on success), one
        event each, before any downstream task is queued (for subscribers: the store records
        the updates from the success event's `datasets`, in the same commit as the success)."""
        self.state[tid] = state
        self._emit(kind, tid, attempt, state.value, data)
        for uri in produced:
            self._emit(ev.DATASET_UPDATED, tid, attempt, None, {"uri": uri})
        self._propagate(tid, state)

    def _propagate(self, tid: str, state: TaskState) -> None:
        """Count a finished task towards its downstream tasks and decide those that can be."""
        stack = [(tid, state)]
        tasks = self.pipeline.tasks
        downstream = self.pipeline.downstream
        while stack:
            up, up_state = stack.pop()
            bucket = _BUCKET[up_state]
            for down in downstream[up]:
                self._counts[down][bucket] += 1
                if self.state[down] is not TaskState.PENDING:
                    continue
                verdict = self._verdict(tasks[down])
                if verdict is Verdict.RUN:
                    self._make_ready(down)
                elif verdict is Verdict.SKIP:
                    self.state[down] = TaskState.SKIPPED
                    self._emit(
                        ev.TASK_SKIPPED,
                        down,
                        0,
                        TaskState.SKIPPED.value,
                        {"reason": f"trigger rule {tasks[down].settings.trigger_rule.value}"},
                    )
                    stack.append((down, TaskState.SKIPPED))
                elif verdict is Verdict.UPSTREAM_FAILED:
                    self.state[down] = TaskState.UPSTREAM_FAILED
                    self.errors[down] = f"an upstream task of {down!r} did not succeed"
                    self._emit(ev.TASK_UPSTREAM_FAILED, down, 0, TaskState.UPSTREAM_FAILED.value)
                    stack.append((down, TaskState.UPSTREAM_FAILED))

    def _verdict(self, task: Task) -> Verdict:
        rule = task.settings.trigger_rule
        if rule is TriggerRule.ALWAYS:
            ups = self._data_ups[task.id]
            return Verdict.RUN if all(self.state[u] in _FINAL for u in ups) else Verdict.WAIT
        s, f, k = self._counts[task.id]
        return evaluate(rule, len(task.upstream), s, f, k)

    # -- callbacks, cancellation, the end ---------------------------------------------------
    def _callbacks(
        self, callbacks: tuple[Any, ...], tid: str, attempt: int, error: str | None
    ) -> None:
        if not callbacks:
            return
        ctx = self._context(tid, attempt, error)
        for cb in callbacks:
            # a callback's output (print, logging, ctx.log) goes to the attempt's log
            with capture(ctx.log_path) as log:
                try:
                    cb(ctx)
                    exc = None
                except Exception as raised:
                    exc = raised
                    log.write(f"callback {getattr(cb, '__qualname__', cb)!r} failed:\n")
                    log.write(traceback.format_exc())
            if exc is not None:
                name = getattr(cb, "__qualname__", repr(cb))
                self._emit(
                    ev.CALLBACK_FAILED,
                    tid,
                    attempt,
                    None,
                    {"callback": name, "error": redaction.redact(f"{type(exc).__name__}: {exc}")},
                )

    def _cancel_all(self) -> None:
        self._cancelled = True
        why = self._fail_reason or "run cancelled"
        for key in list(self._running):
            self.executor.cancel(key, why)
            self._running.pop(key)
            self.state[key[0]] = TaskState.CANCELLED
            self.errors[key[0]] = why
            self._emit(
                ev.TASK_CANCELLED,
                key[0],
                key[1],
                TaskState.CANCELLED.value,
                {"error": why, "attempt_state": TaskState.CANCELLED.value},
            )
        for tid, state in self.state.items():
            if state in (TaskState.PENDING, TaskState.QUEUED, TaskState.UP_FOR_RETRY):
                self.state[tid] = TaskState.CANCELLED
                self._emit(ev.TASK_CANCELLED, tid, 0, TaskState.CANCELLED.value)
        self._ready.clear()
        self._timers.clear()
        self._deadlines.clear()

    def _finish_run(self, started: float) -> RunResult:
        for tid, task_state in self.state.items():
            if task_state is TaskState.PENDING:  # untriggered compensation tasks
                self.state[tid] = TaskState.SKIPPED
                reason = (
                    "not needed: the task it compensates did not fail"
                    if tid in self._compensation_of
                    else "never became ready"
                )
                self._emit(ev.TASK_SKIPPED, tid, 0, TaskState.SKIPPED.value, {"reason": reason})
        kind = ev.RUN_FINISHED
        if self._cancelled and self._requeue:
            state, kind = RunState.QUEUED, ev.RUN_REQUEUED
        elif self._cancelled and self._fail_reason is not None:
            state = RunState.FAILED
        elif self._cancelled:
            state = RunState.CANCELLED
        elif any(s in (TaskState.FAILED, TaskState.UPSTREAM_FAILED) for s in self.state.values()):
            state = RunState.FAILED
        else:
            state = RunState.SUCCESS
        ended = time.time()
        failed = [tid for tid, s in self.state.items() if s is TaskState.FAILED]
        self._emit(
            kind,
            state=state.value,
            data={
                "failed_tasks": failed,
                "duration_s": ended - started,
                **({"error": self._fail_reason} if self._cancelled and self._fail_reason else {}),
            },
        )
        return RunResult(
            self.run_id,
            self.pipeline.id,
            state,
            {
                tid: TaskSummary(
                    tid,
                    self.state[tid],
                    self.attempts[tid],
                    self.errors[tid],
                    self.results.get(tid),
                )
                for tid in self.pipeline.tasks
            },
            started,
            ended,
            self._fail_reason if self._cancelled else None,
        )

    def _emit(
        self,
        kind: str,
        task_id: str | None = None,
        attempt: int = 0,
        state: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        if data:  # a secret read in this process, wherever it was copied to (cheap when none)
            data = redaction.known_json(data)
        self.bus.publish(Event(kind, self.run_id, time.time(), task_id, attempt, state, data))


def _has_templates(task: Task) -> bool:
    return any(isinstance(v, Template) for v in task.inputs())


def _env_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)
