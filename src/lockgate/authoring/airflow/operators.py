"""The operators of the subset, XComArg, and the ways to link tasks (`>>`, chain, ...).

Operators only record what the DAG file says; `convert.py` turns them into lockgate tasks
when the file has been executed (so attributes set after construction, such as
`task.doc_md = ...`, count, as in Airflow)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from enum import StrEnum
from typing import Any, ClassVar

from lockgate.authoring.airflow import session as _session
from lockgate.authoring.airflow.arguments import (
    BASE_ARGS,
    BASH_ARGS,
    PYTHON_ARGS,
    SHORT_CIRCUIT_ARGS,
    check_arguments,
)
from lockgate.authoring.airflow.dag import DAG, DagParam, TaskGroup, check_default_args
from lockgate.authoring.airflow.errors import error, unsupported, user_location
from lockgate.authoring.airflow.relations import Relations
from lockgate.authoring.airflow.xcom import RETURN, PRef, XRef


class TriggerRule(StrEnum):
    """Airflow's trigger rules (`airflow.utils.trigger_rule.TriggerRule`)."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_DONE_SETUP_SUCCESS = "all_done_setup_success"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_OR_SKIPPED = "none_failed_or_skipped"
    NONE_SKIPPED = "none_skipped"
    DUMMY = "dummy"
    ALWAYS = "always"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    ALL_SKIPPED = "all_skipped"
    ALL_DONE_MIN_ONE_SUCCESS = "all_done_min_one_success"


_MAPPING = "dynamic task mapping (.partial/.expand/.map) is not supported"


class BaseOperator(Relations):
    """What every operator of the subset takes (see `arguments.BASE_ARGS`)."""

    _ARGS: ClassVar[frozenset[str]] = BASE_ARGS
    _REQUIRED: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = "base"
    template_fields: ClassVar[tuple[str, ...]] = ()
    ui_color = "#fff"

    def __init__(self, **kwargs: Any) -> None:
        cls = type(self).__name__
        if not type(self).__module__.startswith("lockgate."):
            raise unsupported(
                f"custom operator {cls} (a subclass of an Airflow operator)",
                "only the operators of the subset can be used",
            )
        self.file, self.line = user_location()
        session = _session.current()
        if session is None:
            raise error(f"{cls} can only be created while lockgate loads an Airflow-style DAG file")
        dag = kwargs.pop("dag", None)
        group = kwargs.pop("task_group", None)
        if dag is not None and not isinstance(dag, DAG):
            raise error(f"{cls}: dag must be a DAG, got {dag!r}", self.file, self.line)
        if group is not None:
            dag = dag or group.dag
        elif session.group_stack and (dag is None or session.group_stack[-1].dag is dag):
            group = session.group_stack[-1]
            dag = group.dag
        else:
            dag = dag or (session.dag_stack[-1] if session.dag_stack else None)
            group = dag.task_group if dag is not None else None
        wanted = kwargs.get("task_id")
        owner = f"{cls}({wanted!r})" if isinstance(wanted, str) else cls
        defaults = group.merged_default_args() if group is not None else {}
        defaults.update(
            check_default_args(owner, kwargs.pop("default_args", None), self.file, self.line)
        )
        given = check_arguments(owner, kwargs, self._ARGS, file=self.file, line=self.line)
        values = {k: v for k, v in defaults.items() if k in self._ARGS}
        values.update(given)
        for name in ("task_id", *self._REQUIRED):
            if values.get(name) is None:
                raise error(f"{owner}: missing required argument {name!r}", self.file, self.line)
        label = values.pop("task_id")
        if not isinstance(label, str):
            raise error(f"{owner}: task_id must be a string, got {label!r}", self.file, self.line)
        self._label = label
        self.owner = values.pop("owner", None) or "airflow"
        self.email = values.pop("email", None)
        self.retries = values.pop("retries", 0)
        self.retry_delay = values.pop("retry_delay", timedelta(seconds=300))
        self.retry_exponential_backoff = values.pop("retry_exponential_backoff", False)
        self.max_retry_delay = values.pop("max_retry_delay", None)
        self.execution_timeout = values.pop("execution_timeout", None)
        self.trigger_rule = values.pop("trigger_rule", TriggerRule.ALL_SUCCESS)
        self.pool = values.pop("pool", None)
        self.pool_slots = values.pop("pool_slots", 1)
        self.on_failure_callback = values.pop("on_failure_callback", None)
        self.on_success_callback = values.pop("on_success_callback", None)
        self.on_retry_callback = values.pop("on_retry_callback", None)
        self.start_date = values.pop("start_date", None)
        self.end_date = values.pop("end_date", None)
        self.doc_md = values.pop("doc_md", None)
        self.doc = values.pop("doc", None) or values.pop("doc_rst", None)
        for key in ("doc_rst", "doc_json", "doc_yaml", "task_display_name"):
            values.pop(key, None)
        self.do_xcom_push = values.pop("do_xcom_push", True)
        self.multiple_outputs = bool(values.pop("multiple_outputs", False))
        self.outlets = values.pop("outlets", None)
        self._options = values
        self._upstream: dict[BaseOperator, None] = {}
        self._downstream: dict[BaseOperator, None] = {}
        self.dag: DAG | None = None
        self.task_group: TaskGroup | None = None
        self.task_id = label
        if dag is not None and group is not None:
            self._place(dag, group)

    # -- placement --------------------------------------------------------------------------------
    def _task_id_in(self, dag: DAG, group: TaskGroup) -> str:
        return group.child_id(self._label)

    def _place(self, dag: DAG, group: TaskGroup) -> None:
        self.task_id = self._task_id_in(dag, group)
        self.dag, self.task_group = dag, group
        dag._register(self, group)
        self._after_placed()

    def _after_placed(self) -> None:
        """Hook: link the upstream tasks whose results this task's arguments use."""

    def _attach(self, dag: DAG) -> None:
        if self.dag is dag:
            return
        if self.dag is not None:
            raise error(
                f"task {self.task_id!r} belongs to DAG {self.dag.dag_id!r}, not {dag.dag_id!r}"
            )
        self._place(dag, dag.task_group)
        for other in [*self._upstream, *self._downstream]:
            other._attach(dag)

    # -- relations --------------------------------------------------------------------------------

    @property
    def upstream_list(self) -> list[BaseOperator]:
        return list(self._upstream)

    @property
    def downstream_list(self) -> list[BaseOperator]:
        return list(self._downstream)

    @property
    def upstream_task_ids(self) -> set[str]:
        return {t.task_id for t in self._upstream}

    @property
    def downstream_task_ids(self) -> set[str]:
        return {t.task_id for t in self._downstream}

    @property
    def dag_id(self) -> str | None:
        return self.dag.dag_id if self.dag is not None else None

    @property
    def output(self) -> XComArg:
        return XComArg(self)

    @classmethod
    def partial(cls, *_: Any, **__: Any) -> Any:
        raise unsupported(f"{cls.__name__}.partial", _MAPPING)

    def expand(self, *_: Any, **__: Any) -> Any:
        raise unsupported("expand", _MAPPING)

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"


