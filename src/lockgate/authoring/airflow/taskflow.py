"""TaskFlow: `@task` (and `.python`, `.branch`, `.short_circuit`, `.bash`), `.override()`."""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

from lockgate.authoring.airflow import session as _session
from lockgate.authoring.airflow.arguments import (
    BASE_ARGS,
    BASH_ARGS,
    PYTHON_ARGS,
    SHORT_CIRCUIT_ARGS,
    check_arguments,
)
from lockgate.authoring.airflow.errors import error, unsupported, user_location
from lockgate.authoring.airflow.operators import PythonOperator, XComArg, check_output_encoding

CONTEXT_KEYS = frozenset(
    {
        "conf",
        "dag",
        "dag_run",
        "data_interval_end",
        "data_interval_start",
        "ds",
        "ds_nodash",
        "execution_date",
        "exception",
        "inlets",
        "logical_date",
        "macros",
        "outlets",
        "params",
        "reason",
        "run_id",
        "task",
        "task_instance",
        "task_instance_key_str",
        "templates_dict",
        "test_mode",
        "ti",
        "tomorrow_ds",
        "tomorrow_ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "var",
        "yesterday_ds",
        "yesterday_ds_nodash",
    }
)

_KIND_ARGS = {
    "python": BASE_ARGS | PYTHON_ARGS,
    "branch": BASE_ARGS | PYTHON_ARGS,
    "short_circuit": BASE_ARGS | PYTHON_ARGS | SHORT_CIRCUIT_ARGS,
    "bash": BASE_ARGS | PYTHON_ARGS | BASH_ARGS,
}
_DECORATOR_ARGS = {
    kind: args - {"python_callable", "op_args", "op_kwargs", "dag", "task_group"}
    for kind, args in _KIND_ARGS.items()
}


class TaskFlowOperator(PythonOperator):
    """The operator a call of a `@task` function adds to the DAG."""

    _ARGS = BASE_ARGS | PYTHON_ARGS | SHORT_CIRCUIT_ARGS | BASH_ARGS

    def __init__(self, *, taskflow_kind: str, **kwargs: Any) -> None:
        self.kind = taskflow_kind  # type: ignore[misc]
        bash = {k: kwargs.pop(k) for k in list(kwargs) if k in BASH_ARGS}
        super().__init__(**kwargs)
        self.env = bash.get("env")
        self.append_env = bool(bash.get("append_env", False))
        self.cwd = bash.get("cwd")
        self.skip_on_exit_code = bash.get("skip_on_exit_code", 99)
        check_output_encoding(bash.get("output_encoding", "utf-8"), self)

    def _task_id_in(self, dag: Any, group: Any) -> str:
        return dag.unique_task_id(group.child_id(self._label))


def _returns_dict(fn: Callable[..., Any]) -> bool:
    try:
        annotation = inspect.signature(fn).return_annotation
    except (TypeError, ValueError):
        return False
    if isinstance(annotation, str):
        return re.match(r"^\s*(dict|Dict|typing\.Dict)\b", annotation) is not None
    return annotation is dict or typing.get_origin(annotation) is dict


class TaskFunction:
    """A function decorated with `@task`: each call inside a DAG adds a task."""

    def __init__(self, fn: Callable[..., Any], kind: str, options: dict[str, Any]) -> None:
        if not callable(fn):
            raise error(f"@task decorates a function, got {fn!r}")
        functools.update_wrapper(self, fn)
        self.function = fn
        self.kind = kind
        file, line = user_location()
        self.options = check_arguments(
            f"@task {getattr(fn, '__name__', fn)!r}",
            options,
            _DECORATOR_ARGS[kind],
            file=file,
            line=line,
        )

    def override(self, **options: Any) -> TaskFunction:
        return TaskFunction(self.function, self.kind, {**self.options, **options})

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        fn = self.function
        name = fn.__name__
        if _session.current() is None:
            raise error(f"@task {name!r} was called outside a DAG being loaded by lockgate")
        signature = inspect.signature(fn)
        try:
            bound = signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise error(f"@task {name!r}: {exc}") from None
        missing = [
            p.name
            for p in signature.parameters.values()
            if p.name not in bound.arguments
            and p.default is p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.name not in CONTEXT_KEYS
        ]
        if missing:
            raise error(f"@task {name!r}: missing argument(s) {', '.join(map(repr, missing))}")
        options = dict(self.options)
        if options.get("multiple_outputs") is None:
            options["multiple_outputs"] = self.kind == "python" and _returns_dict(fn)
        options.setdefault("task_id", name)
        operator = TaskFlowOperator(
            taskflow_kind=self.kind,
            python_callable=fn,
            op_args=list(args),
            op_kwargs=dict(kwargs),
            **options,
        )
        if operator.doc_md is None and fn.__doc__:
            operator.doc_md = inspect.cleandoc(fn.__doc__)
        return XComArg(operator)

    def expand(self, *_: Any, **__: Any) -> Any:
        raise unsupported(
            f"{self.function.__name__}.expand", "dynamic task mapping is not supported"
        )

    partial = expand_kwargs = expand

    def __repr__(self) -> str:
        return f"<@task {self.function.__module__}.{self.function.__qualname__}>"


class _TaskDecorator:
    """`task`: `@task`, `@task(...)`, `@task.python`, `@task.branch`, `@task.short_circuit`,
    `@task.bash`; other flavours (virtualenv, docker, sensor, ...) are a clear error."""

    def _make(self, kind: str, python_callable: Any, options: dict[str, Any]) -> Any:
        if python_callable is not None:
            return TaskFunction(python_callable, kind, options)
        return lambda fn: TaskFunction(fn, kind, options)

    def __call__(self, python_callable: Any = None, **options: Any) -> Any:
        return self._make("python", python_callable, options)

    def python(self, python_callable: Any = None, **options: Any) -> Any:
        return self._make("python", python_callable, options)

    def branch(self, python_callable: Any = None, **options: Any) -> Any:
        return self._make("branch", python_callable, options)

    def short_circuit(self, python_callable: Any = None, **options: Any) -> Any:
        return self._make("short_circuit", python_callable, options)

    def bash(self, python_callable: Any = None, **options: Any) -> Any:
        return self._make("bash", python_callable, options)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise unsupported(
            f"@task.{name}",
            "the TaskFlow decorators of the subset are @task, @task.python, @task.branch, "
            "@task.short_circuit and @task.bash",
        )


task = _TaskDecorator()
