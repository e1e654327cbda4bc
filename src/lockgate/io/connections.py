"""Named connections: where a database, a bucket or an API is, and the credentials to reach it,
kept apart from the pipelines that use them.

A connection has a name, a base URL, options and secret fields:

    postgresql://etl@db.internal:5432/warehouse  secret: password
    sqlite:///data/app.db                         (relative to the project folder)
    s3://lake/exports                             endpoint_url, region; secrets: key, secret, token
    https://api.example.com/v1                    headers, ...; secrets: token, password, headers

They come from two places, `lockgate.toml` first:

    [connections.warehouse]
    url = "postgresql://etl@db.internal:5432/warehouse"
    password_secret = "warehouse/etl"    # secrets only by reference: FIELD_secret = "NAME"
                                         # (the secret backends) or FIELD_env = "VARIABLE"

and the store, filled by `lockgate connections add NAME URL [--option k=v] [--secret FIELD]`,
where secret fields are sealed with AES-256-GCM under the project keyring's `connections`
subkey (the connection's name, the key id and the field names authenticated with them). The
stored URL never holds a password: one given in the URL is moved into the sealed secrets.

A dataset names its part relative to its connection (`Dataset(uri=..., connection=NAME)`):

- SQL (sqlite, postgresql): `uri` is the table, `orders` or `public.orders` (also `#orders`;
  or empty, or `#`, with the `table` option or a `query`):
  `postgresql://etl:***@db.internal:5432/warehouse#orders`.
- S3: `uri` is the key under the connection's prefix, `daily/orders.parquet`:
  `s3://lake/exports/daily/orders.parquet`, with options endpoint_url, region, key, secret.
- HTTP: `uri` is the path (and query) under the base URL, `orders?status=open`:
  `https://api.example.com/v1/orders?status=open`, with options headers and token.

A full URI (`scheme://...`) is accepted when it lies under the connection (same database,
bucket or API origin), which only adds the credentials; `apply` is therefore idempotent. For a
database, only its table is taken from it: the connection's URL (its user and libpq parameters
such as `sslmode`) is always the one used, and a full URI with other query parameters (`host=`,
`port=`, `sslmode=`, ...: libpq would let them send the password elsewhere or without TLS) is
refused. The resolved dataset keeps its `connection` (messages name it); its options are the
connection's, overridden by the dataset's own, plus the secrets, except options that would send
the credentials elsewhere (an S3 dataset's `endpoint_url`), which are refused. An HTTP
connection's secret headers travel as option `auth_headers`, sent only to the dataset's own
origin (never along a redirect or a next link to another host). Secrets live in memory only.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, quote, unquote, unquote_plus, urlsplit, urlunsplit

from lockgate.errors import ConfigError, DataError, KeyringError, did_you_mean
from lockgate.io.dataset import Dataset, display, parse

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.privacy.keys import Keyring
    from lockgate.store.dbapi import Database

PURPOSE = "connections"
"""The keyring purpose whose HKDF subkey seals connection secrets."""
SEALED_PREFIX = "lgconn:v1"

SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "sqlite": (),
    "postgresql": ("password",),
    "s3": ("key", "secret", "token"),
    "http": ("token", "password", "headers"),
}
"""The secret fields each kind of connection may have (`headers`: a JSON object of headers)."""
KINDS = tuple(SECRET_FIELDS)
_ALL_SECRETS = ("password", "key", "secret", "token")
"""Names that are refused as plain options anywhere (they must be secrets). `headers` may be
both: plain ones as an option, those holding credentials as the secret field."""
_SCHEMES = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "postgresql+psycopg": "postgresql",
    "s3": "s3",
    "s3a": "s3",
    "http": "http",
    "https": "http",
}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,127}\Z")
_NAME_RULE = "names are 1-128 letters, digits, '_', '-' or '.', starting with a letter"
_SENSITIVE_HEADER = re.compile(r"auth|key|token|secret|cookie|session|passw|signature", re.I)
TOML = "lockgate.toml"
STORE = "store"


@dataclass(frozen=True)
class Connection:
    """A named connection as defined: never holds a secret in clear.

    `secret_fields` names the secret fields that are set; `secret_env` maps a field to the
    environment variable holding it and `secret_refs` to the name of a secret in the project's
    secret backends (lockgate.toml); `sealed` is the store's ciphertext."""

    name: str
    kind: str
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)
    secret_fields: tuple[str, ...] = ()
    source: str = STORE
    secret_env: Mapping[str, str] = field(default_factory=dict)
    secret_refs: Mapping[str, str] = field(default_factory=dict)
    sealed: str | None = field(default=None, repr=False)
    created_at: float | None = None
    updated_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """What may be shown: everything but secret values (header values that look like
        credentials are masked too)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "url": display(self.url),
            "source": self.source,
            "options": shown_options(self.options),
            "secrets": list(self.secret_fields),
            "secret_env": dict(self.secret_env),
            "secret_refs": dict(self.secret_refs),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def shown_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """`options` for display: values of headers whose names look like credentials become ***."""
    out = dict(options)
    headers = out.get("headers")
    if isinstance(headers, Mapping):
        out["headers"] = {
            k: "***" if _SENSITIVE_HEADER.search(str(k)) else v for k, v in headers.items()
        }
    return out


# -- checks -----------------------------------------------------------------------------------


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"invalid connection name {name!r}; {_NAME_RULE}")
    return name


def kind_of(url: str) -> str:
    """The kind of connection `url` is (sqlite, postgresql, s3, http); ConfigError otherwise."""
    shown = display(url) if isinstance(url, str) else repr(url)
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"connection URL {shown!r} is not a URL; use postgresql://user@host:5432/db, "
            "sqlite:///path.db, s3://bucket/prefix or https://api.example.com/v1"
        )
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError(f"connection URL {shown!r} is not a valid URL") from None
    kind = _SCHEMES.get(parts.scheme.lower())
    if kind is None:
        raise ConfigError(
            f"connection URL {shown!r}: unknown scheme {parts.scheme!r}; use postgresql://, "
            "sqlite:///, s3:// or https://"
        )
    if parts.fragment:
        raise ConfigError(
            f"connection URL {shown!r} names a table (#{parts.fragment}); a connection is the "
            "database: give the table in each dataset"
        )
    if kind == "s3" and not parts.netloc:
        raise ConfigError(f"connection URL {shown!r}: an S3 connection is s3://bucket[/prefix]")
    if kind == "http" and not parts.hostname:
        raise ConfigError(f"connection URL {shown!r}: an HTTP connection needs a host")
    if kind in ("sqlite", "postgresql"):
        try:
            parse(url)
        except DataError as exc:
            raise ConfigError(f"connection URL {exc}") from None
    return kind


def split_password(url: str) -> tuple[str, str | None]:
    """`url` without its password, and the password (None when it has none): the one in the
    user info, or (for PostgreSQL, which libpq reads there too) a `password` query parameter.
    ConfigError when the URL gives two passwords or an `sslpassword`."""
    parts = urlsplit(url)
    found: str | None = None
    if _SCHEMES.get(parts.scheme.lower()) == "postgresql" and parts.query:
        kept: list[str] = []
        for item in parts.query.split("&"):
            key, _, value = item.partition("=")
            key = unquote_plus(key)
            if key == "sslpassword":
                raise ConfigError(
                    f"connection URL {display(url)!r} holds an sslpassword; lockgate cannot keep "
                    "it secret: use a client key without a passphrase, or set PGSSLPASSWORD "
                    "where lockgate runs"
                )
            if key == "password":
                if found is not None:
                    raise ConfigError(f"connection URL {display(url)!r} gives two passwords")
                found = unquote_plus(value)
            else:
                kept.append(item)
        parts = parts._replace(query="&".join(kept))
    if parts.password is not None:
        if found is not None:
            raise ConfigError(f"connection URL {display(url)!r} gives two passwords")
        found = unquote(parts.password)
        user = parts.username or ""
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{user}@{host}" if user else host)
    if found is None:
        return url, None
    return urlunsplit(parts), found


def check_options(options: Mapping[str, Any], kind: str, where: str) -> dict[str, Any]:
    """Options of a connection: plain values, never a secret field."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key == "auth_headers":
            raise ConfigError(
                f"{where}: headers that hold credentials are a secret: use `lockgate "
                f"connections add NAME URL --secret headers` or headers_env in {TOML}"
            )
        if key in _ALL_SECRETS:
            raise ConfigError(
                f"{where}: {key!r} is a secret; keep it out of plain options: use "
                f"`lockgate connections add NAME URL --secret {key}` or {key}_env in "
                f"{TOML} naming an environment variable"
            )
        out[str(key)] = value
    return out