class BashOperator(BaseOperator):
    """`bash_command` (a Jinja template; `*.sh`/`*.bash` names a template file) run by bash."""

    _ARGS = BASE_ARGS | BASH_ARGS
    _REQUIRED = ("bash_command",)
    kind = "bash"
    template_fields = ("bash_command", "env", "cwd")
    template_ext = (".sh", ".bash")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bash_command = self._options.pop("bash_command")
        self.env = self._options.pop("env", None)
        self.append_env = bool(self._options.pop("append_env", False))
        check_output_encoding(self._options.pop("output_encoding", "utf-8"), self)
        self.skip_on_exit_code = self._options.pop("skip_on_exit_code", 99)
        self.cwd = self._options.pop("cwd", None)
        if self.dag is not None:
            self._link_inputs()

    def _after_placed(self) -> None:
        if hasattr(self, "bash_command"):
            self._link_inputs()

    def _link_inputs(self) -> None:
        for value in (self.bash_command, *(self.env or {}).values()):
            if isinstance(value, XComArg):
                link(value.operator, self)


def check_output_encoding(value: Any, op: BaseOperator) -> None:
    """`output_encoding` is accepted as long as it is UTF-8, which lockgate always uses."""
    import codecs

    try:
        utf8 = isinstance(value, str) and codecs.lookup(value).name == "utf-8"
    except LookupError:
        utf8 = False
    if not utf8:
        raise unsupported(
            f"{type(op).__name__}({op._label!r}): output_encoding={value!r}",
            "commands' output is read as UTF-8; leave output_encoding out or set it to 'utf-8'",
            op.file,
            op.line,
        )


class PythonOperator(BaseOperator):
    """`python_callable(*op_args, **op_kwargs)` plus the context keys it asks for."""

    _ARGS = BASE_ARGS | PYTHON_ARGS
    _REQUIRED = ("python_callable",)
    kind = "python"
    template_fields = ("templates_dict", "op_args", "op_kwargs")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        fn = self._options.pop("python_callable")
        if not callable(fn):
            raise error(
                f"{type(self).__name__}({self._label!r}): python_callable must be callable, "
                f"got {fn!r}",
                self.file,
                self.line,
            )
        self.python_callable: Callable[..., Any] = fn
        self.op_args = list(self._options.pop("op_args", None) or ())
        self.op_kwargs = dict(self._options.pop("op_kwargs", None) or {})
        self.templates_dict = self._options.pop("templates_dict", None)
        self.show_return_value_in_logs = self._options.pop("show_return_value_in_logs", True)
        self._options.pop("provide_context", None)  # a no-op since Airflow 2, as here
        self.ignore_downstream_trigger_rules = self._options.pop(
            "ignore_downstream_trigger_rules", True
        )
        self._frozen: tuple[Any, Any] | None = None
        if self.dag is not None:
            self._after_placed()

    def _after_placed(self) -> None:
        if hasattr(self, "op_kwargs"):
            self._frozen = (freeze(self.op_args, self), freeze(self.op_kwargs, self))

    def frozen_args(self) -> tuple[Any, Any]:
        """op_args and op_kwargs with XComArgs and DAG params as placeholders."""
        if self._frozen is None:
            self._frozen = (freeze(self.op_args, self), freeze(self.op_kwargs, self))
        return self._frozen


