"""A dataset: a URI plus options, and what the URI says about where the data is.

    file:///data/orders.parquet      (also .csv, .jsonl, compressed .gz/.bz2/.zst)
    s3://bucket/path/orders.parquet  (any S3-compatible endpoint: option `endpoint_url`)
    sqlite:///path/to/app.db#orders  (a table; a query with option `query`)
    postgresql://user@host:5432/db#public.orders
    https://api.example.com/v1/orders (a JSON API, read only)

A plain path (`data/orders.csv`) is a file relative to the project folder. Nothing here does
I/O: parsing is pure, so pipelines can be checked before they run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

from lockgate.errors import DataError

KINDS = ("file", "s3", "sqlite", "postgresql", "http")
"""What a dataset can be; each kind has one connector module (files, sql, http)."""

WRITE_MODES = ("overwrite", "append", "upsert")

_SCHEMES = {
    "file": "file",
    "s3": "s3",
    "s3a": "s3",
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "postgresql+psycopg": "postgresql",
    "http": "http",
    "https": "http",
}
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
"""`table` or `schema.table`: plain SQL identifiers, so a table name can never inject SQL."""


@dataclass(frozen=True)
class Dataset:
    """Where a table is, and how to read or write it.

    `options` are connector-specific (CSV delimiter, S3 `endpoint_url`, HTTP pagination, ...);
    `tags` declares column classifications (`{"email": "pii.email"}`) for formats that cannot
    carry them (they win over tags the data carries). `query` reads a SQL query instead of the
    URI's table.
    """

    uri: str
    format: str | None = None
    query: str | None = None
    connection: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)  # may hold secrets
    tags: Mapping[str, str] = field(default_factory=dict)
    zone: str | None = None
    """The zone the dataset lives in, when the pipeline says it (else lockgate.toml's [zones]
    decide: governance/zones.py)."""
    catalogued: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Tags the store recorded when lockgate last wrote this dataset (for formats that cannot
    carry them): applied on read to the columns that exist and carry no tag of their own."""

    @property
    def kind(self) -> str:
        return parse(self.uri).kind

    @property
    def location(self) -> Location:
        return parse(self.uri)

    def __str__(self) -> str:
        return display(self.uri)


@dataclass(frozen=True)
class Location:
    """The parts of a dataset URI that connectors need.

    file: `path` is the absolute file path. s3: `bucket` and `key`. sqlite: `path` is the database
    file, `table` the fragment. postgresql: `url` is the connection URL without the fragment,
    `table` the fragment. http: `url` is the whole URL.
    """

    kind: str
    url: str
    path: str = ""
    bucket: str = ""
    key: str = ""
    table: str | None = None


