"""`DAG`, `@dag`, `TaskGroup`, `@task_group`, `Param` and the date helpers of the shim."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any

from lockgate.authoring.airflow import session as _session
from lockgate.authoring.airflow.arguments import (
    ALL_OPERATOR_ARGS,
    DAG_ARGS,
    DAG_UNSUPPORTED,
    check_arguments,
)
from lockgate.authoring.airflow.datasets import Dataset, dataset_uris
from lockgate.authoring.airflow.errors import error, unsupported, user_location
from lockgate.authoring.airflow.relations import Relations
from lockgate.authoring.python import unique_id


def _zone(name: str) -> tzinfo:
    from lockgate.model.timetables import zone

    return UTC if name == "UTC" else zone(name)


class _NotSet:
    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = _NotSet()

_PARAM_KEYS = {
    "enum": "enum",
    "minimum": "minimum",
    "maximum": "maximum",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_length",
    "maxItems": "max_length",
    "pattern": "pattern",
}
_PARAM_DISPLAY = frozenset({"title", "section", "values_display", "examples", "description_md"})


class Param:
    """`Param(default, type=..., description=..., enum=..., minimum=..., ...)` of a DAG."""

    def __init__(self, default: Any = NOTSET, description: str | None = None, **schema: Any):
        self.value = default
        self.description = description
        self.schema = schema

    def resolve(self, value: Any = NOTSET, **_: Any) -> Any:
        return self.value if value is NOTSET else value

    def __repr__(self) -> str:
        return f"Param({self.value!r}, {self.schema!r})"


def lockgate_param(dag_id: str, name: str, value: Any, file: str | None, line: int | None) -> Any:
    """A DAG param (a plain value or an Airflow `Param`) as lockgate's `Param`."""
    from lockgate.model.params import REQUIRED
    from lockgate.model.params import Param as LParam

    where = f"DAG {dag_id!r}: param {name!r}"
    try:
        if not isinstance(value, Param):
            return LParam(value)
        schema = dict(value.schema)
        kind = schema.pop("type", None)
        nullable = False
        if isinstance(kind, list | tuple):
            kinds = [k for k in kind if k != "null"]
            nullable = len(kinds) < len(kind)
            if len(kinds) != 1:
                raise unsupported(
                    f"{where}: type {kind!r}", "a param has one type (or null)", file, line
                )
            kind = kinds[0]
        options: dict[str, Any] = {}
        for key, val in schema.items():
            if key in _PARAM_KEYS:
                options[_PARAM_KEYS[key]] = val
            elif key not in _PARAM_DISPLAY:
                raise unsupported(
                    f"{where}: JSON-schema keyword {key!r}",
                    "params support type, enum, minimum, maximum, minLength, maxLength and pattern",
                    file,
                    line,
                )
        default = REQUIRED if value.value is NOTSET else value.value
        description = value.description or schema.get("description_md")
        return LParam(default, type=kind, description=description, nullable=nullable, **options)
    except ValueError as exc:
        raise error(f"{where}: {exc}", file, line) from None


def _session_or_error(what: str) -> _session.CompatSession:
    session = _session.current()
    if session is None:
        raise error(
            f"{what} can only be created while lockgate loads an Airflow-style DAG file "
            "(lockgate run/list/show FILE)"
        )
    return session


