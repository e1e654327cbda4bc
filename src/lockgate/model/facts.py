"""Facts a running task reports about the data it touched: datasets read and written (with
their schema and classification tags), and data-quality results.

A task's code calls `report(kind, data)` wherever it runs (thread, worker process); the attempt
that runs it collects the facts and hands them back with its outcome, and the engine emits
each as an event (`DatasetRead`, `DatasetWritten`, `QualityChecked`) that the store records.
Outside a task (e.g. `lockgate copy`), `report` does nothing and returns False.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

DATASET_READ = "DatasetRead"
"""`{"uri", "kind", "rows", "schema": [{"name", "type", "tag"}]}`: a dataset the task read."""
DATASET_WRITTEN = "DatasetWritten"
"""`{"uri", "kind", "rows", "mode", "schema": [...], "inputs": [uri, ...], "columns": {...}}`: a
dataset written; `inputs` are the datasets it was made from (lineage). `columns` is its column
lineage: `{output column: [{"dataset": input key, "field": input column, "transform": the
masking operation's name or None, "masking": bool, "kind": "identity"|"transformation"|
"aggregation"}]}` (copies: identity; `sql`: traced through the query, counts and aggregates
are aggregations; `mask`: the operation per column). At most 500 output columns and 50 inputs
each (io/copy.py); empty when the producer cannot tell."""
QUALITY_CHECKED = "QualityChecked"
"""`{"dataset", "name", "check", "severity", "passed", "failing_rows", "examples", "message"}`."""

POLICY_DECISION = "PolicyDecision"
"""The gate let a write through: `{"dataset", "zone", "decision": "allow"|"waived",
"source_zones", "columns": [{"name", "tag"}], "violations": [...waived ones], "waivers": [id],
"scanned": [column, ...]}` (governance/gate.py)."""
POLICY_VIOLATION = "PolicyViolation"
"""The gate refused a write (nothing was written): the same fields as `PolicyDecision` with
`"decision": "deny"` and `violations`: `[{"rule", "column", "tag", "class", "form", "zone",
"severity", "message"}]`."""
TASK_ALERT = "TaskAlert"
"""The task raised an alert for people to see (`ctx.alert`): `{"title", "text"}`; the run goes
on. Notification rules `on = ["task_alert"]` send it."""
REPORT_PUBLISHED = "ReportPublished"
"""The task published a file it wrote for people to read in the web UI (`ctx.publish`):
`{"path", "title", "media_type", "bytes", "sha256"}` (an absolute path inside the project)."""
SECRET_READ = "SecretRead"
"""A secret was read: `{"name", "source"}` (a connection's secret fields, later the secret
backends); never the value."""

KINDS = frozenset(
    {
        DATASET_READ,
        DATASET_WRITTEN,
        QUALITY_CHECKED,
        POLICY_DECISION,
        POLICY_VIOLATION,
        SECRET_READ,
        TASK_ALERT,
        REPORT_PUBLISHED,
    }
)
MAX_FACTS = 1000
"""Facts kept per attempt; more would bloat the event log (a loop writing many datasets)."""

_current: ContextVar[list[dict[str, Any]] | None] = ContextVar("lockgate_facts", default=None)


def report(kind: str, data: dict[str, Any]) -> bool:
    """Record a fact for the running attempt; False (and nothing kept) outside an attempt or
    past `MAX_FACTS`. `data` must be JSON data."""
    if kind not in KINDS:
        raise ValueError(f"unknown fact kind {kind!r}")
    found = _current.get()
    if found is None or len(found) >= MAX_FACTS:
        return False
    found.append({"kind": kind, "data": data})
    return True


@contextlib.contextmanager
def collect() -> Iterator[list[dict[str, Any]]]:
    """Collect the facts reported inside the block (by this thread or task) into a list."""
    found: list[dict[str, Any]] = []
    token = _current.set(found)
    try:
        yield found
    finally:
        _current.reset(token)