def parse(uri: str, root: Path | None = None) -> Location:
    """The `Location` of `uri`; DataError naming the URI (password hidden) when it is not one
    lockgate can read or write. Plain paths are files, relative to `root` (or the working
    folder)."""
    if not isinstance(uri, str) or not uri.strip():
        raise DataError(f"expected a dataset URI or a file path, got {uri!r}")
    if "://" not in uri:
        plain = Path(uri).expanduser()
        if not plain.is_absolute():
            plain = (root or Path.cwd()) / plain
        return Location("file", plain.as_uri(), path=str(plain))
    try:
        parts = urlsplit(uri)
    except ValueError as exc:  # e.g. an unclosed [ in the host
        raise DataError(f"{display(uri)}: not a valid URI ({exc})") from None
    scheme = parts.scheme.lower()
    kind = _SCHEMES.get(scheme)
    if kind is None:
        raise DataError(
            f"{display(uri)}: unknown dataset scheme {scheme!r}; use file://, s3://, sqlite:///, "
            "postgresql:// or https://"
        )
    if kind == "file":
        if parts.netloc not in ("", "localhost"):
            raise DataError(f"{display(uri)}: file URIs name a local path: file:///absolute/path")
        return Location(kind, uri, path=unquote(parts.path))
    if kind == "s3":
        key = parts.path.lstrip("/")
        if not parts.netloc or not key:
            raise DataError(f"{display(uri)}: an S3 dataset is s3://bucket/key")
        return Location(kind, uri, bucket=parts.netloc, key=unquote(key))
    if kind == "http":
        if not parts.netloc:
            raise DataError(f"{display(uri)}: an HTTP dataset needs a host")
        return Location(kind, uri)
    table = unquote(parts.fragment) or None
    if table is not None and not _TABLE.match(table):
        raise DataError(
            f"{display(uri)}: {table!r} is not a table name; write #table or #schema.table "
            "(letters, digits and _), and give a query with the `query` option"
        )
    base = uri.split("#", 1)[0]
    if kind == "sqlite":
        if parts.netloc:
            raise DataError(
                f"{display(uri)}: an SQLite dataset is sqlite:///relative/path.db#table or "
                "sqlite:////absolute/path.db#table"
            )
        db = unquote(parts.path)[1:] if parts.path.startswith("/") else unquote(parts.path)
        if not db:
            raise DataError(f"{display(uri)}: name the database file: sqlite:///path.db#table")
        if not Path(db).is_absolute():
            db = str((root or Path.cwd()) / db)
        return Location(kind, base, path=db, table=table)
    if not parts.hostname and "host=" not in parts.query:
        raise DataError(f"{display(uri)}: a PostgreSQL dataset needs a host")
    return Location(kind, base, table=table)


_SECRET_PARAM = re.compile(
    r"^(?:key|pass|pwd|sig|auth|code|passfile)$"
    r"|passw|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|signature|credential"
    r"|authorization|session[-_]?id",
    re.IGNORECASE,
)
"""Query parameter names whose values are credentials (`password`, `sslpassword`, `passfile`,
`token`, `access_token`, `api_key`, `apikey`, `client_secret`, `X-Amz-Signature`, `key`, ...)."""


def secret_param(name: str) -> bool:
    """A query parameter of this name holds a credential (case-insensitive)."""
    return bool(_SECRET_PARAM.search(unquote_plus(name).strip()))


def _masked_query(query: str) -> str:
    """`query` with the values of credential parameters replaced by `***`, the rest as is."""
    if not query:
        return query
    out = []
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        out.append(f"{name}=***" if eq and value and secret_param(name) else item)
    return "&".join(out)


def display(uri: str) -> str:
    """`uri` with any password replaced by `***`, for messages, logs and the store: the one in
    the user info and the values of query parameters that hold credentials (`?password=`,
    `?token=`, ...); the rest of the URI is kept as it is."""
    if not isinstance(uri, str) or "://" not in uri:
        return uri
    try:
        parts = urlsplit(uri)
        has_password = parts.password is not None
    except ValueError:
        return uri.split("://", 1)[0] + "://***"
    masked = _masked_query(parts.query)
    if not has_password and masked == parts.query:
        return uri
    netloc = parts.netloc
    if has_password:
        user = parts.username or ""
        netloc = f"{user}:***@{netloc.rsplit('@', 1)[1]}"
    rest = uri.split("://", 1)[1][len(parts.netloc) :]  # path, query and fragment, as given
    path = rest.split("?", 1)[0].split("#", 1)[0]
    query = f"?{masked}" if masked else ""
    fragment = f"#{parts.fragment}" if "#" in uri else ""
    return f"{uri.split('://', 1)[0]}://{netloc}{path}{query}{fragment}"


def check_mode(mode: str, keys: tuple[str, ...] = ()) -> str:
    """`mode` if it is a write mode (upsert needs key columns), else DataError."""
    if mode not in WRITE_MODES:
        raise DataError(f"unknown write mode {mode!r}; use one of {', '.join(WRITE_MODES)}")
    if mode == "upsert" and not keys:
        raise DataError("mode upsert needs the key columns: keys: [id]")
    return mode
