"""W3: a chain of N no-op Python tasks in a line (plus a 1-task pipeline for the fixed cost)."""

from lockgate import pipeline, task


@task
def noop() -> None:
    return None


def chain(length: int, pipeline_id: str):
    with pipeline(pipeline_id) as p:
        prev = noop.override(id="t0")()
        for i in range(1, length):
            cur = noop.override(id=f"t{i}")()
            prev >> cur
            prev = cur
    return p


bench_chain = chain(100, "bench_chain")
bench_single = chain(1, "bench_single")
