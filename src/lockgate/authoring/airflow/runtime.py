"""What runs when an Airflow-style task starts: the callable of a Python/TaskFlow task with its
context, XComs and branching, the bash command of `@task.bash`, callbacks, and the template
names Airflow adds.

These objects are made when the DAG file is loaded (also in worker processes, which load the
file themselves), so only resolved arguments travel between processes."""

from __future__ import annotations

import inspect
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lockgate.authoring.airflow import xcom
from lockgate.authoring.airflow.context import (
    DagView,
    Graph,
    TaskInstance,
    TaskView,
    airflow_names,
    current_context,
    task_context,
)
from lockgate.authoring.airflow.exceptions import (
    AirflowException,
    AirflowSkipException,
    AirflowTaskTimeout,
)


@dataclass(frozen=True)
class TaskInfo:
    """What a task's runtime objects know of it and of its DAG."""

    dag: DagView
    task: TaskView
    graph: Graph
    retries: int
    macros: Mapping[str, Any] = field(default_factory=dict)
    filters: Mapping[str, Callable[..., Any]] | None = None


class TemplateNames:
    """`Template.extra` of an Airflow task: adds `ti`, `dag_run`, `dag`, `task`, ... and the
    DAG's user_defined_macros to the names its templates see."""

    def __init__(self, info: TaskInfo) -> None:
        self.info = info

    def __call__(self, names: dict[str, Any]) -> None:
        results = names["results"]

        def fetch(task_id: str) -> tuple[bool, Any]:
            try:
                return True, results[task_id]
            except LookupError:
                return False, None

        info = self.info
        ti = TaskInstance(
            dag_id=info.dag.dag_id,
            task_id=info.task.task_id,
            run_id=names["run_id"],
            try_number=names["attempt"],
            max_tries=info.retries,
            graph=info.graph,
            fetch=fetch,
            logical_date=names["logical_date"],
            task=info.task,
        )
        names.update(
            airflow_names(
                dag=info.dag,
                task=info.task,
                ti=ti,
                run_id=names["run_id"],
                logical_date=names["logical_date"],
                interval_start=names["data_interval_start"],
                interval_end=names["data_interval_end"],
            )
        )
        names.update(info.macros)


def call_kwargs(
    fn: Callable[..., Any], n_args: int, available: Mapping[str, Any]
) -> dict[str, Any]:
    """The keyword arguments Airflow would pass: everything with `**kwargs`, else the names
    of the signature (after the positional ones `op_args` fill)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return {}
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return dict(available)
    out: dict[str, Any] = {}
    positional = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            positional = n_args
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and positional < n_args:
            positional += 1
            continue
        if p.kind is not p.POSITIONAL_ONLY and p.name in available:
            out[p.name] = available[p.name]
    return out


def resolve(
    value: Any, pulled: Mapping[str, Any], multiple: frozenset[str], params: Mapping[str, Any]
) -> Any:
    """`value` with its placeholders replaced by upstream XComs and run params."""
    if isinstance(value, xcom.XRef):
        if value.task_id not in pulled:
            raise AirflowException(f"the result of task {value.task_id!r} is not available")
        found, result = xcom.lookup(pulled[value.task_id], value.key, value.task_id in multiple)
        if not found and value.key != xcom.RETURN:
            raise AirflowException(
                f"XComArg result from {value.task_id} with key={value.key!r} is not found"
            )
        return result
    if isinstance(value, xcom.PRef):
        return params.get(value.name)
    if isinstance(value, list):
        return [resolve(v, pulled, multiple, params) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v, pulled, multiple, params) for v in value)
    if isinstance(value, dict):
        return {k: resolve(v, pulled, multiple, params) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Branching:
    """How a branch task's choice maps to its direct downstream tasks (as Airflow does)."""

    downstream: tuple[str, ...]
    task_ids: frozenset[str]
    group_roots: Mapping[str, tuple[str, ...]]
    descendants: Mapping[str, frozenset[str]]

    def follow(self, chosen: Any) -> list[str]:
        if chosen is None:
            return []
        ids = [chosen] if isinstance(chosen, str) else chosen
        if not isinstance(ids, list | tuple | set) or not all(isinstance(i, str) for i in ids):
            raise AirflowException(
                f"a branch must return a task id, a list of task ids or None, got {chosen!r}"
            )
        expanded: set[str] = set()
        for tid in ids:
            if tid in self.group_roots:
                expanded.update(self.group_roots[tid])
            elif tid in self.task_ids:
                expanded.add(tid)
            else:
                raise AirflowException(
                    "'branch_task_ids' must contain only valid task_ids. "
                    f"Invalid tasks found: {tid!r}"
                )
        followed = set(expanded)
        for tid in expanded:
            followed.update(self.descendants.get(tid, ()))
        return [d for d in self.downstream if d in followed]


