"""Retries: attempt counts, up_for_retry, delays with backoff, a cap and jitter."""

from __future__ import annotations

import threading
import time

import pytest

from lockgate import pipeline, shell, task
from lockgate.engine import events as ev
from lockgate.engine.events import EventBus
from lockgate.model.settings import TaskSettings, make_settings, retry_delay_for
from lockgate.model.states import RunState, TaskState

from .conftest import EXECUTORS


def settings(**options: object) -> TaskSettings:
    return make_settings(options)


# -- retry_delay_for: exact values ----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "failed_attempts", "rand", "expected"),
    [
        ({}, 1, 0.0, 0.0),
        ({"retry_delay": 2}, 1, 0.0, 2.0),
        ({"retry_delay": 2}, 5, 0.0, 2.0),  # no backoff: constant
        ({"retry_delay": 2, "retry_backoff": 2}, 1, 0.0, 2.0),
        ({"retry_delay": 2, "retry_backoff": 2}, 2, 0.0, 4.0),
        ({"retry_delay": 2, "retry_backoff": 2}, 3, 0.0, 8.0),
        ({"retry_delay": 2, "retry_backoff": 2}, 6, 0.0, 64.0),
        ({"retry_delay": 1, "retry_backoff": 3}, 4, 0.0, 27.0),
        ({"retry_delay": 0.5, "retry_backoff": True}, 3, 0.0, 2.0),  # True means doubling
        ({"retry_delay": 2, "retry_backoff": 2, "max_retry_delay": 10}, 3, 0.0, 8.0),
        ({"retry_delay": 2, "retry_backoff": 2, "max_retry_delay": 10}, 4, 0.0, 10.0),
        ({"retry_delay": 2, "retry_backoff": 2, "max_retry_delay": 10}, 30, 0.0, 10.0),
        ({"retry_delay": 30, "max_retry_delay": 10}, 1, 0.0, 10.0),
        # jitter takes up to `retry_jitter` of the delay away, after the cap
        ({"retry_delay": 10, "retry_jitter": 0.5}, 1, 0.0, 10.0),
        ({"retry_delay": 10, "retry_jitter": 0.5}, 1, 0.5, 7.5),
        ({"retry_delay": 10, "retry_jitter": 0.5}, 1, 0.999, 5.005),
        ({"retry_delay": 10, "retry_jitter": 1}, 1, 0.25, 7.5),
        (
            {"retry_delay": 2, "retry_backoff": 2, "max_retry_delay": 10, "retry_jitter": 0.2},
            4,
            0.5,
            9.0,
        ),
        (
            {"retry_delay": 2, "retry_backoff": 2, "max_retry_delay": 10, "retry_jitter": 0.2},
            2,
            1.0,
            3.2,
        ),
        ({"retry_delay": 0, "retry_backoff": 2, "retry_jitter": 0.5}, 9, 0.3, 0.0),
    ],
)
def test_retry_delay_for(options, failed_attempts, rand, expected) -> None:
    assert retry_delay_for(settings(**options), failed_attempts, rand) == pytest.approx(expected)


def test_retry_delay_accepts_timedelta_settings() -> None:
    from datetime import timedelta

    s = settings(
        retry_delay=timedelta(milliseconds=250),
        retry_backoff=2,
        max_retry_delay=timedelta(seconds=1),
    )
    assert [retry_delay_for(s, n, 0.0) for n in (1, 2, 3, 4)] == [0.25, 0.5, 1.0, 1.0]


@pytest.mark.parametrize("jitter", [0.0, 0.1, 0.5, 1.0])
def test_jitter_never_exceeds_the_cap(jitter: float) -> None:
    s = settings(retry_delay=1, retry_backoff=2, max_retry_delay=5, retry_jitter=jitter)
    for n in range(1, 12):
        for rand in (0.0, 0.1, 0.5, 0.9, 0.999999):
            delay = retry_delay_for(s, n, rand)
            assert 0 <= delay <= 5.0
            assert delay >= min(2 ** (n - 1), 5) * (1 - jitter) - 1e-9


@pytest.mark.parametrize("failed_attempts", [1024, 1025, 5000, 100_000])
def test_very_many_retries_stay_at_the_cap(failed_attempts: int) -> None:
    """Exponential backoff must not overflow a float for long-retrying tasks."""
    s = settings(
        retries=1_000_000, retry_delay=1, retry_backoff=2, max_retry_delay=60, retry_jitter=0.5
    )
    assert retry_delay_for(s, failed_attempts, 0.0) == 60.0
    assert retry_delay_for(s, failed_attempts, 0.5) == 45.0


