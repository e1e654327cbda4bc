"""The Python authoring API: tasks, data passing, ordering, shell tasks, settings, pipelines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lockgate import Pipeline, PipelineBuilder, TaskRef, param, pipeline, shell, task
from lockgate.errors import DefinitionError
from lockgate.model.refs import ParamRef, TaskOutput
from lockgate.model.task import TaskKind
from lockgate.model.trigger_rules import TriggerRule


@task
def numbers() -> dict:
    return {"values": [1, 2, 3], "label": "abc"}


@task
def total(values: list[int], scale: int = 1) -> int:
    return sum(values) * scale


@task
def pair(left, right=None) -> list:
    return [left, right]


@task(retries=2, timeout=30, trigger_rule="all_done")
def configured() -> str:
    return "ok"


@task
def noop() -> None:
    return None


# -- data passing ------------------------------------------------------------------------------


def test_return_value_flows_to_downstream_parameter(run_inline):
    with pipeline("data") as p:
        n = numbers()
        first = pair(n)
        by_key = total(n["values"], scale=2)
        by_index = pair(first[0], right=by_key)
        label = pair(n["label"])
    pipe = p.build()
    assert isinstance(n, TaskRef) and isinstance(by_index, TaskRef)
    assert pipe.tasks["pair"].upstream == ("numbers",)
    assert pipe.tasks["total"].upstream == ("numbers",)
    assert set(pipe.tasks["pair__1"].upstream) == {"pair", "total"}
    assert pipe.tasks["total"].args == (TaskOutput("numbers", "values"), 2)
    assert pipe.tasks["pair__2"].args == (TaskOutput("numbers", "label"),)
    assert label.task_id == "pair__2"

    result = run_inline(p)
    assert result.ok, result.to_json()
    assert result.result("pair") == [{"values": [1, 2, 3], "label": "abc"}, None]
    assert result.result("total") == 12
    assert result.result("pair__1") == [{"values": [1, 2, 3], "label": "abc"}, 12]
    assert result.result("pair__2") == ["abc", None]


def test_nested_subscripts_are_rejected_not_misread():
    message = r"only one subscript is supported \(got \[0\]\['x'\]\)"
    with pytest.raises(DefinitionError, match=message), pipeline("nested"):
        pair(numbers()[0]["x"])


def test_params_are_resolved_at_run_time(run_inline):
    with pipeline("params", params={"scale": 3}) as p:
        total([1, 1], scale=param("scale"))
    assert p.build().tasks["total"].args == ([1, 1], ParamRef("scale"))
    assert run_inline(p).result("total") == 6
    assert run_inline(p, scale=10).result("total") == 20


def test_missing_key_of_an_upstream_result_fails_the_task_not_the_definition(run_inline):
    with pipeline("missing_key") as p:
        total(numbers()["nope"])
    result = run_inline(p)
    assert not result.ok
    assert "no item 'nope'" in (result.tasks["total"].error or "")


def test_calling_a_task_twice_makes_unique_ids():
    with pipeline("twice") as p:
        a, b, c = noop(), noop(), noop()
    assert (a.task_id, b.task_id, c.task_id) == ("noop", "noop__1", "noop__2")
    assert list(p.build().tasks) == ["noop", "noop__1", "noop__2"]


def test_task_outside_a_pipeline_is_a_plain_function():
    assert total([1, 2, 3], scale=2) == 12
    assert numbers()["label"] == "abc"
    assert total.__name__ == "total"
    assert total.__doc__ is None


def test_explicit_ctx_argument_is_rejected():
    @task
    def uses_ctx(ctx) -> None:
        return None

    with pytest.raises(DefinitionError, match="'ctx' is supplied by lockgate"), pipeline("ctx"):
        uses_ctx(ctx=1)


def test_wrong_arguments_are_a_definition_error():
    message = "task 'total': too many positional arguments"
    with pytest.raises(DefinitionError, match=message), pipeline("args"):
        total([1], 2, 3)


# -- ordering ----------------------------------------------------------------------------------


def _upstream(pipe: Pipeline) -> dict[str, set[str]]:
    return {tid: set(t.upstream) for tid, t in pipe.tasks.items()}


def test_rshift_and_lshift_with_lists():
    with pipeline("order") as p:
        a, b, c, d, e, f = (noop.override(id=x)() for x in "abcdef")
        a >> [b, c]  # fan out
        [b, c] >> d  # fan in
        d << [e]  # e before d
        [f] << e  # e before f
        assert (a >> b) is b
    assert _upstream(p.build()) == {
        "a": set(),
        "b": {"a"},
        "c": {"a"},
        "d": {"b", "c", "e"},
        "e": set(),
        "f": {"e"},
    }


def test_chained_rshift():
    with pipeline("chain") as p:
        a, b, c = (shell(x, "true") for x in "abc")
        a >> b >> c
        c << b << a  # the same edges again: no duplicates
    pipe = p.build()
    assert _upstream(pipe) == {"a": set(), "b": {"a"}, "c": {"b"}}
    assert pipe.order == ("a", "b", "c")
    assert pipe.tasks["c"].upstream == ("b",)


def test_rshift_needs_tasks():
    with pytest.raises(DefinitionError, match="'>>' and '<<' link tasks, got str"), pipeline("x"):
        shell("a", "true") >> "b"


def test_rshift_across_pipelines_is_rejected():
    with pipeline("one"):
        a = shell("a", "true")
    message = "task 'a' belongs to pipeline 'one', not 'two'"
    with pytest.raises(DefinitionError, match=message), pipeline("two"):
        b = shell("b", "true")
        b >> a


def test_depends_on_by_ref_and_by_id():
    with pipeline("deps") as p:
        a = shell("a", "true")
        shell("b", "true")
        c = shell("c", "true", depends_on=[a, "b"])
        noop.override(depends_on=[c])()
    assert _upstream(p.build()) == {"a": set(), "b": set(), "c": {"a", "b"}, "noop": {"c"}}


def test_data_dependency_on_a_task_of_another_pipeline_is_rejected():
    with pipeline("first"):
        n = numbers()
    with pytest.raises(DefinitionError, match="belongs to pipeline 'first'"), pipeline("second"):
        total(n)


# -- shell tasks -------------------------------------------------------------------------------


@task
def evil_text() -> str:
    return "$(touch pwned); rm -rf victim; `touch pwned2` && touch pwned3 \"'"


EVIL = "$(touch pwned); rm -rf victim; `touch pwned2` && touch pwned3 \"'"


def test_shell_values_reach_the_command_only_as_environment(run_inline, tmp_path: Path):
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep").write_text("x")
    writer = [sys.executable, "-c", "import os, sys; open(sys.argv[1], 'w').write(os.environ['V'])"]
    with pipeline("quoting", params={"value": "harmless"}) as p:
        text = evil_text()
        shell("as_string", 'printf "%s" "$V" > from_param.txt', env={"V": param("value")})
        shell("from_upstream", 'printf "%s" "$V" > from_upstream.txt', env={"V": text})
        shell("as_argv", [*writer, "from_argv.txt"], env={"V": param("value")})
        shell("literal", 'printf "%s" "$V" > literal.txt', env={"V": EVIL})
    pipe = p.build()
    assert pipe.tasks["as_string"].command == 'printf "%s" "$V" > from_param.txt'
    assert pipe.tasks["as_argv"].command == (*writer, "from_argv.txt")
    assert pipe.tasks["from_upstream"].upstream == ("evil_text",)

    result = run_inline(p, value=EVIL)
    assert result.ok, result.to_json()
    for name in ("from_param", "from_upstream", "from_argv", "literal"):
        assert (tmp_path / f"{name}.txt").read_text() == EVIL, name
    assert not list(tmp_path.glob("pwned*"))
    assert (tmp_path / "victim" / "keep").is_file()


def test_shell_sees_run_context_and_params(run_inline, tmp_path: Path):
    with pipeline("ctxenv", params={"target": "staging", "n": 2}) as p:
        shell(
            "env",
            'echo "$LOCKGATE_PIPELINE $LOCKGATE_TASK $LOCKGATE_ATTEMPT $LOCKGATE_PARAM_TARGET '
            '$LOCKGATE_PARAM_N $NUMS" > env.txt',
            env={"NUMS": numbers()["values"]},
        )
    result = run_inline(p)
    assert result.ok, result.to_json()
    assert (tmp_path / "env.txt").read_text() == "ctxenv env 1 staging 2 [1, 2, 3]\n"


def test_shell_cwd(run_inline, tmp_path: Path):
    (tmp_path / "sub").mkdir()
    with pipeline("cwd") as p:
        shell("here", "pwd > where.txt", cwd=str(tmp_path / "sub"))
    assert run_inline(p).ok
    assert (tmp_path / "sub" / "where.txt").read_text().strip() == str(tmp_path / "sub")


def test_shell_task_kinds_and_failure(run_inline):
    with pipeline("kinds") as p:
        shell("ok", ["true"])
        shell("bad", "exit 3")
    pipe = p.build()
    assert pipe.tasks["ok"].kind is TaskKind.SHELL
    result = run_inline(p)
    assert result.tasks["ok"].state.value == "success"
    assert result.tasks["bad"].error == "command exited with code 3"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"command": 5}, "command must be a string or a list of strings, got 5"),
        ({"command": ["echo", 1]}, "command must be a string or a list of strings"),
        ({"command": "true", "env": {"1X": "v"}}, "environment variable name '1X' is invalid"),
        ({"command": "true", "env": {"A-B": "v"}}, "environment variable name 'A-B' is invalid"),
        ({"command": ""}, "shell task 's' has an empty command"),
    ],
)
def test_shell_arguments_are_checked(kwargs, message):
    with pytest.raises(DefinitionError, match=message.replace("[", r"\[")), pipeline("p"):
        shell("s", **kwargs)


def test_shell_outside_a_pipeline_is_an_error():
    with pytest.raises(DefinitionError, match="must be created inside a pipeline") as info:
        shell("lonely", "true")
    assert info.value.file == __file__


# -- settings ----------------------------------------------------------------------------------


def test_task_settings_and_pipeline_defaults():
    defaults = {"retries": 1, "retry_delay": 5, "timeout": 60, "pool": "db"}
    with pipeline("settings", defaults=defaults, pools={"db": 2}) as p:
        configured()
        noop()
        shell("sh", "true", retries=0, retry_backoff=2, pool_slots=2, trigger_rule="one_success")
    pipe = p.build()
    c, n, s = (pipe.tasks[t].settings for t in ("configured", "noop", "sh"))
    assert (c.retries, c.timeout, c.trigger_rule) == (2, 30.0, TriggerRule.ALL_DONE)
    assert (c.retry_delay, c.pool) == (5.0, "db")  # from the defaults
    assert (n.retries, n.retry_delay, n.timeout, n.pool) == (1, 5.0, 60.0, "db")
    assert n.trigger_rule is TriggerRule.ALL_SUCCESS
    assert (s.retries, s.retry_backoff, s.pool_slots) == (0, 2.0, 2)
    assert s.trigger_rule is TriggerRule.ONE_SUCCESS
    assert pipe.defaults.retries == 1


def test_defaults_apply_at_run_time(run_inline, tmp_path: Path):
    with pipeline("retrying", defaults={"retries": 1}) as p:
        shell("flaky", "test -f seen || { touch seen; exit 1; }")
    result = run_inline(p)
    assert result.ok
    assert result.tasks["flaky"].attempts == 2


def test_timedelta_settings():
    from datetime import timedelta

    with pipeline("td") as p:
        shell("s", "true", timeout=timedelta(minutes=1), retry_delay=timedelta(seconds=3))
    settings = p.build().tasks["s"].settings
    assert (settings.timeout, settings.retry_delay) == (60.0, 3.0)


# -- override ----------------------------------------------------------------------------------


def test_override_changes_a_copy():
    eu = configured.override(id="configured_eu", retries=5, tags=["eu"])
    assert configured.options == {"retries": 2, "timeout": 30, "trigger_rule": "all_done"}
    assert eu() == "ok"  # still a plain function outside a pipeline
    with pipeline("over") as p:
        configured()
        eu()
        configured.override(timeout=1)()
    pipe = p.build()
    assert list(pipe.tasks) == ["configured", "configured_eu", "configured__1"]
    assert pipe.tasks["configured"].settings.retries == 2
    assert pipe.tasks["configured_eu"].settings.retries == 5
    assert pipe.tasks["configured_eu"].settings.timeout == 30.0  # inherited option
    assert pipe.tasks["configured_eu"].tags == ("eu",)
    assert pipe.tasks["configured__1"].settings.timeout == 1.0


# -- pipelines ---------------------------------------------------------------------------------


def test_with_block_builds_a_validated_pipeline():
    with pipeline("built", description="d", tags=["t"], schedule="@daily", params={"x": 1}) as p:
        noop()
    assert isinstance(p, PipelineBuilder)
    pipe = p.build()
    assert p.build() is pipe and p.pipeline is pipe
    assert (pipe.id, pipe.description, pipe.tags, pipe.schedule) == ("built", "d", ("t",), "@daily")
    assert {k: v.default for k, v in pipe.params.items()} == {"x": 1}
    assert pipe.file == __file__
    with pytest.raises(DefinitionError, match="already built and cannot change"), p:
        noop()


def test_pipeline_decorator_forms(run_inline):
    @pipeline
    def bare():
        """The bare form takes the function's name and docstring."""
        total(numbers()["values"])

    @pipeline("named", schedule="*/5 * * * *", params={"scale": 2})
    def whatever():
        total([1, 2], scale=param("scale"))

    assert isinstance(bare, Pipeline) and isinstance(whatever, Pipeline)
    assert (bare.id, bare.description) == (
        "bare",
        "The bare form takes the function's name and docstring.",
    )
    assert list(bare.tasks) == ["numbers", "total"]
    assert (whatever.id, whatever.schedule) == ("named", "*/5 * * * *")
    assert run_inline(bare).result("total") == 6
    assert run_inline(whatever).result("total") == 6


def test_empty_pipeline_is_an_error():
    with pytest.raises(DefinitionError, match="pipeline 'empty' has no tasks"), pipeline("empty"):
        pass


@pytest.mark.parametrize("bad_id", ["", "has space", "9lives", "a/b", "x" * 129])
def test_ids_are_restricted(bad_id):
    with pytest.raises(DefinitionError, match="invalid pipeline id"), pipeline(bad_id):
        noop()
    with pytest.raises(DefinitionError, match="invalid task id"), pipeline("ok"):
        shell(bad_id, "true")