def check_secrets(secrets: Mapping[str, str], kind: str, where: str) -> dict[str, str]:
    allowed = SECRET_FIELDS[kind]
    out: dict[str, str] = {}
    for key, value in secrets.items():
        if key not in allowed:
            hint = did_you_mean(key, allowed) if allowed else f"; {kind} connections have none"
            raise ConfigError(
                f"{where}: {key!r} is not a secret field of a {kind} connection{hint}"
            )
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: secret {key!r} is empty")
        if key == "headers":
            _header_secret(value, where)
        out[key] = value
    return out


def _header_secret(value: str, where: str) -> dict[str, str]:
    try:
        doc = json.loads(value)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise ConfigError(
            f'{where}: secret headers must be a JSON object of strings, e.g. {{"X-Api-Key": "..."}}'
        )
    return {str(k): v for k, v in doc.items()}


# -- sealing ----------------------------------------------------------------------------------


def _associated(name: str, key_id: str, fields: str) -> bytes:
    return f"{SEALED_PREFIX}:{key_id}:{fields}:{name}".encode()


def seal(keyring: Keyring, name: str, secrets: Mapping[str, str]) -> str:
    """`lgconn:v1:<key id>:<fields>:<base64(nonce | AES-256-GCM(JSON of secrets))>`: the key
    id lets older secrets decrypt after a key rotation, the field names can be listed without
    the key, and both are authenticated with the connection's name."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key_id, key = keyring.key_for(PURPOSE)
    fields = ",".join(sorted(secrets))
    nonce = os.urandom(12)
    plain = json.dumps(dict(secrets), sort_keys=True).encode()
    sealed = AESGCM(key).encrypt(nonce, plain, _associated(name, key_id, fields))
    return f"{SEALED_PREFIX}:{key_id}:{fields}:{base64.b64encode(nonce + sealed).decode()}"


def sealed_fields(text: str | None) -> tuple[str, ...]:
    """The secret field names recorded in a sealed value (no key needed)."""
    if not text or not text.startswith(SEALED_PREFIX + ":"):
        return ()
    parts = text.split(":")
    return tuple(f for f in parts[3].split(",") if f) if len(parts) == 5 else ()


def unseal(keyring: Keyring, name: str, text: str) -> dict[str, str]:
    """The secrets sealed by `seal`; DataError (one line) when they cannot be decrypted."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    fix = (
        f"if the project's key file was replaced, add the connection again: "
        f"`lockgate connections add {name} URL --secret FIELD --replace`"
    )
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) != 5 or ":".join(parts[:2]) != SEALED_PREFIX:
        raise DataError(f"connection {name!r}: its stored secrets are corrupt; {fix}")
    _, _, key_id, fields, payload = parts
    if key_id not in keyring:
        raise DataError(
            f"connection {name!r}: its secrets were sealed with key {key_id!r}, which the "
            f"project's keyring does not hold (it holds {', '.join(keyring.ids)}); {fix}"
        )
    try:
        raw = base64.b64decode(payload, validate=True)
        _, key = keyring.key_for(PURPOSE, key_id)
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], _associated(name, key_id, fields))
        doc = json.loads(plain)
    except (InvalidTag, binascii.Error, ValueError):
        raise DataError(
            f"connection {name!r}: its stored secrets cannot be decrypted with the project's "
            f"key {key_id!r} (wrong key or altered data); {fix}"
        ) from None
    return {str(k): str(v) for k, v in doc.items()}


