"""`store/transfer.py`: copying a project's metadata database into another one (SQLite to
PostgreSQL, PostgreSQL to SQLite, SQLite to SQLite), verifying the copy, and what is refused:
a non-empty target, the same database, a scheduler or a run still live, values that would
change on the way. A failure mid-copy (a constraint, a trigger, the target's connection
killed) leaves the target empty."""

from __future__ import annotations

import json
import secrets
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.pgdatabases import fresh_pg_database

from lockgate import api
from lockgate.auth import accounts, sessions
from lockgate.authoring.discovery import load_file
from lockgate.config import Project
from lockgate.errors import ConfigError, StoreError
from lockgate.execution import new_run_id
from lockgate.io import connections
from lockgate.store import notifications, webhooks
from lockgate.store.db import normalize_url, safe_url
from lockgate.store.dbapi import Database
from lockgate.store.scheduling import NewRun
from lockgate.store.store import Store
from lockgate.store.transfer import ACTION, migrate_to, tables

RETRIES = """
    from pathlib import Path

    from lockgate import pipeline, task

    HERE = Path(__file__).resolve().parent


    @task
    def extract() -> list[float]:
        return [1.5, 2.25, 3.0]


    @task(retries=2, retry_delay=0)
    def flaky(values: list[float]) -> float:
        marker = HERE / "flaky.marker"
        if not marker.exists():
            marker.write_text("failed once")
            raise RuntimeError("first attempt fails")
        return sum(values)


    @task
    def broken() -> None:
        raise ValueError("broken on purpose: ünïcödé ✓")


    @task
    def never(value: int) -> int:
        return value


    with pipeline("retries") as good:
        flaky(extract())

    with pipeline("failing") as bad:
        never(broken())
"""

DATA = """
id: data
tasks:
  stage:
    copy:
      source: {uri: in/customers.csv, tags: {email: pii.email}}
      target: work/customers.parquet
      checks: [{unique: id}, {not_null: [email], severity: warn}]
  publish:
    depends_on: stage
    produces: [file:///lake/customers.csv]
    copy:
      source: work/customers.parquet
      target: out/customers.csv
"""


