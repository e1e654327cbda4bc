"""W8, history: the API's list of runs and the pipeline page with 100,000 runs in the metadata DB.

The child process that `bench.run` starts fills a fresh metadata DB (an SQLite file in a
temporary project, or with `--db postgresql://...` a scratch database made on that server and
dropped after) through plain SQL mirroring the schema: 10 pipelines (their YAML files in the
project, 6 tasks each), 100,000 runs over about five weeks (90 % success, 7 % failed, 3 %
cancelled, a few queued), each with its task rows and attempts, and a started and a finished
event per run. Then it starts a real server, `lockgate serve --port 0` (uvicorn on 127.0.0.1, a
process of its own), and times requests from this process with one keep-alive httpx client and
an admin's API token: the runs list (first page, a page 50,000 runs deep by cursor, filtered by
state, by pipeline, by both), the pipelines list, a pipeline's detail and grid, and the HTML
pipeline page (the web UI). Each endpoint gets a few warm-up requests, then `SAMPLES` per rep;
the line reports p50 and p95 per endpoint over all reps and the worst p95.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import REPO, child_env

N_RUNS = 100_000
N_PIPELINES = 10
TASKS = ("extract", "clean", "enrich", "check", "load", "report")
UPSTREAM = {"clean": ["extract"], "enrich": ["extract"], "check": ["clean", "enrich"]}
UPSTREAM |= {"load": ["check"], "report": ["load"]}
SPACING_S = 30.0
"""Runs are created this far apart (100,000 runs: about five weeks)."""
SAMPLES = 40
WARMUP = 5
TARGET_P95_MS = 200.0
DEEP = 50_000
"""The deep page starts after this many runs (newest first)."""
BATCH = 20_000

_RUN_COLS = (
    'id, pipeline_id, version_id, state, params, executor, "trigger", created_at, started_at, '
    "ended_at, owner, heartbeat_at, error, logical_date, data_interval_start, "
    "data_interval_end, run_key, runner"
)
_TASK_COLS = "run_id, task_id, state, attempts, updated_at, error, retry_base"
_ATTEMPT_COLS = "run_id, task_id, attempt, state, started_at, ended_at, error, log_path"
_EVENT_COLS = "run_id, ts, kind, task_id, attempt, state, data"


def _pipeline_yaml(index: int) -> str:
    lines = [f"id: w8_{index:02d}", f"description: W8 pipeline {index}"]
    if index % 2 == 0:
        lines += ["schedule: every 1h", 'start_date: "2024-01-01T00:00:00+00:00"']
    lines.append("tasks:")
    for task in TASKS:
        lines.append(f"  {task}:")
        lines.append('    shell: "true"')
        if task in UPSTREAM:
            lines.append(f"    depends_on: [{', '.join(UPSTREAM[task])}]")
    return "\n".join(lines) + "\n"


def _run_rows(
    i: int, now: float, versions: dict[str, int]
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Run number `i` (0 = newest): its row, task rows, attempts and two events."""
    pid = f"w8_{i % N_PIPELINES:02d}"
    created = now - i * SPACING_S
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(created))
    run_id = f"{stamp}-{i:012x}"
    roll = (i * 2654435761 % 2**32) * 100 >> 32  # spread evenly, not in step with the pipeline
    state = "queued" if i < 5 else "failed" if roll < 7 else "cancelled" if roll < 10 else "success"
    scheduled = pid[-1] in "02468" and roll % 3 != 0
    trigger = "schedule" if scheduled else ("api" if roll % 2 else "manual")
    started = None if state == "queued" else created + 0.05
    ended = None if state == "queued" else created + 12.0
    error = "task(s) failed: load" if state == "failed" else None
    if state == "cancelled":
        error = "cancelled by admin"
    run = (
        run_id,
        pid,
        versions[pid],
        state,
        "{}",
        "threads",
        trigger,
        created,
        started,
        ended,
        None,
        created,
        error,
        created,
        created,
        created + (3600.0 if scheduled else 0.0),
        f"interval:{created}" if scheduled else None,
        None if trigger == "manual" else "scheduler",
    )
    tasks: list[tuple[Any, ...]] = []
    attempts: list[tuple[Any, ...]] = []
    if state == "queued":
        return run, tasks, attempts, []
    at = created + 0.1
    for n, task in enumerate(TASKS):
        if state == "failed" and task == "load":
            task_state, tries = "failed", 2
        elif state == "failed" and task == "report":
            task_state, tries = "upstream_failed", 0
        elif state == "cancelled" and n >= 3:
            task_state, tries = ("cancelled", 1) if n == 3 else ("pending", 0)
        else:
            task_state, tries = "success", 1
        task_error = "exit code 1" if task_state == "failed" else None
        tasks.append((run_id, task, task_state, tries, at + 2.0, task_error, 0))
        for attempt in range(1, tries + 1):
            attempt_state = "failed" if task_state == "failed" else task_state
            attempts.append((run_id, task, attempt, attempt_state, at, at + 1.5, task_error, None))
            at += 1.6
    events = [
        (run_id, created + 0.05, "RunStarted", None, 0, "running", '{"executor":"threads"}'),
        (run_id, created + 12.0, "RunFinished", None, 0, state, None),
    ]
    return run, tasks, attempts, events


