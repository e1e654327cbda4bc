"""Every trigger rule, against upstreams that succeed, fail and skip, in combination."""

from __future__ import annotations

import threading

import pytest

from lockgate import Skip, pipeline, task
from lockgate.engine import events as ev
from lockgate.engine.events import EventBus
from lockgate.model.states import RunState, TaskState
from lockgate.model.trigger_rules import TriggerRule

from .helpers import boom, ok


@task
def skipper() -> None:
    raise Skip("nothing to do")


@task
def target() -> str:
    return "ran"


MAKERS = {"success": ok, "failed": boom, "skipped": skipper}
UP_STATE = {"success": TaskState.SUCCESS, "failed": TaskState.FAILED, "skipped": TaskState.SKIPPED}

COMBOS = [
    ("success", "success"),
    ("success", "failed"),
    ("success", "skipped"),
    ("failed", "failed"),
    ("skipped", "skipped"),
    ("failed", "skipped"),
]
R, K, U = TaskState.SUCCESS, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED
# expected state of the downstream task, for each combination above (in order)
EXPECTED: dict[TriggerRule, tuple[TaskState, ...]] = {
    TriggerRule.ALL_SUCCESS: (R, U, K, U, K, U),
    TriggerRule.ALL_DONE: (R, R, R, R, R, R),
    TriggerRule.ALL_FAILED: (K, K, K, R, K, K),
    TriggerRule.ALL_SKIPPED: (K, K, K, K, R, K),
    TriggerRule.ONE_SUCCESS: (R, R, R, U, K, U),
    TriggerRule.ONE_FAILED: (K, R, K, R, K, R),
    TriggerRule.ONE_DONE: (R, R, R, R, K, R),
    TriggerRule.NONE_FAILED: (R, U, R, U, R, U),
    TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS: (R, U, R, U, K, U),
    TriggerRule.NONE_SKIPPED: (R, R, K, R, K, K),
    TriggerRule.ALWAYS: (R, R, R, R, R, R),
}
CASES = [
    pytest.param(rule, combo, EXPECTED[rule][i], id=f"{rule.value}-{'+'.join(combo)}")
    for rule in EXPECTED
    for i, combo in enumerate(COMBOS)
]


def test_the_table_covers_every_rule() -> None:
    assert set(EXPECTED) == set(TriggerRule)


def _build(rule: TriggerRule, outcomes: tuple[str, ...]):
    with pipeline("rules") as p:
        ups = [MAKERS[o].override(id=f"up{i}")() for i, o in enumerate(outcomes)]
        ups >> target.override(id="target", trigger_rule=rule.value)()
    return p


@pytest.mark.parametrize(("rule", "combo", "expected"), CASES)
def test_trigger_rule(run_pipeline, rule, combo, expected) -> None:
    result, rec = run_pipeline(_build(rule, combo))

    for i, outcome in enumerate(combo):
        assert result.tasks[f"up{i}"].state is UP_STATE[outcome]
    got = result.tasks["target"]
    assert got.state is expected, (rule, combo, got)
    if expected is TaskState.SUCCESS:
        assert got.attempts == 1
        assert result.result("target") == "ran"
        assert rec.kinds("target") == [ev.TASK_QUEUED, ev.TASK_STARTED, ev.TASK_SUCCEEDED]
    else:
        assert got.attempts == 0, "a task decided by its trigger rule must not run"
        assert rec.of(ev.TASK_STARTED, "target") == []
    if expected is TaskState.SKIPPED:
        [skipped] = rec.of(ev.TASK_SKIPPED, "target")
        assert skipped.data and rule.value in skipped.data["reason"]
    if expected is TaskState.UPSTREAM_FAILED:
        assert rec.kinds("target") == [ev.TASK_UPSTREAM_FAILED]
        assert "upstream" in (got.error or "")
    failed = "failed" in combo or expected is TaskState.UPSTREAM_FAILED
    assert result.state is (RunState.FAILED if failed else RunState.SUCCESS)
    assert rec.events[-1].kind == ev.RUN_FINISHED
    assert rec.events[-1].state == result.state.value


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("one_failed", TaskState.SUCCESS),
        ("one_done", TaskState.SUCCESS),
        ("all_failed", TaskState.SUCCESS),
        ("all_done", TaskState.SUCCESS),
        ("none_skipped", TaskState.SUCCESS),
        ("all_success", TaskState.UPSTREAM_FAILED),
        ("none_failed", TaskState.UPSTREAM_FAILED),
        ("one_success", TaskState.UPSTREAM_FAILED),
        ("all_skipped", TaskState.SKIPPED),
    ],
)
def test_upstream_failed_counts_as_failed(run_pipeline, rule, expected) -> None:
    with pipeline("chain") as p:
        a = boom.override(id="a")()
        b = ok.override(id="b")()
        a >> b >> target.override(id="c", trigger_rule=rule)()
    result, _ = run_pipeline(p)
    assert result.tasks["a"].state is TaskState.FAILED
    assert result.tasks["b"].state is TaskState.UPSTREAM_FAILED
    assert result.tasks["c"].state is expected
    assert result.state is RunState.FAILED


