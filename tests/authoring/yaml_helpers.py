"""Callables that the YAML pipelines of tests/authoring/test_yaml_*.py reference by path."""

from __future__ import annotations

from typing import Any

from lockgate import task

CALLS: list[tuple[str, str, int]] = []
"""(callback, task id, attempt) of every callback called in this process."""


def make_rows(count: int, prefix: str) -> list[dict[str, Any]]:
    """Rows with ids 1..count, named with `prefix`."""
    return [{"id": i, "name": f"{prefix}-{i}"} for i in range(1, count + 1)]


def clean(rows: list[dict[str, Any]], limit: int, day: str, ctx) -> dict[str, Any]:
    """Fails its first attempt (to exercise retries); then checks its inputs kept their types."""
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
    assert isinstance(rows, list) and isinstance(rows[0], dict), rows
    assert isinstance(limit, int), limit
    return {"kept": rows[:limit], "day": day, "attempt": ctx.attempt}


def choose(summary: dict[str, Any]) -> str:
    """A branch: follow `left` when the summary kept rows."""
    return "left" if summary["kept"] else "right"


def identity(value: Any) -> Any:
    return value


@task
def decorated(value: int) -> int:
    """A @task function is also accepted by a YAML python task."""
    return value * 2


def on_success(ctx) -> None:
    CALLS.append(("success", ctx.task_id, ctx.attempt))


def on_failure(ctx) -> None:
    CALLS.append(("failure", ctx.task_id, ctx.attempt))


def on_retry(ctx) -> None:
    CALLS.append(("retry", ctx.task_id, ctx.attempt))


def two_args(a: int, b: int) -> int:
    return a + b


NOT_CALLABLE = 42
