"""Load-time validation: every definition error is one line that starts with FILE:LINE."""

from __future__ import annotations

import pytest

from lockgate.authoring.discovery import load_file
from lockgate.errors import DefinitionError

CASES = {
    "cycle": (
        """
        with pipeline("loop") as p:
            a = shell("a", "true")  # HERE
            b = shell("b", "true")
            c = shell("c", "true")
            a >> b >> c >> a
        """,
        "cycle in pipeline 'loop': a -> b -> c -> a",
    ),
    "cycle_by_data": (
        """
        @task
        def f(x=None):
            return x

        with pipeline("loop2") as p:
            a = f()
            b = f(a)  # HERE
            b >> b
        """,
        "cycle in pipeline 'loop2': f__1 -> f__1",
    ),
    "duplicate_shell_id": (
        """
        with pipeline("dup") as p:
            shell("x", "true")  # FIRST
            shell("x", "false")  # HERE
        """,
        "duplicate task id 'x' in pipeline 'dup' (first defined at line {first})",
    ),
    "duplicate_override_id": (
        """
        @task
        def f():
            return 1

        with pipeline("dup2") as p:
            shell("g", "true")  # FIRST
            f.override(id="g")()  # HERE
        """,
        "duplicate task id 'g' in pipeline 'dup2' (first defined at line {first})",
    ),
    "unknown_depends_on": (
        """
        with pipeline("deps") as p:
            shell("a", "true")
            shell("b", "true", depends_on=["a", "nope"])  # HERE
        """,
        "task 'b' depends on unknown task 'nope' in pipeline 'deps'",
    ),
    "negative_retries": (
        """
        with pipeline("s") as p:
            shell("a", "true", retries=-1)  # HERE
        """,
        "retries must be a whole number >= 0, got -1",
    ),
    "zero_timeout_in_decorator": (
        """
        @task(timeout=0)  # HERE
        def f():
            return 1
        """,
        "timeout must be greater than 0 seconds, got 0",
    ),
    "zero_timeout_in_override": (
        """
        @task
        def f():
            return 1

        with pipeline("s") as p:
            f.override(timeout=0)()  # HERE
        """,
        "timeout must be greater than 0 seconds, got 0",
    ),
    "unknown_trigger_rule": (
        """
        with pipeline("s") as p:
            shell("a", "true", trigger_rule="all_sucess")  # HERE
        """,
        "unknown trigger_rule 'all_sucess'; did you mean 'all_success'?",
    ),
    "unknown_setting": (
        """
        with pipeline("s") as p:
            shell("a", "true", retires=3)  # HERE
        """,
        "unknown task setting 'retires'; did you mean 'retries'?",
    ),
    "unknown_setting_in_decorator": (
        """
        @task(timeuot=5)  # HERE
        def f():
            return 1
        """,
        "unknown task setting 'timeuot'; did you mean 'timeout'?",
    ),
    "unknown_default_setting": (
        """
        with pipeline("s", defaults={"retry_dealy": 1}) as p:  # HERE
            shell("a", "true")
        """,
        "unknown pipeline default setting 'retry_dealy'; did you mean 'retry_delay'?",
    ),
    "bad_default_value": (
        """
        with pipeline("s", defaults={"retries": -1}) as p:  # HERE
            shell("a", "true")
        """,
        "retries must be a whole number >= 0, got -1",
    ),
    "bad_cron": (
        """
        with pipeline("s", schedule="61 * * * *") as p:  # HERE
            shell("a", "true")
        """,
        "pipeline 's': invalid cron schedule '61 * * * *'",
    ),
    "cron_field_count": (
        """
        with pipeline("s", schedule="* * *") as p:  # HERE
            shell("a", "true")
        """,
        "pipeline 's': schedule '* * *' must have 5 fields (minute hour day month weekday)",
    ),
    "unknown_preset_in_decorator": (
        """
        @pipeline(schedule="@daly")  # HERE
        def s():
            shell("a", "true")
        """,
        "pipeline 's': unknown schedule preset '@daly'; did you mean '@daily'?",
    ),
    "callback_not_callable": (
        """
        with pipeline("s") as p:
            shell("a", "true", on_failure=[print, "notify"])  # HERE
        """,
        "callback 'notify' is not callable",
    ),
    "unknown_compensation": (
        """
        with pipeline("s") as p:
            shell("a", "true", compensate_with="undo")  # HERE
        """,
        "task 'a' names unknown compensation task 'undo'",
    ),
    "pool_slots_without_pool": (
        """
        with pipeline("s") as p:
            shell("a", "true", pool_slots=2)  # HERE
        """,
        "task 'a' sets pool_slots without a pool",
    ),
    "syntax_error": (
        """
        with pipeline("s") as p:
            shell("a", "true"  # HERE
        """,
        "syntax error: '(' was never closed",
    ),
    "exception_at_module_level": (
        """
        with pipeline("s") as p:
            shell("a", "true")
        raise RuntimeError("no config")  # HERE
        """,
        "loading the pipeline file failed: RuntimeError: no config",
    ),
    "exception_in_a_function": (
        """
        def settings():
            return {}["missing"]  # HERE

        with pipeline("s") as p:
            shell("a", "true", retries=settings())
        """,
        "loading the pipeline file failed: KeyError: 'missing'",
    ),
    "import_error": (
        """
        import lockgate_no_such_module  # HERE
        """,
        "loading the pipeline file failed: ModuleNotFoundError: No module named",
    ),
    "wrong_task_arguments": (
        """
        @task
        def f(x):
            return x

        with pipeline("s") as p:
            f(1, 2)  # HERE
        """,
        "task 'f': too many positional arguments",
    ),
    "shell_outside_pipeline": (
        """
        shell("a", "true")  # HERE
        """,
        "shell task 'a' must be created inside a pipeline",
    ),
    "same_pipeline_id_twice_in_one_file": (
        """
        with pipeline("twin"):  # FIRST
            shell("a", "true")
        with pipeline("twin"):  # HERE
            shell("b", "true")
        """,
        "pipeline id 'twin' is defined twice in this file (first at line {first})",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_definition_error_names_file_and_line(name, write, load_error, line_of):
    source, message = CASES[name]
    path = write(f"{name}.py", source)
    err = load_error(path)
    assert err.line == line_of(path, "# HERE"), str(err)
    if "{first}" in message:
        message = message.format(first=line_of(path, "# FIRST"))
    assert err.detail.startswith(message), str(err)


def test_error_in_an_imported_module_names_that_module(write):
    helper = write("lockgate_test_helper_broken.py", "x = [\n", header=False)
    path = write("uses_helper.py", "import lockgate_test_helper_broken\n")
    with pytest.raises(DefinitionError) as info:
        load_file(path)
    assert str(info.value) == f"{helper}:1:5: syntax error: '[' was never closed"


def test_definition_error_in_an_imported_module_keeps_its_location(write, line_of):
    helper = write(
        "lockgate_test_helper_tasks.py",
        """
        @task(retries=-1)  # HERE
        def f():
            return 1
        """,
    )
    path = write("uses_tasks.py", "import lockgate_test_helper_tasks\n")
    with pytest.raises(DefinitionError) as info:
        load_file(path)
    assert str(info.value).startswith(f"{helper}:{line_of(helper, '# HERE')}: retries must be")
