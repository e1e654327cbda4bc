"""What a run leaves in the metadata store, group commit, write failures, retention and
run lookup, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from lockgate import api
from lockgate.authoring.discovery import load_file
from lockgate.config import Project
from lockgate.engine import events as ev
from lockgate.engine.events import Event, EventBus
from lockgate.errors import NotFoundError, StoreError
from lockgate.model.pipeline import Pipeline
from lockgate.privacy.keys import Keyring
from lockgate.store import schema as s
from lockgate.store.store import Store

RECORDED = """
    from pathlib import Path

    from lockgate import pipeline, shell, task

    HERE = Path(__file__).resolve().parent


    @task
    def extract() -> list[int]:
        return [1, 2, 3]


    @task(retries=1, retry_delay=0)
    def flaky(values: list[int]) -> int:
        marker = HERE / "flaky.marker"
        if not marker.exists():
            marker.write_text("failed once")
            raise RuntimeError("first attempt fails")
        return sum(values)


    @task
    def broken() -> None:
        raise ValueError("broken on purpose")


    @task
    def never(value: int) -> int:
        return value


    with pipeline("recorded") as good:
        total = flaky(extract())
        shell("report", 'echo "total=$TOTAL"', env={"TOTAL": total})

    with pipeline("failing") as bad:
        never(broken())
"""


def _load(path: Path) -> dict[str, Pipeline]:
    return {p.id: p for p in load_file(path)}


def _by_task(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["task_id"], []).append(row)
    return out


def _count(store: Store, table: Any, run_id: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(table).where(table.c.run_id == run_id)
            ).scalar_one()
        )


def test_a_run_records_everything(
    proj: Project, write_pipeline: Any, open_store: Callable[[], Store]
) -> None:
    path = write_pipeline(proj.root / "pipelines" / "recorded.py", RECORDED)
    pipe = _load(path)["recorded"]
    result = api.run(pipe, project=proj)
    assert result.ok, result.to_json()
    store = open_store()
    run_id = result.run_id

    run = store.get_run(run_id)
    assert run is not None
    assert run["state"] == "success" and run["pipeline_id"] == "recorded"
    assert run["executor"] == "threads" and run["trigger"] == "manual"
    assert run["created_at"] <= run["started_at"] <= run["ended_at"]
    assert run["error"] is None and run["owner"]
    assert json.loads(run["params"]) == {}

    version = store.version(run["version_id"])
    assert version is not None
    assert version["pipeline_id"] == "recorded"
    assert version["hash"] == pipe.fingerprint()
    assert version["file"] == str(path)
    assert version["source"] == path.read_text(encoding="utf-8")

    states = {row["task_id"]: row for row in store.task_states(run_id)}
    assert {t: r["state"] for t, r in states.items()} == {
        "extract": "success",
        "flaky": "success",
        "report": "success",
    }
    assert states["flaky"]["attempts"] == 2
    assert states["flaky"]["error"] is None  # the error of attempt 1 is not the task's any more

    attempts = _by_task(store.attempts(run_id))
    assert [(a["attempt"], a["state"]) for a in attempts["flaky"]] == [
        (1, "failed"),
        (2, "success"),
    ]
    first, second = attempts["flaky"]
    assert "first attempt fails" in first["error"] and second["error"] is None
    assert first["started_at"] <= first["ended_at"] <= second["started_at"] <= second["ended_at"]
    report = attempts["report"][0]
    assert report["state"] == "success" and report["log_path"]
    assert "total=6" in Path(report["log_path"]).read_text(encoding="utf-8")

    events = store.events(run_id)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(a["ts"] <= b["ts"] for a, b in zip(events, events[1:], strict=False))
    assert events[0]["kind"] == ev.RUN_STARTED and events[-1]["kind"] == ev.RUN_FINISHED
    assert events[-1]["state"] == "success"
    flaky = [(e["kind"], e["attempt"]) for e in events if e["task_id"] == "flaky"]
    assert flaky == [
        (ev.TASK_QUEUED, 1),
        (ev.TASK_STARTED, 1),
        (ev.TASK_RETRYING, 1),
        (ev.TASK_QUEUED, 2),
        (ev.TASK_STARTED, 2),
        (ev.TASK_SUCCEEDED, 2),
    ]
    order = [e["task_id"] for e in events if e["kind"] == ev.TASK_SUCCEEDED]
    assert order == ["extract", "flaky", "report"]
    succeeded = next(
        e for e in events if e["kind"] == ev.TASK_SUCCEEDED and e["task_id"] == "extract"
    )
    results = store.results(run_id)
    assert json.loads(succeeded["data"])["result_bytes"] == len(results["extract"])
    assert "result_json" not in succeeded["data"]  # results live in their own table
    assert json.loads(results["extract"]) == [1, 2, 3]
    assert json.loads(results["flaky"]) == 6
    with store.engine.connect() as conn:
        size = conn.execute(
            select(s.results.c.size).where(
                s.results.c.run_id == run_id, s.results.c.task_id == "flaky"
            )
        ).scalar_one()
    assert size == len(results["flaky"])


def test_a_failed_run_records_errors_and_upstream_failures(
    proj: Project, write_pipeline: Any, open_store: Callable[[], Store]
) -> None:
    path = write_pipeline(proj.root / "pipelines" / "recorded.py", RECORDED)
    result = api.run(_load(path)["failing"], project=proj)
    assert result.state.value == "failed"
    store = open_store()
    assert store.get_run(result.run_id)["state"] == "failed"  # type: ignore[index]
    states = {r["task_id"]: r for r in store.task_states(result.run_id)}
    assert states["broken"]["state"] == "failed"
    assert "broken on purpose" in states["broken"]["error"]
    assert states["never"]["state"] == "upstream_failed"
    attempts = _by_task(store.attempts(result.run_id))
    assert [a["state"] for a in attempts["broken"]] == ["failed"]
    assert "never" not in attempts  # it never started, so it has no attempt
    assert store.results(result.run_id) == {}
    assert store.events(result.run_id)[-1]["state"] == "failed"


def test_versions_are_reused_for_the_same_definition_and_added_for_a_changed_one(
    proj: Project, write_pipeline: Any, open_store: Callable[[], Store]
) -> None:
    path = proj.root / "pipelines" / "versioned.py"
    body = """
        from lockgate import pipeline, shell

        with pipeline("versioned") as p:
            shell("hello", "echo {word}")
    """
    write_pipeline(path, body.format(word="one"))
    first = api.run(_load(path)["versioned"], project=proj)
    second = api.run(_load(path)["versioned"], project=proj)
    write_pipeline(path, body.format(word="two"))
    changed = _load(path)["versioned"]
    third = api.run(changed, project=proj)
    assert first.ok and second.ok and third.ok

    store = open_store()
    version_ids = [
        store.get_run(r.run_id)["version_id"]  # type: ignore[index]
        for r in (first, second, third)
    ]
    assert version_ids[0] == version_ids[1] != version_ids[2]
    newest = store.version(version_ids[2])
    assert newest is not None and newest["hash"] == changed.fingerprint()
    assert "echo two" in newest["source"]
    assert "echo one" in store.version(version_ids[0])["source"]  # type: ignore[index]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(s.pipeline_versions)).scalar_one() == 2


WIDE = """
    from lockgate import pipeline, task


    @task
    def noop(i: int) -> int:
        return i


    with pipeline("wide") as p:
        for i in range(300):
            noop(i)
