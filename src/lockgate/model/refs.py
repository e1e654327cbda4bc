"""Values resolved when a task starts: an upstream task's result, a run parameter, a template."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TaskOutput:
    """The return value of an upstream task, optionally one item of it (`ref["key"]`)."""

    task_id: str
    key: str | int | None = None

    def resolve(self, value: Any) -> Any:
        if self.key is None or value is None:
            return value
        try:
            return value[self.key]
        except (KeyError, IndexError, TypeError) as exc:
            raise LookupError(
                f"result of task {self.task_id!r} has no item {self.key!r} ({type(exc).__name__})"
            ) from None


@dataclass(frozen=True, slots=True)
class ParamRef:
    """A run parameter by name; resolved when the run starts."""

    name: str


@dataclass(frozen=True, slots=True)
class Template:
    """A value rendered with the sandboxed Jinja environment when its task starts.

    `source` is a string, or a list/dict whose strings are templates. `mode` says what a
    string renders to: `text` (a string), `native` (a lone `{{ expr }}` gives the expression's
    value, e.g. a list), or `shell` (every `{{ }}` output is shell-quoted, so a value can never
    become shell syntax). `refs` are the task ids whose results the template reads; `extra`
    adds names to the context (e.g. Airflow's `ti` and `dag_run`), `filters` adds filters.
    """

    source: Any
    mode: str = "text"
    refs: tuple[str, ...] = ()
    extra: Callable[[dict[str, Any]], None] | None = field(default=None, compare=False)
    filters: Mapping[str, Callable[..., Any]] | None = field(default=None, compare=False)

    def __repr__(self) -> str:  # stable across processes: part of the pipeline's fingerprint
        return f"Template({self.source!r}, {self.mode!r})"
