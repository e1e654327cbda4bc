"""The keyring: derived keys, the key file (permissions, atomic creation, rotation), the
LOCKGATE_KEYS variable, the project's key file, and keys never showing in reprs or errors."""

from __future__ import annotations

import base64
import json
import os
import pickle
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lockgate.config import Project
from lockgate.errors import KeyringError
from lockgate.privacy.keys import (
    ENV_VAR,
    Keyring,
    create_key_file,
    ensure_key_file,
    keys_file_of,
    parse_env_keys,
)

MASTER = bytes(range(32))
OTHER = bytes(range(100, 132))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def secrets_of(keyring: Keyring) -> list[bytes]:
    """Every master key of the keyring, as bytes, base64 and hex (what must never show)."""
    found: list[bytes] = []
    for key_id in keyring.ids:
        material = keyring._material(key_id)
        found += [material, b64(material).encode(), material.hex().encode()]
    return found


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- derived keys -------------------------------------------------------------------------------


def test_derived_keys_are_hkdf_sha256_of_the_master_key() -> None:
    keyring = Keyring.from_keys({"k1": MASTER})
    expected = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"lockgate keyring v1",
        info=b"lockgate/v1/tokenize",
    ).derive(MASTER)
    assert keyring.key_for("tokenize") == ("k1", expected)


def test_each_purpose_and_each_key_id_gets_its_own_key() -> None:
    keyring = Keyring.from_keys({"k1": MASTER, "k2": OTHER})
    purposes = ["tokenize", "hash", "fpe", "encrypt", "fake"]
    keys = {keyring.key_for(p, k)[1] for p in purposes for k in ("k1", "k2")}
    assert len(keys) == 10
    assert all(len(key) == 32 for key in keys)
    assert MASTER not in keys and OTHER not in keys
    assert keyring.key_for("hash") == keyring.key_for("hash", "k2")  # k2 is current


def test_unknown_key_id_lists_the_ids_held() -> None:
    keyring = Keyring.from_keys({"k1": MASTER, "k2": OTHER})
    with pytest.raises(KeyringError, match=r"no key with id 'k9' in the keyring; it holds k1, k2"):
        keyring.key_for("tokenize", "k9")


def test_keys_never_show_in_repr_str_or_describe() -> None:
    keyring = Keyring.from_keys({"k1": MASTER, "k2": OTHER})
    shown = f"{keyring!r} {keyring} {keyring.describe()!r} {vars(keyring)['_entries']!r}"
    assert repr(keyring) == "Keyring(ids=['k1', 'k2'], current='k2')"
    for secret in secrets_of(keyring):
        assert secret.decode("latin-1") not in shown


def test_a_pickled_keyring_keeps_its_keys_in_memory_only(key_file: Path) -> None:
    keyring = create_key_file(key_file)
    copy = pickle.loads(pickle.dumps(keyring))
    assert copy.key_for("tokenize") == keyring.key_for("tokenize")
    assert copy.path is None  # rotating the copy cannot rewrite the file


def test_short_keys_are_refused() -> None:
    with pytest.raises(KeyringError, match="keys need at least 16 random bytes"):
        Keyring.from_keys({"k1": b"short"})


def test_invalid_key_ids_are_refused_without_echoing_them() -> None:
    with pytest.raises(KeyringError) as caught:
        Keyring.from_keys({"a key/with+slashes==": MASTER})
    assert "slashes" not in str(caught.value)


# -- the key file -------------------------------------------------------------------------------


def test_key_file_is_created_owner_only_with_one_key(key_file: Path) -> None:
    keyring = create_key_file(key_file)
    assert mode_of(key_file) == 0o600
    doc = json.loads(key_file.read_text())
    assert doc["version"] == 1 and doc["current"] == "k1"
    assert [entry["id"] for entry in doc["keys"]] == ["k1"]
    assert len(base64.b64decode(doc["keys"][0]["key"])) == 32
    assert keyring.ids == ("k1",) and keyring.current == "k1"
    assert [p.name for p in key_file.parent.iterdir()] == ["keys.json"]  # no temporary left


