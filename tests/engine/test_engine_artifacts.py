"""Tables returned by Python tasks go to the artifact store as content-addressed Parquet; the
result in the DB is a reference, and downstream tasks receive the table again, as the same kind
of frame (Arrow, pandas, polars), with classification tags intact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lockgate
from lockgate.config import Project
from lockgate.io import artifacts
from lockgate.model.states import RunState

from .conftest import EXECUTORS

FLOW = """
import pyarrow as pa
from lockgate import pipeline, task
from lockgate.model.classification import tag_of, with_tag


@task
def extract():
    schema = pa.schema([with_tag(pa.field("email", pa.string()), "pii.email"),
                        pa.field("amount", pa.int64())])
    return pa.table({"email": ["a@x.io", "b@y.io", None], "amount": [5, 7, 9]}, schema=schema)


@task
def to_pandas(table):
    assert tag_of(table.schema.field("email")) == "pii.email", table.schema
    frame = table.to_pandas()
    frame["amount"] = frame["amount"] * 2
    return frame


@task
def to_polars(frame):
    import polars as pl

    assert type(frame).__name__ == "DataFrame" and type(frame).__module__.startswith("pandas")
    return pl.from_pandas(frame)


@task
def total(frame) -> int:
    assert type(frame).__module__.startswith("polars")
    return int(frame["amount"].sum())


with pipeline("tables") as p:
    t = extract()
    total(to_polars(to_pandas(t)))
"""


@pytest.mark.parametrize("executor", EXECUTORS)
def test_tables_travel_as_artifacts(project: Project, pipeline_file, executor: str) -> None:
    pipe = pipeline_file(FLOW)["tables"]
    result = lockgate.run(pipe, project=project, executor=executor)
    assert result.state is RunState.SUCCESS, result.error
    assert result.result("total") == 42
    ref = json.loads(result.tasks["extract"].result_json)
    assert ref[artifacts.REF_KEY].startswith("sha256:")
    assert ref["rows"] == 3 and ref["columns"] == ["email", "amount"] and ref["frame"] == "arrow"
    path = Path(ref["uri"])
    assert path.is_file() and path.is_relative_to(Path(project.artifacts))
    assert path.name == ref[artifacts.REF_KEY].removeprefix("sha256:") + ".parquet"
    assert json.loads(result.tasks["to_pandas"].result_json)["frame"] == "pandas"
    assert json.loads(result.tasks["to_polars"].result_json)["frame"] == "polars"
    assert "a@x.io" not in result.tasks["extract"].result_json, "the data is not in the DB"


def test_the_same_table_is_stored_once_and_a_changed_one_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa

    from lockgate.errors import DataError

    table = pa.table({"a": [1, 2, 3]})
    first = artifacts.store(table, str(tmp_path))
    second = artifacts.store(pa.table({"a": [1, 2, 3]}), str(tmp_path))
    assert first == second
    assert len(list(tmp_path.rglob("*.parquet"))) == 1
    assert artifacts.load(first).equals(table)
    Path(first["uri"]).write_bytes(b"changed")
    with pytest.raises(DataError, match="does not match its SHA-256"):
        artifacts.load(first)
    Path(first["uri"]).unlink()
    with pytest.raises(DataError, match="cannot be read.*run the task that produced it again"):
        artifacts.load(first)


def test_artifacts_can_live_in_s3(aws: str, tmp_path: Path) -> None:
    import boto3
    import pyarrow as pa

    boto3.client("s3", endpoint_url=aws, region_name="us-east-1").create_bucket(Bucket="arts")
    table = pa.table({"a": ["x", "y"]})
    ref = artifacts.store(table, "s3://arts/runs")
    assert ref["uri"].startswith("s3://arts/runs/")
    assert artifacts.load(ref).equals(table)


def test_threads_storing_the_same_table_at_once_all_succeed(tmp_path: Path) -> None:
    import stat
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa

    table = pa.table({"a": list(range(1000))})
    with ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(lambda _: artifacts.store(table, str(tmp_path)), range(64)))
    assert len({r["uri"] for r in refs}) == 1
    [file] = list(tmp_path.rglob("*.parquet"))
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [file.name], "no temp left"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
