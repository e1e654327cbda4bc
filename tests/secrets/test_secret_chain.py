"""The secret chain with its local backends: the environment and the encrypted secrets file;
names, order, missing and malformed secrets, configuration errors, and the audit of reads."""

from __future__ import annotations

import json
import os

import pytest

from lockgate.config import Project
from lockgate.errors import ConfigError, SecretError
from lockgate.privacy.keys import Keyring, ensure_key_file, keys_file_of
from lockgate.secrets import get_secret, redaction
from lockgate.secrets.chain import build, chain_for
from lockgate.secrets.env import EnvBackend
from lockgate.secrets.localfile import SecretsFile


@pytest.fixture
def keyed(project: Project) -> Project:
    """A project with a key file (as `lockgate init` leaves it)."""
    ensure_key_file(keys_file_of(project))
    return project


def _toml(project: Project, text: str) -> Project:
    (project.root / "lockgate.toml").write_text(text)
    return Project.load(project.root)


def test_env_names_map_to_variables() -> None:
    env = EnvBackend({}, "t", environ={"LOCKGATE_SECRET_DB_MAIN_PASSWORD": "pw-value-1"})
    assert env.variable("db/main#password") == "LOCKGATE_SECRET_DB_MAIN_PASSWORD"
    assert env.variable("api.key-2") == "LOCKGATE_SECRET_API_KEY_2"
    assert env.get("db/main#password") == "pw-value-1"
    assert env.get("db/other") is None
    custom = EnvBackend({"prefix": "APP_"}, "t", environ={"APP_TOKEN": "t0ken-value"})
    assert custom.get("token") == "t0ken-value"
    with pytest.raises(ConfigError, match="prefix"):
        EnvBackend({"prefix": "1-bad"}, "t")
    with pytest.raises(ConfigError, match="unknown setting 'path'"):
        EnvBackend({"path": "x"}, "t")


def test_file_backend_round_trip_and_fields(keyed: Project) -> None:
    file = SecretsFile.of(keyed)
    assert file.write("db/main", json.dumps({"user": "etl", "password": "pw-Fi3ld"})) is False
    assert file.write("api/token", "tok-first") is False
    assert file.write("api/token", "tok-second") is True
    assert get_secret("api/token", keyed) == "tok-second"
    assert get_secret("db/main#password", keyed) == "pw-Fi3ld"
    with pytest.raises(SecretError, match="no field 'host'.*fields: password, user"):
        get_secret("db/main#host", keyed)
    with pytest.raises(SecretError, match="is not a set of fields"):
        get_secret("api/token#x", keyed)
    assert [e["name"] for e in file.names()] == ["api/token", "db/main"]
    raw = file.path.read_text()
    assert "tok-second" not in raw and "pw-Fi3ld" not in raw  # sealed
    assert os.stat(file.path).st_mode & 0o077 == 0
    assert file.remove("api/token") is True
    assert file.remove("api/token") is False
    assert chain_for(keyed).backends[1].get("api/token") is None


def test_file_refuses_moved_values_wrong_keys_and_corruption(keyed: Project) -> None:
    file = SecretsFile.of(keyed)
    file.write("a/one", "value-one")
    file.write("a/two", "value-two")
    doc = json.loads(file.path.read_text())
    doc["secrets"]["a/two"]["value"] = doc["secrets"]["a/one"]["value"]  # moved to a new name
    file.path.write_text(json.dumps(doc))
    with pytest.raises(SecretError, match="cannot be decrypted"):
        file.read("a/two")
    other = SecretsFile(file.path, keyring=Keyring.generate("k9"))
    with pytest.raises(SecretError, match="sealed with key 'k1'.*does not hold"):
        other.read("a/one")
    file.path.write_text("{not json")
    with pytest.raises(SecretError, match="corrupt"):
        file.read("a/one")
    file.path.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        file.read("a/one")


def test_file_refuses_bad_names_and_values(keyed: Project) -> None:
    file = SecretsFile.of(keyed)
    for bad in ("", "1abc", "a b", "a//b", "a/", "x" * 201, "../etc"):
        with pytest.raises(SecretError, match="invalid secret name"):
            file.write(bad, "value")
    with pytest.raises(SecretError, match="NAME#FIELD is for reading"):
        file.write("db#password", "value")
    with pytest.raises(SecretError, match="empty"):
        file.write("db/empty", "")


