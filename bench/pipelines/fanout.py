"""W2: fan-out, 1 root -> N independent no-op Python tasks -> 1 join."""

from lockgate import pipeline, task


@task
def noop() -> None:
    return None


def fanout(width: int, pipeline_id: str = "bench_fanout"):
    with pipeline(pipeline_id) as p:
        root = noop.override(id="root")()
        mids = [noop.override(id=f"t{i}")() for i in range(width)]
        join = noop.override(id="join")()
        root >> mids
        mids >> join
    return p


bench_fanout = fanout(500)
