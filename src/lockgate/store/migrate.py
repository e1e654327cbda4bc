"""Schema creation and upgrades. A fresh database is created from the metadata and stamped at
head (Alembic's documented way to build an up-to-date database); an older one is upgraded by
Alembic's migrations, only when asked (`lockgate db upgrade`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.errors import StoreError, describe
from lockgate.store import ddl
from lockgate.store.ddl import SCHEMA_REVISION

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from lockgate.store.dbapi import Database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_CREATE_LOCK = 0x6C6F636B67617465  # "lockgate": the advisory lock held while creating the schema


def current_revision(conn: Connection) -> str | None:
    """The stamped revision, or None for a database lockgate has never touched."""
    from sqlalchemy import inspect

    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


_VERSION_TABLE = (
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)


def ensure_schema(db: Database) -> None:
    """Create the schema in an empty database; refuse one at another revision, saying why."""
    with db.transaction(write=False) as cur:
        revision = _revision(db, cur)
    if revision == SCHEMA_REVISION:
        return
    if revision is None:
        with db.transaction() as cur:
            if db.dialect == "postgresql":
                # PostgreSQL does not serialize the check-then-create of processes opening
                # a new database at once (SQLite's BEGIN IMMEDIATE does): without this
                # lock, the slower one fails with "relation ... already exists".
                cur.execute(f"SELECT pg_advisory_xact_lock({_CREATE_LOCK})")
            if _revision(db, cur) is None:
                for statement in ddl.POSTGRESQL if db.dialect == "postgresql" else ddl.SQLITE:
                    cur.execute(statement)
                cur.execute(_VERSION_TABLE)
                cur.execute(
                    f"INSERT INTO alembic_version (version_num) VALUES ('{SCHEMA_REVISION}')"
                )
        return
    if not revision.isdigit():
        raise StoreError(
            f"the metadata database is stamped with Alembic revision {revision!r}, which is not "
            "one of lockgate's: is this database used by another application?"
        )
    if int(revision) < int(SCHEMA_REVISION):
        raise StoreError(
            f"the metadata database is at schema revision {revision}, older than this lockgate's "
            f"{SCHEMA_REVISION}: run `lockgate db upgrade` (back it up first)"
        )
    raise StoreError(
        f"the metadata database is at schema revision {revision}, newer than this lockgate's "
        f"{SCHEMA_REVISION}: upgrade lockgate"
    )


def _revision(db: Database, cur: Any) -> str | None:
    if not db.has_table(cur, "alembic_version"):
        return None
    cur.execute("SELECT version_num FROM alembic_version")
    row = cur.fetchone()
    return None if row is None else str(row[0])


def alembic_config(engine: Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the head revision with Alembic; returns (before, after)."""
    from alembic import command

    from lockgate.store.db import READONLY

    before: str | None = None
    try:
        with engine.connect().execution_options(**READONLY) as conn:
            before = current_revision(conn)
        command.upgrade(alembic_config(engine), "head")
        with engine.connect().execution_options(**READONLY) as conn:
            after = current_revision(conn)
    except Exception as exc:
        raise StoreError(
            f"cannot upgrade the metadata database from revision {before or 'empty'}: "
            f"{describe(exc)}"
        ) from exc
    assert after is not None
    return before, after