def as_datetime(
    name: str, value: Any, file: str | None, line: int | None, tz: tzinfo = UTC
) -> datetime | None:
    """A start/end date as a stdlib datetime in `tz` (the DAG's zone; naive means UTC, as
    with Airflow's default time zone)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = datetime(*value.timetuple()[:6], value.microsecond, tzinfo=UTC)
        return datetime.fromtimestamp(value.timestamp(), tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).astimezone(tz)
    raise error(f"{name} must be a datetime, got {value!r}", file, line)


_FIXED_OFFSET = re.compile(r"^[+-]\d\d:\d\d$")


def timezone_name(value: Any, owner: str, file: str | None, line: int | None) -> str:
    """The IANA name of an aware start date's zone (pendulum's `.name`, zoneinfo's `.key`);
    'UTC' for a naive date or a zero offset. A fixed offset cannot follow daylight-saving
    time, so any other one is a DefinitionError."""
    from lockgate.model.timetables import zone

    tz = value.tzinfo if isinstance(value, datetime) else None
    if tz is None:
        return "UTC"
    name = getattr(tz, "key", None) or getattr(tz, "name", None)
    if isinstance(name, str) and not _FIXED_OFFSET.match(name):
        try:
            zone(name)
            return name
        except ValueError:
            pass
    if isinstance(tz, timezone) or (isinstance(name, str) and _FIXED_OFFSET.match(name)):
        offset = value.utcoffset()
        if not offset:
            return "UTC"
        raise error(
            f"{owner}: start_date has a fixed UTC offset ({tz.tzname(value)}); give it an IANA "
            "time zone so the schedule follows its daylight-saving time, e.g. "
            "pendulum.datetime(2024, 1, 1, tz='Europe/Berlin') or "
            "datetime(2024, 1, 1, tzinfo=ZoneInfo('Europe/Berlin'))",
            file,
            line,
        )
    raise error(
        f"{owner}: cannot tell the IANA name of start_date's time zone ({tz!r}); use "
        "pendulum.timezone('Europe/Berlin') or zoneinfo.ZoneInfo('Europe/Berlin')",
        file,
        line,
    )


def convert_datasets(
    value: Any, file: str | None, line: int | None, owner: str = "DAG"
) -> tuple[str, ...] | None:
    """The URIs of a dataset schedule (a Dataset/Asset or a list of them), else None."""
    if isinstance(value, Dataset):
        return (value.uri,)
    if not isinstance(value, list | tuple | set | frozenset):
        return None
    if not value:
        raise error(
            f"{owner}: schedule=[] names no datasets; list Datasets/Assets, give a time "
            "schedule, or None",
            file,
            line,
        )
    return dataset_uris(value, f"{owner}: schedule", file, line)


_EXTRA_PRESETS = {"@quarterly": "0 0 1 */3 *"}


def convert_schedule(
    value: Any, file: str | None, line: int | None, owner: str = "DAG"
) -> str | None:
    """An Airflow schedule (cron, preset, timedelta or None) as a lockgate schedule string."""
    from lockgate.model.schedule import check_schedule, interval_schedule

    if value is None:
        return None
    if isinstance(value, timedelta):
        try:
            return interval_schedule(value.total_seconds())
        except ValueError as exc:
            raise error(f"{owner}: schedule: {exc}", file, line) from None
    if isinstance(value, str):
        text = _EXTRA_PRESETS.get(value.strip(), value.strip())
        if text == "@continuous":
            raise unsupported(
                f"{owner}: schedule '@continuous'",
                "continuous DAG runs are not supported",
                file,
                line,
            )
        try:
            check_schedule(text)
        except ValueError as exc:
            raise error(f"{owner}: {exc}", file, line) from None
        return text
    raise unsupported(
        f"{owner}: schedule={value!r}",
        "schedules are a cron string, a preset such as @daily, a timedelta, a list of "
        "Datasets/Assets or None (timetables are not supported)",
        file,
        line,
    )


def check_default_args(
    owner: str, value: Any, file: str | None, line: int | None
) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise error(f"{owner}: default_args must be a dict, got {value!r}", file, line)
    return check_arguments(
        f"{owner} default_args",
        value,
        ALL_OPERATOR_ARGS - {"task_id", "dag", "task_group"},
        file=file,
        line=line,
    )


class TaskGroup(Relations):
    """A group of tasks whose ids are prefixed `group_id.` (as in Airflow)."""

    def __init__(
        self,
        group_id: str | None,
        prefix_group_id: bool = True,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        default_args: Mapping[str, Any] | None = None,
        tooltip: str = "",
        ui_color: str = "CornflowerBlue",
        ui_fgcolor: str = "#000",
        add_suffix_on_collision: bool = False,
        group_display_name: str = "",
        *,
        _root: bool = False,
    ) -> None:
        self.file, self.line = user_location()
        self.prefix_group_id = prefix_group_id
        self.tooltip = tooltip
        self.children: dict[str, Any] = {}
        self._label = group_id
        if _root:
            assert dag is not None
            self.dag, self.parent_group, self.default_args = dag, None, {}
            return
        session = _session_or_error("a TaskGroup")
        if not isinstance(group_id, str) or not group_id:
            raise error(f"TaskGroup needs a group_id, got {group_id!r}")
        if parent_group is None:
            current = session.group_stack[-1] if session.group_stack else None
            if dag is None:
                dag = (
                    current.dag
                    if current is not None
                    else (session.dag_stack[-1] if session.dag_stack else None)
                )
            if current is not None and current.dag is dag:
                parent_group = current
            elif dag is not None:
                parent_group = dag.task_group
        else:
            dag = dag or parent_group.dag
        if dag is None or parent_group is None:
            raise error(f"TaskGroup {group_id!r} is not inside a DAG; create it in `with DAG(...)`")
        self.dag = dag
        self.parent_group = parent_group
        self.default_args = check_default_args(
            f"TaskGroup {group_id!r}", default_args, self.file, self.line
        )
        full = parent_group.child_id(group_id)
        if full in dag._ids:
            if not add_suffix_on_collision:
                raise error(f"duplicate group id {full!r} in DAG {dag.dag_id!r}")
            self._label = unique_id(group_id, lambda g: parent_group.child_id(g) in dag._ids)
            full = parent_group.child_id(self._label)
        dag._ids[full] = self
        dag._groups[full] = self
        parent_group.children[full] = self

    @property
    def group_id(self) -> str | None:
        parent = self.parent_group
        if self.parent_group is None:
            return None
        assert parent is not None and self._label is not None
        return parent.child_id(self._label)

    def child_id(self, label: str) -> str:
        if self.prefix_group_id:
            own = self.group_id
            if own:
                return f"{own}.{label}"
        return label

    def merged_default_args(self) -> dict[str, Any]:
        chain: list[TaskGroup] = []
        group: TaskGroup | None = self
        while group is not None:
            chain.append(group)
            group = group.parent_group
        out = dict(self.dag.default_args)
        for g in reversed(chain):
            out.update(g.default_args)
        return out

    def all_tasks(self) -> list[Any]:
        out: list[Any] = []
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                out.extend(child.all_tasks())
            else:
                out.append(child)
        return out

    def get_roots(self) -> list[Any]:
        tasks = self.all_tasks()
        inside = set(map(id, tasks))
        return [t for t in tasks if not any(id(u) in inside for u in t._upstream)]

    def get_leaves(self) -> list[Any]:
        tasks = self.all_tasks()
        inside = set(map(id, tasks))
        return [t for t in tasks if not any(id(d) in inside for d in t._downstream)]

    # -- context manager and relations ------------------------------------------------------------
    def __enter__(self) -> TaskGroup:
        _session_or_error("a TaskGroup").group_stack.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        session = _session.current()
        if session is not None and self in session.group_stack:
            session.group_stack.remove(self)

    def __repr__(self) -> str:
        return f"<TaskGroup: {self.group_id}>"


class DagParam:
    """A `@dag` function's parameter inside the function: the run param of that name."""

    def __init__(self, dag: DAG, name: str) -> None:
        self.dag = dag
        self.name = name

    def __repr__(self) -> str:
        return f"DagParam({self.name!r})"

    def __str__(self) -> str:
        return "{{ params." + self.name + " }}"


