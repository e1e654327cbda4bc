"""A write killed with SIGKILL halfway through 1,000,000 rows leaves the previous version of
its target intact and readable, row for row: on a local disk (the temporary file is left
behind, recognisably named) and on S3 (the upload is never completed)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lockgate.io.connect import open_reader, open_writer
from lockgate.io.dataset import Dataset
from lockgate.io.formats import is_temp_name
from lockgate.model.classification import tag_of, with_tag

ROWS = 1_000_000
BATCH = 50_000

# Writes ROWS rows to the dataset argv[1] through open_writer; halfway it says so on stdout
# and waits for a line on stdin, which never comes: the test kills it there, mid-write.
CHILD = f"""
import sys
import pyarrow as pa
from lockgate.io.connect import open_writer
from lockgate.io.dataset import Dataset

schema = pa.schema([("id", pa.int64()), ("email", pa.string())])
with open_writer(Dataset(sys.argv[1]), schema) as writer:
    for start in range(0, {ROWS}, {BATCH}):
        ids = pa.array(range(start, start + {BATCH}), pa.int64())
        emails = pa.array([f"new{{i}}@example.com" for i in range(start, start + {BATCH})])
        writer.write(pa.record_batch([ids, emails], schema=schema))
        if start + {BATCH} == {ROWS // 2}:
            print("halfway", flush=True)
            sys.stdin.readline()
print("finished", flush=True)
"""


def _old_version() -> pa.Table:
    rows = 20_000
    email = with_tag(pa.field("email", pa.string()), "pii.email")
    schema = pa.schema([pa.field("id", pa.int64()), email])
    ids = range(rows)
    return pa.table([pa.array(ids, pa.int64()), [f"old{i}@example.com" for i in ids]], schema)


def _write(dataset: Dataset, table: pa.Table) -> None:
    with open_writer(dataset, table.schema) as writer:
        writer.write(table)


def _read(dataset: Dataset) -> pa.Table:
    with open_reader(dataset) as reader:
        return pa.Table.from_batches(list(reader), schema=reader.schema)


def _start(uri: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, uri],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert child.stdout is not None
    line = child.stdout.readline()  # blocks until halfway (or the child's end)
    if line != "halfway\n":
        child.kill()
        _out, err = child.communicate(timeout=30)
        pytest.fail(f"the writer did not reach halfway: {line!r} {err}")
    return child


def _kill(child: subprocess.Popen[str]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    out, _err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert "finished" not in out


def test_killed_local_write_leaves_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "orders.parquet"
    old = _old_version()
    _write(Dataset(str(target)), old)
    before = target.read_bytes()

    child = _start(str(target))
    try:
        temps = [p for p in tmp_path.iterdir() if p != target]
        assert len(temps) == 1 and is_temp_name(temps[0].name), temps
        assert temps[0].stat().st_size > 0  # half a million rows are in it already
        assert target.read_bytes() == before
    finally:
        _kill(child)

    assert target.read_bytes() == before
    back = _read(Dataset(str(target)))
    assert back.num_rows == old.num_rows
    assert back.equals(old)  # row for row
    assert tag_of(back.schema.field("email")) == "pii.email"
    # the dead writer's temporary file stays (nothing knows it is dead), named as one
    [stale] = [p.name for p in tmp_path.iterdir() if p != target]
    assert stale.startswith(".orders.parquet.lockgate-") and is_temp_name(stale)
    # and it does not get in the way of the next write
    _write(Dataset(str(target)), old.slice(0, 10))
    assert _read(Dataset(str(target))).equals(old.slice(0, 10))


def test_killed_s3_write_leaves_the_previous_object(aws: str) -> None:
    import boto3

    s3: Any = boto3.client("s3", endpoint_url=aws, region_name="us-east-1")
    bucket = f"lockgate-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket)
    dataset = Dataset(f"s3://{bucket}/orders.parquet")
    old = _old_version()
    _write(dataset, old)
    etag = s3.head_object(Bucket=bucket, Key="orders.parquet")["ETag"]

    child = _start(dataset.uri)
    _kill(child)

    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["orders.parquet"]
    assert s3.head_object(Bucket=bucket, Key="orders.parquet")["ETag"] == etag
    assert _read(dataset).equals(old)