def populate(store: Any, versions: dict[str, int], now: float) -> None:
    """Insert N_RUNS runs with their tasks, attempts and events, in batches."""
    db = store.db
    postgres = db.dialect == "postgresql"
    tables = (
        ("runs", _RUN_COLS),
        ("task_runs", _TASK_COLS),
        ("task_attempts", _ATTEMPT_COLS),
        ("events", _EVENT_COLS),
    )
    for start in range(0, N_RUNS, BATCH):
        rows: list[list[tuple[Any, ...]]] = [[], [], [], []]
        for i in range(start, min(N_RUNS, start + BATCH)):
            run, tasks, attempts, events = _run_rows(i, now, versions)
            rows[0].append(run)
            rows[1] += tasks
            rows[2] += attempts
            rows[3] += events
        with db.transaction() as cur:
            for (table, cols), batch in zip(tables, rows, strict=True):
                if not batch:
                    continue
                if postgres:
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                        for row in batch:
                            copy.write_row(row)
                else:
                    marks = ", ".join("?" * len(batch[0]))
                    cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", batch)
    if postgres:  # what autovacuum does shortly after a bulk load
        with db.connection() as conn:
            conn.commit()
            conn.autocommit = True
            try:
                conn.execute("ANALYZE")
            finally:
                conn.autocommit = False


@contextmanager
def scratch_database(url: str | None) -> Iterator[tuple[str | None, str]]:
    """(database URL, how): None for SQLite in the project; for PostgreSQL a database made
    for this benchmark on the server of `url` and dropped afterwards (or `url` itself when
    databases cannot be created there)."""
    if not url:
        yield None, "sqlite file"
        return
    import psycopg

    name = f"lockgate_w8_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error:
        yield url, "the given database (no CREATE DATABASE right)"
        return
    base, _, rest = url.partition("://")
    authority, _, path = rest.partition("/")
    query = f"?{path.partition('?')[2]}" if "?" in path else ""
    try:
        yield f"{base}://{authority}/{name}{query}", "a scratch database"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _Server:
    """`lockgate serve --port 0` in the project folder; its base URL from the start line."""

    def __init__(self, folder: Path, db_url: str | None) -> None:
        env = child_env(db_url)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
        self.log = folder / "server.log"
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lockgate", "serve", "--port", "0"],
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("lockgate serving "):
            self.stop()
            raise RuntimeError(f"the server did not start: {self.log.read_text()[-500:]}")
        self.url = line.split()[2].rstrip("/")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _quantile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _endpoints(store: Any) -> dict[str, str]:
    from lockgate.server.api.common import encode_cursor

    deep = store.db.rows(
        "SELECT created_at, id FROM runs ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?",
        (DEEP - 1,),
    )[0]
    cursor = encode_cursor(deep["created_at"], deep["id"])
    return {
        "runs_first_page": "/api/v1/runs?limit=50",
        "runs_deep_page": f"/api/v1/runs?limit=50&cursor={cursor}",
        "runs_state_failed": "/api/v1/runs?limit=50&state=failed",
        "runs_state_cancelled": "/api/v1/runs?limit=50&state=cancelled",
        "runs_pipeline": "/api/v1/runs?limit=50&pipeline=w8_03",
        "runs_pipeline_failed": "/api/v1/runs?limit=50&pipeline=w8_03&state=failed",
        "runs_two_pipelines_deep": (
            f"/api/v1/runs?limit=50&pipeline=w8_03&pipeline=w8_04&cursor={cursor}"
        ),
        "runs_five_pipelines": "/api/v1/runs?limit=50&"
        + "&".join(f"pipeline=w8_0{i}" for i in range(5)),
        "runs_two_states_deep": f"/api/v1/runs?limit=50&state=failed&state=cancelled&cursor={cursor}",
        "runs_trigger_unused": "/api/v1/runs?limit=50&trigger=dataset",
        "pipelines_list": "/api/v1/pipelines",
        "pipeline_detail": "/api/v1/pipelines/w8_04",
        "pipeline_grid": "/api/v1/pipelines/w8_04/grid",
        "pipeline_page_html": "/pipelines/w8_04",
    }