class DAG:
    """An Airflow DAG: `with DAG("id", schedule="@daily", start_date=...) as dag:`."""

    def __init__(self, dag_id: str | None = None, description: str | None = None, **kwargs: Any):
        self.file, self.line = user_location()
        session = _session_or_error("a DAG")
        kwargs = check_arguments(
            "DAG", kwargs, DAG_ARGS, refused=DAG_UNSUPPORTED, file=self.file, line=self.line
        )
        dag_id = kwargs.pop("dag_id", dag_id)
        if not isinstance(dag_id, str) or not dag_id:
            raise error(f"DAG needs a dag_id, got {dag_id!r}", self.file, self.line)
        self.dag_id = dag_id
        self.description = description if description is not None else kwargs.get("description")
        self.doc_md: str | None = kwargs.get("doc_md")
        if "schedule" in kwargs and "schedule_interval" in kwargs:
            raise error(
                f"DAG {dag_id!r}: give schedule or schedule_interval, not both",
                self.file,
                self.line,
            )
        raw = kwargs.get("schedule", kwargs.get("schedule_interval"))
        datasets = convert_datasets(raw, self.file, self.line, f"DAG {dag_id!r}")
        self.datasets: tuple[str, ...] = datasets or ()
        self.schedule = (
            None
            if datasets is not None
            else convert_schedule(raw, self.file, self.line, f"DAG {dag_id!r}")
        )
        self.schedule_interval = raw
        self.default_args = check_default_args(
            f"DAG {dag_id!r}", kwargs.get("default_args"), self.file, self.line
        )
        start = kwargs.get("start_date", self.default_args.get("start_date"))
        self.timezone = timezone_name(start, f"DAG {dag_id!r}", self.file, self.line)
        tz = _zone(self.timezone)
        self.start_date = as_datetime("start_date", start, self.file, self.line, tz)
        self.end_date = as_datetime(
            "end_date",
            kwargs.get("end_date", self.default_args.get("end_date")),
            self.file,
            self.line,
            tz,
        )
        self.catchup = bool(kwargs.get("catchup", False))
        tags = kwargs.get("tags") or ()
        self.tags = sorted(tags) if isinstance(tags, set | frozenset) else list(tags)
        self.params: dict[str, Any] = dict(kwargs.get("params") or {})
        for name, value in self.params.items():
            lockgate_param(dag_id, name, value, self.file, self.line)
        self.max_active_tasks = kwargs.get("max_active_tasks", kwargs.get("concurrency"))
        self.max_active_runs = kwargs.get("max_active_runs")
        timeout = kwargs.get("dagrun_timeout")
        self.dagrun_timeout = timeout
        if isinstance(timeout, timedelta):
            timeout = timeout.total_seconds()
        self.run_timeout = timeout
        self.user_defined_macros: dict[str, Any] = dict(kwargs.get("user_defined_macros") or {})
        filters = kwargs.get("user_defined_filters")
        self.user_defined_filters: dict[str, Callable[..., Any]] | None = (
            dict(filters) if filters else None
        )
        self.render_template_as_native_obj = bool(kwargs.get("render_template_as_native_obj"))
        searchpath = kwargs.get("template_searchpath") or []
        self.template_searchpath = [searchpath] if isinstance(searchpath, str) else list(searchpath)
        self.owner = str(self.default_args.get("owner", "airflow"))
        self._ids: dict[str, Any] = {}
        self._groups: dict[str, TaskGroup] = {}
        self.task_dict: dict[str, Any] = {}
        self.task_group = TaskGroup(None, dag=self, _root=True)
        session.dags.append(self)

    # -- tasks ------------------------------------------------------------------------------------
    @property
    def tasks(self) -> list[Any]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    @property
    def folder(self) -> str:
        import os

        return os.path.dirname(self.file or "")

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def get_task(self, task_id: str) -> Any:
        if task_id not in self.task_dict:
            raise error(f"DAG {self.dag_id!r} has no task {task_id!r}")
        return self.task_dict[task_id]

    def add_task(self, task: Any) -> None:
        task._attach(self)

    def add_tasks(self, tasks: Iterable[Any]) -> None:
        for t in tasks:
            self.add_task(t)

    def param(self, name: str, default: Any = NOTSET) -> DagParam:
        if default is not NOTSET:
            self.params[name] = default
        return DagParam(self, name)

    def _register(self, task: Any, group: TaskGroup) -> None:
        if task.task_id in self._ids:
            raise error(f"duplicate task id {task.task_id!r} in DAG {self.dag_id!r}")
        self._ids[task.task_id] = task
        self.task_dict[task.task_id] = task
        group.children[task.task_id] = task

    def unique_task_id(self, wanted: str) -> str:
        """Airflow's id for the n-th call of a TaskFlow function: `name`, `name__1`, ..."""
        return unique_id(wanted, self._ids.__contains__)

    # -- context manager ----------------------------------------------------------------------------
    def __enter__(self) -> DAG:
        _session_or_error("a DAG").dag_stack.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        session = _session.current()
        if session is not None and self in session.dag_stack:
            session.dag_stack.remove(self)

    def _not_here(self, *_: Any, **__: Any) -> Any:
        raise unsupported(
            "running a DAG from its file (dag.test(), dag.run(), dag.cli())",
            "run it with `lockgate run FILE`",
        )

    test = run = cli = clear = _not_here

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"