# -- lockgate.toml ----------------------------------------------------------------------------


def toml_connections(project: Project) -> dict[str, Connection]:
    """The `[connections.NAME]` tables of the project's lockgate.toml (`Project.connections`)."""
    tables = project.connections
    if not tables:
        return {}
    file = project.config_file or Path(TOML)
    return {name: _from_toml(name, table, file) for name, table in tables.items()}


def _from_toml(name: str, table: Any, file: Path) -> Connection:
    where = f"{file}: [connections.{name}]"
    if not _NAME.match(name):
        raise ConfigError(f"{where}: invalid connection name; {_NAME_RULE}")
    if not isinstance(table, dict) or not isinstance(table.get("url"), str):
        raise ConfigError(f'{where} needs a url, e.g. url = "postgresql://user@host:5432/db"')
    url = table["url"]
    try:
        kind = kind_of(url)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        _, given = split_password(url)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if given is not None:
        raise ConfigError(
            f"{where}: the url holds a password in plain text; remove it and name an "
            "environment variable with password_env, or use `lockgate connections add`"
        )
    options: dict[str, Any] = {}
    secret_env: dict[str, str] = {}
    secret_refs: dict[str, str] = {}
    for key, value in table.items():
        if key == "url":
            continue
        if key == "options" and isinstance(value, dict):
            options.update(check_options(value, kind, where))
        elif key.endswith(("_env", "_secret")):
            secret, _, suffix = key.rpartition("_")
            if secret not in SECRET_FIELDS[kind]:
                allowed = ", ".join(f"{f}_{suffix}" for f in SECRET_FIELDS[kind]) or "none"
                raise ConfigError(
                    f"{where}: {key} names no secret field of a {kind} connection ({allowed})"
                )
            if secret in secret_env or secret in secret_refs:
                raise ConfigError(
                    f"{where}: {secret} is given twice; keep one of {secret}_env and {secret}_secret"
                )
            if suffix == "env":
                if not isinstance(value, str) or not value:
                    raise ConfigError(f"{where}: {key} must name an environment variable")
                secret_env[secret] = value
            else:
                from lockgate.secrets import SecretError, check_name

                try:
                    secret_refs[secret] = check_name(value)
                except SecretError as exc:
                    raise ConfigError(f"{where}: {key}: {exc}") from None
        else:
            if key in _ALL_SECRETS:
                raise ConfigError(
                    f"{where}: {key} must not be written in {TOML} in plain text; set "
                    f'{key}_secret = "NAME" (a secret in the secret backends), '
                    f'{key}_env = "VARIABLE" (an environment variable holding it) or use '
                    f"`lockgate connections add {name} URL --secret {key}`"
                )
            options.update(check_options({key: value}, kind, where))
    return Connection(
        name,
        kind,
        url,
        options,
        tuple(sorted({*secret_env, *secret_refs})),
        TOML,
        secret_env=secret_env,
        secret_refs=secret_refs,
    )


