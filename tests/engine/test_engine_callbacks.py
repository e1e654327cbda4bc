"""Callbacks (on_success, on_failure, on_retry) and compensation tasks."""

from __future__ import annotations

import threading

import pytest

from lockgate import TaskContext, pipeline, shell, task
from lockgate.engine import events as ev
from lockgate.model.states import RunState, TaskState


class Calls:
    """Records callback invocations (callbacks run in the engine's thread)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, TaskContext]] = []
        self.lock = threading.Lock()

    def make(self, name: str):
        def callback(ctx: TaskContext) -> None:
            with self.lock:
                self.items.append((name, ctx))

        callback.__qualname__ = name
        return callback

    def names(self) -> list[str]:
        return [n for n, _ in self.items]

    def ctxs(self, name: str) -> list[TaskContext]:
        return [c for n, c in self.items if n == name]


def _flaky(failures: int):
    count = [0]

    def body() -> str:
        count[0] += 1
        if count[0] <= failures:
            raise ValueError(f"failure {count[0]}")
        return "done"

    return body


@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_on_success(run_pipeline, executor) -> None:
    calls = Calls()
    t = task(
        on_success=calls.make("success"),
        on_failure=calls.make("failure"),
        on_retry=calls.make("retry"),
    )(_flaky(0))
    with pipeline("cb", params={"env": "test"}) as p:
        t.override(id="t")()
    result, _ = run_pipeline(p, executor=executor)
    assert result.state is RunState.SUCCESS
    assert calls.names() == ["success"]
    [ctx] = calls.ctxs("success")
    assert isinstance(ctx, TaskContext)
    assert (ctx.run_id, ctx.pipeline_id, ctx.task_id, ctx.attempt) == (result.run_id, "cb", "t", 1)
    assert ctx.params == {"env": "test"}
    assert ctx.error is None


def test_on_retry_then_on_failure_only_at_the_end(run_pipeline) -> None:
    calls = Calls()
    t = task(
        retries=2,
        on_success=calls.make("success"),
        on_failure=calls.make("failure"),
        on_retry=calls.make("retry"),
    )(_flaky(100))
    with pipeline("cbfail") as p:
        t.override(id="t")()
    result, rec = run_pipeline(p)
    assert result.tasks["t"].state is TaskState.FAILED
    assert calls.names() == ["retry", "retry", "failure"]
    assert [c.attempt for c in calls.ctxs("retry")] == [1, 2]
    assert [c.error for c in calls.ctxs("retry")] == [
        "ValueError: failure 1",
        "ValueError: failure 2",
    ]
    [failure] = calls.ctxs("failure")
    assert failure.attempt == 3
    assert failure.error == "ValueError: failure 3"
    assert failure.task_id == "t"
    assert rec.of(ev.CALLBACK_FAILED) == []


def test_on_failure_not_called_when_a_retry_succeeds(run_pipeline) -> None:
    calls = Calls()
    t = task(
        retries=3,
        on_success=calls.make("success"),
        on_failure=calls.make("failure"),
        on_retry=calls.make("retry"),
    )(_flaky(2))
    with pipeline("cbretry") as p:
        t.override(id="t")()
    result, _ = run_pipeline(p)
    assert result.tasks["t"].state is TaskState.SUCCESS
    assert calls.names() == ["retry", "retry", "success"]
    assert calls.ctxs("success")[0].attempt == 3


def test_callbacks_on_shell_tasks_and_lists_of_callbacks(run_pipeline) -> None:
    calls = Calls()
    with pipeline("cbshell") as p:
        shell("good", "true", on_success=[calls.make("s1"), calls.make("s2")])
        shell("bad", "exit 3", on_failure=[calls.make("f1"), calls.make("f2")])
    result, _ = run_pipeline(p)
    assert sorted(calls.names()) == ["f1", "f2", "s1", "s2"]
    assert calls.names().index("s1") < calls.names().index("s2")
    assert calls.names().index("f1") < calls.names().index("f2")
    assert calls.ctxs("f1")[0].error == "command exited with code 3"
    assert result.state is RunState.FAILED


def test_no_callbacks_for_tasks_that_never_ran(run_pipeline) -> None:
    calls = Calls()
    with pipeline("cbnever") as p:
        shell("bad", "exit 1") >> shell(
            "down", "true", on_failure=calls.make("f"), on_success=calls.make("s")
        )
    result, _ = run_pipeline(p)
    assert result.tasks["down"].state is TaskState.UPSTREAM_FAILED
    assert calls.names() == []


def test_raising_callback_does_not_break_the_run(run_pipeline) -> None:
    after: list[str] = []

    def exploding(ctx: TaskContext) -> None:
        raise KeyError("nope")

    def also_runs(ctx: TaskContext) -> None:
        after.append(ctx.task_id)

    with pipeline("cbraise") as p:
        a = task(lambda: 1).override(id="a", on_success=[exploding, also_runs])()
        b = task(_flaky(1)).override(id="b", retries=1, on_retry=exploding)()
        c = task(_flaky(5)).override(id="c", on_failure=exploding)()
        a >> task(lambda: 2).override(id="next")()
    result, rec = run_pipeline(p)
    assert result.tasks["a"].state is TaskState.SUCCESS
    assert result.tasks["next"].state is TaskState.SUCCESS
    assert result.tasks["b"].state is TaskState.SUCCESS
    assert result.tasks["c"].state is TaskState.FAILED
    assert after == ["a"], "a raising callback must not stop the next one"
    failed = rec.of(ev.CALLBACK_FAILED)
    assert sorted((e.task_id, e.attempt) for e in failed) == [("a", 1), ("b", 1), ("c", 1)]
    for e in failed:
        assert e.data is not None
        assert e.data["callback"].endswith("exploding")
        assert e.data["error"] == "KeyError: 'nope'"
    assert result.state is RunState.FAILED  # because of c, not of the callbacks
    assert rec.events[-1].kind == ev.RUN_FINISHED
    del b, c


# -- compensation ------------------------------------------------------------------------------


def _compensated(body, **options):
    seen: list[TaskContext] = []

    @task
    def undo(ctx: TaskContext) -> str:
        seen.append(ctx)
        return f"undid {ctx.failed_task}"

    with pipeline("saga") as p:
        u = undo()
        t = task(body).override(id="work", compensate_with=u, **options)()
        t >> task(lambda: "next").override(id="next")()
    return p, seen


def test_compensation_runs_when_the_task_finally_fails(run_pipeline) -> None:
    p, seen = _compensated(_flaky(100), retries=1)
    result, rec = run_pipeline(p)
    assert result.tasks["work"].state is TaskState.FAILED
    assert result.tasks["work"].attempts == 2
    assert result.tasks["undo"].state is TaskState.SUCCESS
    assert result.tasks["undo"].attempts == 1
    assert result.result("undo") == "undid work"
    [ctx] = seen
    assert ctx.failed_task == "work"
    assert ctx.error == "ValueError: failure 2"
    assert ctx.task_id == "undo"
    assert result.tasks["next"].state is TaskState.UPSTREAM_FAILED
    assert result.state is RunState.FAILED  # compensating does not make the run a success
    assert rec.index(ev.TASK_FAILED, "work") < rec.index(ev.TASK_QUEUED, "undo")
    assert len(rec.of(ev.TASK_STARTED, "undo")) == 1


@pytest.mark.parametrize(("failures", "retries"), [(0, 0), (1, 1), (2, 3)])
def test_compensation_is_skipped_when_the_task_succeeds(run_pipeline, failures, retries) -> None:
    p, seen = _compensated(_flaky(failures), retries=retries)
    result, rec = run_pipeline(p)
    assert result.tasks["work"].state is TaskState.SUCCESS
    assert result.tasks["undo"].state is TaskState.SKIPPED
    assert result.tasks["undo"].attempts == 0
    assert seen == []
    [skipped] = rec.of(ev.TASK_SKIPPED, "undo")
    assert "did not fail" in skipped.data["reason"]
    assert result.state is RunState.SUCCESS


def test_compensation_is_skipped_when_the_task_never_runs(run_pipeline) -> None:
    seen: list[str] = []

    @task
    def undo() -> None:
        seen.append("x")

    with pipeline("sagaup") as p:
        bad = shell("bad", "exit 1")
        bad >> task(lambda: 1).override(id="work", compensate_with=undo())()
    result, _ = run_pipeline(p)
    assert result.tasks["work"].state is TaskState.UPSTREAM_FAILED
    assert result.tasks["undo"].state is TaskState.SKIPPED
    assert seen == []


def test_shell_compensation_sees_the_failure_in_its_own_run(run_pipeline, tmp_path) -> None:
    out = tmp_path / "comp.txt"
    with pipeline("sagashell") as p:
        undo = shell("undo", f'echo "compensating $LOCKGATE_TASK" > "{out}"')
        shell("work", "exit 4", compensate_with=undo)
    result, _ = run_pipeline(p)
    assert result.tasks["work"].state is TaskState.FAILED
    assert result.tasks["undo"].state is TaskState.SUCCESS
    assert out.read_text().strip() == "compensating undo"


def test_failing_compensation_is_reported(run_pipeline) -> None:
    @task(retries=1)
    def undo() -> None:
        raise RuntimeError("cannot undo")

    with pipeline("sagafail") as p:
        shell("work", "exit 1", compensate_with=undo())
    result, _ = run_pipeline(p)
    assert result.tasks["undo"].state is TaskState.FAILED
    assert result.tasks["undo"].attempts == 2
    assert result.tasks["undo"].error == "RuntimeError: cannot undo"
    assert result.state is RunState.FAILED


def test_timed_out_task_is_compensated(run_pipeline) -> None:
    seen: list[str | None] = []

    @task
    def undo(ctx: TaskContext) -> None:
        seen.append(ctx.error)

    with pipeline("sagatimeout") as p:
        shell("work", "exec sleep 30", timeout=0.2, compensate_with=undo())
    result, _ = run_pipeline(p)
    assert result.tasks["undo"].state is TaskState.SUCCESS
    assert seen == ["timed out after 0.2s"]
