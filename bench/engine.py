"""Engine workloads W2-W6: `lockgate.api.run` in this process, state persisted to the metadata DB.

Each function runs in a fresh child process started by `bench.run` (so peak RSS belongs to that
one workload and nothing is left over from another), and returns the fields of its result line.
Pipelines come from files under bench/pipelines/, loaded as `lockgate run FILE` loads them.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.common import PIPELINES, median, repeat, rss_mb, spread


class Bench:
    """One workload's project folder, database and run helper."""

    def __init__(self, db_url: str | None) -> None:
        from lockgate.config import Project

        self.folder = tempfile.mkdtemp(prefix="lockgate-bench-")
        self.project = Project.load(self.folder)
        if db_url:
            self.project.db_url = db_url
        self.failures: list[str] = []

    def pipeline(self, file: str, pipeline_id: str) -> Any:
        from lockgate.authoring.discovery import load_file

        found = {p.id: p for p in load_file(PIPELINES / file)}
        return found[pipeline_id]

    def run(
        self,
        pipe: Any,
        *,
        executor: str = "threads",
        concurrency: int | None = None,
        store: bool = True,
        check: Callable[[Any], None] | None = None,
    ) -> float:
        """Wall seconds of one `api.run` (store on: includes opening the DB and the final flush)."""
        from lockgate import api

        start = time.perf_counter()
        result = api.run(
            pipe,
            project=self.project,
            executor=executor,
            concurrency=concurrency,
            store=bool(store),
        )
        wall = time.perf_counter() - start
        self.last = result
        if not result.ok:
            bad = [
                f"{t.id}={t.state.value}"
                for t in result.tasks.values()
                if t.state.value != "success"
            ]
            self.failures.append(f"run {result.run_id} {result.state.value}: {', '.join(bad[:5])}")
        if check is not None:
            check(result)
        return wall

    def cleanup(self) -> None:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def _common(b: Bench, reps: int) -> dict[str, Any]:
    out: dict[str, Any] = {"reps": reps, "ok": not b.failures}
    if b.failures:
        out["failures"] = b.failures[:3]
    return out


def _finish(
    line: dict[str, Any], b: Bench, pipe: Any, reps: int, diag: bool
) -> list[dict[str, Any]]:
    """Add the no-store diagnostic and the common fields, then clean up."""
    if diag:
        no_store = repeat(lambda: b.run(pipe, store=False), reps)
        line["diag_no_store_wall_s"] = round(median(no_store), 6)
    line.update(_common(b, reps))
    b.cleanup()
    return [line]


def w2(db_url: str | None, reps: int, diag: bool) -> list[dict[str, Any]]:
    b = Bench(db_url)
    pipe = b.pipeline("fanout.py", "bench_fanout")
    n = len(pipe.tasks)
    samples = repeat(lambda: b.run(pipe), reps)
    peak = rss_mb()
    wall = median(samples)
    line: dict[str, Any] = {
        "workload": "W2",
        "executor": "threads",
        "n_tasks": n,
        **spread(samples),
        "tasks_per_s": round(n / wall),
        "target": ">= 10,000 tasks/s on threads (<= 0.05 s)",
        "meets": n / wall >= 10_000 and not b.failures,
        "peak_rss_mb": peak,
    }
    if diag:
        line.update(_audit_overhead(b, pipe, reps))
    return _finish(line, b, pipe, reps, diag)


def _audit_overhead(b: Bench, pipe: Any, reps: int) -> dict[str, Any]:
    """W2 with the audit chain vs the same runs with auditing switched off (a private store
    flag that exists for this measurement only). Runs alternate, and the overhead is the median
    of each pair's ratio, so that drift of the machine hits both sides alike."""
    from lockgate.execution import open_store

    store = open_store(b.project)  # the store api.run uses (cached per URL)
    pairs = max(3 * reps, 15)
    on: list[float] = []
    off: list[float] = []
    try:
        for i in range(pairs + 1):
            store._audit_off = True
            off_s = b.run(pipe)
            store._audit_off = False
            on_s = b.run(pipe)
            if i:  # the first pair is a warm-up
                off.append(off_s)
                on.append(on_s)
    finally:
        store._audit_off = False
    ratios = [a / b for a, b in zip(on, off, strict=True)]
    return {
        "diag_audit_on_wall_s": round(median(on), 6),
        "diag_audit_off_wall_s": round(median(off), 6),
        "diag_audit_pairs": pairs,
        "diag_audit_overhead_pct": round((median(ratios) - 1) * 100, 1),
    }


def w3(db_url: str | None, reps: int, diag: bool) -> list[dict[str, Any]]:
    b = Bench(db_url)
    pipe = b.pipeline("chain.py", "bench_chain")
    single = b.pipeline("chain.py", "bench_single")
    n = len(pipe.tasks)
    samples = repeat(lambda: b.run(pipe), reps)
    peak = rss_mb()
    wall = median(samples)
    one = median(repeat(lambda: b.run(single), reps))
    per_link = wall / n
    line: dict[str, Any] = {
        "workload": "W3",
        "executor": "threads",
        "n_tasks": n,
        **spread(samples),
        "ms_per_link": round(per_link * 1000, 4),
        "target": "<= 0.2 ms per link",
        "meets": per_link <= 0.0002 and not b.failures,
        # the fixed cost of a run (open DB, record version, create run, flush) vs the per-link cost
        "diag_one_task_wall_s": round(one, 6),
        "diag_marginal_ms_per_link": round((wall - one) / (n - 1) * 1000, 4),
        "peak_rss_mb": peak,
    }
    if diag:
        no_store = repeat(lambda: b.run(pipe, store=False), reps)
        line["diag_no_store_wall_s"] = round(median(no_store), 6)
        line["diag_no_store_ms_per_link"] = round(median(no_store) / n * 1000, 4)
    line.update(_common(b, reps))
    b.cleanup()
    return [line]