"""


def test_group_commit_writes_far_fewer_transactions_than_events(
    proj: Project, write_pipeline: Any, open_store: Callable[[], Store]
) -> None:
    pipe = _load(write_pipeline(proj.root / "pipelines" / "wide.py", WIDE))["wide"]
    store = open_store()
    commits = 0
    lock = threading.Lock()
    write_events = store.write_events  # each call is one transaction

    def counting(batch: list[Event]) -> None:
        nonlocal commits
        with lock:
            commits += 1
        write_events(batch)

    store.write_events = counting  # type: ignore[method-assign]
    result = api.run(pipe, project=proj, store=store)
    del store.write_events
    assert result.ok
    # api.run returns only after the writer flushed: every event is already in the database.
    events = store.events(result.run_id, limit=100_000)
    assert len(events) == 2 + 3 * 300  # run started/finished + queued/started/succeeded each
    assert len(store.results(result.run_id)) == 300
    assert {r["state"] for r in store.task_states(result.run_id)} == {"success"}
    assert store.get_run(result.run_id)["state"] == "success"  # type: ignore[index]
    # the events need only a handful of batched transactions
    assert 1 <= commits <= len(events) / 10, f"{commits} commits for {len(events)} events"


def test_all_events_are_written_after_flush(open_store: Callable[[], Store]) -> None:
    store = open_store()
    store.create_run("flushrun-1", "p", None, {}, "threads")
    writer = store.writer()
    try:
        now = time.time()
        writer(Event(ev.RUN_STARTED, "flushrun-1", now, state="running"))
        for i in range(500):
            tid = f"t{i}"
            writer(Event(ev.TASK_STARTED, "flushrun-1", now, tid, 1, "running"))
            writer(
                Event(
                    ev.TASK_SUCCEEDED, "flushrun-1", now, tid, 1, "success", {"result_json": str(i)}
                )
            )
        writer.flush()
        assert len(store.events("flushrun-1", limit=10_000)) == 1001
        assert len(store.results("flushrun-1")) == 500
        assert len(store.attempts("flushrun-1")) == 500
    finally:
        writer.close()


def test_flush_raises_a_store_error_when_the_database_cannot_be_written(
    proj: Project, open_store: Callable[[], Store]
) -> None:
    store = open_store()
    store.create_run("doomed-1", "p", None, {}, "threads")
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE events"))
    writer = store.writer()
    try:
        writer(Event(ev.RUN_STARTED, "doomed-1", time.time(), state="running"))
        began = time.monotonic()
        with pytest.raises(StoreError, match="could not write run state to the metadata database"):
            writer.flush(timeout=30)
        assert time.monotonic() - began < 15  # a few quick retries, then the error: no hang
        # later events fail the same way, at once
        writer(Event(ev.RUN_FINISHED, "doomed-1", time.time(), state="success"))
        began = time.monotonic()
        with pytest.raises(StoreError):
            writer.flush(timeout=30)
        assert time.monotonic() - began < 15
        began = time.monotonic()
    finally:
        with pytest.raises(StoreError):
            writer.close()
    assert time.monotonic() - began < 3  # closing does not retry every remaining batch
    assert not writer._thread.is_alive()


def test_a_run_whose_state_cannot_be_written_fails_loudly(
    project: Project, write_pipeline: Any
) -> None:
    path = write_pipeline(project.root / "pipelines" / "recorded.py", RECORDED)
    pipe = _load(path)["recorded"]
    store = Store(project.db_url, keys=Keyring.generate())
    try:
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE task_attempts"))
        with pytest.raises(StoreError, match="could not write run state"):
            api.run(pipe, project=project, store=store)
        # the run is no longer this process's: a heartbeat must not touch it any more
        assert store._active == set()
    finally:
        store.close()


def _fake_run(store: Store, run_id: str, state: str, age_s: float, pipeline_id: str = "p") -> None:
    """A run with one task, its attempt, events and result, created `age_s` seconds ago."""
    store.create_run(run_id, pipeline_id, None, {}, "threads")
    writer = store.writer()
    try:
        now = time.time()
        writer(Event(ev.RUN_STARTED, run_id, now, state="running"))
        writer(Event(ev.TASK_STARTED, run_id, now, "t", 1, "running"))
        if state != "running":
            writer(Event(ev.TASK_SUCCEEDED, run_id, now, "t", 1, "success", {"result_json": "1"}))
            writer(Event(ev.RUN_FINISHED, run_id, now, state=state))
    finally:
        writer.close()
    store.release_run(run_id)
    with store.engine.begin() as conn:
        conn.execute(
            s.runs.update().where(s.runs.c.id == run_id).values(created_at=time.time() - age_s)
        )


def test_clean_deletes_old_finished_runs_only(open_store: Callable[[], Store]) -> None:
    store = open_store()
    day = 86400.0
    _fake_run(store, "old-success", "success", 40 * day)
    _fake_run(store, "old-failed", "failed", 35 * day)
    _fake_run(store, "old-running", "running", 40 * day)
    _fake_run(store, "recent-success", "success", 2 * day)
    with store.engine.begin() as conn:  # an old version no run uses, and one a kept run uses
        conn.execute(
            s.pipeline_versions.insert(),
            [
                {"pipeline_id": "p", "hash": "orphan", "created_at": time.time() - 40 * day},
                {"pipeline_id": "p", "hash": "used", "created_at": time.time() - 40 * day},
            ],
        )
        used = conn.execute(
            select(s.pipeline_versions.c.id).where(s.pipeline_versions.c.hash == "used")
        ).scalar_one()
        conn.execute(s.runs.update().where(s.runs.c.id == "old-running").values(version_id=used))

    assert sorted(r for _, r in store.clean(30 * day, dry_run=True)) == [
        "old-failed",
        "old-success",
    ]
    assert store.get_run("old-success") is not None  # a dry run deletes nothing

    deleted = store.clean(30 * day)
    assert sorted(deleted) == [("p", "old-failed"), ("p", "old-success")]
    for run_id in ("old-success", "old-failed"):
        assert store.get_run(run_id) is None
        for table in (s.events, s.results, s.task_attempts, s.task_runs):
            assert _count(store, table, run_id) == 0, (table.name, run_id)
    for run_id in ("old-running", "recent-success"):
        assert store.get_run(run_id) is not None
        assert _count(store, s.events, run_id) > 0
        assert _count(store, s.task_attempts, run_id) == 1
    assert len(store.results("recent-success")) == 1
    with store.engine.connect() as conn:
        hashes = {r[0] for r in conn.execute(select(s.pipeline_versions.c.hash))}
    assert hashes == {"used"}
    assert store.clean(30 * day) == []  # nothing left to delete


def test_db_clean_command(
    db_url: str, open_store: Callable[[], Store], lockgate: Any, tmp_path: Path
) -> None:
    store = open_store()
    _fake_run(store, "ancient", "success", 10 * 86400.0, pipeline_id="cleaned")
    _fake_run(store, "fresh", "success", 60.0, pipeline_id="cleaned")
    logs = tmp_path / ".lockgate" / "logs" / "cleaned"
    (logs / "ancient").mkdir(parents=True)
    (logs / "fresh").mkdir(parents=True)

    done = lockgate("db", "clean", "--older-than", "7d", "--dry-run", cwd=tmp_path, db_url=db_url)
    assert done.returncode == 0, done.stderr
    assert "would delete 1 run(s)" in done.stdout
    assert store.get_run("ancient") is not None

    done = lockgate("db", "clean", "--older-than", "7d", cwd=tmp_path, db_url=db_url)
    assert done.returncode == 0, done.stderr
    assert "deleted 1 run(s) older than 7d" in done.stdout
    assert store.get_run("ancient") is None and store.get_run("fresh") is not None
    assert not (logs / "ancient").exists() and (logs / "fresh").is_dir()

    done = lockgate("db", "clean", "--older-than", "soon", cwd=tmp_path, db_url=db_url)
    assert done.returncode == 2 and "invalid duration" in done.stderr


def test_list_runs_and_find_run_by_prefix(open_store: Callable[[], Store]) -> None:
    store = open_store()
    ids = [
        "20261101T100000-aaaaaa",
        "20261101T100000-aaaabb",
        "20261102T090000-cccccc",
        "20261103T080000-dddddd",
    ]
    for i, run_id in enumerate(ids):
        store.create_run(run_id, "alpha" if i % 2 == 0 else "beta", None, {"i": i}, "threads")
        store.release_run(run_id)
        with store.engine.begin() as conn:
            conn.execute(
                s.runs.update()
                .where(s.runs.c.id == run_id)
                .values(created_at=1_000_000.0 + i, state="success" if i < 3 else "failed")
            )

    assert [r["id"] for r in store.list_runs()] == ids[::-1]  # newest first
    assert [r["id"] for r in store.list_runs(limit=2)] == ids[:1:-1]
    assert [r["id"] for r in store.list_runs(pipeline_id="alpha")] == [ids[2], ids[0]]
    assert [r["id"] for r in store.list_runs(state="failed")] == [ids[3]]
    assert store.list_runs(pipeline_id="alpha", state="failed") == []
    assert store.list_runs(pipeline_id="nobody") == []

    assert store.find_run(ids[1])["id"] == ids[1]  # type: ignore[index]
    assert store.find_run("20261102")["id"] == ids[2]  # type: ignore[index]
    assert store.find_run("20261101T100000-aaaab")["id"] == ids[1]  # type: ignore[index]
    for ambiguous in ("20261101T100000-aaaa", "2026110"):
        with pytest.raises(NotFoundError, match="matches several runs"):
            store.find_run(ambiguous)
    assert store.find_run("nope") is None
    # LIKE wildcards in what the user typed are literal characters, not patterns
    assert store.find_run("20261103T080000_") is None
    assert store.find_run("2026110_T") is None
    assert store.find_run("%dddddd") is None
    assert store.find_run("%") is None
    assert json.loads(store.find_run("20261103")["params"]) == {"i": 3}  # type: ignore[index]


def test_an_event_bus_subscriber_sees_what_the_store_wrote(
    proj: Project, write_pipeline: Any, open_store: Callable[[], Store]
) -> None:
    """The store writes exactly the events the bus carried, in the order they were published."""
    path = write_pipeline(proj.root / "pipelines" / "recorded.py", RECORDED)
    seen: list[Event] = []
    bus = EventBus()
    bus.subscribe(seen.append)
    result = api.run(_load(path)["recorded"], project=proj, bus=bus)
    stored = open_store().events(result.run_id)
    assert [(e["kind"], e["task_id"], e["attempt"], e["state"]) for e in stored] == [
        (e.kind, e.task_id, e.attempt, e.state) for e in seen
    ]
