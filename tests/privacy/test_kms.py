"""Keys wrapped by AWS KMS, against a moto server on 127.0.0.1: generated with GenerateDataKey,
stored wrapped, unwrapped with Decrypt, bound to their key id."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from lockgate.errors import KeyringError
from lockgate.privacy.keys import Keyring, create_key_file
from lockgate.privacy.kms import Kms
from lockgate.privacy.transforms import apply

from .conftest import AWS_REGION


def test_kms_key_file_holds_only_wrapped_keys(key_file: Path, kms_key: Callable[[], str]) -> None:
    arn = kms_key()
    keyring = create_key_file(key_file, kms_key_id=arn)
    doc = json.loads(key_file.read_text())
    assert doc["kms"] == {"key_id": arn}
    (entry,) = doc["keys"]
    assert entry["id"] == "k1" and entry["kms_key_id"] == arn
    assert "key" not in entry
    material = keyring._material("k1")
    assert len(material) == 32
    assert base64.b64encode(material).decode() not in key_file.read_text()
    assert [(i.id, i.source, i.kms_key_id) for i in keyring.describe()] == [("k1", "kms", arn)]


def test_wrapped_keys_are_unwrapped_by_kms_on_load(
    key_file: Path, kms_key: Callable[[], str]
) -> None:
    keyring = create_key_file(key_file, kms_key_id=kms_key())
    loaded = Keyring.load(key_file)
    assert loaded.key_for("tokenize") == keyring.key_for("tokenize")
    values = apply("tokenize", _emails(), keyring=keyring)
    assert apply("tokenize", _emails(), keyring=loaded).equals(values)


def test_rotation_generates_a_new_kms_data_key(key_file: Path, kms_key: Callable[[], str]) -> None:
    keyring = create_key_file(key_file, kms_key_id=kms_key())
    encrypted = apply("encrypt", _emails(), keyring=keyring, column="email")
    assert keyring.rotate() == "k2"
    doc = json.loads(key_file.read_text())
    assert [e["id"] for e in doc["keys"]] == ["k1", "k2"] and doc["current"] == "k2"
    assert all("key" not in e and e["wrapped"] for e in doc["keys"])
    loaded = Keyring.load(key_file)
    assert loaded.current == "k2"
    assert apply("decrypt", encrypted, keyring=loaded, column="email").equals(_emails())
    assert loaded.key_for("fpe") != loaded.key_for("fpe", "k1")


def test_a_wrapped_key_moved_to_another_id_does_not_unwrap(
    key_file: Path, kms_key: Callable[[], str]
) -> None:
    keyring = create_key_file(key_file, kms_key_id=kms_key())
    keyring.rotate()
    doc = json.loads(key_file.read_text())
    doc["keys"][0]["wrapped"], doc["keys"][1]["wrapped"] = (
        doc["keys"][1]["wrapped"],
        doc["keys"][0]["wrapped"],
    )
    key_file.write_text(json.dumps(doc))
    loaded = Keyring.load(key_file)
    with pytest.raises(KeyringError, match="AWS KMS could not unwrap key 'k2'"):
        loaded.key_for("encrypt")


def test_unknown_kms_key_is_a_keyring_error(key_file: Path, aws: str) -> None:
    missing = f"arn:aws:kms:{AWS_REGION}:123456789012:key/00000000-0000-0000-0000-000000000000"
    with pytest.raises(KeyringError, match="AWS KMS could not generate a data key"):
        create_key_file(key_file, kms_key_id=missing)
    assert not key_file.exists()


def test_endpoint_can_be_given_instead_of_aws_endpoint_url(
    key_file: Path, kms_key: Callable[[], str], aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = kms_key()
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # the ARN names the region
    kms = Kms(endpoint_url=aws)
    keyring = create_key_file(key_file, kms_key_id=arn, kms=kms)
    loaded = Keyring.load(key_file, kms=Kms(endpoint_url=aws))
    assert loaded.key_for("hash") == keyring.key_for("hash")
    assert "testing" not in repr(kms)


def _emails() -> pa.Array:
    return pa.array(["ada@example.com", None, "", "grace@example.org"])
