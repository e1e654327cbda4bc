"""Fresh PostgreSQL databases on the session's throwaway cluster (tests/conftest.py)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator


@contextlib.contextmanager
def fresh_pg_database(pg_server: str, prefix: str = "test") -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL database of the session cluster, dropped afterwards."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            # a Store or subprocess the test left open must not keep the database alive
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
