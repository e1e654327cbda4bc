"""The crash test (acceptance criterion): a `lockgate run` killed with SIGKILL in the middle of
its run leaves a `lost` run that `lockgate resume` continues without redoing finished work.
Also the errors of `resume` itself."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockgate import api
from lockgate.config import Project
from lockgate.errors import ConfigError, NotFoundError
from lockgate.privacy.keys import Keyring
from lockgate.store.store import Store

CRASHY = """
    import time
    from pathlib import Path

    from lockgate import pipeline, task

    HERE = Path(__file__).resolve().parent


    def nap() -> None:
        # read at run time, so that the resumed run can be quick
        time.sleep(float((HERE / "sleep_s").read_text()))


    @task
    def a() -> dict:
        with open(HERE / "a_runs.txt", "a", encoding="utf-8") as fh:
            fh.write("ran\\n")
        return {"value": 42}


    @task(retries=1, retry_delay=0)
    def b(x: dict) -> int:
        nap()
        return x["value"] + 1


    @task(retries=0)
    def c(x: dict) -> str:
        nap()
        return "c done"


    @task
    def d(y: int) -> int:
        return y * 2


    with pipeline("crashy") as p:
        va = a()
        vb = b(va)
        c(va)
        d(vb)
"""


def _by_task(rows: list[dict[str, Any]]) -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for row in rows:
        out.setdefault(row["task_id"], []).append((row["attempt"], row["state"]))
    return out


@contextlib.contextmanager
def _killed_on_exit(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Whatever happens, the process and anything it started are gone afterwards."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)


def test_a_killed_run_is_lost_and_resume_continues_it(
    db_url: str, tmp_path: Path, lockgate: Any, write_pipeline: Any, poll: Any
) -> None:
    root = tmp_path / "proj"
    write_pipeline(root / "pipeline.py", CRASHY)
    (root / "sleep_s").write_text("30")
    # SQLite: the project's default database; PostgreSQL: through LOCKGATE_DB_URL.
    url = None if db_url.startswith("sqlite") else db_url
    store = Store(url or f"sqlite:///{root / '.lockgate' / 'lockgate.db'}")
    try:
        proc = lockgate.start("run", "pipeline.py", "--json", cwd=root, db_url=url)
        with _killed_on_exit(proc):

            def b_and_c_running() -> str | None:
                if proc.poll() is not None:
                    out, err = proc.communicate()
                    pytest.fail(f"lockgate run ended early ({proc.returncode}): {out}{err}")
                runs = store.list_runs()
                if not runs:
                    return None
                states = _by_task(store.attempts(runs[0]["id"]))
                running = states.get("b") == [(1, "running")] and states.get("c") == [
                    (1, "running")
                ]
                return runs[0]["id"] if running else None

            run_id = str(poll(b_and_c_running, 30, "tasks b and c to be running"))
            os.killpg(proc.pid, signal.SIGKILL)  # the process and any child it has
            proc.wait(timeout=10)  # reaped: a zombie would still look alive
        assert proc.returncode == -signal.SIGKILL

        # Opening the project notices the dead owner.
        done = lockgate("runs", "--json", cwd=root, db_url=url)
        assert done.returncode == 0, done.stderr
        (run,) = json.loads(done.stdout)["runs"]
        assert run["id"] == run_id and run["state"] == "lost"
        assert f"lockgate resume {run_id}" in run["error"]
        attempts = _by_task(store.attempts(run_id))
        assert attempts == {"a": [(1, "success")], "b": [(1, "lost")], "c": [(1, "lost")]}
        tasks = {t["task_id"]: t["state"] for t in store.task_states(run_id)}
        assert tasks == {"a": "success", "b": "lost", "c": "lost"}
        assert store.events(run_id)[-1]["kind"] == "RunFinished"
        assert store.events(run_id)[-1]["state"] == "lost"

        # Resume, with quick sleeps this time (and a prefix of the run id).
        (root / "sleep_s").write_text("0.05")
        done = lockgate("resume", run_id[:-2], "--json", cwd=root, db_url=url)
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 1, f"exit {done.returncode}: {done.stdout}{done.stderr}"
        doc = json.loads(done.stdout)
        assert doc["run_id"] == run_id and doc["state"] == "failed"
        assert {t["id"]: (t["state"], t["attempts"]) for t in doc["tasks"]} == {
            "a": ("success", 1),
            "b": ("success", 2),
            "c": ("failed", 1),
            "d": ("success", 1),
        }

        # a was not run again, and its result is still there, used by b.
        assert (root / "a_runs.txt").read_text().splitlines() == ["ran"]
        results = {k: json.loads(v) for k, v in store.results(run_id).items()}
        assert results == {"a": {"value": 42}, "b": 43, "d": 86}

        # b ran again as attempt 2; c had no retries left; d ran after b.
        rows = store.attempts(run_id)
        attempts = _by_task(rows)
        assert attempts["a"] == [(1, "success")]
        assert attempts["b"] == [(1, "lost"), (2, "success")]
        assert [n for n, _ in attempts["c"]] == [1]  # no attempt 2 (see the history test below)
        assert attempts["d"] == [(1, "success")]
        row = {(r["task_id"], r["attempt"]): r for r in rows}
        assert row[("d", 1)]["started_at"] >= row[("b", 2)]["ended_at"]
        states = {t["task_id"]: t for t in store.task_states(run_id)}
        assert {k: v["state"] for k, v in states.items()} == {
            "a": "success",
            "b": "success",
            "c": "failed",
            "d": "success",
        }
        assert "no retries" in states["c"]["error"]
        record = store.get_run(run_id)
        assert record is not None and record["state"] == "failed" and record["ended_at"]
        assert store.events(run_id)[-1]["state"] == "failed"
        assert len(store.list_runs()) == 1  # resumed in place, not a new run
    finally:
        store.close()


QUICK = """
    from lockgate import pipeline, shell

    with pipeline("quick") as p:
        shell("hello", "echo hello")
