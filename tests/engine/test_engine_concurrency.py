"""The run-wide concurrency limit, max_active_tasks, and named pools with slots."""

from __future__ import annotations

import threading
import time

import pytest

from lockgate import pipeline, shell, task
from lockgate.config import Project
from lockgate.errors import DefinitionError
from lockgate.model.states import RunState, TaskState

from .helpers import wait_until


class Gauge:
    """Counts tasks inside a section at once, overall and per group.

    With `targets`, a task holds on (at most 5 s) until each group has once had that many
    tasks inside at the same time, so a limit that can be reached is reached however slowly
    threads get going on a busy machine."""

    def __init__(self, targets: dict[str, int] | None = None) -> None:
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.targets = targets or {}

    def _reached(self) -> bool:
        with self.lock:
            return all(self.peak.get(g, 0) >= n for g, n in self.targets.items())

    def work(self, *groups: str, seconds: float = 0.02) -> None:
        with self.lock:
            for g in groups:
                self.now[g] = self.now.get(g, 0) + 1
                self.peak[g] = max(self.peak.get(g, 0), self.now[g])
        wait_until(self._reached, 5)
        time.sleep(seconds)
        with self.lock:
            for g in groups:
                self.now[g] -= 1


def _fan(gauge: Gauge, n: int, pool: str | None = None, prefix: str = "t", **options):
    groups = ("all", pool) if pool else ("all",)
    body = task(lambda: gauge.work(*groups))
    return [body.override(id=f"{prefix}{i}", pool=pool, **options)() for i in range(n)]


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_run_concurrency_limit(run_pipeline, limit) -> None:
    gauge = Gauge({"all": limit})
    with pipeline("limit") as p:
        _fan(gauge, 8)
    result, _ = run_pipeline(p, executor="threads", concurrency=limit)
    assert result.state is RunState.SUCCESS
    assert gauge.peak["all"] <= limit
    assert gauge.peak["all"] == limit, "the limit should also be reached with 8 ready tasks"


def test_max_active_tasks_of_the_pipeline(run_pipeline) -> None:
    gauge = Gauge({"all": 2})
    with pipeline("mat", max_active_tasks=2) as p:
        _fan(gauge, 6)
    result, _ = run_pipeline(p, executor="threads", concurrency=16)
    assert result.state is RunState.SUCCESS
    assert gauge.peak["all"] == 2


def test_inline_runs_one_at_a_time(run_pipeline) -> None:
    gauge = Gauge()
    with pipeline("inline") as p:
        _fan(gauge, 4)
    result, _ = run_pipeline(p, executor="inline", concurrency=8)
    assert result.state is RunState.SUCCESS
    assert gauge.peak["all"] == 1


def test_concurrency_limit_counts_shell_tasks(run_pipeline, tmp_path) -> None:
    log = tmp_path / "spans"
    script = (
        f'echo "start $(date +%s.%N)" >> "{log}"; sleep 0.1; echo "end $(date +%s.%N)" >> "{log}"'
    )
    with pipeline("shells") as p:
        for i in range(6):
            shell(f"s{i}", script)
    result, _ = run_pipeline(p, executor="threads", concurrency=2)
    assert result.state is RunState.SUCCESS
    running = peak = 0
    events = sorted(
        (float(ts), kind) for kind, ts in (line.split() for line in log.read_text().splitlines())
    )
    for _, kind in events:  # at equal times "end" sorts before "start"
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak <= 2


def test_pool_slots_limit_tasks_of_the_pool(run_pipeline) -> None:
    gauge = Gauge({"db": 2, "all": 3})
    with pipeline("pools", pools={"db": 2}) as p:
        _fan(gauge, 6, pool="db", prefix="db")
        _fan(gauge, 4, prefix="free")
    result, _ = run_pipeline(p, executor="threads", concurrency=8)
    assert result.state is RunState.SUCCESS
    assert all(t.state is TaskState.SUCCESS for t in result.tasks.values())
    assert gauge.peak["db"] == 2
    assert gauge.peak["all"] > 2, "tasks outside the pool are not held back by it"


