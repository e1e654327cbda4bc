"""W6: a layered DAG, `layers` x `width` no-op tasks. Task i of layer k depends on tasks i and
(i + 1) % width of layer k - 1 (a realistic "each step reads two neighbours" pattern)."""

from lockgate import pipeline, task


@task
def noop() -> None:
    return None


def grid(layers: int, width: int, pipeline_id: str = "bench_grid"):
    with pipeline(pipeline_id) as p:
        prev: list = []
        for k in range(layers):
            cur = []
            for i in range(width):
                deps = [prev[i], prev[(i + 1) % width]] if prev else []
                cur.append(noop.override(id=f"l{k}_t{i}", depends_on=deps)())
            prev = cur
    return p


bench_grid = grid(100, 100)