def test_rules_over_three_upstreams(run_pipeline) -> None:
    with pipeline("three") as p:
        ups = [ok.override(id="s")(), boom.override(id="f")(), skipper.override(id="k")()]
        for rule in TriggerRule:
            ups >> target.override(id=f"t_{rule.value}", trigger_rule=rule.value)()
    result, _ = run_pipeline(p)
    states = {r: result.tasks[f"t_{r.value}"].state for r in TriggerRule}
    assert states == {
        TriggerRule.ALL_SUCCESS: U,
        TriggerRule.ALL_DONE: R,
        TriggerRule.ALL_FAILED: K,
        TriggerRule.ALL_SKIPPED: K,
        TriggerRule.ONE_SUCCESS: R,
        TriggerRule.ONE_FAILED: R,
        TriggerRule.ONE_DONE: R,
        TriggerRule.NONE_FAILED: U,
        TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS: U,
        TriggerRule.NONE_SKIPPED: K,
        TriggerRule.ALWAYS: R,
    }


def test_always_runs_after_its_data_upstream_even_when_it_failed(run_pipeline) -> None:
    @task(trigger_rule="always")
    def report(value: object) -> str:
        return f"got {value!r}"

    with pipeline("always") as p:
        report(boom.override(id="a")())
    result, rec = run_pipeline(p)
    assert result.tasks["report"].state is TaskState.SUCCESS
    assert result.result("report") == "got None"
    assert rec.index(ev.TASK_FAILED, "a") < rec.index(ev.TASK_QUEUED, "report")
    assert result.state is RunState.FAILED


# -- rules that decide before every upstream has finished -------------------------------------


@pytest.mark.parametrize(
    ("rule", "first", "expected"),
    [
        ("one_success", ok, TaskState.SUCCESS),
        ("one_failed", boom, TaskState.SUCCESS),
        ("one_done", ok, TaskState.SUCCESS),
        ("one_done", boom, TaskState.SUCCESS),
        ("all_success", boom, TaskState.UPSTREAM_FAILED),
        ("none_failed", boom, TaskState.UPSTREAM_FAILED),
        ("all_failed", ok, TaskState.SKIPPED),
        ("all_skipped", ok, TaskState.SKIPPED),
        ("none_skipped", skipper, TaskState.SKIPPED),
    ],
)
def test_rule_decides_without_waiting_for_a_slow_upstream(
    run_pipeline, rule, first, expected
) -> None:
    """The slow upstream only finishes once the target was decided; if the engine waited for
    it, `slow` would give up after 10 s and return False."""
    decided = threading.Event()

    @task
    def slow() -> bool:
        return decided.wait(10)

    @task
    def tgt() -> None:
        decided.set()

    with pipeline("early") as p:
        [first.override(id="first")(), slow()] >> tgt.override(id="target", trigger_rule=rule)()

    def watch(event: ev.Event) -> None:
        if event.task_id == "target" and event.kind in (ev.TASK_SKIPPED, ev.TASK_UPSTREAM_FAILED):
            decided.set()

    bus = EventBus()
    bus.subscribe(watch)
    result, rec = run_pipeline(p, bus=bus)
    assert result.tasks["target"].state is expected
    assert result.result("slow") is True, "the target waited for the slow upstream"
    # the target was decided (started, skipped or upstream_failed) before the slow one ended;
    # when the target ran, its own end races with the slow task's, so only its start counts
    assert rec.index(ev.TASK_SUCCEEDED, "slow") > min(
        i
        for i, e in enumerate(rec.events)
        if e.task_id == "target"
        and e.kind in (ev.TASK_STARTED, ev.TASK_SKIPPED, ev.TASK_UPSTREAM_FAILED)
    )


def test_all_success_with_a_failed_and_a_skipped_upstream_is_always_upstream_failed(
    run_pipeline,
) -> None:
    """Whichever upstream finishes first, the verdict is the same (the skip comes first here)."""
    gate = threading.Event()

    @task
    def late_failure() -> None:
        gate.wait(10)
        raise RuntimeError("late")

    @task
    def quick_skip() -> None:
        raise Skip("quick")

    def watch(event: ev.Event) -> None:
        if event.kind == ev.TASK_SKIPPED and event.task_id == "quick_skip":
            gate.set()

    with pipeline("order") as p:
        [late_failure(), quick_skip()] >> target.override(id="target")()
    for _ in range(3):
        gate.clear()
        bus = EventBus()
        bus.subscribe(watch)
        result, rec = run_pipeline(p, bus=bus)
        assert rec.index(ev.TASK_SKIPPED, "quick_skip") < rec.index(ev.TASK_FAILED, "late_failure")
        assert result.tasks["target"].state is TaskState.UPSTREAM_FAILED


def test_always_without_data_inputs_starts_at_once(run_pipeline) -> None:
    """`always` is not held back by an upstream that is still running."""
    import time as _time

    order: list[str] = []

    @task
    def slow() -> None:
        _time.sleep(0.3)
        order.append("slow")

    @task(trigger_rule="always")
    def eager() -> None:
        order.append("eager")

    with pipeline("always_eager") as p:
        slow() >> eager()

    result, _ = run_pipeline(p)
    assert result.tasks["eager"].state.value == "success"
    assert order == ["eager", "slow"]