class BranchPythonOperator(PythonOperator):
    """The callable returns the task id(s) to follow; other direct downstream tasks skip."""

    kind = "branch"


class ShortCircuitOperator(PythonOperator):
    """A falsy return value skips the downstream tasks."""

    _ARGS = BASE_ARGS | PYTHON_ARGS | SHORT_CIRCUIT_ARGS
    kind = "short_circuit"


class EmptyOperator(BaseOperator):
    """Does nothing (also `DummyOperator`)."""

    kind = "empty"


class XComArg(Relations):
    """A task's result (or one key of it) used as another task's argument, as in Airflow."""

    def __init__(self, operator: BaseOperator, key: str = RETURN) -> None:
        if not isinstance(operator, BaseOperator):
            raise error(f"XComArg needs an operator, got {operator!r}")
        self.operator = operator
        self.key = key

    def __getitem__(self, key: str) -> XComArg:
        return XComArg(self.operator, key)

    def __str__(self) -> str:
        return (
            f"{{{{ task_instance.xcom_pull(task_ids='{self.operator.task_id}', "
            f"dag_id='{self.operator.dag_id}', key='{self.key}') }}}}"
        )

    def __iter__(self) -> Any:
        raise unsupported("iterating over a task's result at load time", _MAPPING)

    def map(self, *_: Any) -> Any:
        raise unsupported("XComArg.map", _MAPPING)

    zip = concat = map

    def __repr__(self) -> str:
        return f"XComArg({self.operator!r}, {self.key!r})"


def freeze(value: Any, consumer: BaseOperator) -> Any:
    """`value` with XComArgs as `XRef` (linking their tasks upstream of `consumer`) and
    `@dag` parameters as `PRef`."""
    if isinstance(value, XComArg):
        link(value.operator, consumer)
        return XRef(value.operator.task_id, value.key)
    if isinstance(value, BaseOperator):
        raise error(
            f"task {consumer.task_id!r}: an operator ({value.task_id!r}) is passed as an "
            "argument; pass its result with .output"
        )
    if isinstance(value, DagParam):
        return PRef(value.name)
    if isinstance(value, list):
        return [freeze(v, consumer) for v in value]
    if isinstance(value, tuple):
        return tuple(freeze(v, consumer) for v in value)
    if isinstance(value, dict):
        return {k: freeze(v, consumer) for k, v in value.items()}
    return value


def _expand(value: Any, side: str) -> list[BaseOperator]:
    if isinstance(value, BaseOperator):
        return [value]
    if isinstance(value, XComArg):
        return [value.operator]
    if isinstance(value, TaskGroup):
        return value.get_leaves() if side == "up" else value.get_roots()
    if isinstance(value, list | tuple | set):
        return [op for item in value for op in _expand(item, side)]
    raise error(f"'>>' and '<<' link tasks and task groups, got {type(value).__name__} {value!r}")


def link(ups: Any, downs: Any) -> None:
    """Make every task of `ups` (a task group: its leaves) upstream of every task of `downs`
    (a task group: its roots)."""
    up_ops = _expand(ups, "up")
    down_ops = _expand(downs, "down")
    for up in up_ops:
        for down in down_ops:
            if up.dag is None and down.dag is not None:
                up._attach(down.dag)
            elif down.dag is None and up.dag is not None:
                down._attach(up.dag)
            elif up.dag is not down.dag:
                raise error(
                    f"cannot link {up.task_id!r} (DAG {up.dag_id!r}) and {down.task_id!r} "
                    f"(DAG {down.dag_id!r}): they are in different DAGs"
                )
            up._downstream[down] = None
            down._upstream[up] = None


def chain(*tasks: Any) -> None:
    """`chain(a, b, [c, d], e)`: a >> b >> [c, d] >> e; two lists in a row link pairwise."""
    for up, down in zip(tasks, tasks[1:], strict=False):
        if isinstance(up, list | tuple) and isinstance(down, list | tuple):
            if len(up) != len(down):
                raise error(
                    f"chain: lists in a row must have the same length, got {len(up)} and "
                    f"{len(down)}"
                )
            for u, d in zip(up, down, strict=True):
                link(u, d)
        else:
            link(up, down)


def chain_linear(*elements: Any) -> None:
    """Every task of each element upstream of every task of the next."""
    for up, down in zip(elements, elements[1:], strict=False):
        link(up, down)


def cross_downstream(from_tasks: Iterable[Any], to_tasks: Any) -> None:
    """Every task of `from_tasks` upstream of every task of `to_tasks`."""
    link(list(from_tasks), to_tasks)
