"""Cancelling runs: a queued one ends `cancelled` at once (API and `lockgate cancel`); a
running one is stopped by the process driving it, a real scheduler in a thread (woken by the
API) or a `lockgate run` subprocess (which polls), and its sleeping task's attempt is cancelled.
The request is forgotten once the run has ended."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.cli.helpers import lockgate, one_line_error

from lockgate import api
from lockgate.config import Project
from lockgate.scheduler.daemon import Scheduler
from lockgate.server.app import create_app

from .serving import admin_token, env, wait_until

SLOW = """\
id: slow
tasks:
  nap:
    shell: "sleep 60"
  after:
    shell: "echo never"
    depends_on: [nap]
"""


@pytest.fixture
def site(project: Project) -> Iterator[tuple[Project, TestClient]]:
    """A project with a pipeline whose first task sleeps a minute, and an app with an admin
    token (as the client's default header)."""
    (project.root / "pipelines" / "slow.yaml").write_text(SLOW)
    token = admin_token(project)
    with TestClient(create_app(project)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield project, client


def _run(project: Project, run_id: str) -> dict[str, Any]:
    found = api.open_store(project).get_run(run_id)
    assert found is not None
    return found


def _attempts(project: Project, run_id: str) -> dict[tuple[str, int], str]:
    rows = api.open_store(project).attempts(run_id)
    return {(a["task_id"], a["attempt"]): a["state"] for a in rows}


def _napping(project: Project, run_id: str) -> bool:
    return _attempts(project, run_id).get(("nap", 1)) == "running"


def _check_cancelled(project: Project, run_id: str) -> None:
    run = wait_until(
        lambda: (r := _run(project, run_id))["state"] not in ("queued", "running") and r,
        what=f"run {run_id} to end",
    )
    assert run["state"] == "cancelled", run
    assert _attempts(project, run_id) == {("nap", 1): "cancelled"}
    states = {t["task_id"]: t["state"] for t in api.open_store(project).task_states(run_id)}
    assert states["nap"] == "cancelled" and states.get("after") != "success"
    # the request is done with: forgotten when the run ended
    wait_until(lambda: not api.open_store(project).cancel_requested(run_id), what="forgotten")


def test_a_queued_run_is_cancelled_at_once(site: tuple[Project, TestClient]) -> None:
    project, client = site
    run_id = api.trigger("slow", project=project)  # no scheduler: it stays queued
    answer = client.post(f"/api/v1/runs/{run_id}/cancel")
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"run_id": run_id, "state": "cancelled"}
    run = _run(project, run_id)
    assert run["state"] == "cancelled" and run["error"] == "cancelled by admin before it started"
    again = client.post(f"/api/v1/runs/{run_id}/cancel")
    assert again.status_code == 409

    # the same from the command line, by a unique prefix of the id, audited with the OS user
    other = api.trigger("slow", project=project)
    done = lockgate(project.root, "cancel", other[:-4])
    assert done.code == 0, done
    assert done.out == f"run {other} cancelled (it had not started)\n"
    assert _run(project, other)["state"] == "cancelled"
    records = [
        r for r in api.open_store(project).audit_records(limit=1000) if r.action == "run.cancel"
    ]
    assert {r.run_id for r in records} == {run_id, other}
    assert {r.actor for r in records if r.run_id == run_id} == {"admin"}
    assert "@" in next(r.actor for r in records if r.run_id == other)  # user@host
    ended = one_line_error(lockgate(project.root, "cancel", other))
    assert ended == f"error: run {other} has ended (cancelled); nothing to cancel"


class _Served:
    """A real scheduler (as `lockgate scheduler` runs it) served in a thread."""

    def __init__(self, project: Project) -> None:
        self.scheduler = Scheduler(Project.load(project.root))
        self.scheduler.start()
        self.thread = threading.Thread(target=self.scheduler.serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.scheduler.stop()
        assert self.scheduler.wait_stopped(30), "the scheduler did not stop"
        self.thread.join(10)


def test_a_run_driven_by_the_scheduler_is_cancelled_through_the_api(
    site: tuple[Project, TestClient],
) -> None:
    project, client = site
    served = _Served(project)
    try:
        made = client.post("/api/v1/pipelines/slow/runs", json={})
        assert made.status_code == 201, made.text
        run_id = made.json()["run_id"]
        wait_until(lambda: _napping(project, run_id), what="the task to start")
        answer = client.post(f"/api/v1/runs/{run_id}/cancel")
        assert answer.status_code == 202, answer.text
        assert answer.json()["state"] == "running"  # asked; the scheduler stops it
        _check_cancelled(project, run_id)
        shown = client.get(f"/api/v1/runs/{run_id}").json()
        assert shown["state"] == "cancelled" and shown["cancel_requested"] is False
        assert served.scheduler.running() == []
    finally:
        served.stop()


def test_a_run_of_lockgate_run_is_cancelled_by_lockgate_cancel(project: Project) -> None:
    (project.root / "pipelines" / "slow.yaml").write_text(SLOW)
    admin_token(project)  # the database and its keys exist before both processes start
    runner = subprocess.Popen(
        [sys.executable, "-m", "lockgate", "run", "slow"],
        cwd=project.root,
        env=env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        store = api.open_store(project)
        run = wait_until(
            lambda: next(iter(store.runs_page(pipelines=["slow"], limit=1)), None),
            what="the run to be recorded",
        )
        run_id = run["id"]
        wait_until(lambda: _napping(project, run_id), what="the task to start")
        done = lockgate(project.root, "cancel", run_id, "--wait")
        assert done.code == 0, done
        assert done.out.splitlines() == [
            f"run {run_id}: cancel requested; the process driving it stops it",
            f"run {run_id}: cancelled",
        ]
        output, _ = runner.communicate(timeout=30)
        assert runner.returncode == 1, output  # the run did not succeed
        assert "cancelled" in output and "Traceback" not in output, output
        _check_cancelled(project, run_id)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(10)