def test_key_file_is_owner_only_even_with_a_permissive_umask(key_file: Path) -> None:
    old = os.umask(0)
    try:
        create_key_file(key_file)
    finally:
        os.umask(old)
    assert mode_of(key_file) == 0o600


def test_an_existing_key_file_is_never_overwritten(key_file: Path) -> None:
    create_key_file(key_file)
    before = key_file.read_bytes()
    with pytest.raises(KeyringError, match="already exists; it was not changed"):
        create_key_file(key_file)
    assert key_file.read_bytes() == before
    assert ensure_key_file(key_file) is False
    assert key_file.read_bytes() == before


def test_ensure_key_file_creates_it_once(tmp_path: Path) -> None:
    path = tmp_path / "state" / "keys.json"
    assert ensure_key_file(path) is True
    assert ensure_key_file(path) is False
    assert Keyring.load(path).ids == ("k1",)


def test_a_fresh_load_gives_the_same_keys(keyring: Keyring, key_file: Path) -> None:
    again = Keyring.load(key_file)
    assert again.key_for("tokenize") == keyring.key_for("tokenize")
    assert again.path == key_file


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_key_file_open_to_group_or_others_is_refused(key_file: Path, mode: int) -> None:
    create_key_file(key_file)
    key_file.chmod(mode)
    with pytest.raises(KeyringError) as caught:
        Keyring.load(key_file)
    message = str(caught.value)
    assert f"run `chmod 600 {key_file}`" in message
    assert "\n" not in message


def test_missing_key_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(
        KeyringError, match=r"no key file at .*; run `lockgate init`.*LOCKGATE_KEYS"
    ):
        Keyring.load(tmp_path / "keys.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"version": 1}', "has no 'keys' list"),
        ('{"version": 7, "keys": []}', "has version 7"),
        ('{"keys": [{"key": "AAAA"}]}', "entry 1 has no 'id'"),
        ('{"keys": [{"id": "k1"}]}', "has neither 'key' nor 'wrapped'"),
        ('{"keys": [{"id": "k1", "key": "%%%"}]}', "'key' is not valid base64"),
        ('{"keys": [{"id": "k1", "wrapped": "AAAA"}]}', "has 'wrapped' but no 'kms_key_id'"),
        ('{"keys": [{"id": "k1", "key": "' + b64(MASTER) + '"}], "current": "k2"}', "'k2'"),
    ],
)
def test_broken_key_files_are_named_errors(key_file: Path, content: str, message: str) -> None:
    key_file.parent.mkdir(parents=True)
    key_file.write_text(content)
    key_file.chmod(0o600)
    with pytest.raises(KeyringError, match=message):
        Keyring.load(key_file)


def test_rotation_adds_a_current_key_and_keeps_the_old_ones(
    keyring: Keyring, key_file: Path
) -> None:
    old = keyring.key_for("encrypt")
    assert keyring.rotate() == "k2"
    assert keyring.current == "k2" and keyring.ids == ("k1", "k2")
    assert keyring.key_for("encrypt", "k1") == old
    assert keyring.key_for("encrypt")[1] != old[1]
    reloaded = Keyring.load(key_file)
    assert reloaded.current == "k2"
    assert reloaded.key_for("encrypt", "k1") == old
    assert reloaded.key_for("encrypt") == keyring.key_for("encrypt")
    assert mode_of(key_file) == 0o600
    assert reloaded.rotate("2025-q1") == "2025-q1"
    assert Keyring.load(key_file).ids == ("k1", "k2", "2025-q1")
    with pytest.raises(KeyringError, match="already holds a key with id 'k1'"):
        reloaded.rotate("k1")


