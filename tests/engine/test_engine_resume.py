"""The engine continuing from recorded task states (what `lockgate resume` relies on)."""

from __future__ import annotations

import threading
import time

from lockgate import pipeline, task
from lockgate.engine import events as ev
from lockgate.engine.run import PriorTask
from lockgate.model.states import RunState, TaskState


def test_successes_are_kept_and_their_results_passed_on(make_engine) -> None:
    calls: list[str] = []

    @task
    def extract() -> list:
        calls.append("extract")
        return [0]

    @task
    def total(values: list) -> int:
        calls.append("total")
        return sum(values)

    with pipeline("resume") as p:
        total(extract())
    engine, rec = make_engine(
        p,
        prior={
            "extract": PriorTask(TaskState.SUCCESS, 1, "[1, 2, 3]"),
            "total": PriorTask(TaskState.CANCELLED, 1),
        },
    )
    result = engine.run()
    assert calls == ["total"]
    assert result.state is RunState.SUCCESS
    assert result.tasks["extract"].attempts == 1
    assert result.result("total") == 6
    assert result.tasks["total"].attempts == 2
    assert rec.of(ev.TASK_STARTED, "extract") == []


def test_lost_attempt_with_retries_left_runs_again(make_engine) -> None:
    with pipeline("lost") as p:
        a = task(lambda: 1).override(id="a")()
        a >> task(lambda: 2).override(id="b", retries=2)()
    engine, _ = make_engine(
        p, prior={"a": PriorTask(TaskState.SUCCESS, 1, "1"), "b": PriorTask(TaskState.LOST, 2)}
    )
    result = engine.run()
    assert result.tasks["b"].state is TaskState.SUCCESS
    assert result.tasks["b"].attempts == 3


def test_lost_attempt_without_retries_left_fails(make_engine) -> None:
    calls: list[int] = []

    @task
    def b(x: int) -> int:
        calls.append(x)
        return x

    with pipeline("lostnoretry") as p:
        a = task(lambda: 1).override(id="a")()
        b(a) >> task(lambda: 3).override(id="c")()
        task(lambda: 4).override(id="root")()  # a root lost with no retries left fails too
    engine, rec = make_engine(
        p,
        prior={
            "a": PriorTask(TaskState.SUCCESS, 1, "1"),
            "b": PriorTask(TaskState.LOST, 1),
            "root": PriorTask(TaskState.UP_FOR_RETRY, 1),
        },
    )
    result = engine.run()
    assert calls == [], "a lost attempt without retries left must not run again"
    assert result.tasks["b"].state is TaskState.FAILED
    assert result.tasks["b"].error == "attempt 1 was lost and no retries are left"
    assert result.tasks["b"].attempts == 1
    assert result.tasks["c"].state is TaskState.UPSTREAM_FAILED
    assert result.tasks["root"].state is TaskState.FAILED
    assert result.tasks["root"].error == "attempt 1 was up_for_retry and no retries are left"
    assert result.state is RunState.FAILED
    # the task fails, but the interrupted attempt keeps its own state in the record
    [failed_b] = rec.of(ev.TASK_FAILED, "b")
    assert (failed_b.attempt, failed_b.state) == (1, "failed")
    assert failed_b.data["attempt_state"] == "lost"
    assert rec.of(ev.TASK_FAILED, "root")[0].data["attempt_state"] == "up_for_retry"


def test_recorded_final_states_are_counted_once(make_engine) -> None:
    """A task decided while restoring (b, skipped because a was) must count once downstream:
    `c` (all_done over b and d) must still wait for d."""
    d_done = threading.Event()

    @task
    def d() -> None:
        time.sleep(0.2)
        d_done.set()

    @task(trigger_rule="all_done")
    def c() -> bool:
        return d_done.is_set()

    with pipeline("countonce") as p:
        a = task(lambda: 1).override(id="a")()
        b = task(lambda: 2).override(id="b")()
        a >> b
        [b, d()] >> c()
    engine, rec = make_engine(p, prior={"a": PriorTask(TaskState.SKIPPED, 1)})
    result = engine.run()
    assert result.tasks["b"].state is TaskState.SKIPPED
    assert result.tasks["d"].state is TaskState.SUCCESS
    assert result.result("c") is True, "c ran before its upstream d had finished"
    assert rec.index(ev.TASK_SUCCEEDED, "d") < rec.index(ev.TASK_QUEUED, "c")


def test_recorded_failure_is_kept(make_engine) -> None:
    with pipeline("keptfail") as p:
        a = task(lambda: 1).override(id="a")()
        a >> task(lambda: 2).override(id="b")()
        a >> task(lambda: 3).override(id="c", trigger_rule="all_done")()
    engine, _ = make_engine(p, prior={"a": PriorTask(TaskState.FAILED, 2)})
    result = engine.run()
    assert result.tasks["a"].state is TaskState.FAILED
    assert result.tasks["a"].attempts == 2
    assert result.tasks["b"].state is TaskState.UPSTREAM_FAILED
    assert result.tasks["c"].state is TaskState.SUCCESS
    assert result.state is RunState.FAILED