# -- the store --------------------------------------------------------------------------------

_COLUMNS = "name, kind, url, options, secret, created_at, updated_at"


def from_row(row: Mapping[str, Any]) -> Connection:
    """A stored connection from its row (its secrets still sealed)."""
    try:
        options = json.loads(row["options"]) if row["options"] else {}
    except ValueError:
        options = {}
    return Connection(
        row["name"],
        row["kind"],
        row["url"],
        options if isinstance(options, dict) else {},
        sealed_fields(row["secret"]),
        STORE,
        sealed=row["secret"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def stored_connections(db: Database) -> dict[str, Connection]:
    """Every connection in the store, by name."""
    rows = db.rows(f"SELECT {_COLUMNS} FROM connections ORDER BY name")
    return {row["name"]: from_row(row) for row in rows}


def stored_connection(db: Database, name: str) -> Connection | None:
    rows = db.rows(f"SELECT {_COLUMNS} FROM connections WHERE name = ?", (name,))
    return from_row(rows[0]) if rows else None


def save(
    db: Database,
    project: Project,
    name: str,
    url: str,
    *,
    options: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    replace: bool = False,
    keyring: Keyring | None = None,
    actor: str | None = None,
) -> Connection:
    """Add (or with `replace`, redefine) connection `name` in the store.

    A password in `url` is moved into the sealed secrets; the stored URL never holds one.
    Secrets need the project's keyring (`lockgate init` creates it). The change is appended
    to the audit chain in the same transaction (names of fields, never secret values);
    `actor` defaults to the OS user."""
    check_name(name)
    if name in toml_connections(project):
        raise ConfigError(
            f"connection {name!r} is defined in {TOML}, which takes precedence; change it there "
            "or choose another name"
        )
    kind = kind_of(url)
    where = f"connection {name!r}"
    clean, password = split_password(url)
    secrets = dict(secrets or {})
    if password is not None:
        field_name = "secret" if kind == "s3" else "password"
        if field_name in secrets:
            raise ConfigError(f"{where}: the URL holds a password and --secret gives one too")
        if kind == "s3":
            clean, user = _strip_user(clean)
            secrets.update(key=user or "", secret=password)
        else:
            secrets[field_name] = password
    opts = check_options(options or {}, kind, where)
    secrets = check_secrets(secrets, kind, where)
    sealed = None
    if secrets:
        if keyring is None:
            keyring = _keyring(project, name)
        sealed = seal(keyring, name, secrets)
    audit_keys = _audit_keys(project, keyring)
    fields = tuple(sorted(secrets))
    now = time.time()
    with db.transaction() as cur:  # the check, the write and its audit record in one
        cur.execute(db.sql(f"SELECT {_COLUMNS} FROM connections WHERE name = ?"), (name,))
        found = cur.fetchone()
        if found is not None and not replace:
            raise ConfigError(
                f"{where} exists already; remove it first (`lockgate connections rm {name}`) "
                "or pass --replace"
            )
        before = from_row(dict(zip(_COLUMNS.split(", "), found, strict=True))) if found else None
        created = (before.created_at or now) if before is not None else now
        cur.execute(db.sql("DELETE FROM connections WHERE name = ?"), (name,))
        cur.execute(
            db.sql(f"INSERT INTO connections ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"),
            (name, kind, clean, json.dumps(opts), sealed, created, now),
        )
        detail = {
            "name": name,
            "kind": kind,
            "url": display(clean),
            "changed": _changed(before, kind, clean, opts, fields),
            "secrets": list(fields),
        }
        action = "connection.set" if before is not None else "connection.add"
        _audit(db, cur, audit_keys, action, name, detail, actor)
    return Connection(
        name, kind, clean, opts, fields, STORE, sealed=sealed, created_at=created, updated_at=now
    )


def remove(db: Database, project: Project, name: str, *, actor: str | None = None) -> None:
    """Delete connection `name` from the store (audited in the same transaction);
    ConfigError when it is not there."""
    if name in toml_connections(project) and stored_connection(db, name) is None:
        raise ConfigError(f"connection {name!r} is defined in {TOML}: remove it there")
    conn = stored_connection(db, name)
    if conn is None:
        known = sorted(stored_connections(db))
        hint = did_you_mean(name, known, "the store holds") if known else "; the store holds none"
        raise ConfigError(f"no connection {name!r} in the store{hint}")
    audit_keys = _audit_keys(project, None)
    with db.transaction() as cur:
        cur.execute(db.sql("DELETE FROM connections WHERE name = ?"), (name,))
        if cur.rowcount:  # else someone removed it meanwhile: nothing changed here
            detail = {"name": name, "kind": conn.kind, "url": display(conn.url)}
            _audit(db, cur, audit_keys, "connection.remove", name, detail, actor)


def _changed(
    before: Connection | None,
    kind: str,
    url: str,
    options: Mapping[str, Any],
    secrets: tuple[str, ...],
) -> list[str]:
    """What a save changes, by name: kind, url, options.KEY, secrets.FIELD (secret fields
    given are always listed: sealed values cannot be compared without decrypting them)."""
    old_options = dict(before.options) if before is not None else {}
    changed = [] if before is not None and before.kind == kind else ["kind"]
    if before is None or before.url != url:
        changed.append("url")
    for key in sorted(set(old_options) | set(options)):
        if old_options.get(key, _MISSING) != options.get(key, _MISSING):
            changed.append(f"options.{key}")
    old_secrets = set(before.secret_fields) if before is not None else set()
    changed += [f"secrets.{f}" for f in sorted(old_secrets | set(secrets))]
    return changed


_MISSING = object()


def _audit_keys(project: Project, keyring: Keyring | None) -> Keyring:
    """The keys of the audit chain that records connection changes: `keyring`, or the
    project's (its key file created as `lockgate init` does when there is none and
    LOCKGATE_KEYS is not set)."""
    if keyring is not None:
        return keyring
    from lockgate.privacy.keys import Keyring

    try:
        return Keyring.for_project(project, create=True)
    except KeyringError as exc:
        raise DataError(f"connection changes are audited with the project's keys: {exc}") from None


def _audit(
    db: Database,
    cur: Any,
    keys: Keyring,
    action: str,
    name: str,
    detail: dict[str, Any],
    actor: str | None,
) -> None:
    from lockgate.store.audit import AuditChain, entry, user_actor

    record = entry(actor or user_actor(), action, name, None, detail)
    AuditChain(db, lambda: keys).append(cur, [record])


def _strip_user(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])), unquote(
        parts.username
    )