def w4(db_url: str | None, reps: int, diag: bool, executor: str) -> list[dict[str, Any]]:
    from lockgate.store.store import Store

    b = Bench(db_url)
    pipe = b.pipeline("sleepers.py", "bench_sleepers")
    n = len(pipe.tasks)
    first_start: list[float] = []
    spread_8: list[float] = []
    tail: list[float] = []

    def one() -> float:
        begin = time.time()
        wall = b.run(pipe, executor=executor, concurrency=8)
        store = Store(b.project.db_url)
        try:
            rows = store.attempts(b.last.run_id)
        finally:
            store.close()
        if rows:
            starts = sorted(r["started_at"] for r in rows)
            first_start.append(starts[0] - begin)
            spread_8.append(starts[min(7, len(starts) - 1)] - starts[0])
            tail.append(begin + wall - max(r["ended_at"] for r in rows))
        return wall

    samples = repeat(one, reps)
    wall = median(samples)
    ideal = n / 8 * 0.5
    eff = ideal / wall
    line: dict[str, Any] = {
        "workload": "W4",
        "executor": executor,
        "n_tasks": n,
        "concurrency": 8,
        **spread(samples),
        "efficiency": round(eff, 4),
        "ideal_s": ideal,
        "target": "efficiency = 2.0 / wall >= 0.97",
        "meets": eff >= 0.97 and not b.failures,
        "peak_rss_mb": rss_mb(),
        # where the time over 2.0 s goes: before the first task starts, after the last one ends
        "diag_first_task_start_ms": round(median(first_start[1:] or first_start) * 1000, 1),
        "diag_first_wave_spread_ms": round(median(spread_8[1:] or spread_8) * 1000, 1),
        "diag_after_last_task_ms": round(median(tail[1:] or tail) * 1000, 1),
    }
    line.update(_common(b, reps))
    b.cleanup()
    return [line]


def w5(db_url: str | None, reps: int, diag: bool) -> list[dict[str, Any]]:
    from lockgate.store.store import Store

    b = Bench(db_url)
    pipe = b.pipeline("retry.py", "bench_retry")
    store = None
    own: list[float] = []
    states: list[str] = []
    attempts: list[int] = []

    def one() -> float:
        wall = b.run(pipe)
        nonlocal store
        store = store or Store(b.project.db_url)
        rows = store.attempts(b.last.run_id)
        own.append(sum((r["ended_at"] or 0) - (r["started_at"] or 0) for r in rows))
        attempts.append(len(rows))
        run = store.get_run(b.last.run_id)
        states.append(f"{b.last.state.value}/{run['state'] if run else 'missing'}")
        return wall

    samples = repeat(one, reps)
    own_s = own[1:]  # drop the warm-up's
    overs = [w - o for w, o in zip(samples, own_s, strict=True)]
    over = median(overs)
    state_ok = all(s == "success/success" for s in states[1:])
    if store is not None:
        store.close()
    line: dict[str, Any] = {
        "workload": "W5",
        "executor": "threads",
        "n_tasks": 1,
        **spread(samples),
        "task_own_s": round(median(own_s), 6),
        "overhead_ms": round(over * 1000, 3),
        "attempts": attempts[-1],
        "state": states[-1].split("/")[0],
        "db_state": states[-1].split("/")[1],
        "target": "state success; <= 10 ms over the task's own time",
        "meets": state_ok and attempts[-1] == 3 and over <= 0.010 and not b.failures,
        "peak_rss_mb": rss_mb(),
    }
    line.update(_common(b, reps))
    b.cleanup()
    return [line]


def w6(db_url: str | None, reps: int, diag: bool) -> list[dict[str, Any]]:
    rss_start = rss_mb("VmRSS")
    b = Bench(db_url)
    start = time.perf_counter()
    pipe = b.pipeline("grid.py", "bench_grid")
    define_s = time.perf_counter() - start
    rss_defined = rss_mb("VmRSS")
    n = len(pipe.tasks)
    samples = repeat(lambda: b.run(pipe), reps)
    peak = rss_mb()  # the peak of this process: import, definition, warm-up and every rep
    wall = median(samples)
    assert peak is not None
    line: dict[str, Any] = {
        "workload": "W6",
        "executor": "threads",
        "n_tasks": n,
        "layers": 100,
        "width": 100,
        "edges": sum(len(t.upstream) for t in pipe.tasks.values()),
        **spread(samples),
        "tasks_per_s": round(n / wall),
        "peak_rss_mb": peak,
        "target": "<= 2 s; peak RSS <= 300 MB",
        "meets_wall": wall <= 2.0,
        "meets_rss": peak <= 300,
        "meets": wall <= 2.0 and peak <= 300 and not b.failures,
        "diag_define_s": round(define_s, 3),
        "diag_rss_start_mb": rss_start,
        "diag_rss_after_define_mb": rss_defined,
    }
    return _finish(line, b, pipe, reps, diag)


def run_case(case: str, db_url: str | None, reps: int, diag: bool) -> list[dict[str, Any]]:
    """A case is a workload id, or `W4:threads` / `W4:processes`."""
    workload, _, executor = case.partition(":")
    if workload == "W4":
        return w4(db_url, reps, diag, executor or "threads")
    fn = {"W2": w2, "W3": w3, "W5": w5, "W6": w6}[workload]
    return fn(db_url, reps, diag)
