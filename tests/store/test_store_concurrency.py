"""Two `lockgate run` processes writing to one metadata database at the same time."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lockgate.store.store import Store

BUSY = '''
    import time
    from pathlib import Path

    from lockgate import pipeline, task

    HERE = Path(__file__).resolve().parent


    @task
    def rendezvous(ctx) -> None:
        """Wait for the other process's run, so that both write at the same time."""
        (HERE / f"ready-{ctx.run_id}").touch()
        deadline = time.monotonic() + 30
        while len(list(HERE.glob("ready-*"))) < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("the other run never started")
            time.sleep(0.01)


    @task(retries=1, retry_delay=0)
    def work(i: int) -> int:
        time.sleep(0.01)
        return i


    with pipeline("busy", max_active_tasks=8) as p:
        start = rendezvous()
        for layer in range(4):
            start >> [work(i) for i in range(40)]
'''


def test_two_processes_write_to_one_database_at_once(
    db_url: str,
    tmp_path: Path,
    lockgate: Any,
    write_pipeline: Any,
    open_store: Callable[[], Store],
) -> None:
    """Both runs succeed against a database neither has created yet: no "database is
    locked", no lost events, no duplicate pipeline version."""
    write_pipeline(tmp_path / "busy.py", BUSY)
    # On SQLite, the project's default database (./.lockgate/lockgate.db) is the one shared.
    url = None if db_url.startswith("sqlite") else db_url
    procs = [lockgate.start("run", "busy.py", "--json", cwd=tmp_path, db_url=url) for _ in range(2)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        outputs.append((proc.returncode, out, err))
    for code, _out, err in outputs:
        assert "locked" not in err and "Traceback" not in err, err
        assert code == 0, f"exit {code}: {err}"
    docs = [json.loads(out) for _, out, _ in outputs]
    assert all(doc["state"] == "success" for doc in docs)

    store = Store(url or f"sqlite:///{tmp_path / '.lockgate' / 'lockgate.db'}")
    try:
        runs = store.list_runs()
        assert sorted(r["id"] for r in runs) == sorted(doc["run_id"] for doc in docs)
        assert {r["state"] for r in runs} == {"success"}
        assert len({r["version_id"] for r in runs}) == 1  # one definition, one version row
        # the two runs overlapped: each started before the other ended
        a, b = runs
        assert a["started_at"] < b["ended_at"] and b["started_at"] < a["ended_at"]
        for run in runs:
            states = store.task_states(run["id"])
            assert len(states) == 161 and {s["state"] for s in states} == {"success"}
            assert len(store.results(run["id"])) == 160  # rendezvous returns nothing
            assert len(store.events(run["id"], limit=10_000)) == 2 + 3 * 161
    finally:
        store.close()