def _keyring(project: Project, name: str) -> Keyring:
    from lockgate.privacy.keys import Keyring

    try:
        return Keyring.for_project(project)
    except KeyringError as exc:
        raise DataError(
            f"connection {name!r}: its secrets need the project's keys: {exc}"
        ) from None


# -- lookup -----------------------------------------------------------------------------------


def all_connections(
    project: Project, db: Database | None
) -> tuple[dict[str, Connection], dict[str, Connection]]:
    """(the connections in force by name, toml first; stored ones that toml hides)."""
    found = dict(toml_connections(project))
    hidden: dict[str, Connection] = {}
    if db is not None:
        for name, conn in stored_connections(db).items():
            if name in found:
                hidden[name] = conn
            else:
                found[name] = conn
    return dict(sorted(found.items())), hidden


def lookup(project: Project, name: str, db: Database | None = None) -> Connection:
    """Connection `name`: lockgate.toml first, then the store; DataError listing the known
    names when there is none."""
    toml = toml_connections(project)
    if name in toml:
        return toml[name]
    if db is not None:
        conn = stored_connection(db, name)
        known = {**toml, **stored_connections(db)} if conn is None else {}
    else:
        with _open_store(project) as store_db:
            if store_db is None:
                conn, known = None, dict(toml)
            else:
                conn = stored_connection(store_db, name)
                known = {**toml, **stored_connections(store_db)} if conn is None else {}
    if conn is None:
        names = sorted(known)
        hint = (
            did_you_mean(name, names, "known connections:")
            if names
            else f"; none is defined: add one with `lockgate connections add {name} URL` or "
            f"a [connections.{name}] table in {TOML}"
        )
        raise DataError(f"unknown connection {name!r}{hint}")
    return conn


