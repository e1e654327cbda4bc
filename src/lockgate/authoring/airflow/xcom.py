"""How XComs live in lockgate's one JSON result per task.

A task's result is its return value. A task that also pushed other keys with
`ti.xcom_push(key, value)` stores `{"__lockgate_xcom__": {"return_value": ..., key: value}}`;
the compatibility layer unwraps it everywhere Airflow code reads XComs, so TaskFlow consumers
never see it. Placeholders (`XRef`, `PRef`) stand for upstream results and run params inside
the arguments of a task until it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENVELOPE = "__lockgate_xcom__"
RETURN = "return_value"


@dataclass(frozen=True, slots=True)
class XRef:
    """An XComArg inside a task's arguments: the XCom `key` of task `task_id`."""

    task_id: str
    key: str = RETURN


@dataclass(frozen=True, slots=True)
class PRef:
    """A `@dag` function parameter inside a task's arguments: the run param `name`."""

    name: str


def split(result: Any) -> tuple[Any, dict[str, Any]]:
    """(return value, other pushed keys) of a stored result."""
    if isinstance(result, dict) and len(result) == 1 and ENVELOPE in result:
        keys = dict(result[ENVELOPE])
        return keys.pop(RETURN, None), keys
    return result, {}


def wrap(value: Any, pushed: dict[str, Any]) -> Any:
    """The result to store for a return value and the keys pushed during the attempt."""
    if not pushed:
        return value
    doc = dict(pushed)
    if value is not None:
        doc[RETURN] = value
    return {ENVELOPE: doc}


def lookup(result: Any, key: str, multiple_outputs: bool) -> tuple[bool, Any]:
    """(found, value) of XCom `key` in a stored result."""
    value, pushed = split(result)
    if key in pushed:
        return True, pushed[key]
    if key == RETURN:
        return value is not None, value
    if multiple_outputs and isinstance(value, dict) and key in value:
        return True, value[key]
    return False, None