class Runner:
    """`Task.fn` of every Python-kind Airflow task; called as `fn(ctx=..., **inputs)`.

    Inputs: `xcom:<task_id>` (the stored result of an upstream task: of every one if the
    callable may pull XComs, else of those its arguments use), and the rendered templated
    fields (`op_args`, `op_kwargs`, `templates_dict`, `env`, `cwd`) when they hold templates.

    `handed_all` is False when the task was given only the results its arguments use because
    its callable does not seem to pull XComs (`convert.can_pull`): pulling another upstream
    task's XCom is then an error saying why (with trigger_rule "always" it gives None)."""

    def __init__(
        self,
        *,
        kind: str,
        info: TaskInfo,
        fn: Callable[..., Any] | None,
        op_args: Any = (),
        op_kwargs: Any = None,
        templates_dict: Any = None,
        multiple_outputs: bool = False,
        do_xcom_push: bool = True,
        branching: Branching | None = None,
        bash: Mapping[str, Any] | None = None,
        module: str | None = None,
        handed_all: bool = True,
    ) -> None:
        self.kind = kind
        self.info = info
        self.fn = fn
        self.op_args = op_args
        self.op_kwargs = op_kwargs or {}
        self.templates_dict = templates_dict
        self.multiple_outputs = multiple_outputs
        self.do_xcom_push = do_xcom_push
        self.branching = branching
        self.bash = dict(bash or {})
        self.handed_all = handed_all
        self.__module__ = module or getattr(fn, "__module__", __name__)
        self.__qualname__ = getattr(fn, "__qualname__", "EmptyOperator") if fn else "EmptyOperator"
        self.__name__ = self.__qualname__

    def __call__(self, ctx: Any, **inputs: Any) -> Any:
        if self.kind == "empty":
            return None
        from lockgate.engine.context import Skip

        pulled = {k[5:]: v for k, v in inputs.items() if k.startswith("xcom:")}
        info = self.info
        ti = TaskInstance(
            dag_id=info.dag.dag_id,
            task_id=info.task.task_id,
            run_id=ctx.run_id,
            try_number=ctx.attempt,
            max_tries=info.retries,
            graph=info.graph,
            fetch=lambda tid: self._fetch(tid, pulled),
            logical_date=ctx.logical_date,
            task=info.task,
        )
        context = task_context(
            ctx,
            dag=info.dag,
            task=info.task,
            ti=ti,
            macros=info.macros,
            templates_dict=inputs.get("templates_dict", self.templates_dict),
        )
        multiple = info.graph.multiple_outputs
        args = resolve(inputs.get("op_args", self.op_args), pulled, multiple, ctx.params)
        kwargs = resolve(inputs.get("op_kwargs", self.op_kwargs), pulled, multiple, ctx.params)
        try:
            with current_context(context):
                assert self.fn is not None
                value = self.fn(*args, **call_kwargs(self.fn, len(args), {**context, **kwargs}))
                if self.kind == "bash":
                    value = self._run_bash(value, ctx, context, pulled, inputs)
        except AirflowSkipException as exc:
            raise Skip(str(exc) or "skipped (AirflowSkipException)") from None
        return self._result(value, ti)

    def _fetch(self, task_id: str, pulled: Mapping[str, Any]) -> tuple[bool, Any]:
        """(known, stored result) of upstream task `task_id`, for `ti.xcom_pull`."""
        if task_id in pulled:
            return True, pulled[task_id]
        if self.handed_all:
            return False, None
        raise AirflowException(self._not_handed(task_id))

    def _not_handed(self, task_id: str) -> str:
        name = getattr(self.fn, "__name__", "the callable")
        return (
            f"xcom_pull: the result of task {task_id!r} was not handed to task "
            f"{self.info.task.task_id!r}: lockgate gives a task the results of all its upstream "
            f"tasks only when its callable's own code can pull XComs (it names xcom_pull, "
            f"get_current_context, ti or task_instance, or takes **kwargs; pulls in code of "
            f"other modules are not seen), and {name}() does not; take a `ti` parameter "
            f"in {name}(), or pass the value as an argument ({task_id}'s .output)"
        )

    def _result(self, value: Any, ti: TaskInstance) -> Any:
        if self.branching is not None:
            if self.kind == "short_circuit":
                if not value:
                    print(f"condition is falsy ({value!r}): skipping the downstream tasks")
                return list(self.branching.downstream) if value else []
            chosen = self.branching.follow(value)
            print(f"following {chosen or 'no task'} (the branch returned {value!r})")
            return chosen
        if not self.do_xcom_push:
            value = None
        elif (
            self.multiple_outputs
            and value is not None
            and (not isinstance(value, dict) or not all(isinstance(k, str) for k in value))
        ):
            raise AirflowException(
                f"Returned output was type {type(value).__name__} expected dictionary "
                "for multiple_outputs"
            )
        return xcom.wrap(value, ti.pushed)

    # -- @task.bash -----------------------------------------------------------------------------
    def _run_bash(
        self,
        command: Any,
        ctx: Any,
        context: Mapping[str, Any],
        pulled: Mapping[str, Any],
        inputs: Mapping[str, Any],
    ) -> str | None:
        if not isinstance(command, str) or not command.strip():
            raise TypeError(
                "The returned value from the TaskFlow callable must be a non-empty string."
            )
        command = self._render(command, ctx, pulled)
        # as in Airflow: `env` replaces the environment unless append_env=True
        inherit = self.bash.get("inherit_env", True)
        env = {k: v for k, v in os.environ.items() if k != "LOCKGATE_DB_URL"} if inherit else {}
        env.update(airflow_ctx_env(self.info, ctx))
        for key, value in (inputs.get("env", self.bash.get("env")) or {}).items():
            env[str(key)] = value if isinstance(value, str) else json.dumps(value)
        cwd = inputs.get("cwd", self.bash.get("cwd"))
        return run_bash(
            command,
            env=env,
            cwd=cwd,
            timeout=ctx.timeout,
            skip_codes=self.bash.get("skip_codes", (99,)),
            push=self.do_xcom_push,
        )

    def _render(self, text: str, ctx: Any, pulled: Mapping[str, Any]) -> str:
        from lockgate.model.intervals import RunDates
        from lockgate.templating import RenderContext, compile_template, has_template, render

        if not has_template(text):
            return text
        template = compile_template(
            text,
            mode="text",
            where=f"task {self.info.task.task_id!r}: the command returned by @task.bash",
            extra=TemplateNames(self.info),
            filters=self.info.filters,
        )

        def result(task_id: str) -> Any:
            if task_id not in pulled:
                if task_id in self.info.graph.ancestors and not self.handed_all:
                    raise LookupError(self._not_handed(task_id))
                raise LookupError(f"task {task_id!r} is not upstream of this task")
            return pulled[task_id]

        logical = ctx.logical_date
        dates = RunDates(
            logical, ctx.data_interval_start or logical, ctx.data_interval_end or logical
        )
        rc = RenderContext(
            ctx.run_id, ctx.pipeline_id, ctx.task_id, ctx.attempt, ctx.params, dates, result
        )
        return str(render(template, rc))


