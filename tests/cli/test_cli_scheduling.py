"""The scheduler's commands through the real console script: trigger (--wait exit codes),
backfill (interrupted and resumed, --rerun-failed), clear, pause/unpause."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.cli.helpers import LOCKGATE, _env, lockgate, one_line_error, write

DAILY = """
id: daily
schedule: "@daily"
start_date: 2024-01-01
tasks:
  work:
    shell: sleep 0.2 && echo "{{ ds }}" >> "$OUT"
    env: {OUT: "%s"}
"""

FLAKY = """
id: flaky
schedule: "@daily"
tasks:
  first:
    shell: "true"
  check:
    depends_on: [first]
    shell: test "{{ ds }}" != 2024-01-03 || test -f "%s"
  after:
    depends_on: [check]
    shell: "true"
"""


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    (tmp_path / "lockgate.toml").write_text("[lockgate]\n", encoding="utf-8")
    write(tmp_path / "pipelines", "daily.yaml", DAILY % (tmp_path / "days.txt"))
    write(tmp_path / "pipelines", "flaky.yaml", FLAKY % (tmp_path / "fixed"))
    write(
        tmp_path / "pipelines",
        "manual.yaml",
        """
        id: manual
        params:
          fail: {type: boolean, default: false}
        tasks:
          go:
            shell: test "{{ params.fail }}" = False
        """,
    )
    return tmp_path


def runs_of(proj: Path, pipeline: str) -> list[sqlite3.Row]:
    path = proj / ".lockgate" / "lockgate.db"
    if not path.exists():
        return []
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        return con.execute(
            "SELECT * FROM runs WHERE pipeline_id = ? ORDER BY logical_date", (pipeline,)
        ).fetchall()
    except sqlite3.OperationalError:  # the database is being created
        return []
    finally:
        con.close()


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.fixture
def scheduler(proj: Path) -> Iterator[subprocess.Popen[str]]:
    log = open(proj / "scheduler.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [LOCKGATE, "scheduler"], cwd=proj, env=_env(), stdout=log, stderr=log, text=True
    )
    wait_until(lambda: "scheduler started" in (proj / "scheduler.log").read_text())
    yield proc
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    log.close()


# -- trigger -----------------------------------------------------------------------------------


def test_trigger_wait_exits_with_the_runs_result(proj: Path, scheduler: object) -> None:
    ok = lockgate(proj, "trigger", "manual", "--wait")
    assert ok.code == 0, ok
    assert "queued run" in ok.out and "success" in ok.out
    bad = lockgate(proj, "trigger", "manual", "-p", "fail=true", "--wait", "--json")
    assert bad.code == 1, bad
    doc = bad.json()
    assert (doc["pipeline"], doc["state"], doc["trigger"]) == ("manual", "failed", "manual")
    assert doc["logical_date"].endswith("+00:00")
    # without --wait: queued, exit 0 at once
    queued = lockgate(proj, "trigger", "manual", "--json")
    assert queued.code == 0 and queued.json()["state"] in ("queued", "running", "success")


def test_trigger_wait_timeout_on_a_paused_pipeline(proj: Path, scheduler: object) -> None:
    assert lockgate(proj, "pause", "manual").out == "manual paused\n"
    done = lockgate(proj, "trigger", "manual", "--wait", "--timeout", "1s")
    assert done.code == 1, done
    assert "manual is paused" in done.err
    assert "did not finish within 1s (it is queued; it goes on)" in done.err
    assert lockgate(proj, "unpause", "manual").out == "manual unpaused\n"
    run_id = done.out.split()[2]
    wait_until(lambda: runs_of(proj, "manual")[-1]["state"] == "success")
    assert runs_of(proj, "manual")[-1]["id"] == run_id


def test_trigger_user_errors(proj: Path) -> None:
    assert "no pipeline 'nope'" in one_line_error(lockgate(proj, "trigger", "nope"))
    assert "fail" in one_line_error(lockgate(proj, "trigger", "manual", "-p", "fail=maybe"))
    assert "--timeout needs --wait" in one_line_error(
        lockgate(proj, "trigger", "manual", "--timeout", "5s")
    )
    outside = write(proj, "elsewhere.yaml", "id: elsewhere\ntasks:\n  a:\n    shell: 'true'\n")
    assert "not in the pipelines folder" in one_line_error(lockgate(proj, "trigger", str(outside)))


def test_a_triggered_run_waits_for_a_scheduler_or_resume(proj: Path) -> None:
    done = lockgate(proj, "trigger", "manual")
    assert done.code == 0, done
    assert "no scheduler is running" in done.err
    run_id = done.out.split()[2]
    assert runs_of(proj, "manual")[0]["state"] == "queued"
    resumed = lockgate(proj, "resume", run_id)
    assert resumed.code == 0, resumed
    assert runs_of(proj, "manual")[0]["state"] == "success"


# -- backfill ----------------------------------------------------------------------------------


def test_backfill_interrupted_and_resumed_has_one_run_per_day(proj: Path) -> None:
    args = [LOCKGATE, "backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-30"]
    first = subprocess.Popen(
        [*args, "--parallel", "4"],
        cwd=proj,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: len(runs_of(proj, "daily")) >= 8)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    interrupted = runs_of(proj, "daily")
    assert 8 <= len(interrupted) < 30
    assert any(r["state"] in ("queued", "running") for r in interrupted)  # killed mid-run

    second = lockgate(
        proj,
        "backfill",
        "daily",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-30",
        "--parallel",
        "4",
        "--json",
    )
    assert second.code == 0, second
    doc = second.json()
    actions = {i["action"] for i in doc["intervals"]}
    assert {"skip", "resume", "run"} <= actions, doc
    runs = runs_of(proj, "daily")
    assert len(runs) == 30
    assert len({r["logical_date"] for r in runs}) == 30
    assert len({r["run_key"] for r in runs}) == 30
    assert {r["state"] for r in runs} == {"success"}
    assert {r["trigger"] for r in runs} == {"backfill"}
    # each interval's data interval is its day
    assert all(r["data_interval_end"] - r["data_interval_start"] == 86400 for r in runs)
    days = (proj / "days.txt").read_text().split()
    assert set(days) == {f"2024-01-{d:02d}" for d in range(1, 31)}

    again = lockgate(proj, "backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-30")
    assert again.code == 0, again
    assert "30 success" in again.out and "0 to run" in again.out
    assert len(runs_of(proj, "daily")) == 30


def test_backfill_ctrl_c_cancels_and_the_next_backfill_continues(proj: Path) -> None:
    args = [LOCKGATE, "backfill", "daily", "--start", "2024-02-01", "--end", "2024-02-12"]
    first = subprocess.Popen(
        [*args, "-n", "2"], cwd=proj, env=_env(), stdout=subprocess.PIPE, text=True
    )
    wait_until(lambda: len(runs_of(proj, "daily")) >= 3)
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=20)
    assert first.returncode == 1, out
    assert "interrupted: run the same command again to continue" in out
    assert "cancelled" in {r["state"] for r in runs_of(proj, "daily")}
    second = lockgate(proj, "backfill", "daily", "--start", "2024-02-01", "--end", "2024-02-12")
    assert second.code == 0, second
    runs = runs_of(proj, "daily")
    assert len(runs) == 12 and {r["state"] for r in runs} == {"success"}


def test_backfill_rerun_failed_reruns_only_the_failed_tasks(proj: Path) -> None:
    span = ["--start", "2024-01-01", "--end", "2024-01-04"]
    first = lockgate(proj, "backfill", "flaky", *span)
    assert first.code == 1, first
    assert "2024-01-03" in first.out and "--rerun-failed" in first.out
    failed = [r for r in runs_of(proj, "flaky") if r["state"] == "failed"]
    assert len(failed) == 1
    (proj / "fixed").touch()
    assert lockgate(proj, "backfill", "flaky", *span).code == 1  # failed ones are left alone
    done = lockgate(proj, "backfill", "flaky", *span, "--rerun-failed")
    assert done.code == 0, done
    runs = runs_of(proj, "flaky")
    assert len(runs) == 4 and {r["state"] for r in runs} == {"success"}
    assert failed[0]["id"] in {r["id"] for r in runs}  # the same run, not a new one
    con = sqlite3.connect(proj / ".lockgate" / "lockgate.db")
    attempts = con.execute(
        "SELECT task_id, attempt, state FROM task_attempts WHERE run_id = ? ORDER BY task_id, "
        "attempt",
        (failed[0]["id"],),
    ).fetchall()
    con.close()
    assert attempts == [
        ("after", 1, "success"),
        ("check", 1, "failed"),
        ("check", 2, "success"),
        ("first", 1, "success"),
    ]


def test_backfill_user_errors(proj: Path) -> None:
    assert "has no schedule" in one_line_error(
        lockgate(proj, "backfill", "manual", "--start", "2024-01-01", "--end", "2024-01-02")
    )
    assert "is before --start" in one_line_error(
        lockgate(proj, "backfill", "daily", "--start", "2024-01-05", "--end", "2024-01-02")
    )
    assert "not a date" in one_line_error(
        lockgate(proj, "backfill", "daily", "--start", "soon", "--end", "2024-01-02")
    )


# -- clear, pause ------------------------------------------------------------------------------


def test_clear_queues_the_failed_tasks_again(proj: Path) -> None:
    done = lockgate(proj, "run", "flaky", "-d", "2024-01-03")
    assert done.code == 1, done
    run_id = runs_of(proj, "flaky")[0]["id"]
    cleared = lockgate(proj, "clear", run_id[:12])
    assert cleared.code == 0, cleared
    assert f"cleared 2 task(s) of run {run_id}: check, after" in cleared.out
    assert "lockgate resume" in cleared.out  # no scheduler is running
    assert runs_of(proj, "flaky")[0]["state"] == "queued"
    (proj / "fixed").touch()
    assert lockgate(proj, "resume", run_id).code == 0
    assert runs_of(proj, "flaky")[0]["state"] == "success"
    # a single task, and its downstream tasks
    more = lockgate(proj, "clear", run_id, "first", "--downstream")
    assert f"cleared 3 task(s) of run {run_id}: first, check, after" in more.out, more
    running = lockgate(proj, "clear", run_id)
    assert "queued or running" in one_line_error(running)


def test_clear_and_pause_user_errors(proj: Path) -> None:
    assert "no run 'nope'" in one_line_error(lockgate(proj, "clear", "nope"))
    assert "no pipeline 'nope'" in one_line_error(lockgate(proj, "pause", "nope"))
    assert lockgate(proj, "pause", "daily").out == "daily paused\n"
    assert lockgate(proj, "pause", "daily").out == "daily was already paused\n"


def test_task_logs_under_the_scheduler_go_to_the_attempt_log(proj: Path) -> None:
    write(
        proj / "pipelines",
        "logging_task.py",
        """
        from lockgate import pipeline, task

        @task
        def load(ctx):
            ctx.log.info("loading orders")

        with pipeline("logging_task"):
            load()
        """,
    )
    log = open(proj / "scheduler.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [LOCKGATE, "scheduler"], cwd=proj, env=_env(), stdout=log, stderr=log, text=True
    )
    try:
        wait_until(lambda: "scheduler started" in (proj / "scheduler.log").read_text())
        done = lockgate(proj, "trigger", "logging_task", "--wait", "--json")
        assert done.code == 0, done
        logs = lockgate(proj, "logs", done.json()["run_id"])
        assert "INFO lockgate.task.load - loading orders" in logs.out, logs
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
    assert "loading orders" not in (proj / "scheduler.log").read_text()


def test_backfill_runs_only_intervals_that_are_due(proj: Path) -> None:
    today = time.strftime("%Y-%m-%d", time.gmtime())
    done = lockgate(proj, "backfill", "daily", "--start", "2030-01-01", "--end", "2030-01-03")
    assert "that is due by now" in one_line_error(done)
    assert "unknown executor 'bogus'" in one_line_error(
        lockgate(proj, "backfill", "daily", "--start", "2024-01-01", "--end", today, "-e", "bogus")
    )


def test_cleared_tasks_get_their_retries_afresh(proj: Path) -> None:
    write(
        proj / "pipelines",
        "stubborn.yaml",
        """
        id: stubborn
        tasks:
          nope:
            shell: "false"
            retries: 1
            retry_delay: 0s
        """,
    )
    assert lockgate(proj, "run", "stubborn").code == 1
    run_id = runs_of(proj, "stubborn")[0]["id"]
    assert lockgate(proj, "clear", run_id).code == 0
    assert lockgate(proj, "resume", run_id).code == 1
    con = sqlite3.connect(proj / ".lockgate" / "lockgate.db")
    attempts = con.execute(
        "SELECT attempt, state FROM task_attempts WHERE run_id = ? ORDER BY attempt", (run_id,)
    ).fetchall()
    con.close()
    # two attempts before the clear, and two again after it: numbering goes on
    assert attempts == [(1, "failed"), (2, "failed"), (3, "failed"), (4, "failed")]
