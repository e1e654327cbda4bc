"""Plain DBAPI connections for the store's runtime path (sqlite3 or psycopg, no SQLAlchemy).

Importing SQLAlchemy costs more than a whole `lockgate run` of the seed pipeline, so running,
listing and reading use the drivers directly with plain SQL valid on both databases; the
schema's source of truth stays `store/schema.py` (SQLAlchemy Core) and Alembic migrates it.
Each thread gets its own connection. SQLite write transactions begin IMMEDIATE, so two
writers wait for each other (busy timeout) instead of failing with "database is locked".
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lockgate.errors import ConfigError, StoreError
from lockgate.store.db import check_writable_sqlite, normalize_url, safe_url

BUSY_TIMEOUT_S = 30


class Database:
    """Connections to one metadata database, one per thread."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[Any] = []
        self._generation = 0
        if self.url.startswith("sqlite"):
            self.dialect = "sqlite"
            self.placeholder = "?"
            self.path = check_writable_sqlite(self.url)
        elif self.url.startswith("postgresql"):
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
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise StoreError(
                f"cannot open the metadata database {safe_url(self.url)}: "
                f"{type(exc).__name__}: {detail}"
            ) from None
        with self._lock:
            self._open.append(conn)
        return conn

    def connection(self) -> Any:
        """This thread's connection (reconnecting after `close()` or a broken link)."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.generation != self._generation or _broken(conn):
            conn = local.conn = self._connect()
            local.generation = self._generation
        return conn

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Any]:
        """A cursor inside one transaction, committed at the end (rolled back on error).

        Driver errors become `StoreError` (one line for the user); the connection is left
        outside any transaction either way, so the next one can begin."""
        conn = self.connection()
        cur = conn.cursor()
        begin = "BEGIN IMMEDIATE" if write and self.dialect == "sqlite" else "BEGIN"
        try:
            cur.execute(begin)
            yield cur
            cur.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(Exception):  # best effort: the original error matters
                cur.execute("ROLLBACK")
            if _is_driver_error(exc):
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise StoreError(
                    f"metadata database {safe_url(self.url)}: {type(exc).__name__}: {detail}"
                ) from exc
            raise
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def sql(self, text: str) -> str:
        """`text` written with `?` placeholders, in this driver's style."""
        return text if self.placeholder == "?" else text.replace("?", "%s")

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Run a read query; each row as a dict."""
        with self.transaction(write=False) as cur:
            cur.execute(self.sql(query), params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

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

    def close_thread(self) -> None:
        """Close the calling thread's connection (a thread that is about to end)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            if conn in self._open:
                self._open.remove(conn)
        with contextlib.suppress(Exception):  # closing is best effort
            conn.close()

    def close(self) -> None:
        """Close every connection; threads reconnect on their next use."""
        with self._lock:
            conns, self._open = self._open, []
            self._generation += 1
        for conn in conns:
            try:
                conn.close()
            except Exception:  # closing is best effort
                continue


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


def _broken(conn: Any) -> bool:
    return bool(getattr(conn, "broken", False) or getattr(conn, "closed", False) is True)
