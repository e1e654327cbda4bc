"""Fixtures of the privacy tests: a keyring with its key file in a temporary folder, and a
moto server (AWS KMS) on 127.0.0.1 for the tests of KMS-wrapped keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lockgate.privacy.keys import ENV_VAR, Keyring, create_key_file

AWS_REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _no_keys_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys come only from what a test sets up, never from the developer's environment."""
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """Where the test's key file lives (not created)."""
    return tmp_path / ".lockgate" / "keys.json"


@pytest.fixture
def keyring(key_file: Path) -> Keyring:
    """A keyring with one key, `k1`, saved in a key file in the test's temporary folder."""
    return create_key_file(key_file)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server in server mode on 127.0.0.1 (a free port), for the whole session: its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake AWS credentials and the moto endpoint in the environment (for this test only);
    returns the endpoint URL."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_KMS", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return moto_server


@pytest.fixture
def kms_key(aws: str) -> Callable[[], str]:
    """Makes a new symmetric key in the moto KMS and returns its ARN."""
    import boto3

    def make() -> str:
        client = boto3.client("kms", region_name=AWS_REGION, endpoint_url=aws)
        return str(client.create_key(Description="lockgate test")["KeyMetadata"]["Arn"])

    return make