class _open_store:  # noqa: N801 (a context manager used like a function)
    """The project's store for reading connections, or None when it has no database yet (a
    lookup must not create one)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.store: Any = None

    def __enter__(self) -> Database | None:
        from lockgate.store.store import Store

        self.store = Store.if_exists(self.project.db_url)
        return None if self.store is None else self.store.db

    def __exit__(self, *exc: object) -> None:
        if self.store is not None:
            self.store.close()


def secrets_of(conn: Connection, project: Project) -> dict[str, str]:
    """The connection's secret values (in memory only): from the secrets and environment
    variables its toml table names (each secret read is audited by its own name), or unsealed
    from the store."""
    if conn.source == TOML:
        out: dict[str, str] = {}
        if conn.secret_refs:
            from lockgate.secrets import SecretError, get_secret

            for secret, ref in conn.secret_refs.items():
                try:
                    out[secret] = get_secret(ref, project)
                except SecretError as exc:
                    raise DataError(f"connection {conn.name!r}: {secret}: {exc}") from None
        for secret, variable in conn.secret_env.items():
            value = os.environ.get(variable)
            if not value:
                raise DataError(
                    f"connection {conn.name!r}: environment variable {variable} "
                    f"({secret}_env in {TOML}) is not set; export it before running"
                )
            out[secret] = value
    elif conn.sealed:
        out = unseal(_keyring(project, conn.name), conn.name, conn.sealed)
    else:
        return {}
    from lockgate.secrets import redaction

    redaction.register_all(out.values())  # whatever prints them, they are redacted
    if conn.secret_env or conn.sealed:
        _secret_read(conn, sorted(set(out) - set(conn.secret_refs)), project)
    return out


def _secret_read(conn: Connection, fields: list[str], project: Project) -> None:
    """Audit that a connection's secrets were read (names only): inside a task, as a fact its
    attempt reports (the engine's events reach the audit chain); outside, directly into the
    project's store when it has one (no database is created for it)."""
    from lockgate.model import facts

    data = {"name": conn.name, "source": "connection", "fields": fields}
    if facts.report(facts.SECRET_READ, data):
        return
    from lockgate.store.audit import user_actor
    from lockgate.store.store import Store

    store = Store.if_exists(project.db_url, keys=lambda: _audit_keys(project, None))
    if store is None:
        return
    try:
        store.audit("secret.read", conn.name, data, actor=user_actor())
    finally:
        store.close()


# -- applying a connection to a dataset ---------------------------------------------------------


def apply(dataset: Dataset, project: Project | None = None) -> Dataset:
    """`dataset` resolved against its named connection: a full URI, the connection's options
    under the dataset's own, and the credentials (in memory only). See the module docstring
    for how a dataset names its part."""
    name = dataset.connection
    if name is None:
        return dataset
    if project is None:
        from lockgate.config import Project

        project = Project.load()
    conn = lookup(project, name)
    secrets = secrets_of(conn, project)
    base = conn.url
    if conn.kind == "sqlite":
        base = _absolute_sqlite(base, project.root)
    options = {**conn.options, **dict(dataset.options)}
    if conn.kind in ("sqlite", "postgresql"):
        return _sql(dataset, conn, base, secrets, options)
    if conn.kind == "s3":
        return _s3(dataset, conn, base, secrets, options)
    return _http(dataset, conn, base, secrets, options)


def _shown(dataset: Dataset, conn: Connection) -> str:
    return f"dataset {display(dataset.uri)!r} of connection {conn.name!r}"


def _full(dataset: Dataset, conn: Connection, base: str) -> str | None:
    """A full URI of `dataset` lying under the connection's place, or None for a relative one;
    DataError for a URI elsewhere (the connection's credentials must not go there). For a
    database it is the connection's URL with the table of the given one: query parameters other
    than the connection's own, or another user, are refused (libpq's `host=`, `port=`,
    `hostaddr=`, `sslmode=`, ... would send the password elsewhere or in clear)."""
    uri = dataset.uri
    if "://" not in uri:
        return None
    try:
        mine, theirs = parse(base + ("/x" if conn.kind == "s3" else "")), parse(uri)
    except DataError as exc:
        raise DataError(f"{_shown(dataset, conn)}: {exc}") from None
    a, b = urlsplit(mine.url), urlsplit(theirs.url)
    same = (
        mine.kind == theirs.kind
        and {
            "sqlite": lambda: mine.path == theirs.path,
            "postgresql": lambda: (a.hostname, a.port, a.path) == (b.hostname, b.port, b.path),
            "s3": lambda: mine.bucket == theirs.bucket,
            "http": lambda: (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port),
        }[conn.kind]()
    )
    if not same:
        raise DataError(
            f"{_shown(dataset, conn)}: the URI is outside the connection "
            f"({display(conn.url)}); give the part relative to it, e.g. "
            + {
                "sqlite": "orders",
                "postgresql": "public.orders",
                "s3": "exports/orders.parquet",
            }.get(conn.kind, "orders?status=open")
        )
    if conn.kind in ("sqlite", "postgresql"):
        return _under_database(dataset, conn, base, a, b)
    return uri


def _under_database(
    dataset: Dataset, conn: Connection, base: str, mine: SplitResult, theirs: SplitResult
) -> str:
    """`base` with the table of the full URI `theirs`, which must not change how or as whom
    the connection connects."""
    if theirs.query and theirs.query != mine.query:
        raise DataError(
            f"{_shown(dataset, conn)}: a full URI under a connection cannot carry query "
            f"parameters ({_param_names(theirs.query)}): they could send the connection's "
            f"password to another server or without TLS; give the table alone (orders), and "
            f"set connection parameters in the connection ({display(conn.url)})"
        )
    if theirs.username is not None and unquote(theirs.username) != unquote(mine.username or ""):
        raise DataError(
            f"{_shown(dataset, conn)}: the URI names user {unquote(theirs.username)!r}, but "
            f"the connection connects as {unquote(mine.username or '') or 'the default user'}; "
            "give the table alone (orders) or use a connection for that user"
        )
    table = urlsplit(dataset.uri).fragment  # `theirs` is the URL without the table
    full = base.split("#", 1)[0] + (f"#{table}" if table else "")  # not urlunsplit: sqlite:////
    if theirs.password is not None:  # kept when the connection has no password of its own
        full = _with_password(full, unquote(theirs.password))
    return full


def _param_names(query: str) -> str:
    names = [unquote_plus(item.partition("=")[0]) for item in query.split("&") if item]
    return ", ".join(dict.fromkeys(n for n in names if n)) or "?"


def _sql(
    dataset: Dataset,
    conn: Connection,
    base: str,
    secrets: Mapping[str, str],
    options: dict[str, Any],
) -> Dataset:
    query = dataset.query or options.pop("query", None)
    full = _full(dataset, conn, base)
    if full is None:
        relative = dataset.uri.strip()
        prefix, hash_, table = relative.rpartition("#")
        if hash_ and prefix not in ("", conn.name):
            raise DataError(
                f"{_shown(dataset, conn)}: write the table as orders or #orders (the connection "
                "gives the database)"
            )
        table = table.strip() or str(options.pop("table", "") or "")
        options.pop("table", None)
        full = base + (f"#{table}" if table else "")
        if not table and not query:
            raise DataError(f"{_shown(dataset, conn)}: name a table (uri: orders) or give a query")
    password = secrets.get("password")
    if password is not None and conn.kind == "postgresql":
        full = _with_password(full, password, replace=True)
    try:
        parse(full)
    except DataError:
        raise DataError(
            f"{_shown(dataset, conn)}: {display(dataset.uri)!r} is not a table name; write "
            "table or schema.table (letters, digits and _), or give a query"
        ) from None
    return replace(dataset, uri=full, options=options, query=query)


def _s3(
    dataset: Dataset,
    conn: Connection,
    base: str,
    secrets: Mapping[str, str],
    options: dict[str, Any],
) -> Dataset:
    full = _full(dataset, conn, base)
    if full is None:
        key = dataset.uri.strip().lstrip("/")
        if not key:
            raise DataError(
                f"{_shown(dataset, conn)}: name the object under the connection, e.g. "
                "exports/orders.parquet"
            )
        full = base.rstrip("/") + "/" + key
    own = dataset.options.get("endpoint_url") if dataset.options else None
    if own is not None and own != conn.options.get("endpoint_url"):
        where = conn.options.get("endpoint_url") or "AWS S3"
        raise DataError(
            f"{_shown(dataset, conn)}: option endpoint_url {display(str(own))!r} would send the "
            f"connection's credentials to another server than its own ({display(str(where))}); "
            "remove the option, or define another connection for that endpoint"
        )
    for secret in ("key", "secret", "token"):
        if secret in secrets:
            options.setdefault(secret, secrets[secret])
    parse(full)
    return replace(dataset, uri=full, options=options)


def _http(
    dataset: Dataset,
    conn: Connection,
    base: str,
    secrets: Mapping[str, str],
    options: dict[str, Any],
) -> Dataset:
    full = _full(dataset, conn, base)
    if full is None:
        relative = dataset.uri.strip()
        path, _, query = relative.partition("?")
        parts = urlsplit(base)
        joined = parts.path.rstrip("/") + ("/" + path.lstrip("/") if path.strip("/") else "")
        merged = "&".join(q for q in (parts.query, query) if q)
        full = urlunsplit(parts._replace(path=joined or "/", query=merged))
    full, user = _strip_user(full)
    if user and "username" not in options:
        options["username"] = user
    if "token" in secrets:
        options.setdefault("token", secrets["token"])
    if "password" in secrets:
        options.setdefault("password", secrets["password"])
    if "headers" in secrets:  # sent only to the dataset's own origin, like Authorization
        secret_headers = _header_secret(secrets["headers"], f"connection {conn.name!r}")
        own = options.get("auth_headers")
        options["auth_headers"] = {
            **secret_headers,
            **(dict(own) if isinstance(own, Mapping) else {}),
        }
    parse(full)
    return replace(dataset, uri=full, options=options)


def _with_password(url: str, password: str, *, replace: bool = False) -> str:
    """`url` with `password` in its user info (a password already there is kept unless
    `replace`)."""
    parts = urlsplit(url)
    if parts.password is not None and not replace:
        return url
    user = quote(unquote(parts.username or ""), safe="")
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


def _absolute_sqlite(url: str, root: Path) -> str:
    """`sqlite:///relative.db` as `sqlite:////root/relative.db` (relative to the project)."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path.startswith("/"):
        return url
    return "sqlite:///" + str(root / unquote(path))