def dag(dag_id: Any = None, **dag_kwargs: Any) -> Any:
    """`@dag(...)`: calling the decorated function creates the DAG; its parameters are params."""
    if callable(dag_id):
        return dag()(dag_id)

    def decorator(fn: Callable[..., Any]) -> Callable[..., DAG]:
        signature = inspect.signature(fn)
        def_line = fn.__code__.co_firstlineno

        @functools.wraps(fn)
        def factory(*args: Any, **kwargs: Any) -> DAG:
            file, line = user_location()
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise error(f"@dag {fn.__name__}: {exc}", file, line) from None
            bound.apply_defaults()
            options = dict(dag_kwargs)
            options.setdefault("dag_id", dag_id or fn.__name__)
            if fn.__doc__ and not options.get("doc_md"):
                options["doc_md"] = inspect.cleandoc(fn.__doc__)
            the_dag = DAG(**options)
            if file == fn.__code__.co_filename:
                the_dag.file, the_dag.line = file, def_line
            with the_dag:
                values = {}
                for name, value in bound.arguments.items():
                    values[name] = the_dag.param(name, value)
                fn(**values)
            return the_dag

        return factory

    return decorator


def task_group(group_id: Any = None, **group_kwargs: Any) -> Any:
    """`@task_group`: calling the function creates a TaskGroup (named after the function, with
    `__1`, `__2` for later calls) around the tasks it makes."""
    if callable(group_id):
        return task_group()(group_id)

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def factory(*args: Any, **kwargs: Any) -> Any:
            options = dict(group_kwargs)
            if fn.__doc__ and not options.get("tooltip"):
                options["tooltip"] = fn.__doc__
            with TaskGroup(group_id or fn.__name__, add_suffix_on_collision=True, **options) as tg:
                result = fn(*args, **kwargs)
            return tg if result is None else result

        factory.override = lambda **kw: task_group(**{"group_id": group_id, **group_kwargs, **kw})(
            fn
        )  # type: ignore[attr-defined]
        return factory

    return decorator


def days_ago(
    n: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0
) -> datetime:
    """Midnight UTC `n` days ago (Airflow 2's deprecated helper)."""
    today = datetime.now(UTC).replace(
        hour=hour, minute=minute, second=second, microsecond=microsecond
    )
    return today - timedelta(days=n)


def utcnow() -> datetime:
    return datetime.now(UTC)


def tz_datetime(*args: Any, **kwargs: Any) -> datetime:
    """`airflow.utils.timezone.datetime`: a datetime that is UTC unless told otherwise."""
    kwargs.setdefault("tzinfo", UTC)
    return datetime(*args, **kwargs)


UTC_TZ = UTC