def test_very_many_retries_without_a_cap_do_not_crash() -> None:
    s = settings(retries=1_000_000, retry_delay=1, retry_backoff=2)
    assert retry_delay_for(s, 5000, 0.0) > 1e300
    assert retry_delay_for(settings(retries=10_000, retry_backoff=2), 5000, 0.5) == 0.0


# -- retries in runs -----------------------------------------------------------------------------


def _flaky(failures: int, attempts: list[float]):
    """A task body that fails `failures` times, then returns the attempt number."""

    def body(ctx) -> int:
        attempts.append(time.monotonic())
        if len(attempts) <= failures:
            raise ValueError(f"failure {len(attempts)}")
        return ctx.attempt

    return body


@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_up_for_retry_then_success(run_pipeline, executor) -> None:
    seen: list[float] = []
    flaky = task(retries=3)(_flaky(2, seen))
    with pipeline("retry") as p:
        flaky.override(id="flaky")() >> task(lambda: "after").override(id="after")()
    result, rec = run_pipeline(p, executor=executor)
    t = result.tasks["flaky"]
    assert t.state is TaskState.SUCCESS
    assert t.attempts == 3 and len(seen) == 3
    assert result.result("flaky") == 3  # ctx.attempt of the successful attempt
    assert t.error is None, "the error of a failed attempt is not the task's error"
    assert result.to_json()["tasks"][0]["error"] is None
    assert result.tasks["after"].state is TaskState.SUCCESS
    assert result.state is RunState.SUCCESS
    assert rec.kinds("flaky") == [
        ev.TASK_QUEUED,
        ev.TASK_STARTED,
        ev.TASK_RETRYING,
        ev.TASK_QUEUED,
        ev.TASK_STARTED,
        ev.TASK_RETRYING,
        ev.TASK_QUEUED,
        ev.TASK_STARTED,
        ev.TASK_SUCCEEDED,
    ]
    retrying = rec.of(ev.TASK_RETRYING, "flaky")
    assert [e.state for e in retrying] == [TaskState.UP_FOR_RETRY.value] * 2
    assert [e.attempt for e in retrying] == [1, 2]
    assert [e.data["error"] for e in retrying] == ["ValueError: failure 1", "ValueError: failure 2"]
    assert [e.attempt for e in rec.of(ev.TASK_STARTED, "flaky")] == [1, 2, 3]
    # the downstream task waited for the final success
    assert rec.index(ev.TASK_SUCCEEDED, "flaky") < rec.index(ev.TASK_QUEUED, "after")


def test_retries_exhausted(run_pipeline) -> None:
    seen: list[float] = []
    flaky = task(retries=2)(_flaky(100, seen))
    with pipeline("exhaust") as p:
        flaky.override(id="flaky")() >> task(lambda: 1).override(id="after")()
    result, rec = run_pipeline(p)
    t = result.tasks["flaky"]
    assert t.state is TaskState.FAILED
    assert t.attempts == 3 and len(seen) == 3
    assert t.error == "ValueError: failure 3"
    assert len(rec.of(ev.TASK_RETRYING, "flaky")) == 2
    assert len(rec.of(ev.TASK_FAILED, "flaky")) == 1
    assert result.tasks["after"].state is TaskState.UPSTREAM_FAILED
    assert result.state is RunState.FAILED


def test_pipeline_default_retries_and_task_override(run_pipeline) -> None:
    a_seen: list[float] = []
    b_seen: list[float] = []
    with pipeline("defaults", defaults={"retries": 2}) as p:
        task(_flaky(100, a_seen)).override(id="a")()
        task(_flaky(100, b_seen)).override(id="b", retries=0)()
    result, _ = run_pipeline(p)
    assert result.tasks["a"].attempts == 3 and len(a_seen) == 3
    assert result.tasks["b"].attempts == 1 and len(b_seen) == 1


def test_shell_task_retries(run_pipeline, tmp_path) -> None:
    counter = tmp_path / "count"
    script = (
        f'echo x >> "{counter}"; '
        f'[ "$(wc -l < "{counter}")" -ge 3 ] && exit 0; '
        'echo "attempt $LOCKGATE_ATTEMPT fails"; exit 7'
    )
    with pipeline("shellretry") as p:
        shell("s", script, retries=5)
    result, rec = run_pipeline(p)
    assert result.tasks["s"].state is TaskState.SUCCESS
    assert result.tasks["s"].attempts == 3
    assert [e.data["error"] for e in rec.of(ev.TASK_RETRYING, "s")] == [
        "command exited with code 7"
    ] * 2


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_retry_delays_with_backoff_are_waited(run_pipeline, executor) -> None:
    seen: list[float] = []
    flaky = task(retries=3, retry_delay=0.05, retry_backoff=2)(_flaky(3, seen))
    with pipeline("backoff") as p:
        flaky.override(id="flaky")()
    started = time.monotonic()
    result, rec = run_pipeline(p, executor=executor)
    took = time.monotonic() - started
    assert result.tasks["flaky"].state is TaskState.SUCCESS
    assert result.tasks["flaky"].attempts == 4
    expected = [0.05, 0.1, 0.2]
    assert [e.data["retry_in_s"] for e in rec.of(ev.TASK_RETRYING)] == pytest.approx(expected)
    for gap, delay in zip(_gaps(seen), expected, strict=True):
        assert gap >= delay
    assert took >= sum(expected)
    assert took < 20  # generous: only guards against a hang


