"""Schema creation, revision stamping, migrations and `lockgate db upgrade`, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from lockgate.errors import StoreError
from lockgate.store import migrate, schema
from lockgate.store.db import check_writable_sqlite, create_db_engine
from lockgate.store.store import Store

TABLES = {
    "notifications",
    "webhook_deliveries",
    "sessions",
    "run_cancels",
    "pipeline_versions",
    "runs",
    "task_runs",
    "task_attempts",
    "events",
    "results",
    "pipelines",
    "dataset_events",
    "schedulers",
    "datasets",
    "lineage",
    "quality_results",
    "audit_log",
    "audit_head",
    "audit_checkpoints",
    "waivers",
    "policy_decisions",
    "users",
    "api_tokens",
    "grants",
    "connections",
}


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        check_writable_sqlite(url)
    return create_db_engine(url)


def _revisions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]


def _set_revision(url: str, revision: str) -> None:
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


def _differences(engine: Engine) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match the metadata."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(ctx, schema.metadata))


def _snapshot(engine: Engine) -> dict[str, Any]:
    """The reflected structure of every table: columns, keys, indexes, constraints."""
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        pk = insp.get_pk_constraint(table)
        out[table] = {
            "columns": [
                (
                    c["name"],
                    str(c["type"]),
                    c["nullable"],
                    str(c.get("default")),
                    c.get("autoincrement"),
                )
                for c in insp.get_columns(table)
            ],
            "pk": (pk.get("name"), pk["constrained_columns"]),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(table)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)
            ),
            "foreign_keys": sorted(str(fk) for fk in insp.get_foreign_keys(table)),
        }
    return out


def test_first_open_creates_the_schema_and_stamps_the_revision(
    db_url: str, open_store: Callable[[], Store]
) -> None:
    store = open_store()
    tables = set(inspect(store.engine).get_table_names())
    assert tables == TABLES | {"alembic_version"}
    assert _revisions(store.engine) == [schema.SCHEMA_REVISION]
    assert _differences(store.engine) == []

    again = open_store()  # a second open neither re-creates nor re-stamps
    assert _revisions(again.engine) == [schema.SCHEMA_REVISION]


def test_migrations_build_exactly_the_schema_of_create_all(db_url: str) -> None:
    engine = _engine(db_url)
    try:
        assert migrate.upgrade(engine) == (None, schema.SCHEMA_REVISION)
        assert _revisions(engine) == [schema.SCHEMA_REVISION]
        assert _differences(engine) == [], "the migrations differ from lockgate.store.schema"
        migrated = _snapshot(engine)
        assert set(migrated) == TABLES | {"alembic_version"}

        # The same database built the other way: create_all + stamp, as a first open does.
        with engine.begin() as conn:
            schema.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE alembic_version"))
        assert inspect(engine).get_table_names() == []
        Store(db_url).close()
        assert _snapshot(engine) == migrated
        assert _revisions(engine) == [schema.SCHEMA_REVISION]

        # Upgrading a database created by create_all is a no-op.
        assert migrate.upgrade(engine) == (schema.SCHEMA_REVISION, schema.SCHEMA_REVISION)
    finally:
        engine.dispose()


def test_an_older_revision_is_refused_with_the_upgrade_command(
    db_url: str, open_store: Callable[[], Store], lockgate: Any, tmp_path: Path
) -> None:
    open_store().close()
    _set_revision(db_url, "0000")
    with pytest.raises(StoreError, match=r"revision 0000, older .*run `lockgate db upgrade`"):
        Store(db_url)

    done = lockgate("runs", cwd=tmp_path, db_url=db_url)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and "lockgate db upgrade" in done.stderr
    assert "Traceback" not in done.stderr

    # `db upgrade` cannot go from a revision it does not know: a clear error, no traceback.
    done = lockgate("db", "upgrade", cwd=tmp_path, db_url=db_url)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "0000" in done.stderr and "Traceback" not in done.stderr


def test_a_newer_or_foreign_revision_is_refused(
    db_url: str, open_store: Callable[[], Store]
) -> None:
    open_store().close()
    _set_revision(db_url, "9999")
    with pytest.raises(StoreError, match=r"revision 9999, newer .*upgrade lockgate"):
        Store(db_url)
    _set_revision(db_url, "ae1027a6acf")  # another application's Alembic revision
    with pytest.raises(StoreError, match=r"revision 'ae1027a6acf'.*not one of lockgate's"):
        Store(db_url)


def test_db_upgrade_creates_then_keeps_the_schema(
    db_url: str, lockgate: Any, tmp_path: Path
) -> None:
    done = lockgate("db", "upgrade", cwd=tmp_path, db_url=db_url)
    assert done.returncode == 0, done.stderr
    assert f"upgraded from empty to revision {schema.SCHEMA_REVISION}" in done.stdout
    if db_url.startswith("postgresql"):
        assert "postgresql://postgres@127.0.0.1" in done.stdout

    done = lockgate("db", "upgrade", cwd=tmp_path, db_url=db_url)
    assert done.returncode == 0, done.stderr
    assert f"already at revision {schema.SCHEMA_REVISION}" in done.stdout

    store = Store(db_url)  # a migrated database opens without complaint
    try:
        assert _differences(store.engine) == []
        assert store.list_runs() == []
    finally:
        store.close()


def test_concurrent_first_opens_create_the_schema_once(db_url: str) -> None:
    """Several processes (here threads, each with its own Store) opening an empty database at
    the same moment: one creates the schema, none fails."""
    import threading

    errors: list[str] = []
    barrier = threading.Barrier(4)

    def first_open() -> None:
        barrier.wait()
        try:
            Store(db_url).close()
        except Exception as exc:  # reported below, with the others
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=first_open) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    engine = _engine(db_url)
    try:
        assert _revisions(engine) == [schema.SCHEMA_REVISION]
        assert _differences(engine) == []
    finally:
        engine.dispose()
