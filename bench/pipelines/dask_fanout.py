"""W9: 1 root -> 10,000 independent no-op Python tasks -> 1 join, for the Dask executor (the
pipeline is built in this file, so that workers load it from here)."""

from bench.pipelines.fanout import noop

from lockgate import pipeline

with pipeline("bench_dask_fanout") as bench_dask_fanout:
    root = noop.override(id="root")()
    mids = [noop.override(id=f"t{i}")() for i in range(10_000)]
    join = noop.override(id="join")()
    root >> mids
    mids >> join
