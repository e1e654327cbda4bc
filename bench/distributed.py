"""W9: the Dask executor, 10,000 no-op tasks on a real `dask scheduler` and two `dask worker`
processes on 127.0.0.1 (started here; the same cluster starter as the tests' fixture), state
persisted to the metadata DB as in W2."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.common import median, repeat, rss_mb, spread
from bench.engine import Bench, _common

CONCURRENCY = 256
"""Attempts in flight at once: enough to keep both workers' threads busy across the round trips
to the scheduler (the cluster, not this figure, bounds how many run at the same moment)."""


def w9(db_url: str | None, reps: int, diag: bool) -> list[dict[str, Any]]:
    import os

    from tests.daskcluster import start_cluster

    cluster = start_cluster(Path(tempfile.mkdtemp(prefix="lockgate-bench-dask-")), nthreads=2)
    b = Bench(db_url)
    try:
        os.environ["LOCKGATE_DASK_ADDRESS"] = cluster.address
        pipe = b.pipeline("dask_fanout.py", "bench_dask_fanout")
        n = len(pipe.tasks)
        samples = repeat(lambda: b.run(pipe, executor="dask", concurrency=CONCURRENCY), reps)
        wall = median(samples)
        line: dict[str, Any] = {
            "workload": "W9",
            "executor": "dask",
            "workers": 2,
            "threads_per_worker": 2,
            "concurrency": CONCURRENCY,
            "n_tasks": n,
            **spread(samples, 4),
            "tasks_per_s": round(n / wall),
            "target": ">= 1,000 tasks/s",
            "meets": n / wall >= 1_000 and not b.failures,
            "peak_rss_mb": rss_mb(),
        }
        if diag:
            threads = repeat(lambda: b.run(pipe, executor="threads"), max(1, reps // 2))
            line["diag_same_pipeline_threads_tasks_per_s"] = round(n / median(threads))
        line.update(_common(b, reps))
        return [line]
    finally:
        b.cleanup()
        cluster.stop()
