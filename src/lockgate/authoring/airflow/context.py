"""The Airflow task context: the dict a task sees (`ds`, `params`, `ti`, ...), `ti` with
`xcom_push`/`xcom_pull`, and `get_current_context()`."""

from __future__ import annotations

import functools
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lockgate.authoring.airflow import xcom
from lockgate.authoring.airflow.exceptions import AirflowException
from lockgate.errors import did_you_mean

Context = dict
"""`airflow.utils.context.Context` / `airflow.sdk.Context`: the context is a plain dict here."""

_local = threading.local()


def get_current_context() -> dict[str, Any]:
    """The context of the task running in this thread (inside a Python or TaskFlow task)."""
    stack = getattr(_local, "stack", None)
    if not stack:
        raise AirflowException(
            "Current context was requested but no context was found! "
            "Are you running within an Airflow task?"
        )
    return stack[-1]  # type: ignore[no-any-return]


class current_context:
    """Make `context` what `get_current_context()` returns in this thread, for a block."""

    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context

    def __enter__(self) -> dict[str, Any]:
        if not hasattr(_local, "stack"):
            _local.stack = []
        _local.stack.append(self.context)
        return self.context

    def __exit__(self, *exc: Any) -> None:
        _local.stack.pop()


@dataclass(frozen=True)
class DagView:
    """What `dag` is in the context and in templates: the DAG's descriptive attributes."""

    dag_id: str
    description: str | None = None
    doc_md: str | None = None
    tags: tuple[str, ...] = ()
    owner: str = "airflow"
    schedule: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    task_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskView:
    """What `task` is in the context and in templates."""

    task_id: str
    dag_id: str
    task_type: str
    owner: str = "airflow"
    email: Any = None
    retries: int = 0
    trigger_rule: str = "all_success"
    doc_md: str | None = None
    upstream_task_ids: frozenset[str] = frozenset()
    downstream_task_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False)
class Graph:
    """What a task knows of its DAG at run time, for XComs and branching."""

    task_id: str
    task_ids: frozenset[str]
    upstream: Mapping[str, Sequence[str]] = field(repr=False)
    """The direct upstream tasks of every task of the DAG (shared by its tasks)."""
    multiple_outputs: frozenset[str] = frozenset()
    """Tasks whose dict result also gives one XCom per key."""

    @functools.cached_property
    def ancestors(self) -> frozenset[str]:
        """Every task upstream of this one, directly or not (computed when first needed)."""
        seen: set[str] = set()
        stack = list(self.upstream.get(self.task_id, ()))
        while stack:
            tid = stack.pop()
            if tid not in seen and tid != self.task_id:
                seen.add(tid)
                stack.extend(self.upstream.get(tid, ()))
        return frozenset(seen)


Fetch = Callable[[str], tuple[bool, Any]]
"""(known, stored result) of an upstream task; known is False if it has no result yet."""


