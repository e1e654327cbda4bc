"""The file connector on S3, against a moto server on 127.0.0.1: each format written and read
back, credentials from options or the AWS variables, multipart writes that only appear on
commit (and are aborted on failure), and one-line errors naming the dataset."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lockgate.errors import DataError
from lockgate.io import files
from lockgate.io.base import Reader, Writer
from lockgate.io.connect import open_reader, open_writer
from lockgate.io.copy import copy
from lockgate.io.dataset import Dataset
from lockgate.model.classification import tag_of, with_tag


@pytest.fixture
def s3(aws: str) -> Any:
    """A boto3 client of the moto server (the test's own view of the bucket)."""
    import boto3

    return boto3.client("s3", endpoint_url=aws, region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any) -> str:
    """A new, empty bucket for this test."""
    name = f"lockgate-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=name)
    return name


def _table(rows: int = 10, start: int = 0) -> pa.Table:
    ids = range(start, start + rows)
    return pa.table(
        {"id": pa.array(ids, pa.int64()), "email": [f"user{i}@example.com" for i in ids]}
    )


def _write(dataset: Dataset, table: pa.Table, mode: str = "overwrite") -> Any:
    with open_writer(dataset, table.schema, mode=mode) as writer:
        assert isinstance(writer, Writer)
        for batch in table.to_batches(max_chunksize=4):
            writer.write(batch)
    return writer.commit()


def _read(dataset: Dataset, batch_rows: int = 65_536) -> pa.Table:
    with open_reader(dataset, batch_rows=batch_rows) as reader:
        assert isinstance(reader, Reader)
        return pa.Table.from_batches(list(reader), schema=reader.schema)


def _keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _uploads(s3: Any, bucket: str) -> list[Any]:
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


@pytest.mark.parametrize("ext", ["parquet", "csv", "jsonl", "csv.gz", "jsonl.zst"])
def test_write_and_read_each_format(s3: Any, bucket: str, ext: str) -> None:
    table = _table(1000)
    dataset = Dataset(f"s3://{bucket}/data/t.{ext}")
    result = _write(dataset, table)
    head = s3.head_object(Bucket=bucket, Key=f"data/t.{ext}")
    assert (result.target, result.rows, result.bytes) == (
        f"s3://{bucket}/data/t.{ext}",
        1000,
        head["ContentLength"],
    )
    with open_reader(dataset, batch_rows=400) as reader:
        assert reader.schema.names == ["id", "email"]
        sizes = [b.num_rows for b in reader]
    assert sizes == [400, 400, 200]
    back = _read(dataset)
    assert [int(v) for v in back.column("id").to_pylist()] == list(range(1000))
    assert back.column("email").equals(table.column("email"))
    assert _uploads(s3, bucket) == []


def test_tags_survive_parquet_on_s3_and_copy(s3: Any, bucket: str, tmp_path: Path) -> None:
    table = _table(50)
    schema = table.schema.set(1, with_tag(table.schema.field("email"), "pii.email"))
    local = Dataset(str(tmp_path / "people.parquet"))
    _write(local, table.cast(schema))
    remote = Dataset(f"s3://{bucket}/people.parquet")
    assert copy(local, remote).rows == 50
    assert tag_of(_read(remote).schema.field("email")) == "pii.email"
    back = Dataset(str(tmp_path / "back.parquet"))
    copy(remote, back)
    assert _read(back).equals(table.cast(schema))


def test_append_on_s3(s3: Any, bucket: str) -> None:
    for ext in ("parquet", "csv"):
        dataset = Dataset(f"s3://{bucket}/t.{ext}")
        _write(dataset, _table(3), mode="append")  # a missing object is created
        _write(dataset, _table(2, start=3), mode="append")
        assert [int(v) for v in _read(dataset).column("id").to_pylist()] == [0, 1, 2, 3, 4]
    with pytest.raises(DataError, match=r"cannot append: .*id is int64 there, string here"):
        _write(
            Dataset(f"s3://{bucket}/t.parquet"), pa.table({"id": ["x"], "email": ["y"]}), "append"
        )


def test_options_give_the_endpoint_and_credentials(
    bucket: str, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    options = {"endpoint_url": aws, "key": "testing", "secret": "testing", "region": "us-east-1"}
    dataset = Dataset(f"s3://{bucket}/t.parquet", options=options)
    _write(dataset, _table())
    assert _read(dataset).equals(_table())
    with pytest.raises(
        DataError, match=r"unknown option 'endpoint' for an S3 dataset; did you mean"
    ):
        _read(Dataset(f"s3://{bucket}/t.parquet", options={"endpoint": aws}))


def test_nothing_is_visible_before_commit(s3: Any, bucket: str) -> None:
    dataset = Dataset(f"s3://{bucket}/t.jsonl")
    writer = open_writer(dataset, _table().schema)
    writer.write(_table())
    assert _keys(s3, bucket) == []
    writer.commit()
    assert _keys(s3, bucket) == ["t.jsonl"]
    assert writer.commit() is writer.commit()


def _big(rows: int) -> pa.Table:
    """Rows that do not compress: about 40 bytes each in Parquet."""
    return pa.table({"noise": [secrets.token_hex(16) for _ in range(rows)]})


def test_a_failed_multipart_write_leaves_the_old_object(s3: Any, bucket: str) -> None:
    dataset = Dataset(f"s3://{bucket}/t.parquet")
    _write(dataset, _table(5))
    before = s3.get_object(Bucket=bucket, Key="t.parquet")
    old_bytes, old_etag = before["Body"].read(), before["ETag"]
    part = _big(300_000)  # about 12 MiB of Parquet: more than one upload part
    with pytest.raises(RuntimeError, match="source broke"):  # noqa: SIM117
        with open_writer(dataset, part.schema) as writer:
            while not _uploads(s3, bucket):  # parts are being uploaded...
                writer.write(part)
            raise RuntimeError("source broke")  # ...when the job fails
    assert _uploads(s3, bucket) == []  # the multipart upload was aborted
    after = s3.get_object(Bucket=bucket, Key="t.parquet")
    assert (after["Body"].read(), after["ETag"]) == (old_bytes, old_etag)
    assert _read(dataset).equals(_table(5))


def test_a_failed_write_of_a_new_object_leaves_nothing(s3: Any, bucket: str) -> None:
    with pytest.raises(RuntimeError):  # noqa: SIM117
        with open_writer(Dataset(f"s3://{bucket}/new.csv"), _table().schema) as writer:
            writer.write(_table())
            raise RuntimeError("stop")
    assert _keys(s3, bucket) == [] and _uploads(s3, bucket) == []


def test_upsert_is_refused(bucket: str) -> None:
    with pytest.raises(DataError, match=r"^s3://.*/t\.parquet: upsert needs a SQL target"):
        open_writer(
            Dataset(f"s3://{bucket}/t.parquet"), _table().schema, mode="upsert", keys=("id",)
        )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_s3_errors_are_one_line_naming_the_dataset(s3: Any, bucket: str, aws: str) -> None:
    s3.put_object(Bucket=bucket, Key="dir/part-0.csv", Body=b"a\n1\n")
    schema = _table().schema
    dead = f"http://127.0.0.1:{_closed_port()}"
    cases: list[tuple[Callable[[], object], str]] = [
        (
            lambda: open_reader(Dataset("s3://no-such-bucket-lg/t.csv")),
            r"^s3://no-such-bucket-lg/t\.csv: no such bucket 'no-such-bucket-lg' at the S3 "
            rf"endpoint {aws}; create it or fix the name$",
        ),
        (
            lambda: open_writer(Dataset("s3://no-such-bucket-lg/t.csv"), schema),
            r"^s3://no-such-bucket-lg/t\.csv: no such bucket 'no-such-bucket-lg'",
        ),
        (
            lambda: open_reader(Dataset(f"s3://{bucket}/missing.parquet")),
            rf"^s3://{bucket}/missing\.parquet: no such object: bucket '{bucket}' has no key "
            r"'missing\.parquet'$",
        ),
        (
            lambda: open_reader(Dataset(f"s3://{bucket}/dir")),
            rf"^s3://{bucket}/dir: is a folder \(other objects are under dir/\)",
        ),
        (
            lambda: open_writer(Dataset(f"s3://{bucket}/dir/"), schema, mode="overwrite"),
            rf"^s3://{bucket}/dir/: names a folder \(the key ends with /\)",
        ),
        (
            lambda: open_reader(Dataset(f"s3://{bucket}/t.csv", options={"endpoint_url": dead})),
            rf"^s3://{bucket}/t\.csv: cannot reach the S3 endpoint {dead}; check endpoint_url",
        ),
        (
            lambda: open_writer(
                Dataset(f"s3://{bucket}/t.csv", options={"endpoint_url": dead}), schema
            ),
            rf"^s3://{bucket}/t\.csv: cannot reach the S3 endpoint {dead}",
        ),
    ]
    for call, pattern in cases:
        with pytest.raises(DataError) as info:
            call()
        text = str(info.value)
        assert "\n" not in text, text
        assert re.search(pattern, text), (pattern, text)
    assert _keys(s3, bucket) == ["dir/part-0.csv"]


def test_malformed_csv_on_s3_names_the_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="bad.csv", Body=b"a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match=rf"^s3://{bucket}/bad\.csv: malformed CSV at line 3"):
        _read(Dataset(f"s3://{bucket}/bad.csv"))


@contextlib.contextmanager
def _moto_checks_credentials(aws: str) -> Iterator[None]:
    """moto checks credentials and IAM policies inside the block, then stops again."""

    def set_count(value: str) -> str:
        request = urllib.request.Request(
            f"{aws}/moto-api/reset-auth",
            data=value.encode(),
            headers={"Content-Type": "text/plain"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            return str(json.loads(reply.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])

    previous = set_count("0")
    try:
        yield
    finally:
        set_count(previous)


def test_refused_credentials(bucket: str, aws: str) -> None:
    with _moto_checks_credentials(aws):
        for call in (
            lambda: open_reader(Dataset(f"s3://{bucket}/t.csv")),
            lambda: open_writer(Dataset(f"s3://{bucket}/t.csv"), _table().schema),
        ):
            with pytest.raises(DataError) as info:
                call()
            assert str(info.value).startswith(
                f"s3://{bucket}/t.csv: the S3 endpoint {aws} refused the credentials "
                "(InvalidAccessKeyId); check the key and secret"
            ), str(info.value)


def test_put_only_credentials_write_where_allowed(s3: Any, bucket: str, aws: str) -> None:
    """A least-privilege writer (s3:PutObject on one prefix, no listing) can write there;
    elsewhere, and reading, are one-line access errors that leave nothing behind."""
    import boto3

    s3.put_object(Bucket=bucket, Key="in/old.csv", Body=b"a\n1\n")
    iam = boto3.client("iam", endpoint_url=aws, region_name="us-east-1")
    user = f"writer-{secrets.token_hex(3)}"
    iam.create_user(UserName=user)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": f"arn:aws:s3:::{bucket}/out/*",
            }
        ],
    }
    iam.put_user_policy(UserName=user, PolicyName="put-only", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    options = {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    table = _table(3)
    denied = "access denied by the S3 endpoint"
    with _moto_checks_credentials(aws):
        assert _write(Dataset(f"s3://{bucket}/out/t.csv", options=options), table).rows == 3
        with pytest.raises(DataError, match=rf"^s3://{bucket}/in/t\.csv: {denied}"):
            _write(Dataset(f"s3://{bucket}/in/t.csv", options=options), table)
        with pytest.raises(DataError, match=rf"^s3://{bucket}/in/old\.csv: {denied}"):
            open_reader(Dataset(f"s3://{bucket}/in/old.csv", options=options))
    assert sorted(_keys(s3, bucket)) == ["in/old.csv", "out/t.csv"]
    assert _read(Dataset(f"s3://{bucket}/out/t.csv")).num_rows == 3


def test_connector_module_is_the_s3_connector() -> None:
    from lockgate.io.connect import connector

    assert connector(Dataset("s3://b/k.csv")) is files
    assert connector(Dataset("/tmp/k.csv")) is files
