"""The keyring: master keys by id, one of them current, and the subkeys derived from them.

Every keyed transform asks for a key for its purpose (`tokenize`, `hash`, `fpe`, `encrypt`,
`fake`); the keyring derives it from the master key with HKDF-SHA256, so no two purposes ever
share a key and a master key is never used directly. `rotate()` adds a new current key: new
writes use it, and the old ids stay so that values encrypted with them still decrypt. Rotating
changes tokens, hashes, fakes and FPE output too: pin a key id (the `key` option of those
transforms) wherever values must keep matching across time.

Where keys come from, later sources overriding earlier ones:

1. The key file, JSON, `.lockgate/keys.json` under the project root by default (the `keys_file`
   setting), written with owner-only permissions (0600) by `lockgate init`. A key file that
   group or others can read is refused. An entry holds either the key itself (`key`, base64) or
   a data key wrapped by AWS KMS (`kms_key_id`, `wrapped`), unwrapped with KMS Decrypt when first
   used; a file with a `kms` section makes its new keys with KMS GenerateDataKey.
2. The environment variable `LOCKGATE_KEYS`: `id:base64key,id:base64key,...` (16 bytes or more
   each, e.g. `k1:$(head -c32 /dev/urandom | base64)`); its entries add to the file's (replacing
   an entry with the same id) and its last entry is the current key.

Key material never appears in a repr, an error, a log line or a result: only key ids do.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.errors import KeyringError

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.privacy.kms import Kms

ENV_VAR = "LOCKGATE_KEYS"
"""`id:base64key,id:base64key`: keys added to (or replacing) the key file's; the last is current."""