def test_retry_delay_capped_by_max_retry_delay(run_pipeline) -> None:
    seen: list[float] = []
    flaky = task(retries=3, retry_delay=0.05, retry_backoff=10, max_retry_delay=0.08)(
        _flaky(3, seen)
    )
    with pipeline("cap") as p:
        flaky.override(id="flaky")()
    started = time.monotonic()
    result, rec = run_pipeline(p)
    took = time.monotonic() - started
    expected = [0.05, 0.08, 0.08]
    assert [e.data["retry_in_s"] for e in rec.of(ev.TASK_RETRYING)] == pytest.approx(expected)
    for gap, delay in zip(_gaps(seen), expected, strict=True):
        assert gap >= delay
    assert took >= sum(expected)
    assert result.tasks["flaky"].attempts == 4


def test_retry_jitter_shortens_each_delay_within_bounds(run_pipeline) -> None:
    seen: list[float] = []
    flaky = task(
        retries=4, retry_delay=0.04, retry_backoff=2, max_retry_delay=0.1, retry_jitter=0.5
    )(_flaky(4, seen))
    with pipeline("jitter") as p:
        flaky.override(id="flaky")()
    result, rec = run_pipeline(p)
    assert result.tasks["flaky"].state is TaskState.SUCCESS
    caps = [0.04, 0.08, 0.1, 0.1]
    delays = [e.data["retry_in_s"] for e in rec.of(ev.TASK_RETRYING)]
    assert len(delays) == 4
    for delay, cap in zip(delays, caps, strict=True):
        assert cap * 0.5 - 1e-9 <= delay <= cap + 1e-9
    for gap, delay in zip(_gaps(seen), delays, strict=True):
        assert gap >= delay


def test_other_tasks_run_while_one_waits_to_retry(run_pipeline) -> None:
    """A retry delay is a timer, not a sleep: the run goes on meanwhile."""
    seen: list[float] = []
    flaky = task(retries=1, retry_delay=1.0)(_flaky(1, seen))
    retrying = threading.Event()

    @task
    def other() -> bool:
        return retrying.wait(10)  # still running when `flaky` fails its first attempt

    def watch(event: ev.Event) -> None:
        if event.kind == ev.TASK_RETRYING:
            retrying.set()

    with pipeline("timer") as p:
        flaky.override(id="flaky")()
        other()
    bus = EventBus()
    bus.subscribe(watch)
    result, rec = run_pipeline(p, concurrency=2, bus=bus)
    assert result.state is RunState.SUCCESS
    assert result.result("other") is True
    second_start = [e for e in rec.of(ev.TASK_STARTED, "flaky") if e.attempt == 2][0]
    assert rec.index(ev.TASK_SUCCEEDED, "other") < rec.events.index(second_start)
    assert _gaps(seen)[0] >= 1.0


def test_skip_on_a_retry_clears_the_earlier_error(run_pipeline) -> None:
    from lockgate import Skip

    @task(retries=1)
    def fail_then_skip(ctx) -> None:
        if ctx.attempt == 1:
            raise RuntimeError("first")
        raise Skip("second")

    with pipeline("failskip") as p:
        fail_then_skip()
    result, _ = run_pipeline(p)
    t = result.tasks["fail_then_skip"]
    assert (t.state, t.attempts, t.error) == (TaskState.SKIPPED, 2, None)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_result_that_is_not_json_fails_at_once_without_retries(
    run_pipeline, pipeline_file, executor
) -> None:
    pipes = pipeline_file(
        """
        import datetime
        from lockgate import pipeline, task

        @task(retries=3, retry_delay=60)
        def d():
            return datetime.date(2024, 1, 1)

        with pipeline("notjson") as p:
            d()
        """
    )
    result, _ = run_pipeline(pipes["notjson"], executor=executor)
    t = result.tasks["d"]
    assert t.state is TaskState.FAILED and t.attempts == 1
    assert t.error.startswith("task 'd' returned a value that is not JSON (Object of type date")
