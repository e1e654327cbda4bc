"""Plain DBAPI connections for the store's runtime path (sqlite3 or psycopg, no SQLAlchemy).

Importing SQLAlchemy costs more than a whole `lockgate run` of the seed pipeline, so running,
listing and reading use the drivers directly with plain SQL valid on both databases; the
schema's source of truth stays `store/schema.py` (SQLAlchemy Core) and Alembic migrates it.
Connections are pooled: a transaction takes an idle one (or opens one) and gives it back, so
short-lived threads (a run's writer) do not reconnect. SQLite write transactions begin
IMMEDIATE, so two writers wait for each other (busy timeout) instead of failing with
"database is locked".
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lockgate.errors import ConfigError, StoreError, describe
from lockgate.store.db import check_writable_sqlite, normalize_url, safe_url

BUSY_TIMEOUT_S = 30


MAX_IDLE = 8


class Database:
    """A small pool of connections to one metadata database; thread-safe."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.shown_url = safe_url(url)  # as the user wrote it, password hidden
        self._lock = threading.Lock()
        self._idle: list[tuple[Any, int]] = []
        self._generation = 0
        if self.url.startswith("sqlite"):
            self.dialect = "sqlite"
            self.placeholder = "?"
            self.path = check_writable_sqlite(self.url)
        elif re.match(r"postgresql(\+\w+)?://", self.url):
            self.dialect = "postgresql"
            self.placeholder = "%s"
            try:
                import psycopg  # noqa: F401
            except ImportError:
                raise ConfigError(
                    "PostgreSQL needs the psycopg driver: pip install 'lockgate[postgres]'"
                ) from None
            self.conninfo = "postgresql://" + self.url.split("://", 1)[1]
        else:
            raise ConfigError(
                f"unsupported database URL {safe_url(url)!r}: use sqlite:///path/to/file.db "
                "or postgresql://user:password@host:port/dbname"
            )

    # -- connections ------------------------------------------------------------------------
    def _connect(self) -> Any:
        try:
            if self.dialect == "sqlite":
                import sqlite3

                conn: Any = sqlite3.connect(
                    self.path,
                    timeout=BUSY_TIMEOUT_S,
                    isolation_level=None,  # transactions are begun explicitly, below
                    check_same_thread=False,
                )
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
                conn.execute("PRAGMA synchronous=NORMAL")
                _use_wal(conn)
            else:
                import psycopg

                conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10)
                conn.execute("SET client_min_messages TO warning")
        except Exception as exc:
            raise StoreError(
                f"cannot open the metadata database {self.shown_url}: {describe(exc)}"
            ) from None
        return conn

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A connection of the pool for the duration of the block."""
        with self._lock:
            generation = self._generation
            conn = None
            while self._idle and conn is None:
                candidate, made = self._idle.pop()
                if made == generation and not _broken(candidate):
                    conn = candidate
                else:
                    _close(candidate)
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            with self._lock:
                keep = generation == self._generation and len(self._idle) < MAX_IDLE
                if keep and not _broken(conn):
                    self._idle.append((conn, generation))
                    conn = None
            if conn is not None:
                _close(conn)

    @contextmanager
    def transaction(self, write: bool = True, pipelined: bool = False) -> Iterator[Any]:
        """A cursor inside one transaction, committed at the end (rolled back on error).

        Driver errors become `StoreError` (one line for the user); the connection is left
        outside any transaction either way, so the next one can begin. `pipelined` sends the
        whole transaction to PostgreSQL in one go (no COPY, no reading results inside)."""
        with self.connection() as conn:
            if pipelined and self.dialect == "postgresql":
                with self._wrap_errors(), conn.pipeline(), self._begun(conn, write) as cur:
                    yield cur
            else:
                with self._begun(conn, write) as cur:
                    yield cur

    @contextmanager
    def _begun(self, conn: Any, write: bool) -> Iterator[Any]:
        cur = conn.cursor()
        begin = "BEGIN IMMEDIATE" if write and self.dialect == "sqlite" else "BEGIN"
        try:
            cur.execute(begin)
            yield cur
            cur.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(Exception):  # best effort: the original error matters
                cur.execute("ROLLBACK")
            raise self._store_error(exc) from exc
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def _store_error(self, exc: BaseException) -> BaseException:
        """A driver error as a one-line `StoreError`; anything else unchanged."""
        if not _is_driver_error(exc):
            return exc
        return StoreError(f"metadata database {self.shown_url}: {describe(exc)}")

    @contextmanager
    def _wrap_errors(self) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except BaseException as exc:
            raise self._store_error(exc) from exc

    def sql(self, text: str) -> str:
        """`text` written with `?` placeholders, in this driver's style."""
        return text if self.placeholder == "?" else text.replace("?", "%s")

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Run a read query; each row as a dict."""
        with self.transaction(write=False) as cur:
            cur.execute(self.sql(query), params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> int:
        """Run one writing statement in its own transaction; returns the rows it touched."""
        with self.transaction() as cur:
            cur.execute(self.sql(statement), params)
            return int(cur.rowcount)

    def scalar(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        found = self.rows(query, params)
        return next(iter(found[0].values())) if found else None

    def has_table(self, cur: Any, name: str) -> bool:
        if self.dialect == "sqlite":
            cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        else:
            cur.execute(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name = %s",
                (name,),
            )
        return cur.fetchone() is not None

    def close(self) -> None:
        """Close the idle connections; those in use close when given back."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._generation += 1
        for conn, _ in idle:
            _close(conn)


def _use_wal(conn: Any) -> None:
    """Switch a new database file to WAL (a persistent setting). The switch needs the file to
    itself and can fail at once, busy handler or not, while another process opens it too."""
    import sqlite3
    import time

    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _is_driver_error(exc: BaseException) -> bool:
    """sqlite3.Error or psycopg.Error, without importing a driver that is not in use."""
    return any(
        cls.__name__ == "Error" and cls.__module__ in ("sqlite3", "psycopg")
        for cls in type(exc).__mro__
    )


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # closing is best effort
        conn.close()


def _broken(conn: Any) -> bool:
    return bool(getattr(conn, "broken", False) or getattr(conn, "closed", False) is True)