def test_task_taking_every_slot_runs_alone_in_its_pool(run_pipeline) -> None:
    gauge = Gauge()
    with pipeline("bigslots", pools={"db": 3}) as p:
        _fan(gauge, 4, pool="db", prefix="small")
        heavy = task(lambda: gauge.work("all", "db", "heavy"))
        heavy.override(id="heavy", pool="db", pool_slots=3)()
    big_and_small: list[int] = []

    def check(event) -> None:
        if event.task_id == "heavy" and event.kind == "TaskStarted":
            big_and_small.append(gauge.now.get("db", 0))

    from lockgate.engine.events import EventBus

    bus = EventBus()
    bus.subscribe(check)
    result, _ = run_pipeline(p, executor="threads", concurrency=8, bus=bus)
    assert result.state is RunState.SUCCESS
    assert gauge.peak["db"] <= 3
    assert big_and_small == [0], "the 3-slot task started while other db tasks were running"


def test_pools_from_the_project_file(tmp_path, run_pipeline) -> None:
    (tmp_path / "lockgate.toml").write_text("[lockgate]\nconcurrency = 8\n\n[pools]\napi = 1\n")
    project = Project.load(tmp_path)
    assert project.pools == {"api": 1}
    gauge = Gauge()
    with pipeline("projpools") as p:
        _fan(gauge, 4, pool="api")
    result, _ = run_pipeline(p, executor="threads", project=project)
    assert result.state is RunState.SUCCESS
    assert gauge.peak["api"] == 1


def test_pipeline_pools_override_project_pools(tmp_path, run_pipeline) -> None:
    (tmp_path / "lockgate.toml").write_text("[pools]\napi = 1\n")
    gauge = Gauge({"api": 3})
    with pipeline("override", pools={"api": 3}) as p:
        _fan(gauge, 6, pool="api")
    result, _ = run_pipeline(p, executor="threads", project=Project.load(tmp_path))
    assert result.state is RunState.SUCCESS
    assert gauge.peak["api"] == 3


def test_pool_slots_are_released_by_failures_and_timeouts(run_pipeline) -> None:
    release = threading.Event()

    @task(pool="db", timeout=0.2)
    def stuck() -> None:
        release.wait(30)

    @task(pool="db")
    def bad() -> None:
        raise RuntimeError("bad")

    with pipeline("release", pools={"db": 1}) as p:
        stuck()
        bad()
        for i in range(3):
            task(lambda n=i: n).override(id=f"after{i}", pool="db")()
    try:
        result, _ = run_pipeline(p, executor="threads", concurrency=4)
    finally:
        release.set()
    assert result.tasks["stuck"].state is TaskState.FAILED
    assert result.tasks["bad"].state is TaskState.FAILED
    for i in range(3):
        assert result.tasks[f"after{i}"].state is TaskState.SUCCESS


def test_undefined_pool_is_a_definition_error(run_pipeline) -> None:
    with pipeline("nopool") as p:
        task(lambda: 1).override(id="a", pool="gpu")()
    with pytest.raises(DefinitionError, match="pool 'gpu', which is not defined"):
        run_pipeline(p)


def test_too_many_slots_for_a_project_pool(tmp_path, run_pipeline) -> None:
    (tmp_path / "lockgate.toml").write_text("[pools]\ngpu = 1\n")
    with pipeline("toomany") as p:
        task(lambda: 1).override(id="a", pool="gpu", pool_slots=2)()
    with pytest.raises(DefinitionError, match="needs 2 slots of pool 'gpu', which has only 1"):
        run_pipeline(p, project=Project.load(tmp_path))


def test_too_many_slots_for_a_pipeline_pool_is_a_definition_error() -> None:
    with (
        pytest.raises(DefinitionError, match="needs 3 slots of pool 'db', which has only 2"),
        pipeline("toomany2", pools={"db": 2}),
    ):
        task(lambda: 1).override(id="a", pool="db", pool_slots=3)()
