"""References used as task arguments: an upstream task's result, or a run parameter."""

from __future__ import annotations

from dataclasses import dataclass
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