def w8(reps: int, db_url: str | None) -> list[dict[str, Any]]:
    from lockgate.auth import accounts
    from lockgate.authoring.discovery import load_file
    from lockgate.config import Project
    from lockgate.execution import open_store

    folder = Path(tempfile.mkdtemp(prefix="lockgate-bench-w8-"))
    failures: list[str] = []
    line: dict[str, Any] = {"workload": "W8", "n_runs": N_RUNS, "reps": reps}
    try:
        with scratch_database(db_url) as (url, how):
            (folder / "lockgate.toml").write_text("[lockgate]\n")
            pipelines = folder / "pipelines"
            pipelines.mkdir()
            for i in range(N_PIPELINES):
                (pipelines / f"w8_{i:02d}.yaml").write_text(_pipeline_yaml(i))
            project = Project.load(folder)
            if url:
                project.db_url = url
            store = open_store(project)
            versions = {}
            for i in range(N_PIPELINES):
                [pipe] = load_file(pipelines / f"w8_{i:02d}.yaml")
                versions[pipe.id] = store.record_version(pipe)
            store.register_pipelines(sorted(versions))
            began = time.perf_counter()
            populate(store, versions, time.time())
            line["diag_populate_s"] = round(time.perf_counter() - began, 1)
            line["diag_database"] = how
            password = secrets.token_urlsafe(16)
            accounts.create_user(store, "bench", "admin", actor="bench", password=password)
            token = accounts.create_token(store, "bench", actor="bench")
            endpoints = _endpoints(store)
            server = _Server(folder, url)
            try:
                samples, skipped = _measure(server.url, token, endpoints, reps)
            finally:
                server.stop()
            store.close()
    except Exception as exc:  # a failed line, not a crashed benchmark
        failures.append(f"{type(exc).__name__}: {exc}")
        samples, skipped = {}, {}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    per: dict[str, dict[str, float]] = {}
    for name, values in samples.items():
        per[name] = {
            "p50_ms": round(statistics.median(values), 2),
            "p95_ms": round(_quantile(values, 0.95), 2),
            "max_ms": round(max(values), 2),
            "n": len(values),
        }
    worst = max(per, key=lambda k: per[k]["p95_ms"]) if per else None
    line.update(
        {
            "client": "httpx keep-alive -> `lockgate serve` (uvicorn, h11) on 127.0.0.1",
            "endpoints": per,
            "p95_ms": per[worst]["p95_ms"] if worst else None,
            "p95_worst": worst,
            "target": "p95 <= 200 ms: runs list and pipeline page, 100,000 runs",
            "ok": not failures and bool(per),
        }
    )
    line["meets"] = line["ok"] and all(v["p95_ms"] <= TARGET_P95_MS for v in per.values())
    if skipped:
        line["skipped"] = skipped
    if failures:
        line["failures"] = failures[:3]
    return [line]


def _measure(
    url: str, token: str, endpoints: dict[str, str], reps: int
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Milliseconds per request, per endpoint (endpoints answering other than 200 are
    skipped, with their status)."""
    import httpx

    samples: dict[str, list[float]] = {}
    skipped: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for name, path in endpoints.items():
            answer = client.get(path)
            if answer.status_code != 200:
                skipped[name] = f"status {answer.status_code}: {answer.text[:120]}"
                continue
            for _ in range(WARMUP - 1):
                client.get(path)
            samples[name] = []
        for _ in range(reps):
            for name in samples:
                path = endpoints[name]
                for _ in range(SAMPLES):
                    began = time.perf_counter()
                    answer = client.get(path)
                    took = (time.perf_counter() - began) * 1000
                    if answer.status_code != 200:
                        raise RuntimeError(f"{name}: status {answer.status_code}")
                    samples[name].append(took)
    return samples, skipped


if __name__ == "__main__":  # python -m bench.history [--reps N] [--db URL]
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.history")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--db", default=None)
    args = ap.parse_args()
    for result in w8(args.reps, args.db):
        print(json.dumps(result))
