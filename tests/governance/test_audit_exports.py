"""Checkpoint exports to a folder and to S3 (moto on 127.0.0.1): one file per checkpoint, each
exported once, never replaced by other content, read back to verify the chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockgate.errors import DataError, StoreError
from lockgate.governance.audit import export_checkpoints, file_name, load_exported

from .audit_support import chain_store


def test_checkpoints_go_to_s3_and_come_back(tmp_path: Path, aws: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=aws).create_bucket(Bucket="audit-bucket")
    store = chain_store(f"sqlite:///{tmp_path / 'meta.db'}", records=25, every=10)
    try:
        where = "s3://audit-bucket/lockgate/prod"
        written = export_checkpoints(store, where)
        assert [cp.seq for cp in written] == [10, 20]
        assert {cp.exported_to for cp in store.audit_checkpoints()} == {where}
        listed = boto3.client("s3", endpoint_url=aws).list_objects_v2(
            Bucket="audit-bucket", Prefix="lockgate/prod/"
        )
        keys = sorted(o["Key"] for o in listed["Contents"])
        assert keys == [f"lockgate/prod/{file_name(10)}", f"lockgate/prod/{file_name(20)}"]
        back = load_exported(where)
        assert [(cp.seq, cp.hash) for cp in back] == [(c.seq, c.hash) for c in written]
        assert back[0].exported_to == f"{where}/{file_name(10)}"
        assert store.audit_verify(back).ok
        assert export_checkpoints(store, where) == []  # nothing new
        # a checkpoint file someone altered in the bucket no longer verifies
        body = json.loads(
            boto3.client("s3", endpoint_url=aws)
            .get_object(Bucket="audit-bucket", Key=f"lockgate/prod/{file_name(20)}")["Body"]
            .read()
        )
        body["hash"] = "f" * 64
        boto3.client("s3", endpoint_url=aws).put_object(
            Bucket="audit-bucket", Key=f"lockgate/prod/{file_name(20)}", Body=json.dumps(body)
        )
        found = store.audit_verify(load_exported(where))
        assert (found.ok, found.seq, found.problem) == (False, 20, "checkpoint")
    finally:
        store.close()


def test_an_exported_file_is_never_replaced_by_other_content(tmp_path: Path) -> None:
    store = chain_store(f"sqlite:///{tmp_path / 'meta.db'}", records=10, every=10)
    try:
        folder = tmp_path / "out"
        (folder).mkdir()
        (folder / file_name(10)).write_text("{}")
        with pytest.raises(DataError) as exc:
            export_checkpoints(store, str(folder))
        assert "exists with other content; an exported checkpoint is never replaced" in str(
            exc.value
        )
        assert store.audit_checkpoints()[0].exported_to is None  # not marked: not exported
        with pytest.raises(StoreError, match="is not an audit checkpoint"):
            load_exported(str(folder))
    finally:
        store.close()


def test_a_missing_bucket_is_one_line(tmp_path: Path, aws: str) -> None:
    store = chain_store(f"sqlite:///{tmp_path / 'meta.db'}", records=10, every=10)
    try:
        with pytest.raises(DataError) as exc:
            export_checkpoints(store, "s3://no-such-bucket/x")
        assert "\n" not in str(exc.value) and "no-such-bucket" in str(exc.value)
    finally:
        store.close()