"""


def test_resuming_a_succeeded_run_is_an_error(
    project: Project, write_pipeline: Any, lockgate: Any
) -> None:
    from lockgate.authoring.discovery import load_file

    (pipe,) = load_file(write_pipeline(project.root / "pipelines" / "quick.py", QUICK))
    result = api.run(pipe, project=project)
    assert result.ok
    with pytest.raises(ConfigError, match="already succeeded; there is nothing to resume"):
        api.resume(result.run_id, project=project)
    done = lockgate("resume", result.run_id, cwd=project.root)
    assert done.returncode == 2
    assert (
        done.stderr == f"error: run {result.run_id} already succeeded; there is nothing to resume\n"
    )


def test_resuming_an_unknown_run_is_an_error(
    project: Project, write_pipeline: Any, lockgate: Any
) -> None:
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        api.resume("nope", project=project)
    done = lockgate("resume", "nope", cwd=project.root)
    assert done.returncode == 2
    assert "no run 'nope'" in done.stderr and "lockgate runs" in done.stderr
    assert "Traceback" not in done.stderr


def test_resuming_a_run_that_is_still_running_is_an_error(project: Project, lockgate: Any) -> None:
    store = Store(project.db_url, keys=Keyring.for_project(project, create=True))
    try:
        store.create_run("20261124T000000-abcdef", "quick", None, {}, "threads")  # ours: alive
        done = lockgate("resume", "20261124T000000", cwd=project.root)
        assert done.returncode == 2
        assert "is still running" in done.stderr and "Traceback" not in done.stderr
        assert store.get_run("20261124T000000-abcdef")["state"] == "queued"  # type: ignore[index]
    finally:
        store.close()


def test_resume_keeps_the_history_of_a_lost_attempt_without_retries(
    project: Project, write_pipeline: Any
) -> None:
    """The attempt that died stays `lost`; only its task becomes `failed`. (The process
    death is simulated: a run owned by a pid that does not exist.)"""
    from lockgate.authoring.discovery import load_file
    from lockgate.engine.events import Event
    from lockgate.store import schema as s

    root = project.root / "pipelines"
    (root / "sleep_s").write_text("0.01")
    (pipe,) = load_file(write_pipeline(root / "crashy.py", CRASHY))
    store = Store(project.db_url, keys=Keyring.generate())
    try:
        run_id = "20261124T000000-1dead1"
        store.create_run(run_id, pipe.id, store.record_version(pipe), {}, "threads")
        writer = store.writer()
        t = 1_700_000_000.0
        for e in (
            Event("RunStarted", run_id, t, state="running"),
            Event("TaskStarted", run_id, t, "a", 1, "running"),
            Event(
                "TaskSucceeded", run_id, t + 1, "a", 1, "success", {"result_json": '{"value": 42}'}
            ),
            Event("TaskStarted", run_id, t + 2, "b", 1, "running"),
            Event("TaskStarted", run_id, t + 2, "c", 1, "running"),
        ):
            writer(e)
        writer.close()
        store.release_run(run_id)
        with store.engine.begin() as conn:  # a pid that cannot exist: the owner is dead
            conn.execute(
                s.runs.update()
                .where(s.runs.c.id == run_id)
                .values(owner=f"{store._owner.split(':')[0]}:4194305:1")
            )

        assert store.recover_lost() == [run_id]
        assert [r["state"] for r in store.attempts(run_id, "c")] == ["lost"]

        result = api.resume(run_id, project=project)
        assert result.state.value == "failed", result.to_json()
        assert not (root / "a_runs.txt").exists()  # a was not run again
        assert result.result("d") == 86
        after = {(r["task_id"], r["attempt"]): r for r in store.attempts(run_id)}
        assert set(after) == {("a", 1), ("b", 1), ("b", 2), ("c", 1), ("d", 1)}
        assert after[("b", 1)]["state"] == "lost" and after[("b", 2)]["state"] == "success"
        states = {r["task_id"]: r for r in store.task_states(run_id)}
        assert states["c"]["state"] == "failed" and "no retries are left" in states["c"]["error"]
        assert after[("c", 1)]["state"] == "lost", "resume rewrote the lost attempt as failed"
    finally:
        store.close()