DEFAULT_KEYS_FILE = ".lockgate/keys.json"
FILE_VERSION = 1
MASTER_KEY_BYTES = 32
MIN_KEY_BYTES = 16
SUBKEY_BYTES = 32
"""Derived keys are AES-256 keys."""

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_SALT = b"lockgate keyring v1"


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: its id and where it comes from, never its material."""

    id: str
    source: str
    """`file`, `kms` (a KMS-wrapped entry of the key file), `env` or `memory`."""
    current: bool
    created: str | None = None
    kms_key_id: str | None = None


@dataclass
class _Entry:
    """One master key; `material` is None until a KMS-wrapped key is unwrapped."""

    id: str
    source: str
    material: bytes | None = field(default=None, repr=False)
    created: str | None = None
    kms_key_id: str | None = None
    kms_region: str | None = None
    wrapped: bytes | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id}
        if self.created:
            doc["created"] = self.created
        if self.wrapped is not None:
            doc["kms_key_id"] = self.kms_key_id
            if self.kms_region:
                doc["kms_region"] = self.kms_region
            doc["wrapped"] = base64.b64encode(self.wrapped).decode()
        else:
            assert self.material is not None
            doc["key"] = base64.b64encode(self.material).decode()
        return doc


class Keyring:
    """Master keys by id with one current key; hands out purpose-specific derived keys."""

    def __init__(
        self,
        entries: Iterable[_Entry] = (),
        current: str | None = None,
        *,
        path: Path | None = None,
        kms_settings: Mapping[str, str] | None = None,
        kms: Kms | None = None,
    ) -> None:
        self._entries: dict[str, _Entry] = {}
        for entry in entries:
            self._entries[entry.id] = entry
        if not self._entries:
            raise KeyringError("the keyring holds no key; run `lockgate init` or set LOCKGATE_KEYS")
        self._current = current if current is not None else next(reversed(self._entries))
        if self._current not in self._entries:
            raise KeyringError(
                f"the current key id {self._current!r} is not among the keys ({', '.join(self._entries)})"
            )
        self.path = path
        self._kms_settings = dict(kms_settings or {})
        self._kms = kms
        self._derived: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def generate(cls, key_id: str = "k1") -> Keyring:
        """A keyring in memory with one fresh random key (nothing written anywhere)."""
        return cls([_Entry(_valid_id(key_id), "memory", secrets.token_bytes(MASTER_KEY_BYTES))])

    @classmethod
    def from_keys(cls, keys: Mapping[str, bytes], current: str | None = None) -> Keyring:
        """A keyring in memory from master keys by id; the last one is current unless named."""
        return cls(
            [
                _Entry(_valid_id(k), "memory", _valid_material(v, f"key {k!r}"))
                for k, v in keys.items()
            ],
            current,
        )

    @classmethod
    def from_env(cls, value: str) -> Keyring:
        """A keyring from a `LOCKGATE_KEYS` value alone."""
        entries = parse_env_keys(value)
        return cls(entries, entries[-1].id if entries else None)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None,
        *,
        environ: Mapping[str, str] | None = None,
        kms: Kms | None = None,
    ) -> Keyring:
        """The keys of the key file at `path` plus those of `LOCKGATE_KEYS` (in `environ`,
        default `os.environ`). A missing file is fine when the variable holds keys."""
        env = os.environ if environ is None else environ
        env_entries = parse_env_keys(env.get(ENV_VAR, ""))
        file = Path(path) if path is not None else None
        entries: list[_Entry] = []
        current: str | None = None
        kms_settings: dict[str, str] = {}
        if file is not None and file.exists():
            doc = _read_private(file)
            entries, current, kms_settings = _parse_file(doc, file)
        elif not env_entries:
            where = f"no key file at {file}" if file is not None else "no key file"
            raise KeyringError(f"{where}; run `lockgate init` to create one, or set {ENV_VAR}")
        if env_entries:
            by_id = {e.id: e for e in entries}
            by_id.update({e.id: e for e in env_entries})
            entries = list(by_id.values())
            current = env_entries[-1].id
        return cls(entries, current, path=file, kms_settings=kms_settings, kms=kms)

    @classmethod
    def for_project(
        cls,
        project: Project,
        *,
        environ: Mapping[str, str] | None = None,
        kms: Kms | None = None,
        create: bool = False,
    ) -> Keyring:
        """The project's keyring: its key file (setting `keys_file`) and `LOCKGATE_KEYS`.
        `create`: make the key file as `lockgate init` does when it does not exist and
        `LOCKGATE_KEYS` is not set (what the audit chain needs on a project's first run)."""
        env = os.environ if environ is None else environ
        if create and not env.get(ENV_VAR):
            ensure_key_file(keys_file_of(project))
        return cls.load(keys_file_of(project), environ=environ, kms=kms)

    # -- use ------------------------------------------------------------------------------------

    @property
    def current(self) -> str:
        """The id of the key new writes use."""
        return self._current

    @property
    def ids(self) -> tuple[str, ...]:
        """Every key id, oldest first."""
        return tuple(self._entries)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Keyring(ids={list(self._entries)!r}, current={self._current!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # pickled for process executors: material travels, but only as the unwrapped bytes
        entries = [
            _Entry(e.id, e.source, self._material(e.id), e.created, e.kms_key_id)
            for e in self._entries.values()
        ]
        return (_rebuild, (entries, self._current))

    def describe(self) -> list[KeyInfo]:
        """Every key's id, source and creation time (for `lockgate keys list`)."""
        return [
            KeyInfo(e.id, e.source, e.id == self._current, e.created, e.kms_key_id)
            for e in self._entries.values()
        ]

    def key_for(self, purpose: str, key_id: str | None = None) -> tuple[str, bytes]:
        """`(key id, 32-byte key)` for `purpose`, derived from master key `key_id` (default:
        the current key). Different purposes always get different keys."""
        if not purpose:
            raise ValueError("a key purpose is required")
        kid = self._current if key_id is None else key_id
        cached = self._derived.get((purpose, kid))
        if cached is not None:
            return kid, cached
        derived = hkdf_sha256(self._material(kid), _SALT, b"lockgate/v1/" + purpose.encode())
        self._derived[(purpose, kid)] = derived
        return kid, derived

    def check_id(self, key_id: str) -> str:
        """`key_id` if the keyring holds it, else a KeyringError listing the ids it holds."""
        if key_id not in self._entries:
            raise KeyringError(
                f"no key with id {key_id!r} in the keyring; it holds {', '.join(self._entries)}"
            )
        return key_id

    def rotate(self, key_id: str | None = None) -> str:
        """Add a new key and make it current; saved to the key file when there is one.

        Old keys stay, so values encrypted with them still decrypt. Returns the new id.
        """
        if any(e.source == "env" for e in self._entries.values()):
            raise KeyringError(
                f"keys come from {ENV_VAR}, which decides the current key; rotate by appending "
                f"a new id:key entry to {ENV_VAR}"
            )
        new_id = _valid_id(key_id) if key_id else self._next_id()
        if new_id in self._entries:
            raise KeyringError(f"the keyring already holds a key with id {new_id!r}")
        entry = _new_entry(new_id, self._kms_settings, self._kms_client(), memory=self.path is None)
        entries = {**self._entries, new_id: entry}
        if self.path is not None:
            _write_key_file(self.path, entries.values(), new_id, self._kms_settings, replace=True)
        self._entries = entries
        self._current = new_id
        return new_id

    # -- internals ------------------------------------------------------------------------------

    def _next_id(self) -> str:
        numbers = [int(k[1:]) for k in self._entries if re.fullmatch(r"k\d+", k)]
        return f"k{max(numbers, default=0) + 1}"

    def _kms_client(self) -> Kms | None:
        if self._kms is None and (
            self._kms_settings or any(e.wrapped is not None for e in self._entries.values())
        ):
            from lockgate.privacy.kms import Kms

            self._kms = Kms(region=self._kms_settings.get("region"))
        return self._kms

    def _material(self, key_id: str) -> bytes:
        entry = self._entries.get(key_id)
        if entry is None:
            self.check_id(key_id)
            raise AssertionError  # pragma: no cover - check_id raised
        if entry.material is None:
            with self._lock:
                if entry.material is None:
                    kms = self._kms_client()
                    assert kms is not None and entry.wrapped is not None
                    assert entry.kms_key_id is not None
                    entry.material = _valid_material(
                        kms.decrypt(
                            entry.wrapped, entry.kms_key_id, _context(entry.id), entry.kms_region
                        ),
                        f"the KMS data key of key {entry.id!r}",
                    )
        return entry.material


def hkdf_sha256(master: bytes, salt: bytes, info: bytes, length: int = SUBKEY_BYTES) -> bytes:
    """HKDF-SHA256 (RFC 5869), extract then expand, with the standard library's HMAC: the
    same bytes as `cryptography`'s HKDF, without importing it on every run (the audit chain
    derives its key on each `lockgate run`)."""
    prk = hmac.digest(salt, master, "sha256")
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        out += block
        counter += 1
    return out[:length]


def _rebuild(entries: list[_Entry], current: str) -> Keyring:
    """An unpickled keyring: the same keys, in memory (rotating it saves nothing)."""
    return Keyring(entries, current)


# -- the key file -------------------------------------------------------------------------------


def keys_file_of(project: Project) -> Path:
    """The project's key file: the `keys_file` setting, default `.lockgate/keys.json`."""
    path = Path(getattr(project, "keys_file", None) or DEFAULT_KEYS_FILE)
    return path if path.is_absolute() else project.root / path


def create_key_file(
    path: str | os.PathLike[str],
    *,
    kms_key_id: str | None = None,
    kms_region: str | None = None,
    kms: Kms | None = None,
) -> Keyring:
    """Write a new key file holding one fresh key `k1` and return its keyring.

    The file is created with mode 0600 before anything is written to it and linked into place
    only when complete, so it is never readable by others nor seen half-written. With
    `kms_key_id`, keys are data keys generated and wrapped by that AWS KMS key. An existing
    file is never overwritten.
    """
    file = Path(path)
    if file.exists():
        raise KeyringError(f"key file {file} already exists; it was not changed")
    settings = {"key_id": kms_key_id} if kms_key_id else {}
    if kms_key_id and kms_region:
        settings["region"] = kms_region
    if settings and kms is None:
        from lockgate.privacy.kms import Kms

        kms = Kms(region=kms_region)
    entry = _new_entry("k1", settings, kms, memory=False)
    _write_key_file(file, [entry], entry.id, settings, replace=False)
    return Keyring([entry], entry.id, path=file, kms_settings=settings, kms=kms)


def ensure_key_file(path: str | os.PathLike[str], **options: Any) -> bool:
    """Create the key file unless it exists (what `lockgate init` does); True when created."""
    if Path(path).exists():
        return False
    try:
        create_key_file(path, **options)
    except KeyringError:
        if Path(path).exists():  # created by someone else meanwhile
            return False
        raise
    return True


def _new_entry(
    key_id: str, kms_settings: Mapping[str, str], kms: Kms | None, *, memory: bool
) -> _Entry:
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    source = "memory" if memory else "file"
    kms_key_id = kms_settings.get("key_id")
    if not kms_key_id:
        return _Entry(key_id, source, secrets.token_bytes(MASTER_KEY_BYTES), created)
    assert kms is not None
    region = kms_settings.get("region")
    plaintext, wrapped = kms.generate_data_key(kms_key_id, _context(key_id), region)
    return _Entry(key_id, "kms", plaintext, created, kms_key_id, region, wrapped)


def _context(key_id: str) -> dict[str, str]:
    """KMS encryption context: binds a wrapped key to its id (a swapped entry will not unwrap)."""
    return {"lockgate:key_id": key_id}


def _write_key_file(
    path: Path,
    entries: Iterable[_Entry],
    current: str,
    kms_settings: Mapping[str, str],
    *,
    replace: bool,
) -> None:
    doc: dict[str, Any] = {"version": FILE_VERSION, "current": current}
    if kms_settings:
        doc["kms"] = dict(kms_settings)
    doc["keys"] = [e.to_json() for e in entries if e.source in ("file", "kms")]
    write_private(path, json.dumps(doc, indent=2) + "\n", replace=replace)


def write_private(path: Path, text: str, *, replace: bool) -> None:
    """Write `text` to `path` readable by its owner only, atomically.

    The temporary file is created 0600 (mkstemp), filled and synced, then renamed over `path`
    (`replace`) or hard-linked to it (fails if `path` exists).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise KeyringError(f"key file {path} already exists; it was not changed") from None
            except OSError:  # no hard links on this file system
                if path.exists():
                    raise KeyringError(
                        f"key file {path} already exists; it was not changed"
                    ) from None
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_private(path: Path) -> Any:
    """The JSON of a key file, refused when group or others may read or write it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise KeyringError(f"cannot read key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as stream:
        mode = os.fstat(stream.fileno()).st_mode
        if os.name == "posix" and mode & 0o077:
            raise KeyringError(
                f"key file {path} is open to group or others (mode {mode & 0o777:o}); "
                f"run `chmod 600 {path}`"
            )
        raw = stream.read()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise KeyringError(f"key file {path} is not valid JSON") from None


def _parse_file(doc: Any, path: Path) -> tuple[list[_Entry], str | None, dict[str, str]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise KeyringError(f"key file {path} has no 'keys' list")
    if doc.get("version", FILE_VERSION) != FILE_VERSION:
        raise KeyringError(
            f"key file {path} has version {doc.get('version')!r}; this lockgate reads version {FILE_VERSION}"
        )
    kms_settings = doc.get("kms") or {}
    if not isinstance(kms_settings, dict) or (kms_settings and "key_id" not in kms_settings):
        raise KeyringError(f"key file {path}: 'kms' must be an object with a 'key_id'")
    entries: list[_Entry] = []
    for number, item in enumerate(doc["keys"], 1):
        where = f"key file {path}, entry {number}"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise KeyringError(f"{where} has no 'id'")
        key_id = item["id"]
        if not _ID.match(key_id):
            raise KeyringError(f"{where} has an invalid id; {_ID_RULE}")
        created = item.get("created")
        if "wrapped" in item:
            if not item.get("kms_key_id"):
                raise KeyringError(f"{where} ({key_id!r}) has 'wrapped' but no 'kms_key_id'")
            entries.append(
                _Entry(
                    key_id,
                    "kms",
                    None,
                    created,
                    str(item["kms_key_id"]),
                    item.get("kms_region"),
                    _b64(item["wrapped"], f"{where} ({key_id!r}): 'wrapped'"),
                )
            )
        elif "key" in item:
            material = _b64(item["key"], f"{where} ({key_id!r}): 'key'")
            entries.append(
                _Entry(key_id, "file", _valid_material(material, f"{where} ({key_id!r})"), created)
            )
        else:
            raise KeyringError(f"{where} ({key_id!r}) has neither 'key' nor 'wrapped'")
    current = doc.get("current")
    if current is not None and not isinstance(current, str):
        raise KeyringError(f"key file {path}: 'current' must be a key id")
    return entries, current, {str(k): str(v) for k, v in kms_settings.items()}


# -- the environment variable -------------------------------------------------------------------


def parse_env_keys(value: str) -> list[_Entry]:
    """The entries of a `LOCKGATE_KEYS` value (`id:base64key,...`), in order."""
    entries: list[_Entry] = []
    for number, part in enumerate(value.replace("\n", ",").split(","), 1):
        part = part.strip()
        if not part:
            continue
        key_id, sep, encoded = part.partition(":")
        key_id = key_id.strip()
        where = f"{ENV_VAR} entry {number}"
        if not sep or not encoded.strip():
            raise KeyringError(f"{where} is not of the form id:base64key")
        if not _ID.match(key_id):
            raise KeyringError(f"{where} has an invalid id; {_ID_RULE}")
        # the id is not echoed: a key and its id swapped (`KEY:id`) must not reach a log
        material = _b64(encoded.strip(), where)
        entries.append(_Entry(key_id, "env", _valid_material(material, where)))
    return entries


# -- validation -------------------------------------------------------------------------------


def _b64(text: object, where: str) -> bytes:
    if not isinstance(text, str):
        raise KeyringError(f"{where} is not a base64 string")
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{where} is not valid base64") from None


_GENERATE = "python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'"


def _valid_material(material: bytes, what: str) -> bytes:
    """`material` if it can be a random key: long enough, and not text or a repeated pattern
    (a random key of n bytes has about n distinct byte values; a password or `aaaa...` has
    far fewer)."""
    if len(material) < MIN_KEY_BYTES:
        raise KeyringError(
            f"{what} is {len(material)} bytes long; keys need at least {MIN_KEY_BYTES} "
            f"random bytes (32 recommended; make one with {_GENERATE})"
        )
    if len(set(material)) < len(material) // 4:
        raise KeyringError(
            f"{what} is not random: it repeats a few byte values; make a key with {_GENERATE}"
        )
    return bytes(material)


_ID_RULE = "key ids are 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"


def _valid_id(key_id: str) -> str:
    if not _ID.match(key_id):
        # the id is not echoed: a key pasted where its id belongs must not end up in a log
        raise KeyringError(f"invalid key id; {_ID_RULE}")
    return key_id
