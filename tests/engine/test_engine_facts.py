"""Facts a task reports about its data (model/facts.py) reach the store, from any executor:
the dataset catalogue with its schema and tags, lineage edges, and data-quality results, also
when the task then fails."""

from __future__ import annotations

import json

import pytest

import lockgate
from lockgate.api import open_store
from lockgate.config import Project
from lockgate.engine import events as ev
from lockgate.model import facts
from lockgate.model.states import RunState

from .conftest import EXECUTORS

FLOW = """
from lockgate import pipeline, task
from lockgate.model import facts

SCHEMA = [{"name": "email", "type": "string", "tag": "pii.email/tokenized"}]


@task
def write() -> int:
    facts.report(facts.DATASET_READ, {"uri": "file:///in.csv", "kind": "file", "rows": 2})
    facts.report(
        facts.DATASET_WRITTEN,
        {"uri": "sqlite:///out.db#t", "kind": "sqlite", "rows": 2, "mode": "overwrite",
         "schema": SCHEMA, "inputs": ["file:///in.csv", "s3://b/k.parquet"]},
    )
    return 2


@task
def check() -> None:
    facts.report(
        facts.QUALITY_CHECKED,
        {"dataset": "sqlite:///out.db#t", "name": "not_null(email)", "check": "not_null",
         "severity": "error", "passed": False, "failing_rows": 3,
         "examples": [{"email": "***"}], "message": "3 null value(s) in email"},
    )
    raise ValueError("1 data-quality check(s) failed")


with pipeline("facts") as p:
    write() >> check()
"""


def _rows(store, sql: str) -> list[dict]:
    return [dict(r) for r in store._rows(sql)]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_reported_facts_are_stored(project: Project, pipeline_file, executor: str) -> None:
    pipe = pipeline_file(FLOW)["facts"]
    result = lockgate.run(pipe, project=project, executor=executor)
    assert result.state is RunState.FAILED
    store = open_store(project)
    [dataset] = _rows(store, "SELECT * FROM datasets")
    assert dataset["uri"] == "sqlite:///out.db#t" and dataset["kind"] == "sqlite"
    assert dataset["rows"] == 2 and dataset["task_id"] == "write"
    assert json.loads(dataset["schema"])[0]["tag"] == "pii.email/tokenized"
    edges = _rows(store, "SELECT input_uri, output_uri, task_id FROM lineage ORDER BY input_uri")
    assert edges == [
        {"input_uri": "file:///in.csv", "output_uri": "sqlite:///out.db#t", "task_id": "write"},
        {"input_uri": "s3://b/k.parquet", "output_uri": "sqlite:///out.db#t", "task_id": "write"},
    ]
    [check] = _rows(store, "SELECT * FROM quality_results")
    assert check["task_id"] == "check" and check["attempt"] == 1
    assert (check["name"], check["check_kind"], check["severity"]) == (
        "not_null(email)",
        "not_null",
        "error",
    )
    assert check["passed"] == 0 and check["failing_rows"] == 3
    assert json.loads(check["detail"])["examples"] == [{"email": "***"}]
    kinds = [r["kind"] for r in _rows(store, "SELECT kind FROM events WHERE task_id = 'check'")]
    assert kinds.index(facts.QUALITY_CHECKED) < kinds.index(ev.TASK_FAILED)


def test_report_outside_a_task_keeps_nothing() -> None:
    assert facts.report(facts.DATASET_READ, {"uri": "x"}) is False
    with facts.collect() as found:
        assert facts.report(facts.DATASET_READ, {"uri": "x"}) is True
    assert found == [{"kind": facts.DATASET_READ, "data": {"uri": "x"}}]
    with pytest.raises(ValueError, match="unknown fact kind"):
        facts.report("Nope", {})
