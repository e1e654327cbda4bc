"""Several lockgate processes sharing one PostgreSQL database, as a team runs it: two
`lockgate scheduler` processes and a `lockgate up` server (real processes; the server on a
port of 127.0.0.1 the OS picks). Runs triggered through the REST API are each run exactly once,
every process stays healthy (alive, beating, stopping cleanly), and `lockgate db upgrade`
creates the schema on PostgreSQL and is idempotent, also while the processes run.

(tests/scheduler/test_ha_postgres.py covers two schedulers with one killed mid-way; this one
adds the server and the API.)"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cli.helpers import lockgate
from tests.server import serving

from lockgate.config import Project
from lockgate.store.ddl import SCHEMA_REVISION

from .conftest import Lab, wait_until

pytestmark = pytest.mark.postgres

PIPELINES = 3
RUNS_EACH = 8
TASK = """
id: {pid}
max_active_runs: 2
tasks:
  work:
    shell: "sleep 0.2"
  record:
    depends_on: work
    shell: 'echo "{{{{ run_id }}}}" >> {out}'
"""


@pytest.fixture
def shared(lab: Lab, pg_url: str) -> Iterator[Lab]:
    """The lab's project on the test's PostgreSQL database."""
    (lab.root / "lockgate.toml").write_text(
        f"[lockgate]\nexecutor = 'threads'\ndb_url = '{pg_url}'\n", encoding="utf-8"
    )
    lab.project = Project.load(lab.root)
    for i in range(PIPELINES):
        pid = f"shared_{i}"
        lab.write(f"{pid}.yaml", TASK.format(pid=pid, out=lab.out("ran.txt")))
    yield lab


def _upgrade(root: Path) -> str:
    done = lockgate(root, "db", "upgrade")
    assert done.code == 0, done
    return done.out.strip()


def _live(lab: Lab) -> dict[int, float]:
    """The schedulers registered in the database: pid -> age of their heartbeat (s)."""
    now = time.time()
    return {
        int(row["owner"].split(":")[1]): now - row["heartbeat_at"]
        for row in lab.store.live_schedulers()
    }


def test_two_schedulers_and_a_server_share_postgresql(shared: Lab, pg_url: str) -> None:
    lab = shared
    revision = SCHEMA_REVISION
    assert _upgrade(lab.root).endswith(f"upgraded from empty to revision {revision}")
    assert _upgrade(lab.root).endswith(f"already at revision {revision}")

    token = serving.admin_token(lab.project)
    schedulers = [lab.spawn(), lab.spawn()]
    server = serving.Served(lab.root, "up", "--port", "0").ready()
    pids = {p.pid for p in schedulers} | {server.proc.pid}

    def logs() -> str:
        return "\n".join(
            [*(f"--- scheduler {p.pid}\n{lab.log_of(p)[-4000:]}" for p in schedulers), str(server)]
        )

    try:
        wait_until(
            lambda: set(_live(lab)) == pids,
            timeout=30,
            what="both schedulers and the server's scheduler to register",
            details=logs,
        )
        # the schema is there and current: upgrading again changes nothing while they run
        assert _upgrade(lab.root).endswith(f"already at revision {revision}")

        triggered: list[str] = []
        with server.client(token) as client:
            for _ in range(RUNS_EACH):
                for i in range(PIPELINES):
                    made = client.post(f"/api/v1/pipelines/shared_{i}/runs", json={})
                    assert made.status_code == 201, made.text
                    triggered.append(made.json()["run_id"])

            def finished() -> list[dict[str, Any]] | None:
                runs = [client.get(f"/api/v1/runs/{r}").json() for r in triggered]
                done = all(run["state"] not in ("queued", "running") for run in runs)
                return runs if done else None

            runs = wait_until(finished, timeout=90, what="every triggered run to end", details=logs)
        assert all(run["state"] == "success" for run in runs), [r["state"] for r in runs]
        assert len(set(triggered)) == PIPELINES * RUNS_EACH

        # exactly once: one line per run from its last task, one attempt per task
        lines = Counter(lab.lines("ran.txt"))
        assert lines == Counter(triggered), logs()
        store = lab.store
        for run_id in triggered:
            attempts = store.attempts(run_id)
            assert sorted((a["task_id"], a["attempt"], a["state"]) for a in attempts) == [
                ("record", 1, "success"),
                ("work", 1, "success"),
            ], run_id
        owners = Counter(int(store.get_run(r)["owner"].split(":")[1]) for r in triggered)
        assert set(owners) <= pids, owners
        print(f"runs driven per process: {dict(owners)} (schedulers {sorted(pids)})")

        # every process is alive and still beating
        assert all(p.poll() is None for p in schedulers) and server.proc.poll() is None, logs()
        beats = _live(lab)
        assert set(beats) == pids and max(beats.values()) < 30, beats
    finally:
        codes = []
        for proc in schedulers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            codes.append(proc.wait(30))
        codes.append(server.stop(signal.SIGTERM))
    assert codes == [0, 0, 0], logs()
    for proc in schedulers:
        assert "Traceback" not in lab.log_of(proc), logs()
    assert "Traceback" not in server.err, logs()
    assert _live(lab) == {}  # each unregistered on its way out
