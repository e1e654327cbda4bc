"""The immutable Task: one node of a pipeline graph."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lockgate.model.refs import TaskOutput, Template
from lockgate.model.settings import TaskSettings

Callback = Callable[..., Any]


_LIBRARY_TASKS = frozenset(
    {"lockgate.io.tasks", "lockgate.privacy.tasks", "lockgate.governance.reports"}
)
"""Modules of lockgate's own task functions (copy, sql, mask, ...), shown by what they do."""
_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^@/\s]*@")


class TaskKind(StrEnum):
    PYTHON = "python"
    SHELL = "shell"


@dataclass(frozen=True)
class Task:
    """A unit of work. Python tasks call `fn(*args, **kwargs)`; shell tasks run `command`.

    Argument and environment values may be `TaskOutput`, `ParamRef` or `Template` values,
    resolved by the engine when the task is dispatched. A shell command may be a `Template`;
    otherwise values reach it only as environment variables. A shell task ends `skipped` when
    its exit code is in `skip_exit_codes`, and with `output_result` its last line of standard
    output is its result.
    """

    id: str
    kind: TaskKind
    fn: Callable[..., Any] | None = None
    command: str | tuple[str, ...] | Template | None = None
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict)
    cwd: str | Template | None = None
    skip_exit_codes: tuple[int, ...] = ()
    output_result: bool = False
    inherit_env: bool = True
    """Shell: the command sees lockgate's environment (minus its secrets) plus `env`; with
    False it sees only `env` and the `LOCKGATE_*` variables."""
    upstream: tuple[str, ...] = ()
    settings: TaskSettings = field(default_factory=TaskSettings)
    on_success: tuple[Callback, ...] = ()
    on_failure: tuple[Callback, ...] = ()
    on_retry: tuple[Callback, ...] = ()
    compensation: str | None = None
    branch: bool = False
    wants_context: bool = False
    tags: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()
    """Dataset URIs this task updates when it succeeds (checked by the pipeline)."""
    description: str | None = None
    file: str | None = None
    line: int | None = None

    def inputs(self) -> tuple[Any, ...]:
        """Every value resolved when the task starts (references and templates among them)."""
        return (*self.args, *self.kwargs.values(), *self.env.values(), self.command, self.cwd)

    def data_upstream(self) -> tuple[str, ...]:
        """Ids of upstream tasks whose results this task consumes."""
        seen: dict[str, None] = {}

        def visit(value: Any) -> None:
            if isinstance(value, TaskOutput):
                seen[value.task_id] = None
            elif isinstance(value, Template):
                seen.update(dict.fromkeys(value.refs))
            elif isinstance(value, list | tuple):  # `total([a(), b()])`
                for item in value:
                    visit(item)
            elif isinstance(value, dict):
                for item in value.values():
                    visit(item)

        for value in self.inputs():
            visit(value)
        return tuple(seen)

    def describe_action(self) -> str:
        """A short human description of what the task runs."""
        if self.kind is TaskKind.SHELL:
            cmd = self.command
            if isinstance(cmd, Template):
                cmd = cmd.source
            return cmd if isinstance(cmd, str) else " ".join(cmd or ())
        fn = self.fn
        module = str(getattr(fn, "__module__", "?"))
        if module in _LIBRARY_TASKS:
            return self._describe_library_task(str(getattr(fn, "__name__", "?")))
        name = f"{getattr(fn, '__qualname__', repr(fn))}()"
        # functions of pipeline files live in synthetic modules; their file is shown elsewhere
        return name if module.startswith("lockgate_pipelines.") else f"{module}.{name}"

    def _describe_library_task(self, function: str) -> str:
        """`copy orders.csv -> sqlite:///shop.db#orders`, `sql over orders, customers -> x`:
        lockgate's data and privacy tasks by what they read and write (passwords hidden)."""
        kwargs = self.kwargs or {}

        def shown(value: Any) -> str:
            if isinstance(value, Template):
                value = value.source
            if isinstance(value, Mapping):
                value = value.get("uri", "?")
            return _PASSWORD.sub(r"\1***@", str(value))

        action = function.removesuffix("_task")
        read = next((kwargs[k] for k in ("source", "input", "dataset") if k in kwargs), None)
        inputs = kwargs.get("inputs")
        if isinstance(inputs, Template):
            inputs = inputs.source
        if action == "sql" and isinstance(inputs, Mapping):
            text = "sql over " + ", ".join(map(str, inputs))
        else:
            text = action if read is None else f"{action} {shown(read)}"
        written = next((kwargs[k] for k in ("target", "output") if k in kwargs), None)
        return text if written is None else f"{text} -> {shown(written)}"
