"""Fixtures of the privacy tests: a keyring with its key file in a temporary folder, and keys
in the moto KMS (the server and `aws` fixtures are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lockgate.privacy.keys import ENV_VAR, Keyring, create_key_file

AWS_REGION = "us-east-1"  # as the aws fixture of tests/conftest.py sets it


@pytest.fixture(autouse=True)
def _no_keys_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys come only from what a test sets up, never from the developer's environment."""
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture(autouse=True)
def _own_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Masked writes outside a run ask the working folder's project for the data's origins:
    each test works in a fresh folder of its own, never the repository (whose `make demo`
    state may be of another schema revision)."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """Where the test's key file lives (not created)."""
    return tmp_path / ".lockgate" / "keys.json"


@pytest.fixture
def keyring(key_file: Path) -> Keyring:
    """A keyring with one key, `k1`, saved in a key file in the test's temporary folder."""
    return create_key_file(key_file)


@pytest.fixture
def kms_key(aws: str) -> Callable[[], str]:
    """Makes a new symmetric key in the moto KMS and returns its ARN."""
    import boto3

    def make() -> str:
        client = boto3.client("kms", region_name=AWS_REGION, endpoint_url=aws)
        return str(client.create_key(Description="lockgate test")["KeyMetadata"]["Arn"])

    return make