def test_missing_secret_names_every_backend_tried(keyed: Project, monkeypatch) -> None:
    monkeypatch.delenv("LOCKGATE_SECRET_NOPE_X", raising=False)
    with pytest.raises(SecretError) as caught:
        get_secret("nope/x", keyed)
    message = str(caught.value)
    assert "\n" not in message
    assert "$LOCKGATE_SECRET_NOPE_X" in message and "file (secrets.json)" in message
    assert "lockgate secrets set nope/x" in message


def test_empty_value_is_an_error_not_an_empty_string(keyed: Project, monkeypatch) -> None:
    monkeypatch.setenv("LOCKGATE_SECRET_BLANK", "")
    with pytest.raises(SecretError, match="is empty"):
        get_secret("blank", keyed)


def test_order_first_backend_wins_and_is_configurable(keyed: Project, monkeypatch) -> None:
    SecretsFile.of(keyed).write("shared", "from-the-file")
    monkeypatch.setenv("LOCKGATE_SECRET_SHARED", "from-the-env")
    assert get_secret("shared", keyed) == "from-the-env"
    swapped = _toml(keyed, '[secrets]\nbackends = ["file", "env"]\n')
    assert get_secret("shared", swapped) == "from-the-file"
    only_env = _toml(keyed, '[secrets]\nbackends = ["env"]\ncache_seconds = 0\n')
    monkeypatch.delenv("LOCKGATE_SECRET_SHARED")
    with pytest.raises(SecretError, match=r"looked in: env \(\$LOCKGATE_SECRET_SHARED\)\."):
        get_secret("shared", only_env)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            'backends = ["env", "vaultt"]',
            "unknown secret backend 'vaultt' in .* did you mean 'vault'",
        ),
        ('backends = "env"', "must be a non-empty list of distinct names"),
        ('backends = ["env", "env"]', "must be a non-empty list of distinct names"),
        ("backends = []", "must be a non-empty list of distinct names"),
        ("cache_seconds = -1", "cache_seconds must be a number >= 0"),
        ("backend = []", "unknown setting 'backend' in \\[secrets\\]"),
        (
            'backends = ["env"]\n[secrets.file]\npath = "x"',
            "'file' is not in \\[secrets\\] backends",
        ),
        ('[secrets.env]\nprefx = "A_"', "unknown setting 'prefx' in \\[secrets.env\\]"),
    ],
)
def test_configuration_errors(project: Project, table: str, problem: str) -> None:
    text = f"[secrets]\n{table}\n" if not table.startswith("[") else table
    configured = _toml(project, text)
    with pytest.raises(ConfigError, match=problem) as caught:
        build(configured)
    assert "lockgate.toml" in str(caught.value)


def test_values_are_cached_then_read_again(keyed: Project, monkeypatch) -> None:
    monkeypatch.setenv("LOCKGATE_SECRET_ROTATING", "value-before")
    cached = _toml(keyed, "[secrets]\ncache_seconds = 3600\n")
    chain = build(cached)
    assert chain.get("rotating") == "value-before"
    monkeypatch.setenv("LOCKGATE_SECRET_ROTATING", "value-after")
    assert chain.get("rotating") == "value-before"
    fresh = build(_toml(keyed, "[secrets]\ncache_seconds = 0\n"))
    assert fresh.get("rotating") == "value-after"


def test_reads_outside_a_task_are_audited_by_name(keyed: Project, monkeypatch) -> None:
    from lockgate import api

    store = api.open_store(keyed)  # the project has a store: reads go to its audit chain
    monkeypatch.setenv("LOCKGATE_SECRET_AUDITED", "audited-value-7")
    assert get_secret("audited", keyed) == "audited-value-7"
    records = [r for r in store.audit_records(limit=50) if r.action == "secret.read"]
    assert records and records[-1].target == "audited"
    assert json.loads(records[-1].detail) == {"name": "audited", "source": "env"}
    assert "audited-value-7" not in json.dumps([r.detail for r in records])
    store.close()


def test_values_read_are_redacted_afterwards(keyed: Project, monkeypatch) -> None:
    monkeypatch.setenv("LOCKGATE_SECRET_LATER", "later-Redacted-9")
    assert redaction.redact("x later-Redacted-9 y") == "x later-Redacted-9 y"
    get_secret("later", keyed)
    assert redaction.redact("x later-Redacted-9 y") == "x *** y"