def _fill(project: Project) -> Store:
    """A project's database after some real use: runs that retried, failed and wrote data
    (lineage, catalogue, quality, gate decisions, dataset updates), users, a grant, a token, a
    session, a connection with a sealed secret, a waiver, notifications, a webhook delivery
    with its queued run, paused flags, audit records and a signed checkpoint."""
    root = project.root
    (root / "pipelines" / "retries.py").write_text(_dedent(RETRIES), encoding="utf-8")
    (root / "pipelines" / "data.yaml").write_text(DATA, encoding="utf-8")
    (root / "in").mkdir()
    (root / "in" / "customers.csv").write_text(
        "id,email,country\n1,ann@example.org,DE\n2,bob@example.net,FR\n", encoding="utf-8"
    )
    found = {p.id: p for p in load_file(root / "pipelines" / "retries.py")}
    [data] = load_file(root / "pipelines" / "data.yaml")
    assert api.run(found["retries"], project=project).ok
    assert not api.run(found["failing"], project=project).ok
    assert api.run(data, project=project).ok, "the data pipeline failed"
    store = api.open_store(project)
    accounts.create_user(store, "alice", "admin", actor="test", password="correct horse battery")
    accounts.create_user(store, "bob", "viewer", actor="test")
    store.grant("bob", "data", "operator", actor="test")
    accounts.create_token(store, "alice", actor="test", label="ci")
    sessions.start(store, "alice", client="127.0.0.1")
    connections.save(
        store.db, project, "warehouse", "postgresql://etl:s3cret-pw@db.internal:5432/dw"
    )
    store.add_waiver(
        rule="gdpr.*",
        dataset="out/*.csv",
        columns=["email"],
        zone=None,
        owner="alice",
        reason="tested",
        expires_at=time.time() + 86400,
        actor="test",
    )
    notifications.add(
        store,
        [notifications.NewNotification("run_failed", "ops", "webhook", "failing", None, None, "x")],
    )
    now = time.time()
    run = NewRun(new_run_id(), "data", None, {}, "webhook", (now, now, now))
    webhooks.accept(
        store,
        "github",
        secrets.token_hex(8),
        "push",
        [run],
        body_sha256=secrets.token_hex(32),
        actor="github",
        detail={"ref": "main"},
    )
    store.register_pipelines(["data", "retries", "failing"])
    store.set_paused("failing", True)
    store.audit("test.note", "somewhere", {"n": 1, "text": "ünïcödé"}, actor="tester")
    assert store.audit_checkpoint() is not None
    store.audit("test.after_checkpoint", None, None, actor="tester")
    # rows the store only holds for a moment (a cancel request, a stopped scheduler's entry)
    mark = store.db.placeholder
    store.db.execute(
        f"INSERT INTO run_cancels (run_id, requested_at, requested_by) VALUES ({mark}, 1.0, 't')",
        ("gone",),
    )
    # a scheduler that stopped a moment ago (its process is gone, its row not yet stale)
    done = subprocess.Popen(["true"])
    done.wait()
    store.db.execute(
        "INSERT INTO schedulers (owner, wake_address, started_at, heartbeat_at) "
        f"VALUES ({mark}, NULL, {mark}, {mark})",
        (f"{socket.gethostname()}:{done.pid}:1:", time.time(), time.time()),
    )
    return store


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).lstrip()


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, read with the plain drivers (not the code under test)."""
    db = Database(url)
    out: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with db.transaction(write=False) as cur:
            for table in tables():
                cols = ", ".join(f'"{c}"' for c in table.columns)
                cur.execute(f"SELECT {cols} FROM {table.name}")
                out[table.name] = sorted((tuple(r) for r in cur.fetchall()), key=_order)
    finally:
        db.close()
    return out


def _order(row: tuple[Any, ...]) -> tuple[tuple[bool, Any], ...]:
    return tuple((v is None, 0 if v is None else v) for v in row)


@pytest.fixture
def other_pg(pg_server: str) -> Iterator[str]:
    """A second fresh PostgreSQL database (the test's `pg_url` may be the source)."""
    with fresh_pg_database(pg_server, "target") as url:
        yield url


def _target(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'copy' / 'copied.db'}"
    return str(request.getfixturevalue("other_pg"))


@pytest.mark.parametrize(
    "target_kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_used_database_is_copied_table_by_table_and_verified(
    proj: Project, tmp_path: Path, request: pytest.FixtureRequest, target_kind: str
) -> None:
    source = _fill(proj)
    target = _target(target_kind, tmp_path, request)
    before = _dump(proj.db_url)
    empty = sorted(name for name, rows in before.items() if not rows)
    assert not empty, f"the realistic state leaves tables empty: {empty}"
    head = source.audit_head()
    assert head is not None

    done = migrate_to(source, target, actor="tester@host", batch_rows=7)  # several rounds

    assert [t.table for t in done.tables] == [t.name for t in tables()]
    assert {t.table: t.rows for t in done.tables} == {k: len(v) for k, v in before.items()}
    assert done.rows == sum(len(v) for v in before.values())
    assert done.audit_head == head["seq"] and done.audit_records == head["seq"]
    assert done.audit_seq == head["seq"] + 1
    after = _dump(target)
    assert _dump(proj.db_url) == before  # the source is untouched
    for name, rows in before.items():
        if name in ("audit_log", "audit_head"):
            continue  # one record more: the migration's own
        assert after[name] == rows, name
    assert after["audit_log"][: len(before["audit_log"])] == before["audit_log"]

    copy = Store(target, keys=source.audit_keys)
    try:
        finding = copy.audit_verify()
        assert finding.ok and finding.records == head["seq"] + 1, finding
        [last] = copy.audit_records(after=head["seq"])
        assert last.action == ACTION and last.actor == "tester@host"
        assert last.prev_hash == head["hash"]  # the copied chain continues, unchanged
        assert last.target == safe_url(proj.db_url)
        detail = json.loads(last.detail or "{}")
        assert detail["rows"]["runs"] == len(before["runs"]) and detail["tables"] == len(before)
        # the project works on the copy: same runs, and new ids follow the copied ones
        moved = Project.load(proj.root)
        moved.db_url = target
        listed = api.open_store(moved).list_runs(limit=100)
        assert {r["id"] for r in listed} == {r["id"] for r in source.list_runs(limit=100)}
        [again] = [
            p for p in load_file(proj.root / "pipelines" / "retries.py") if p.id == "failing"
        ]
        result = api.run(again, project=moved)
        max_event = max(row[0] for row in before["events"])
        assert min(e["id"] for e in copy.events(result.run_id)) > max_event
        assert api.open_store(moved).audit_verify().ok
    finally:
        copy.close()


@pytest.mark.postgres
def test_postgresql_to_sqlite_for_a_backup(project: Project, pg_url: str, tmp_path: Path) -> None:
    project.db_url = pg_url
    source = _fill(project)
    before = _dump(pg_url)
    target = f"sqlite:///{tmp_path / 'backup.db'}"
    done = migrate_to(source, target, actor="tester")
    after = _dump(target)
    assert {k: v for k, v in after.items() if not k.startswith("audit_")} == {
        k: v for k, v in before.items() if not k.startswith("audit_")
    }
    assert done.audit_records == len(before["audit_log"])


def test_a_target_that_holds_rows_is_refused_and_both_stay_as_they_were(
    project: Project, tmp_path: Path
) -> None:
    source = _fill(project)
    target = f"sqlite:///{tmp_path / 'taken.db'}"
    other = Store(target, keys=source.audit_keys)
    accounts.create_user(other, "carol", "viewer", actor="test")
    other.close()
    before, taken = _dump(project.db_url), _dump(target)
    with pytest.raises(ConfigError, match=r"is not empty: table \w+ holds rows; migrate into a"):
        migrate_to(source, target, actor="t")
    assert _dump(project.db_url) == before and _dump(target) == taken


def test_the_projects_own_database_is_refused(project: Project) -> None:
    source = _fill(project)
    path = normalize_url(project.db_url).split(":///", 1)[1]
    link = project.root / "same.db"
    link.symlink_to(path)
    for url in (project.db_url, f"sqlite:///{link}"):
        with pytest.raises(ConfigError, match="is the project's own metadata database"):
            migrate_to(source, url, actor="t")


@pytest.mark.parametrize(
    "breakage",
    [
        "sqlite trigger",
        pytest.param("postgresql constraint", marks=pytest.mark.postgres),
        pytest.param("postgresql connection killed", marks=pytest.mark.postgres),
    ],
)
def test_a_failure_mid_copy_leaves_the_target_empty(
    project: Project, tmp_path: Path, request: pytest.FixtureRequest, breakage: str
) -> None:
    source = _fill(project)
    target = _target(breakage.split()[0], tmp_path, request)
    Store(target).close()  # the schema, to break a table late in the copy
    if breakage == "sqlite trigger":
        with sqlite3.connect(normalize_url(target).split(":///", 1)[1]) as conn:
            conn.execute(
                "CREATE TRIGGER boom BEFORE INSERT ON task_runs BEGIN "
                "SELECT RAISE(ABORT, 'refused by a trigger'); END"
            )
    else:
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            if breakage == "postgresql constraint":
                conn.execute("ALTER TABLE task_runs ADD CONSTRAINT tiny CHECK (attempts > 5)")
            else:
                conn.execute(
                    "CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$"
                )
                conn.execute(
                    "CREATE TRIGGER die BEFORE INSERT ON task_runs FOR EACH ROW EXECUTE FUNCTION die()"
                )
    before = _dump(project.db_url)
    with pytest.raises(
        StoreError, match="copying table task_runs into .* the target was left empty"
    ):
        migrate_to(source, target, actor="t")
    assert all(not rows for rows in _dump(target).values())
    assert _dump(project.db_url) == before


def test_a_live_scheduler_or_a_running_run_is_refused(project: Project, tmp_path: Path) -> None:
    source = _fill(project)
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    # a scheduler on another machine, still beating
    source.db.execute(
        "INSERT INTO schedulers (owner, wake_address, started_at, heartbeat_at) "
        "VALUES (?, NULL, ?, ?)",
        ("otherhost:42:1:?", time.time(), time.time()),
    )
    with pytest.raises(ConfigError, match=r"a scheduler \(otherhost:42\) is running on"):
        migrate_to(source, target, actor="t")
    source.db.execute("DELETE FROM schedulers WHERE owner = ?", ("otherhost:42:1:?",))

    # a run this process is driving: its task waits for a file
    gate = tmp_path / "go"
    (project.root / "pipelines" / "slow.py").write_text(
        _dedent(
            f"""
            import time
            from pathlib import Path

            from lockgate import pipeline, task


            @task
            def wait() -> None:
                while not Path({str(gate)!r}).exists():
                    time.sleep(0.02)


            with pipeline("slow") as slow:
                wait()
            """
        ),
        encoding="utf-8",
    )
    [slow] = load_file(project.root / "pipelines" / "slow.py")
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(api.run(slow, project=project)))
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while not source.list_runs(pipeline_id="slow", state="running"):
            assert time.monotonic() < deadline, "the slow run did not start"
            time.sleep(0.02)
        with pytest.raises(ConfigError, match=r"run \S+ is running .*let it finish or cancel it"):
            migrate_to(source, target, actor="t")
    finally:
        gate.touch()
        worker.join(30)
    assert outcome and outcome[0].ok
    assert migrate_to(source, target, actor="t").audit_records > 0


def test_a_value_that_would_change_on_the_way_is_refused(project: Project, tmp_path: Path) -> None:
    source = _fill(project)
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    with sqlite3.connect(normalize_url(project.db_url).split(":///", 1)[1]) as conn:
        # SQLite keeps a non-integral number in an integer column; copying it as 1 would lie
        conn.execute("UPDATE task_runs SET attempts = 1.5 WHERE task_id = 'extract'")
    with pytest.raises(
        StoreError, match="table task_runs, column attempts holds a float value where an integer"
    ):
        migrate_to(source, target, actor="t")
    assert all(not rows for rows in _dump(target).values())


def test_a_broken_source_chain_is_refused_before_anything_is_copied(
    project: Project, tmp_path: Path
) -> None:
    source = _fill(project)
    source.db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    target = tmp_path / "copy.db"
    with pytest.raises(StoreError, match=r"the audit chain of .* does not verify \(record 2 was"):
        migrate_to(source, f"sqlite:///{target}", actor="t")
    with sqlite3.connect(target) as conn:  # not even the schema was made
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone() == (0,)