def test_a_keyring_in_memory_rotates_in_memory() -> None:
    keyring = Keyring.generate()
    assert keyring.rotate() == "k2"
    assert keyring.path is None and keyring.ids == ("k1", "k2")


def test_describe_lists_ids_sources_and_the_current_key(keyring: Keyring) -> None:
    keyring.rotate()
    info = keyring.describe()
    assert [(i.id, i.source, i.current) for i in info] == [
        ("k1", "file", False),
        ("k2", "file", True),
    ]
    assert all(i.created and i.created.endswith("Z") for i in info)


# -- the environment variable -------------------------------------------------------------------


def test_env_keys_format_and_the_last_is_current() -> None:
    keyring = Keyring.from_env(f"old:{b64(MASTER)}, new:{base64.urlsafe_b64encode(OTHER).decode()}")
    assert keyring.ids == ("old", "new") and keyring.current == "new"
    assert keyring.key_for("hash", "old") == Keyring.from_keys({"old": MASTER}).key_for("hash")


def test_env_keys_add_to_and_override_the_key_file(keyring: Keyring, key_file: Path) -> None:
    environ = {ENV_VAR: f"k1:{b64(MASTER)},k7:{b64(OTHER)}"}
    merged = Keyring.load(key_file, environ=environ)
    assert merged.ids == ("k1", "k7") and merged.current == "k7"
    assert merged.key_for("hash", "k1") == Keyring.from_keys({"k1": MASTER}).key_for("hash")
    assert merged.key_for("hash", "k1") != keyring.key_for("hash", "k1")
    assert [i.source for i in merged.describe()] == ["env", "env"]
    with pytest.raises(KeyringError, match=f"rotate by appending a new id:key entry to {ENV_VAR}"):
        merged.rotate()


def test_env_keys_alone_need_no_key_file(tmp_path: Path) -> None:
    keyring = Keyring.load(tmp_path / "missing.json", environ={ENV_VAR: f"k1:{b64(MASTER)}"})
    assert keyring.ids == ("k1",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b64(MASTER), "entry 1 is not of the form id:base64key"),
        (f"k1:{b64(MASTER)},k2:", "entry 2 is not of the form id:base64key"),
        ("k1:not*base64", "entry 1 is not valid base64"),
        (f"k1:{b64(b'0123456789')}", "entry 1 is 10 bytes long"),
        (f"{b64(MASTER)}:k1", "entry 1 has an invalid id"),
    ],
)
def test_bad_env_keys_are_named_without_their_value(value: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message) as caught:
        parse_env_keys(value)
    assert b64(MASTER) not in str(caught.value)
    assert "0123456789" not in str(caught.value)


# -- the project ---------------------------------------------------------------------------------


def test_project_keyring_uses_the_keys_file_setting(tmp_path: Path) -> None:
    (tmp_path / "lockgate.toml").write_text('[lockgate]\nkeys_file = "secrets/keys.json"\n')
    project = Project.load(tmp_path)
    assert keys_file_of(project) == tmp_path / "secrets" / "keys.json"
    create_key_file(keys_file_of(project))
    assert Keyring.for_project(project).path == tmp_path / "secrets" / "keys.json"


def test_project_keyring_defaults_to_the_state_folder(tmp_path: Path) -> None:
    project = Project.load(tmp_path)
    assert keys_file_of(project) == tmp_path / ".lockgate" / "keys.json"
    with pytest.raises(KeyringError, match="run `lockgate init`"):
        Keyring.for_project(project)
    ensure_key_file(keys_file_of(project))
    assert Keyring.for_project(project).current == "k1"


def test_subkeys_are_rfc5869_hkdf_as_cryptography_derives_them() -> None:
    import os

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from lockgate.privacy.keys import hkdf_sha256

    for _ in range(20):
        master, info = os.urandom(32), b"lockgate/v1/" + os.urandom(4).hex().encode()
        expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"s", info=info).derive(master)
        assert hkdf_sha256(master, b"s", info) == expected
