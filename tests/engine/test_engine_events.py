"""The event stream of a run: complete, ordered, and safe from misbehaving subscribers."""

from __future__ import annotations

import pytest

from lockgate import pipeline, shell, task
from lockgate.engine import events as ev
from lockgate.engine.events import EventBus
from lockgate.model.states import RunState, TaskState

from .helpers import Recorder


def _simple():
    @task
    def a() -> int:
        return 1

    @task
    def b(x: int) -> int:
        return x + 1

    with pipeline("simple") as p:
        b(a()) >> shell("c", "true")
        task(lambda: "x").override(id="d")()
    return p


@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_event_order_of_a_simple_run(run_pipeline, executor) -> None:
    result, rec = run_pipeline(_simple(), executor=executor)
    assert result.state is RunState.SUCCESS
    events = rec.events
    assert events[0].kind == ev.RUN_STARTED
    assert events[0].state == RunState.RUNNING.value
    assert events[0].task_id is None
    assert events[-1].kind == ev.RUN_FINISHED
    assert events[-1].state == RunState.SUCCESS.value
    assert events[-1].data["failed_tasks"] == []
    assert [e.kind for e in events].count(ev.RUN_STARTED) == 1
    assert [e.kind for e in events].count(ev.RUN_FINISHED) == 1
    assert {e.run_id for e in events} == {result.run_id}
    for tid in ("a", "b", "c", "d"):
        assert rec.kinds(tid) == [ev.TASK_QUEUED, ev.TASK_STARTED, ev.TASK_SUCCEEDED], tid
        assert [e.state for e in events if e.task_id == tid] == ["queued", "running", "success"]
        assert [e.attempt for e in events if e.task_id == tid] == [1, 1, 1]
    # dependencies: a downstream task is queued only after its upstream succeeded
    assert rec.index(ev.TASK_SUCCEEDED, "a") < rec.index(ev.TASK_QUEUED, "b")
    assert rec.index(ev.TASK_SUCCEEDED, "b") < rec.index(ev.TASK_QUEUED, "c")
    # timestamps never go backwards
    stamps = [e.ts for e in events]
    assert stamps == sorted(stamps)
    assert events[0].ts <= result.started_at + 1 and events[-1].ts >= result.ended_at - 1


def test_event_details(run_pipeline, project) -> None:
    result, rec = run_pipeline(_simple())
    [started] = rec.of(ev.TASK_STARTED, "b")
    assert started.data["log_path"] == str(
        project.logs_dir / "simple" / result.run_id / "b" / "attempt-1.log"
    )
    [succeeded] = rec.of(ev.TASK_SUCCEEDED, "b")
    assert succeeded.data["result_json"] == "2"
    assert succeeded.data["started_at"] <= succeeded.data["ended_at"]
    assert rec.of(ev.TASK_SUCCEEDED, "c")[0].data["result_json"] is None
    assert rec.events[0].data == {"executor": "threads", "params": {}}
    assert rec.events[-1].data["duration_s"] >= 0


def test_events_of_a_failing_run(run_pipeline) -> None:
    with pipeline("failing") as p:
        bad = shell("bad", "echo oops >&2; exit 2", retries=1)
        bad >> shell("down", "true") >> shell("further", "true")
        shell("fine", "true")
    result, rec = run_pipeline(p)
    assert result.state is RunState.FAILED
    assert rec.kinds("bad") == [
        ev.TASK_QUEUED,
        ev.TASK_STARTED,
        ev.TASK_RETRYING,
        ev.TASK_QUEUED,
        ev.TASK_STARTED,
        ev.TASK_FAILED,
    ]
    [failed] = rec.of(ev.TASK_FAILED, "bad")
    assert failed.attempt == 2
    assert failed.state == TaskState.FAILED.value
    assert failed.data["error"] == "command exited with code 2"
    assert failed.data["attempt_state"] == "failed"
    assert rec.kinds("down") == [ev.TASK_UPSTREAM_FAILED]
    assert rec.kinds("further") == [ev.TASK_UPSTREAM_FAILED]
    assert rec.index(ev.TASK_UPSTREAM_FAILED, "down") < rec.index(
        ev.TASK_UPSTREAM_FAILED, "further"
    )
    assert rec.events[-1].kind == ev.RUN_FINISHED
    assert rec.events[-1].state == "failed"
    assert rec.events[-1].data["failed_tasks"] == ["bad"]


def test_every_task_reaches_exactly_one_final_event(run_pipeline) -> None:
    from lockgate import Skip

    def skip() -> None:
        raise Skip("no")

    with pipeline("mixed") as p:
        a = task(lambda: 1).override(id="a")()
        s = task(skip).override(id="s")()
        f = shell("f", "exit 1")
        [a, s] >> task(lambda: 2).override(id="after_skip")()
        f >> task(lambda: 3).override(id="after_fail")()
        [a, f] >> task(lambda: 4).override(id="all_done", trigger_rule="all_done")()
    result, rec = run_pipeline(p)
    finals = {
        ev.TASK_SUCCEEDED,
        ev.TASK_FAILED,
        ev.TASK_SKIPPED,
        ev.TASK_UPSTREAM_FAILED,
        ev.TASK_CANCELLED,
    }
    for tid, summary in result.tasks.items():
        ends = [e for e in rec.events if e.task_id == tid and e.kind in finals]
        assert len(ends) == 1, (tid, rec.kinds(tid))
        assert ends[0].state == summary.state.value
        assert rec.events.index(ends[0]) < len(rec.events) - 1


def test_a_raising_subscriber_is_removed_and_the_run_goes_on(run_pipeline, capfd) -> None:
    bus = EventBus()
    calls: list[str] = []

    def bad(event: ev.Event) -> None:
        calls.append(event.kind)
        raise RuntimeError("subscriber bug")

    bus.subscribe(bad)
    result, rec = run_pipeline(_simple(), bus=bus)
    assert result.state is RunState.SUCCESS
    assert calls == [ev.RUN_STARTED], "a failing subscriber is dropped after its first error"
    assert rec.events[-1].kind == ev.RUN_FINISHED
    err = capfd.readouterr().err
    assert "subscriber bug" in err


def test_unsubscribe(run_pipeline) -> None:
    bus = EventBus()
    first = Recorder(bus)
    seen: list[str] = []
    unsubscribe = bus.subscribe(lambda e: seen.append(e.kind))
    unsubscribe()
    run_pipeline(_simple(), bus=bus)
    assert seen == []
    assert first.events
