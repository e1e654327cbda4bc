"""Broken YAML pipelines: each fails with one documented line, `FILE:LINE:COL: FIELD: what`."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from lockgate.authoring.discovery import load_file
from lockgate.errors import DefinitionError


@pytest.fixture
def error_of(tmp_path: Path):
    """error_of(text): load `text` as a YAML pipeline that must fail; check the error is one line
    `FILE:LINE:COL: ...` and return it without the file name."""

    def _error_of(text: str, name: str = "x.yaml") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        with pytest.raises(DefinitionError) as info:
            load_file(path)
        err = info.value
        message = str(err)
        assert "\n" not in message, message
        assert err.file == str(path.resolve()), message
        assert err.line and err.column, message
        prefix = f"{path.resolve()}:{err.line}:{err.column}: "
        assert message.startswith(prefix), message
        return f"{err.line}:{err.column}: {message[len(prefix) :]}"

    return _error_of


# -- reading ------------------------------------------------------------------------------------
def test_yaml_syntax_error(error_of):
    assert error_of("tasks:\n  a:\n    shell: [echo\n") == (
        "4:1: YAML syntax error: did not find expected ',' or ']'"
    )
    assert error_of("tasks:\n\ta: 1\n") == (
        "2:1: YAML syntax error: found character that cannot start any token "
        "(a tab: YAML indents with spaces only)"
    )
    assert error_of("schedule: @daily\ntasks: {a: {shell: x}}\n") == (
        "1:11: YAML syntax error: found character that cannot start any token "
        "('@' cannot start a plain value: put the value in quotes, e.g. \"@...\")"
    )


def test_empty_file_and_top_level_not_a_mapping(error_of):
    empty = "1:1: the file is empty; a YAML pipeline is a mapping with at least `tasks:`"
    assert error_of("") == empty
    assert error_of("# only a comment\n") == empty
    assert error_of("- a\n- b\n") == (
        "1:1: the top level must be a mapping (id:, schedule:, tasks:, ...), got a list"
    )
    assert error_of("just text\n") == (
        "1:1: the top level must be a mapping (id:, schedule:, tasks:, ...), got a single value"
    )


def test_duplicate_key_names_both_lines(error_of):
    text = """\
        tasks:
          load:
            shell: echo
            retries: 1
            retries: 2
        """
    assert error_of(text) == (
        "5:5: tasks.load: duplicate key 'retries' (lines 4 and 5); a key may appear only once"
    )
    assert error_of("tasks: {a: {shell: echo}}\ntasks: {}\n") == (
        "2:1: duplicate key 'tasks' (lines 1 and 2); a key may appear only once"
    )


def test_python_tags_are_refused(error_of):
    text = """\
        tasks:
          a:
            shell: !!python/object/apply:os.system ['touch pwned']
        """
    assert error_of(text) == (
        "3:12: tasks.a.shell: YAML tag '!!python/object/apply:os.system' is not allowed: "
        "lockgate reads YAML safely, as plain values only (text, numbers, booleans, dates, "
        "null, lists and mappings)"
    )
    assert not Path("pwned").exists()
    assert error_of("tasks: {a: {shell: !custom echo}}\n").startswith(
        "1:20: tasks.a.shell: YAML tag '!custom' is not allowed"
    )


def test_alias_bomb_fails_fast(error_of):
    lines = ['lol: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("tasks: {a: {shell: echo}}")
    started = time.perf_counter()
    message = error_of("\n".join(lines) + "\n")
    assert time.perf_counter() - started < 5
    assert message == (
        "6:5: YAML aliases expand to more than 100,000 values; is this a 'billion laughs' "
        "file? Use fewer or smaller aliases"
    )
    assert error_of("x: &x [*x]\ntasks: {a: {shell: echo}}\n") == (
        "1:4: x[0]: a YAML alias refers to the value that contains it"
    )


# -- validation ---------------------------------------------------------------------------------
def test_unknown_keys_suggest_the_right_one(error_of):
    text = """\
        tasks:
          load:
            shell: echo
            retires: 3
        """
    assert error_of(text) == "4:5: tasks.load: unknown key 'retires'; did you mean 'retries'?"
    assert error_of("task:\n  a:\n    shell: echo\n") == (
        "1:1: unknown key 'task'; did you mean 'tasks'?"
    )
    assert error_of("defaults: {retry: 1}\ntasks: {a: {shell: echo}}\n") == (
        "1:12: defaults: unknown key 'retry'; did you mean 'retries'?"
    )
    assert error_of("params:\n  n: {typ: integer, default: 1}\ntasks: {a: {shell: echo}}\n") == (
        "2:7: params.n: unknown key 'typ'; did you mean 'type'?"
    )
    assert error_of("tasks:\n  a:\n    python: os.getcwd\n    env: {A: b}\n") == (
        "4:5: tasks.a: 'env' is a key of shell tasks, not of python tasks"
    )


def test_wrong_types_say_what_was_expected(error_of):
    text = """\
        tasks:
          load:
            shell: echo
            retries: three
        """
    assert error_of(text) == "4:14: tasks.load.retries: expected a whole number >= 0, got 'three'"
    cases = {
        "catchup: maybe\n": "1:10: catchup: expected true or false, got 'maybe'",
        "tags: reports\n": "1:7: tags: expected a list, got 'reports'",
        "description: 5\n": "1:14: description: expected text, got 5",
        "max_active_tasks: 0\n": "1:19: max_active_tasks: expected a whole number >= 1, got 0",
        "pools: {db: -1}\n": "1:13: pools.db: expected a whole number >= 1, got -1",
        "defaults: [1]\n": "1:11: defaults: expected a mapping, got a list",
        "start_date: soon\n": (
            "1:13: start_date: expected a date (2024-01-01) or a date and time "
            "(2024-01-01T06:00:00Z), got 'soon'"
        ),
    }
    for head, expected in cases.items():
        assert error_of(head + "tasks: {a: {shell: echo}}\n") == expected, head
    assert error_of("tasks:\n  a:\n    shell: echo\n    trigger_rule: al_done\n") == (
        "4:19: tasks.a.trigger_rule: expected one of all_success, all_done, all_failed, "
        "all_skipped, one_success, one_failed, one_done, none_failed, "
        "none_failed_min_one_success, none_skipped, always, got 'al_done'; "
        "did you mean 'all_done'?"
    )
    assert error_of("tasks:\n  a:\n    shell: 5\n") == (
        "3:12: tasks.a.shell: expected a command (text run by /bin/sh -c) or a non-empty "
        "list of arguments (text), got 5"
    )
    assert error_of("tasks:\n  a:\n    python: clean\n") == (
        "3:13: tasks.a.python: expected 'module:function' or 'module.function', got 'clean'"
    )
    assert error_of("tasks:\n  a b:\n    shell: echo\n") == (
        "2:3: tasks: invalid task id 'a b': use letters, digits, '_', '.' or '-', starting "
        "with a letter or '_'"
    )
    assert error_of("tasks: {}\n") == "1:8: tasks: expected at least 1 item(s), got none"
    assert error_of("id: nightly\n") == "1:1: missing required key 'tasks'"


def test_missing_or_two_actions(error_of):
    expected = "2:3: tasks.load: a task needs exactly one of: shell, python, scan, mask, redact, read, copy, sql, check"
    assert error_of("tasks:\n  load:\n    retries: 3\n") == expected
    assert error_of("tasks:\n  load:\n    shell: echo\n    python: os.getcwd\n") == expected
    assert error_of("tasks:\n  load: echo hi\n") == (
        "2:9: tasks.load: expected a task "
        "(a mapping with one of: shell, python, scan, mask, redact, read, copy, sql, check)"
    )


def test_bad_durations_and_schedules(error_of):
    assert error_of("defaults:\n  retry_delay: 5 minutes\ntasks: {a: {shell: echo}}\n") == (
        "2:16: defaults.retry_delay: expected a duration such as 30s, 5m, 1h30m or a number "
        "of seconds, got '5 minutes'"
    )
    assert error_of("tasks:\n  a:\n    shell: echo\n    timeout: 0s\n") == (
        "4:14: tasks.a.timeout: expected a duration > 0 seconds, got '0s'"
    )
    assert error_of("run_timeout: soon\ntasks: {a: {shell: echo}}\n").startswith(
        "1:14: run_timeout: expected a duration such as 30s"
    )
    assert error_of("schedule: '61 * * * *'\ntasks: {a: {shell: echo}}\n") == (
        "1:11: schedule: invalid cron schedule '61 * * * *': Bad minute"
    )
    assert error_of("schedule: '@sometimes'\ntasks: {a: {shell: echo}}\n").startswith(
        "1:11: schedule: unknown schedule preset '@sometimes'; use one of @hourly"
    )
    assert error_of("schedule: every now\ntasks: {a: {shell: echo}}\n") == (
        "1:11: schedule: expected a duration such as 30s, 5m or 1h30m, got 'now'"
    )


def test_bad_params(error_of):
    text = """\
        params:
          limit:
            type: integer
            default: ten
        tasks: {a: {shell: echo}}
        """
    assert (
        error_of(text)
        == "4:14: params.limit.default: its default must be of type integer, got 'ten'"
    )
    assert error_of("params:\n  p: {type: text}\ntasks: {a: {shell: echo}}\n") == (
        "2:13: params.p.type: expected one of string, integer, number, boolean, array, "
        "object, got 'text'"
    )
    assert error_of("params:\n  p: {pattern: '('}\ntasks: {a: {shell: echo}}\n").startswith(
        "2:16: params.p.pattern: param pattern '(' is not a regex"
    )
    assert error_of("params:\n  my-param: 1\ntasks: {a: {shell: echo}}\n") == (
        "2:3: params: invalid param name 'my-param': use letters, digits and '_' (an identifier)"
    )
    assert error_of("params:\n  when: 2024-01-01\ntasks: {a: {shell: echo}}\n") == (
        "2:9: params.when: datetime.date(2024, 1, 1) is not JSON; use a string, number, "
        "boolean, list or dict"
    )


# -- references and the graph -------------------------------------------------------------------
def test_unknown_ids_suggest_the_right_one(error_of):
    text = """\
        tasks:
          extract:
            shell: echo
          load:
            shell: echo
            depends_on: [extract, extrct]
        """
    assert error_of(text) == (
        "6:27: tasks.load.depends_on[1]: depends on unknown task 'extrct'; did you mean 'extract'?"
    )
    assert error_of("tasks:\n  a:\n    shell: echo\n    compensate_with: undoo\n") == (
        "4:22: tasks.a.compensate_with: names unknown compensation task 'undoo'; tasks: a"
    )
    text = """\
        tasks:
          extract:
            shell: echo
          load:
            python: os.path.join
            args: ["{{ results.extrakt }}"]
        """
    assert error_of(text) == (
        "6:12: tasks.load.args[0]: template reads results.extrakt, but there is no task "
        "'extrakt'; did you mean 'extract'?"
    )


def test_cycle_and_model_rules_point_at_the_task(error_of):
    text = """\
        tasks:
          a:
            shell: echo
            depends_on: [b]
          b:
            shell: "echo {{ results.a }}"
        """
    assert error_of(text, "cyc.yaml") == "2:3: tasks.a: cycle in pipeline 'cyc': a -> b -> a"
    assert error_of("tasks:\n  a:\n    shell: echo\n    depends_on: a\n", "self.yaml") == (
        "2:3: tasks.a: cycle in pipeline 'self': a -> a"
    )
    text = """\
        tasks:
          a:
            shell: echo
            compensate_with: b
          b:
            shell: echo
            depends_on: [a]
        """
    assert error_of(text) == (
        "5:3: tasks.b: compensation task 'b' must not have upstream or downstream tasks or a "
        "compensation of its own: it runs only when the task it compensates fails"
    )
    assert error_of("tasks:\n  a:\n    python: os.getcwd\n    branch: true\n") == (
        "2:3: tasks.a: branch task 'a' has no downstream tasks to choose from"
    )
    assert error_of("tasks:\n  a:\n    shell: echo\n    pool_slots: 2\n") == (
        "2:3: tasks.a: task 'a' sets pool_slots without a pool"
    )
    assert error_of(
        "start_date: 2024-02-01\nend_date: 2024-01-01\ntasks: {a: {shell: echo}}\n"
    ) == (
        "2:11: end_date: pipeline 'x': end_date 2024-01-01 00:00:00+00:00 is before start_date "
        "2024-02-01 00:00:00+00:00"
    )


def test_file_name_that_is_not_an_id(error_of):
    assert error_of("tasks: {a: {shell: echo}}\n", "my report.yaml") == (
        "1:1: id: the file name 'my report' is not a valid pipeline id (letters, digits, '_', "
        "'.' or '-', starting with a letter or '_'); set one with `id:`"
    )


# -- imports ------------------------------------------------------------------------------------
def test_bad_imports(error_of, tmp_path: Path):
    text = """\
        tasks:
          transform:
            python: mypackage.transforms:clean
        """
    assert error_of(text) == (
        "3:13: tasks.transform.python: cannot import 'mypackage.transforms': "
        "No module named 'mypackage'"
    )
    assert error_of("tasks:\n  a:\n    python: yaml_helpers:clen\n") == (
        "3:13: tasks.a.python: module 'yaml_helpers' has no 'clen'; did you mean 'clean'?"
    )
    assert error_of("tasks:\n  a:\n    python: yaml_helpers:NOT_CALLABLE\n") == (
        "3:13: tasks.a.python: 'yaml_helpers:NOT_CALLABLE' is not a function (int)"
    )
    (tmp_path / "yaml_broken_steps.py").write_text("def f(:\n    pass\n")
    assert error_of("tasks:\n  a:\n    python: yaml_broken_steps.f\n").startswith(
        "3:13: tasks.a.python: cannot import 'yaml_broken_steps': SyntaxError: "
    )
    text = """\
        tasks:
          a:
            shell: echo
            on_failure: [yaml_helpers:on_failure, yaml_helpers:on_fail]
        """
    assert error_of(text) == (
        "4:43: tasks.a.on_failure[1]: module 'yaml_helpers' has no 'on_fail'; "
        "did you mean 'on_failure'?"
    )
    assert error_of("tasks:\n  a:\n    python: yaml_helpers:two_args\n    args: [1, 2, 3]\n") == (
        "4:11: tasks.a.args: yaml_helpers:two_args: too many positional arguments"
    )
    text = "tasks:\n  a:\n    python: yaml_helpers:clean\n    kwargs: {ctx: 1}\n"
    assert error_of(text) == (
        "4:14: tasks.a.kwargs.ctx: 'ctx' is supplied by lockgate at run time (the TaskContext); "
        "do not pass it"
    )


# -- templates ----------------------------------------------------------------------------------
def test_template_syntax_error(error_of):
    assert error_of("tasks:\n  a:\n    shell: echo {{ ds }\n") == (
        "3:12: tasks.a.shell: template syntax error in `echo {{ ds }`: unexpected '}'"
    )
    text = """\
        tasks:
          a:
            shell: |
              echo one
              echo {{ ds }
        """
    assert error_of(text) == (
        "5:7: tasks.a.shell: template syntax error in `echo one echo {{ ds }`: unexpected '}'"
    )
    assert error_of("tasks:\n  a:\n    shell: echo\n    env: {X: '{% if %}'}\n").startswith(
        "4:14: tasks.a.env.X: template syntax error in `{% if %}`:"
    )


def test_template_reaching_python_internals(error_of):
    text = """\
        tasks:
          a:
            shell: [echo, "{{ ds.__class__.__mro__ }}"]
        """
    assert error_of(text) == (
        "3:19: tasks.a.shell[1]: security error: template `{{ ds.__class__.__mro__ }}` "
        "reaches '__mro__'; templates may not use names starting with '_' (Python internals)"
    )
    text = """\
        tasks:
          a:
            python: os.path.join
            kwargs:
              a: "{{ params['__class__'] }}"
        """
    assert error_of(text).startswith("5:10: tasks.a.kwargs.a: security error: template")


def test_deep_nesting_and_several_documents(error_of):
    deep = "x: " + "[" * 100_000 + "]" * 100_000 + "\ntasks: {a: {shell: echo}}\n"
    assert error_of(deep) == (
        "1:103: YAML syntax error: lists and mappings are nested more than 100 deep"
    )
    assert error_of("tasks: {a: {shell: echo}}\n---\ntasks: {b: {shell: echo}}\n") == (
        "2:1: YAML syntax error: expected a single document in the file"
    )
    assert error_of("a: &x 1\nb: &x 2\ntasks: {a: {shell: echo}}\n") == (
        "2:4: YAML syntax error: found duplicate anchor 'x'"
    )
    assert error_of("tasks: {a: {shell: *nope}}\n") == (
        "1:20: YAML syntax error: found undefined alias 'nope'"
    )


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path):
    from lockgate.authoring.discovery import load_file
    from lockgate.authoring.yaml_loader import MAX_BYTES

    path = tmp_path / "huge.yaml"
    path.write_text("tasks:\n  a: {shell: echo}\nx: [" + "1," * (MAX_BYTES // 2) + "1]\n")
    with pytest.raises(DefinitionError) as exc:
        load_file(path)
    assert str(exc.value) == (
        f"{path}:1:1: the file is {path.stat().st_size:,} bytes; a YAML pipeline file may have "
        f"at most {MAX_BYTES:,} (keep data in files or datasets, not in the pipeline)"
    )


def test_airflow_names_for_keys_point_to_lockgate_names(error_of):
    assert error_of("tasks:\n  a: {shell: echo, execution_timeout: 5}\n") == (
        "2:20: tasks.a: unknown key 'execution_timeout'; lockgate calls it 'timeout'"
    )
    assert error_of("dag_id: x\ntasks: {a: {shell: echo}}\n") == (
        "1:1: unknown key 'dag_id'; lockgate calls it 'id'"
    )
    assert error_of("tasks:\n  a: {bash_command: echo}\n") == (
        "2:3: tasks.a: a task needs exactly one of: shell, python, scan, mask, redact, read, copy, sql, check "
        "('bash_command' is 'shell' here)"
    )


def test_resources_are_amounts_by_name(error_of, tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_text(
        "defaults:\n  resources: {memory: 4e9}\n"
        "tasks:\n  a: {shell: echo, resources: {gpu: 1, memory: 8e9}}\n  b: {shell: echo}\n"
    )
    [pipe] = load_file(ok)
    assert pipe.tasks["a"].settings.resources == (("gpu", 1.0), ("memory", 8e9))
    assert pipe.tasks["b"].settings.resources == (("memory", 4e9),)
    assert error_of("tasks:\n  a: {shell: echo, resources: {gpu: 0}}\n") == (
        "2:37: tasks.a.resources.gpu: expected an amount greater than 0, got 0"
    )
    assert "resources" in error_of("tasks:\n  a: {shell: echo, resources: [gpu]}\n")
