"""The project's encrypted secrets file (`lockgate secrets set/get/list/rm`).

`.lockgate/secrets.json` (setting `path` of `[secrets.file]`) holds one entry per secret:
the value sealed with AES-256-GCM under the keyring's `secrets` subkey, the secret's name and
the key id authenticated with it (a value moved to another name does not decrypt), and when it
was last set. Names and dates can be listed without the key; values never leave it in clear.
The file is written atomically, readable by its owner only, under a lock for concurrent writers.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.errors import KeyringError, SecretError
from lockgate.secrets.base import SecretBackend, check_name, field_of, split_field, text_value

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.privacy.keys import Keyring

PURPOSE = "secrets"
"""The keyring purpose whose HKDF subkey seals the file's values."""
PREFIX = "lgsec:v1"
DEFAULT_PATH = ".lockgate/secrets.json"
MAX_VALUE_BYTES = 64 << 10


def _associated(name: str, key_id: str) -> bytes:
    return f"{PREFIX}:{key_id}:{name}".encode()


class SecretsFile:
    """Read and change the sealed secrets of one file."""

    def __init__(
        self, path: Path, project: Project | None = None, keyring: Keyring | None = None
    ) -> None:
        self.path = path
        self._project = project
        self._keyring = keyring

    @classmethod
    def of(cls, project: Project, settings: Mapping[str, Any] | None = None) -> SecretsFile:
        """The project's file (`path` of `[secrets.file]`, relative to the project root)."""
        table = settings if settings is not None else _file_table(project)
        return cls(project.root / str(table.get("path", DEFAULT_PATH)), project)

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            from lockgate.privacy.keys import Keyring

            if self._project is None:
                raise SecretError(f"the secrets file {self.path} needs a keyring")
            try:
                self._keyring = Keyring.for_project(self._project)
            except KeyringError as exc:
                raise SecretError(
                    f"the secrets file {self.path} needs the project's keys: {exc}"
                ) from None
        return self._keyring

    # -- reading ------------------------------------------------------------------------------
    def _entries(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretError(f"cannot read the secrets file {self.path}: {exc.strerror}") from None
        if os.name == "posix" and self.path.stat().st_mode & 0o077:
            raise SecretError(
                f"the secrets file {self.path} is open to group or others; run `chmod 600 {self.path}`"
            )
        try:
            doc = json.loads(raw)
            entries = doc["secrets"]
            if not isinstance(entries, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("value"), str) for v in entries.values()
            ):
                raise ValueError
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise SecretError(
                f"the secrets file {self.path} is corrupt (not the JSON lockgate writes); "
                "restore it from a backup or remove it and set the secrets again"
            ) from None
        return entries

    def names(self) -> list[dict[str, Any]]:
        """`[{"name", "updated_at", "key_id"}]`, sorted by name: no value, no key needed."""
        out = []
        for name, entry in sorted(self._entries().items()):
            parts = entry["value"].split(":")
            out.append(
                {
                    "name": name,
                    "updated_at": entry.get("updated_at"),
                    "key_id": parts[2] if len(parts) == 4 else None,
                }
            )
        return out

    def read(self, name: str) -> str | None:
        """The value of `name` (decrypted), or None when the file does not hold it."""
        path, fld = split_field(name)
        entry = self._entries().get(path)
        if entry is None:
            return None
        value = self._unseal(path, entry["value"])
        if fld is None:
            return value
        try:
            doc = json.loads(value)
        except ValueError:
            doc = None
        return field_of(doc, name, fld, f"the secrets file {self.path}", None)

    def _unseal(self, name: str, text: str) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        parts = text.split(":")
        if len(parts) != 4 or ":".join(parts[:2]) != PREFIX:
            raise SecretError(f"secret {name!r} in {self.path} is corrupt; set it again")
        key_id = parts[2]
        keyring = self.keyring
        if key_id not in keyring:
            raise SecretError(
                f"secret {name!r} in {self.path} was sealed with key {key_id!r}, which the "
                f"project's keyring does not hold ({', '.join(keyring.ids)}); set it again"
            )
        try:
            raw = base64.b64decode(parts[3], validate=True)
            _, key = keyring.key_for(PURPOSE, key_id)
            plain = AESGCM(key).decrypt(raw[:12], raw[12:], _associated(name, key_id))
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretError(
                f"secret {name!r} in {self.path} cannot be decrypted with key {key_id!r} "
                "(wrong key or altered file); set it again"
            ) from None
        return text_value(plain, name, f"the secrets file {self.path}")

    # -- changing -----------------------------------------------------------------------------
    def write(self, name: str, value: str) -> bool:
        """Seal and store `value` as `name`; True when it replaced an older value."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        check_name(name)
        if "#" in name:
            raise SecretError(
                f"cannot set {name!r}: set the whole secret (a JSON object) under "
                f"{split_field(name)[0]!r}; NAME#FIELD is for reading one of its fields"
            )
        text_value(value, name, "what was given")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise SecretError(
                f"secret {name!r} is over {MAX_VALUE_BYTES >> 10} KiB; keep files elsewhere"
            )
        key_id, key = self.keyring.key_for(PURPOSE)
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, value.encode(), _associated(name, key_id))
        text = f"{PREFIX}:{key_id}:{base64.b64encode(nonce + sealed).decode()}"
        with self._locked():
            entries = self._entries()
            existed = name in entries
            entries[name] = {"value": text, "updated_at": time.time()}
            self._save(entries)
        return existed

    def remove(self, name: str) -> bool:
        """Forget `name`; False when the file did not hold it."""
        check_name(name)
        with self._locked():
            entries = self._entries()
            if entries.pop(name, None) is None:
                return False
            self._save(entries)
        return True

    def _save(self, entries: dict[str, dict[str, Any]]) -> None:
        from lockgate.privacy.keys import write_private

        doc = {"format": PREFIX, "secrets": dict(sorted(entries.items()))}
        try:
            write_private(self.path, json.dumps(doc, indent=1) + "\n", replace=True)
        except OSError as exc:
            raise SecretError(
                f"cannot write the secrets file {self.path}: {exc.strerror}; nothing was changed"
            ) from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _file_table(project: Project) -> Mapping[str, Any]:
    table = project.tables.get("secrets", {}).get("file", {})
    return table if isinstance(table, Mapping) else {}


class FileBackend(SecretBackend):
    """The chain's view of the project's secrets file."""

    kind = "file"
    settings_keys = frozenset({"path"})

    def __init__(self, settings: Mapping[str, Any], where: str, project: Project) -> None:
        super().__init__(settings, where)
        self.file = SecretsFile.of(project, settings)

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], where: str, project: Project
    ) -> SecretBackend:
        return cls(settings, where, project)

    def get(self, name: str) -> str | None:
        return self.file.read(name)

    def describe(self) -> str:
        return f"file ({self.file.path.name})"
