"""W4: N independent tasks that each sleep; run with a concurrency limit.

Module-level so that the processes executor's workers can load it from this file."""

import time

from lockgate import pipeline, task

SLEEP_S = 0.5


@task
def sleeper() -> None:
    time.sleep(SLEEP_S)


def sleepers(count: int, pipeline_id: str = "bench_sleepers"):
    with pipeline(pipeline_id) as p:
        for i in range(count):
            sleeper.override(id=f"s{i}")()
    return p


bench_sleepers = sleepers(32)
