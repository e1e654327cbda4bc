"""Skipping (Skip, ctx.skip()), skip propagation, and branching with @branch."""

from __future__ import annotations

import pytest

from lockgate import Skip, branch, pipeline, shell, task
from lockgate.engine import events as ev
from lockgate.model.states import RunState, TaskState

from .helpers import boom, ok


@task
def raise_skip() -> None:
    raise Skip("no new data")


@task
def ctx_skip(ctx) -> None:
    ctx.skip("nothing to do today")


@task
def echo(value: object = None) -> object:
    return value


@pytest.mark.parametrize("executor", ["inline", "threads"])
@pytest.mark.parametrize(
    ("maker", "reason"), [(raise_skip, "no new data"), (ctx_skip, "nothing to do today")]
)
def test_a_task_skips_itself(run_pipeline, executor, maker, reason) -> None:
    with pipeline("skip") as p:
        maker.override(id="s")()
    result, rec = run_pipeline(p, executor=executor)
    assert result.state is RunState.SUCCESS
    t = result.tasks["s"]
    assert t.state is TaskState.SKIPPED
    assert t.attempts == 1
    assert t.error is None
    [skipped] = rec.of(ev.TASK_SKIPPED, "s")
    assert skipped.data is not None and skipped.data["reason"] == reason
    assert rec.kinds("s") == [ev.TASK_QUEUED, ev.TASK_STARTED, ev.TASK_SKIPPED]


def test_skip_is_not_retried(run_pipeline) -> None:
    with pipeline("skipretry") as p:
        raise_skip.override(id="s", retries=3)()
    result, rec = run_pipeline(p)
    assert result.tasks["s"].state is TaskState.SKIPPED
    assert result.tasks["s"].attempts == 1
    assert rec.of(ev.TASK_RETRYING) == []


def test_skip_propagates_down_the_graph(run_pipeline) -> None:
    with pipeline("propagate") as p:
        a = raise_skip.override(id="a")()
        b = echo.override(id="b")(a)  # data dependency: all_success, skipped
        c = echo.override(id="c")(b)
        d = ok.override(id="d", trigger_rule="all_done")()
        e = ok.override(id="e", trigger_rule="none_failed")()
        f = ok.override(id="f", trigger_rule="none_failed_min_one_success")()
        unrelated = ok.override(id="unrelated")()
        c >> [d, e, f]
        unrelated >> echo.override(id="after_unrelated")()
    result, rec = run_pipeline(p)
    states = {tid: t.state for tid, t in result.tasks.items()}
    assert states == {
        "a": TaskState.SKIPPED,
        "b": TaskState.SKIPPED,
        "c": TaskState.SKIPPED,
        "d": TaskState.SUCCESS,
        "e": TaskState.SUCCESS,
        "f": TaskState.SKIPPED,
        "unrelated": TaskState.SUCCESS,
        "after_unrelated": TaskState.SUCCESS,
    }
    assert result.state is RunState.SUCCESS
    assert result.tasks["b"].attempts == 0 and result.tasks["c"].attempts == 0
    assert rec.index(ev.TASK_SKIPPED, "a") < rec.index(ev.TASK_SKIPPED, "b")
    assert rec.index(ev.TASK_SKIPPED, "b") < rec.index(ev.TASK_SKIPPED, "c")


def test_shell_task_downstream_of_a_skip_does_not_run(run_pipeline, tmp_path) -> None:
    marker = tmp_path / "ran"
    with pipeline("skipshell") as p:
        raise_skip.override(id="a")() >> shell("touch", ["touch", str(marker)])
    result, _ = run_pipeline(p)
    assert result.tasks["touch"].state is TaskState.SKIPPED
    assert not marker.exists()


# -- branching --------------------------------------------------------------------------------


def _branch_pipeline(choice: object, join_rule: str = "none_failed_min_one_success"):
    @branch
    def choose() -> object:
        return choice

    with pipeline("branching") as p:
        c = choose()
        left = ok.override(id="left")()
        middle = ok.override(id="middle")()
        right = ok.override(id="right")()
        after_right = ok.override(id="after_right")()
        join = ok.override(id="join", trigger_rule=join_rule)()
        c >> [left, middle, right]
        right >> after_right
        [left, middle, after_right] >> join
    return p


