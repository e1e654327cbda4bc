"""Connecting to the metadata database: SQLite (WAL, immediate write transactions) or PostgreSQL."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lockgate.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

READONLY = {"lockgate_readonly": True}
"""Execution option for connections that only read: they begin deferred, not IMMEDIATE."""


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    # greedy up to the last '@' of the authority, so a password holding '@' stays hidden
    return re.sub(r"(://[^:/@]+:)[^/]*@", r"\1***@", url)


def normalize_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def create_db_engine(url: str) -> Engine:
    """An SQLAlchemy engine for `url`, tuned for lockgate's write pattern."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    url = normalize_url(url)
    if url.startswith("sqlite") and url.rstrip("/") in ("sqlite:", "sqlite:///:memory:"):
        raise ConfigError(
            f"an in-memory SQLite database ({url!r}) cannot hold lockgate's state: every "
            "connection would see an empty one; use a file, e.g. sqlite:///.lockgate/lockgate.db"
        )
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            _tune_sqlite(engine, event)
        elif url.startswith("postgresql"):
            try:
                import psycopg  # noqa: F401
            except ImportError:
                raise ConfigError(
                    "PostgreSQL needs the psycopg driver: pip install 'lockgate[postgres]'"
                ) from None
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        else:
            raise ConfigError(
                f"unsupported database URL {safe_url(url)!r}: use sqlite:///path/to/file.db "
                "or postgresql://user:password@host:port/dbname"
            )
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(f"invalid database URL {safe_url(url)!r}: {exc}") from None
    return engine


def _tune_sqlite(engine: Engine, event: Any) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Deferred transactions that later write fail with "database is locked" under two
        # writers; IMMEDIATE takes the write lock up front and waits for it (busy_timeout).
        if conn.get_execution_options().get("lockgate_readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_path(url: str) -> str:
    """The file of an SQLite URL (`sqlite:///relative.db`, `sqlite:////absolute.db`)."""
    rest = url.split(":///", 1)[1] if ":///" in url else ""
    if not rest or rest == ":memory:" or "?" in rest:
        raise ConfigError(
            f"unsupported SQLite URL {url!r}: give a file, e.g. sqlite:///.lockgate/lockgate.db "
            "(in-memory databases and URL options are not supported)"
        )
    return rest


def check_writable_sqlite(url: str) -> str:
    """Create the folder of an SQLite file (fail clearly if impossible) and, when the file
    does not exist yet, the file itself readable by its owner only (it holds password and
    token hashes, sessions and the audit log; SQLite gives its -wal and -shm files the same
    mode); returns the file."""
    import os

    path = sqlite_path(normalize_url(url))
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(
            f"cannot create the folder {folder!r} for the database: {exc.strerror}"
        ) from None
    return path
