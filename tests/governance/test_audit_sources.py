"""What lands in the audit chain: a run's state changes (one record per batch of events, in the
commit that writes them), a new pipeline version, runs recovered after their process died,
connection changes (field names, never secret values) and secret reads, inside a task (a
`SecretRead` event) and outside one."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.authoring.discovery import load_file
from lockgate.config import Project
from lockgate.execution import open_store
from lockgate.io.connections import apply, remove, save
from lockgate.io.dataset import Dataset
from lockgate.privacy.keys import ensure_key_file, keys_file_of
from lockgate.store.store import Store

FLOW = """
from lockgate import pipeline, task


@task
def extract() -> int:
    return 1


@task
def load(n: int) -> int:
    return n + 1


with pipeline("audited") as p:
    load(extract())
"""

READS_SECRET = """
from lockgate import pipeline, task


@task
def reach() -> str:
    from lockgate.io.connections import apply
    from lockgate.io.dataset import Dataset

    return apply(Dataset("orders", connection="wh")).uri.split("@")[-1]


with pipeline("secretive") as p:
    reach()
"""

PASSWORD = "s3cr3t-pa55"


def _load(folder: Path, source: str, name: str) -> Any:
    path = folder / "pipelines" / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return {p.id: p for p in load_file(path)}


def _events_of(store: Store, run_id: str) -> list[list[Any]]:
    """The event rows the chain holds for a run, in order."""
    rows: list[list[Any]] = []
    for record in store.audit_records(limit=10_000):
        if record.action == "events" and record.detail:
            rows += [r for r in json.loads(record.detail) if r[0] == run_id]
    return rows


@pytest.fixture
def proj(project: Project, db_url: str) -> Project:
    project.db_url = db_url
    return project


def test_a_run_and_its_pipeline_version_land_in_the_chain(proj: Project) -> None:
    pipe = _load(proj.root, FLOW, "audited")["audited"]
    result = lockgate.run(pipe, project=proj)
    assert result.ok
    store = open_store(proj)
    records = store.audit_records(limit=1000)
    versions = [r for r in records if r.action == "pipeline.version"]
    assert len(versions) == 1 and versions[0].target == "audited"
    detail = json.loads(versions[0].detail or "{}")
    assert detail["pipeline"] == "audited" and detail["hash"] == pipe.fingerprint()
    assert detail["file"] == pipe.file
    batches = [r for r in records if r.action == "events"]
    assert batches and all(r.run_id == result.run_id for r in batches)
    assert all(r.actor == store.owner for r in batches)  # the process that ran it
    rows = _events_of(store, result.run_id)
    stored = store.events(result.run_id)
    # every state change, in order, exactly as the events table holds it
    assert [(r[2], r[3], r[5]) for r in rows] == [
        (e["kind"], e["task_id"], e["state"]) for e in stored
    ]
    kinds = [r[2] for r in rows]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert kinds.count("TaskSucceeded") == 2
    assert store.audit_verify().ok
    # the same definition again: a new run, no new version record
    lockgate.run(pipe, project=proj)
    assert [r.action for r in store.audit_records(limit=1000)].count("pipeline.version") == 1


def test_a_lost_run_found_on_opening_is_audited(proj: Project) -> None:
    store = open_store(proj)
    store.create_run("20261124T000000-dead00", "p", None, {}, "threads")
    store.release_run("20261124T000000-dead00")
    dead = "somehost:999999:1:x"  # another host, no heartbeat for long: dead
    store.db.execute(
        "UPDATE runs SET owner = ?, heartbeat_at = 0 WHERE id = ?",
        (dead, "20261124T000000-dead00"),
    )
    assert store.recover_lost() == ["20261124T000000-dead00"]
    rows = _events_of(store, "20261124T000000-dead00")
    assert [(r[2], r[5]) for r in rows] == [("RunFinished", "lost")]
    assert store.audit_verify().ok


def test_connection_changes_are_audited_without_secret_values(proj: Project) -> None:
    ensure_key_file(keys_file_of(proj))
    store = Store(proj.db_url)
    try:
        save(
            store.db,
            proj,
            "wh",
            f"postgresql://etl:{PASSWORD}@db.internal:5432/dw",
            options={"sslmode": "require"},
            actor="ann@laptop",
        )
        save(
            store.db,
            proj,
            "wh",
            "postgresql://etl@db.internal:5432/dw",
            secrets={"password": PASSWORD},
            replace=True,
        )
        remove(store.db, proj, "wh", actor="ann@laptop")
        records = open_store(proj).audit_records(limit=100)
        changes = [r for r in records if r.action.startswith("connection.")]
        assert [r.action for r in changes] == [
            "connection.add",
            "connection.set",
            "connection.remove",
        ]
        added, replaced, removed = (json.loads(r.detail or "{}") for r in changes)
        assert changes[0].actor == "ann@laptop" and "@" in changes[1].actor
        assert added == {
            "name": "wh",
            "kind": "postgresql",
            "url": "postgresql://etl@db.internal:5432/dw",
            "changed": ["kind", "url", "options.sslmode", "secrets.password"],
            "secrets": ["password"],
        }
        assert replaced["changed"] == ["options.sslmode", "secrets.password"]
        assert removed == {"name": "wh", "kind": "postgresql", "url": added["url"]}
        every = store.db.rows("SELECT * FROM audit_log")
        assert PASSWORD not in json.dumps(every)
        assert open_store(proj).audit_verify().ok
    finally:
        store.close()


def test_secret_reads_are_audited_inside_and_outside_a_run(
    proj: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCKGATE_DB_URL", proj.db_url)  # what the task's Project.load() sees
    ensure_key_file(keys_file_of(proj))
    store = open_store(proj)
    save(
        store.db, proj, "wh", "postgresql://etl@db.internal:5432/dw", secrets={"password": PASSWORD}
    )
    # outside a run: a record of its own
    assert apply(Dataset("orders", connection="wh"), proj).uri.endswith("#orders")
    reads = [r for r in store.audit_records(limit=100) if r.action == "secret.read"]
    assert len(reads) == 1 and reads[0].target == "wh"
    detail = json.loads(reads[0].detail or "{}")
    assert detail == {"name": "wh", "source": "connection", "fields": ["password"]}
    # inside a task: a SecretRead event of its attempt, in the run's batch
    pipe = _load(proj.root, READS_SECRET, "secretive")["secretive"]
    result = lockgate.run(pipe, project=proj, executor="threads")
    assert result.ok, result.tasks["reach"].error
    facts = [r for r in _events_of(store, result.run_id) if r[2] == "SecretRead"]
    assert len(facts) == 1 and facts[0][3] == "reach"
    assert json.loads(facts[0][6]) == {"name": "wh", "source": "connection", "fields": ["password"]}
    assert PASSWORD not in json.dumps(store.db.rows("SELECT detail FROM audit_log"))
    assert store.audit_verify().ok


def test_a_store_opened_without_keys_refuses_audited_writes(proj: Project) -> None:
    store = Store(proj.db_url)
    try:
        from lockgate.errors import StoreError

        with pytest.raises(StoreError) as exc:
            store.audit("x")
        assert "\n" not in str(exc.value)
        assert "was opened without the project's audit key" in str(exc.value)
        with pytest.raises(StoreError):
            store.writer()
        assert store.audit_count() == 0 and store.audit_head() is None  # reading needs none
        with pytest.raises(StoreError):
            store.audit_verify()  # checking MACs does
    finally:
        store.close()