@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_branch_follows_one_id(run_pipeline, executor) -> None:
    result, rec = run_pipeline(_branch_pipeline("left"), executor=executor)
    states = {tid: t.state for tid, t in result.tasks.items()}
    assert states == {
        "choose": TaskState.SUCCESS,
        "left": TaskState.SUCCESS,
        "middle": TaskState.SKIPPED,
        "right": TaskState.SKIPPED,
        "after_right": TaskState.SKIPPED,
        "join": TaskState.SUCCESS,
    }
    assert result.state is RunState.SUCCESS
    assert result.result("choose") == "left"
    [middle] = rec.of(ev.TASK_SKIPPED, "middle")
    assert middle.data is not None and "choose" in middle.data["reason"]
    assert result.tasks["middle"].attempts == 0


def test_branch_follows_a_list(run_pipeline) -> None:
    result, _ = run_pipeline(_branch_pipeline(["left", "right"]))
    states = {tid: t.state for tid, t in result.tasks.items()}
    assert states["left"] is TaskState.SUCCESS
    assert states["right"] is TaskState.SUCCESS
    assert states["after_right"] is TaskState.SUCCESS
    assert states["middle"] is TaskState.SKIPPED
    assert states["join"] is TaskState.SUCCESS
    assert result.state is RunState.SUCCESS


@pytest.mark.parametrize("choice", [None, []])
def test_branch_choosing_nothing_skips_every_downstream(run_pipeline, choice) -> None:
    result, _ = run_pipeline(_branch_pipeline(choice))
    for tid in ("left", "middle", "right", "after_right", "join"):
        assert result.tasks[tid].state is TaskState.SKIPPED, tid
    assert result.state is RunState.SUCCESS


def test_join_with_default_rule_is_skipped_after_a_branch(run_pipeline) -> None:
    result, _ = run_pipeline(_branch_pipeline("left", join_rule="all_success"))
    assert result.tasks["left"].state is TaskState.SUCCESS
    assert result.tasks["join"].state is TaskState.SKIPPED


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ("nowhere", "'nowhere', which is not a direct downstream task"),
        (["left", "after_right"], "'after_right', which is not a direct downstream task"),
        (5, "must return a task id or a list of task ids, got 5"),
        ([1, "left"], "must return a task id or a list of task ids"),
        ({"left": True}, "must return a task id or a list of task ids"),
    ],
)
def test_invalid_branch_choice_fails_the_branch_task(run_pipeline, choice, message) -> None:
    result, rec = run_pipeline(_branch_pipeline(choice))
    b = result.tasks["choose"]
    assert b.state is TaskState.FAILED
    assert message in (b.error or "")
    for tid in ("left", "middle", "right", "after_right", "join"):
        assert result.tasks[tid].state is TaskState.UPSTREAM_FAILED, tid
        assert result.tasks[tid].attempts == 0
    assert result.state is RunState.FAILED
    [failed] = rec.of(ev.TASK_FAILED, "choose")
    assert message in failed.data["error"]


def test_invalid_branch_choice_is_retried(run_pipeline) -> None:
    calls: list[int] = []

    @branch(retries=1)
    def choose() -> str:
        calls.append(1)
        return "nowhere" if len(calls) == 1 else "b"

    with pipeline("branchretry") as p:
        choose() >> [ok.override(id="a")(), ok.override(id="b")()]
    result, _ = run_pipeline(p)
    assert result.tasks["choose"].state is TaskState.SUCCESS
    assert result.tasks["choose"].attempts == 2
    assert result.tasks["a"].state is TaskState.SKIPPED
    assert result.tasks["b"].state is TaskState.SUCCESS


def test_branch_that_skips_itself_skips_its_downstream(run_pipeline) -> None:
    @branch
    def choose(ctx) -> str:
        ctx.skip("not today")

    with pipeline("branchskip") as p:
        choose() >> [ok.override(id="a")(), ok.override(id="b")()]
    result, _ = run_pipeline(p)
    assert result.tasks["choose"].state is TaskState.SKIPPED
    assert result.tasks["a"].state is TaskState.SKIPPED
    assert result.tasks["b"].state is TaskState.SKIPPED
    assert result.state is RunState.SUCCESS


def test_branch_downstream_with_another_upstream(run_pipeline) -> None:
    """A chosen task still waits for its other upstreams; an unchosen one is skipped at once."""

    @branch
    def choose() -> str:
        return "a"

    with pipeline("branchmulti") as p:
        other = boom.override(id="other")()
        a = ok.override(id="a", trigger_rule="all_done")()
        b = ok.override(id="b", trigger_rule="all_done")()
        choose() >> [a, b]
        other >> [a, b]
    result, _ = run_pipeline(p)
    assert result.tasks["a"].state is TaskState.SUCCESS
    assert result.tasks["b"].state is TaskState.SKIPPED
    assert result.state is RunState.FAILED