def airflow_ctx_env(info: TaskInfo, ctx: Any) -> dict[str, str]:
    """The AIRFLOW_CTX_* variables Airflow gives bash commands."""
    logical = ctx.logical_date.isoformat() if ctx.logical_date else ""
    return {
        "AIRFLOW_CTX_DAG_ID": info.dag.dag_id,
        "AIRFLOW_CTX_TASK_ID": info.task.task_id,
        "AIRFLOW_CTX_DAG_OWNER": info.task.owner,
        "AIRFLOW_CTX_LOGICAL_DATE": logical,
        "AIRFLOW_CTX_EXECUTION_DATE": logical,
        "AIRFLOW_CTX_DAG_RUN_ID": ctx.run_id,
        "AIRFLOW_CTX_TRY_NUMBER": str(ctx.attempt),
    }


def run_bash(
    command: str,
    *,
    env: Mapping[str, str],
    cwd: str | None,
    timeout: float | None,
    skip_codes: tuple[int, ...],
    push: bool,
) -> str | None:
    """Run `command` with bash, its output going to this task's log; the last line is the
    result. A timeout kills the command's whole process group."""
    # in a worker process the command stays in the worker's process group, which the engine
    # kills on timeout or cancel; elsewhere it gets its own group, killed here on timeout
    own_group = multiprocessing.parent_process() is None
    proc = subprocess.Popen(
        ["bash", "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(env),
        cwd=cwd,
        start_new_session=own_group,
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        try:
            if own_group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except (ProcessLookupError, PermissionError):
            pass

    timer = threading.Timer(timeout, kill) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    last = None
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace")
            sys.stdout.write(line)
            if line.strip():
                last = line.rstrip("\n")
        code = proc.wait()
    finally:
        if timer is not None:
            timer.cancel()
    if timed_out.is_set():
        raise AirflowTaskTimeout(f"the bash command timed out after {timeout:g}s")
    if code in skip_codes:
        raise AirflowSkipException(f"Bash command returned exit code {code}. Skipping.")
    if code != 0:
        raise AirflowException(
            f"Bash command failed. The command returned a non-zero exit code {code}."
        )
    return last if push else None


class Callback:
    """An Airflow callback (`on_failure_callback`, ...) called with an Airflow context."""

    def __init__(self, fn: Callable[..., Any], info: TaskInfo) -> None:
        self.fn = fn
        self.info = info
        self.__qualname__ = getattr(fn, "__qualname__", repr(fn))

    def __call__(self, ctx: Any) -> None:
        ti = TaskInstance(
            dag_id=self.info.dag.dag_id,
            task_id=self.info.task.task_id,
            run_id=ctx.run_id,
            try_number=ctx.attempt,
            max_tries=self.info.retries,
            graph=self.info.graph,
            fetch=None,
            logical_date=ctx.logical_date,
            task=self.info.task,
        )
        error = AirflowException(ctx.error) if ctx.error else None
        context = task_context(
            ctx,
            dag=self.info.dag,
            task=self.info.task,
            ti=ti,
            macros=self.info.macros,
            exception=error,
        )
        with current_context(context):
            self.fn(context)
