"""High availability on PostgreSQL: two `lockgate scheduler` processes share one database, one
is killed with SIGKILL mid-way, and the other one takes over.

Acceptance (issue 4): 20 pipelines on a short interval for a bounded time; every due interval
has exactly one run, and every run finishes (in state success: a run that the killed scheduler
was driving goes back to the queue when the survivor sees its owner dead, and the survivor
finishes it with a new attempt). Both schedulers also create the schema of the empty database
at the same time."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.postgres

_SCRIPT = Path(sys.executable).with_name("lockgate")
LOCKGATE = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "lockgate"]
PIPELINES = 20
STEP_S = 1
WINDOW_S = 10
"""Intervals whose logical date is in [start, start + WINDOW_S]: WINDOW_S + 1 per pipeline."""
KILL_AFTER_S = 4.0
"""Seconds after the first due time at which one scheduler is killed."""
DEADLINE_S = 60.0
TASK = "sleep 0.3"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_project(root: Path, db_url: str, start: int) -> list[str]:
    (root / "lockgate.toml").write_text(f'[lockgate]\ndb_url = "{db_url}"\n', encoding="utf-8")
    folder = root / "pipelines"
    folder.mkdir()
    ids = []
    for i in range(PIPELINES):
        pid = f"ha_{i:02d}"
        ids.append(pid)
        (folder / f"{pid}.yaml").write_text(
            f"id: {pid}\n"
            f"schedule: every {STEP_S}s\n"
            f"start_date: '{_iso(start)}'\n"
            f"end_date: '{_iso(start + WINDOW_S)}'\n"
            "catchup: true\n"
            "tasks:\n"
            "  work:\n"
            f"    shell: {TASK}\n",
            encoding="utf-8",
        )
    return ids


class _Daemon:
    """One `lockgate scheduler` process, its output in files."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.out = root / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
        with self.out.open("wb") as fh:
            self.proc = subprocess.Popen(
                [*LOCKGATE, "scheduler"],
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def _runs(db_url: str) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        return list(
            conn.execute(
                "SELECT id, pipeline_id, state, owner, logical_date, run_key, error FROM runs"
            )
        )


def _attempts(db_url: str) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        return list(conn.execute("SELECT run_id, attempt, state, error FROM task_attempts"))


def _pid(run: dict[str, Any]) -> int:
    """The pid of a run's owner (`host:pid:start`)."""
    return int(run["owner"].split(":")[1])


def _running_owners(db_url: str) -> list[str]:
    """The owners of the runs with a task attempt running now."""
    import psycopg

    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT r.owner FROM runs r JOIN task_attempts a ON a.run_id = r.id "
            "WHERE r.state = 'running' AND a.state = 'running'"
        ).fetchall()
    return [owner for (owner,) in rows if owner]


def test_two_schedulers_one_killed_every_interval_runs_once(tmp_path: Path, pg_url: str) -> None:
    start = math.ceil(time.time()) + 3  # the daemons start in about a second
    ids = _write_project(tmp_path, pg_url, start)
    expected = {float(start + k * STEP_S) for k in range(WINDOW_S // STEP_S + 1)}
    last_due = start + WINDOW_S + STEP_S
    daemons = [_Daemon("a", tmp_path), _Daemon("b", tmp_path)]
    report: list[str] = []

    def diagnose() -> str:
        lines = [*report, ""]
        for d in daemons:
            lines += [f"--- scheduler {d.name} (pid {d.proc.pid}) ---", d.log()[-6000:]]
        return "\n".join(lines)

    try:
        # kill mid-way, while runs are in flight (each task sleeps 0.3 s of every 1 s): the
        # scheduler driving most of the running tasks then (one scheduler may win every
        # claim of a due time) is the victim
        time.sleep(max(0.0, start + STEP_S + KILL_AFTER_S - time.time()))
        in_flight: Counter[int] = Counter()
        while not in_flight and time.time() < start + WINDOW_S:
            in_flight = Counter(int(owner.split(":")[1]) for owner in _running_owners(pg_url))
            if not in_flight:
                time.sleep(0.02)
        assert in_flight, "no task was running mid-way\n" + diagnose()
        assert all(d.proc.poll() is None for d in daemons), diagnose()
        victim = next(d for d in daemons if d.proc.pid == in_flight.most_common(1)[0][0])
        survivor = next(d for d in daemons if d is not victim)
        killed_at = time.time()
        # reap the process at once, as an init system or a shell would (a zombie still
        # looks alive to the liveness check)
        victim.stop(signal.SIGKILL)
        report.append(
            f"killed {victim.name} (pid {victim.proc.pid}) at due time + "
            f"{(killed_at - start) % STEP_S:.2f} s, running tasks by pid: {dict(in_flight)}"
        )
        deadline = time.time() + DEADLINE_S
        while time.time() < deadline:
            runs = _runs(pg_url)
            finished = [r for r in runs if r["state"] not in ("queued", "running", "lost")]
            if time.time() > last_due and len(finished) >= len(ids) * len(expected):
                break
            assert survivor.proc.poll() is None, "the survivor exited\n" + diagnose()
            time.sleep(0.25)
        code = survivor.stop(signal.SIGTERM)
        report.append(f"survivor exited with code {code}")
        runs = _runs(pg_url)
        attempts = _attempts(pg_url)
        report.append(f"{len(runs)} runs: {dict(Counter(r['state'] for r in runs))}")

        by_pipeline: dict[str, list[dict[str, Any]]] = {pid: [] for pid in ids}
        for run in runs:
            by_pipeline[run["pipeline_id"]].append(run)
        for pid, mine in by_pipeline.items():
            dates = Counter(r["logical_date"] for r in mine)
            missing = sorted(expected - set(dates))
            doubled = sorted(d for d, n in dates.items() if n > 1)
            extra = sorted(set(dates) - expected)
            assert not (missing or doubled or extra), (
                f"{pid}: missing {[_iso(d) for d in missing]}, duplicated "
                f"{[_iso(d) for d in doubled]}, outside the window {[_iso(d) for d in extra]}\n"
                + diagnose()
            )
        keys = Counter((r["pipeline_id"], r["run_key"]) for r in runs)
        assert all(n == 1 for n in keys.values()), diagnose()
        bad = [r for r in runs if r["state"] != "success"]
        assert not bad, f"runs not successful: {bad[:5]}\n" + diagnose()
        # the takeover: runs the victim was driving lost their running attempt with it; the
        # survivor claimed them and finished them with a new attempt
        owners = Counter(_pid(r) for r in runs)
        lost = {(a["run_id"], a["attempt"]) for a in attempts if a["state"] == "lost"}
        report.append(f"runs by owner pid: {dict(owners)}; attempts lost: {len(lost)}")
        assert lost, "no task attempt was lost with the killed scheduler\n" + diagnose()
        by_id = {r["id"]: r for r in runs}
        for run_id, attempt in lost:
            assert _pid(by_id[run_id]) == survivor.proc.pid, diagnose()
            later = [a for a in attempts if a["run_id"] == run_id and a["attempt"] > attempt]
            assert [a["state"] for a in later] == ["success"], f"{run_id}: {later}\n" + diagnose()
        assert owners[survivor.proc.pid] > 0, diagnose()
        print("\n".join(report))  # shown with -s
    finally:
        for d in daemons:
            d.stop(signal.SIGKILL)