class TaskInstance:
    """`ti` / `task_instance`: the running attempt, with `xcom_push` and `xcom_pull`.

    It pulls only from upstream tasks (their results are given to the task when it starts)."""

    map_index = -1

    def __init__(
        self,
        *,
        dag_id: str,
        task_id: str,
        run_id: str,
        try_number: int,
        max_tries: int,
        graph: Graph,
        fetch: Fetch | None,
        logical_date: datetime | None = None,
        task: TaskView | None = None,
    ) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        self.run_id = run_id
        self.try_number = try_number
        self.max_tries = max_tries
        self.logical_date = self.execution_date = logical_date
        self.task = task
        self.state = "running"
        self.hostname = socket.gethostname()
        self._graph = graph
        self._fetch = fetch
        self._pushed: dict[str, Any] = {}

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"lockgate.task.{self.task_id}")

    @property
    def pushed(self) -> dict[str, Any]:
        return dict(self._pushed)

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        """Push `value` under `key` (it must be JSON); downstream tasks pull it by key."""
        if not isinstance(key, str) or not key:
            raise AirflowException(f"xcom_push: key must be a non-empty string, got {key!r}")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise AirflowException(
                f"xcom_push: the value of key {key!r} is not JSON ({type(value).__name__}); "
                "lockgate keeps XComs as JSON"
            ) from None
        self._pushed[key] = value

    def xcom_pull(
        self,
        task_ids: str | list[str] | tuple[str, ...] | None = None,
        dag_id: str | None = None,
        key: str = xcom.RETURN,
        include_prior_dates: bool = False,
        map_indexes: Any = None,
        default: Any = None,
        run_id: str | None = None,
        **_: Any,
    ) -> Any:
        """The XCom `key` of `task_ids` (a list gives a list); None (or `default`) when the
        upstream task pushed nothing under that key or did not run."""
        if dag_id not in (None, self.dag_id):
            raise AirflowException(f"xcom_pull from another DAG ({dag_id!r}) is not supported")
        if run_id not in (None, self.run_id) or include_prior_dates:
            raise AirflowException("xcom_pull from other runs is not supported")
        if map_indexes not in (None, -1):
            raise AirflowException("xcom_pull with map_indexes is not supported")
        if task_ids is None:
            return self._pull_any(key, default)
        if isinstance(task_ids, str):
            return self._pull(task_ids, key, default)
        return [self._pull(tid, key, default) for tid in task_ids]

    def _pull_any(self, key: str, default: Any) -> Any:
        for tid in sorted(self._graph.ancestors):
            found, value = self._lookup(tid, key)
            if found:
                return value
        return default

    def _pull(self, task_id: str, key: str, default: Any) -> Any:
        if task_id == self.task_id:
            return self._pushed.get(key, default)
        if task_id not in self._graph.task_ids:
            tip = did_you_mean(task_id, sorted(self._graph.task_ids), "its tasks:")
            raise AirflowException(f"xcom_pull: DAG {self.dag_id!r} has no task {task_id!r}{tip}")
        if task_id not in self._graph.ancestors:
            raise AirflowException(
                f"xcom_pull: task {task_id!r} is not upstream of {self.task_id!r}; in lockgate "
                f"a task pulls XComs only from its upstream tasks (add {task_id} >> "
                f"{self.task_id})"
            )
        found, value = self._lookup(task_id, key)
        return value if found else default

    def _lookup(self, task_id: str, key: str) -> tuple[bool, Any]:
        if self._fetch is None:
            raise AirflowException("XComs are not available here (only inside a running task)")
        known, result = self._fetch(task_id)
        if not known:
            return False, None
        return xcom.lookup(result, key, task_id in self._graph.multiple_outputs)

    def __repr__(self) -> str:
        return f"<TaskInstance: {self.dag_id}.{self.task_id} {self.run_id} [{self.state}]>"


@dataclass(frozen=True)
class DagRun:
    """`dag_run` in the context: the run's ids and dates (`conf` is empty)."""

    dag_id: str
    run_id: str
    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_type: str = "manual"
    conf: Mapping[str, Any] = field(default_factory=dict)

    @property
    def execution_date(self) -> datetime | None:
        return self.logical_date


def as_pendulum(value: datetime | None) -> Any:
    """Airflow gives pendulum DateTimes; so does the compatibility layer."""
    if value is None:
        return None
    try:
        import pendulum
    except ImportError:  # pragma: no cover - pendulum is a dependency
        return value
    return pendulum.instance(value)


def airflow_names(
    *,
    dag: DagView,
    task: TaskView,
    ti: TaskInstance,
    run_id: str,
    logical_date: datetime,
    interval_start: datetime | None,
    interval_end: datetime | None,
) -> dict[str, Any]:
    """The names Airflow adds to lockgate's template context (and to a task's context)."""
    logical = as_pendulum(logical_date)
    start = as_pendulum(interval_start or logical_date)
    end = as_pendulum(interval_end or logical_date)
    run = DagRun(dag.dag_id, run_id, logical, start, end)
    ds_nodash = logical.strftime("%Y%m%d")
    return {
        "logical_date": logical,
        "execution_date": logical,
        "data_interval_start": start,
        "data_interval_end": end,
        "ti": ti,
        "task_instance": ti,
        "dag_run": run,
        "dag": dag,
        "task": task,
        "run_id": run_id,
        "task_instance_key_str": f"{dag.dag_id}__{task.task_id}__{ds_nodash}",
        "test_mode": False,
        "inlets": [],
        "outlets": [],
    }


def task_context(
    ctx: Any,
    *,
    dag: DagView,
    task: TaskView,
    ti: TaskInstance,
    macros: Mapping[str, Any] | None = None,
    templates_dict: Any = None,
    exception: BaseException | None = None,
) -> dict[str, Any]:
    """The Airflow context dict of a task attempt, from lockgate's TaskContext `ctx`."""
    from datetime import UTC

    from lockgate.templating import MACROS, date_names

    logical = ctx.logical_date or datetime.now(UTC)
    names = date_names(logical)
    names.update(
        airflow_names(
            dag=dag,
            task=task,
            ti=ti,
            run_id=ctx.run_id,
            logical_date=logical,
            interval_start=ctx.data_interval_start,
            interval_end=ctx.data_interval_end,
        )
    )
    names["params"] = dict(ctx.params)
    names["macros"] = MACROS
    names["templates_dict"] = templates_dict
    if exception is not None:
        names["exception"] = exception
        names["reason"] = str(exception)
    if macros:
        names.update(macros)
    return names
