"""Templates in task arguments, environment values and shell commands, rendered at dispatch."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lockgate import Param, pipeline, shell, task, template
from lockgate.errors import DefinitionError
from lockgate.model.states import RunState, TaskState

from .conftest import EXECUTORS

DAY = datetime(2024, 1, 31, 6, 30, tzinfo=UTC)


@task
def echo(value: object) -> object:
    return value


@task
def rows() -> dict:
    return {"rows": [1, 2, 3], "name": "north"}


def test_airflow_names_and_macros_render_from_the_logical_date(run_pipeline) -> None:
    text = (
        "{{ ds }}|{{ ds_nodash }}|{{ ts }}|{{ ts_nodash }}|{{ yesterday_ds }}|{{ tomorrow_ds }}|"
        "{{ macros.ds_add(ds, 7) }}|{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}|"
        "{{ logical_date.year }}|{{ data_interval_end | ds }}|{{ run_id == run_id }}|{{ task_id }}"
    )
    with pipeline("dates") as p:
        echo.override(id="t")(template(text))
    result, _ = run_pipeline(p, logical_date=DAY)
    assert result.result("t") == (
        "2024-01-31|20240131|2024-01-31T06:30:00+00:00|20240131T063000|2024-01-30|2024-02-01|"
        "2024-02-07|31/01/2024|2024|2024-01-31|True|t"
    )


def test_a_lone_expression_in_native_mode_keeps_its_type(run_pipeline) -> None:
    with pipeline("native", params={"limit": 5}) as p:
        r = rows()
        echo.override(id="as_list")(template("{{ results.rows.rows }}", native=True))
        echo.override(id="as_int")(template("{{ params.limit * 2 }}", native=True))
        echo.override(id="as_text")(template("{{ results.rows.rows }}"))
        echo.override(id="mixed")(template("n={{ params.limit }}", native=True))
        echo.override(id="after", depends_on=[r])(1)
    pipe = p.build()
    assert pipe.tasks["as_list"].upstream == ("rows",), "a template reading a result depends on it"
    result, _ = run_pipeline(p)
    assert result.result("as_list") == [1, 2, 3]
    assert result.result("as_int") == 10
    assert result.result("as_text") == "[1, 2, 3]"
    assert result.result("mixed") == "n=5"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_shell_command_values_are_quoted_and_cannot_inject(
    run_pipeline, executor, tmp_path: Path, project
) -> None:
    marker = tmp_path / "pwned"
    out = tmp_path / "out.txt"
    with pipeline("quoted", params={"who": Param(f"x; touch {marker}")}) as p:
        shell(
            "greet",
            template(f"printf '%s|' {{{{ params.who }}}} {{{{ ds }}}} > {out}"),
            env={"DAY": template("{{ ds_nodash }}")},
        )
        shell("raw", template("echo {{ 'raw-ok' | raw }} $DAY"), env={"DAY": template("{{ ds }}")})
    result, _ = run_pipeline(p, executor=executor, logical_date=DAY)
    assert result.ok, result.tasks
    assert out.read_text() == f"x; touch {marker}|2024-01-31|"
    assert not marker.exists(), "a param value became shell syntax"


def test_argv_commands_render_each_item_without_a_shell(run_pipeline, tmp_path: Path) -> None:
    out = tmp_path / "argv.txt"
    with pipeline("argv", params={"text": "a b;c"}) as p:
        shell(
            "w",
            template(["python3", "-c", f"open({str(out)!r},'w').write('{{{{ params.text }}}}')"]),
        )
    result, _ = run_pipeline(p)
    assert result.ok, result.tasks
    assert out.read_text() == "a b;c"


def test_a_render_error_fails_only_that_task_naming_it_and_the_expression(
    run_pipeline, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    with pipeline("undefined") as p:
        ok = rows.override(id="ok")()
        shell("bad", template(f"touch {marker} {{{{ ds }}}} {{{{ results.ok.no_such_key }}}}"))
    result, _ = run_pipeline(p)
    assert result.state is RunState.FAILED
    assert result.tasks["ok"].state is TaskState.SUCCESS
    assert result.tasks["bad"].error == (
        "task 'bad': template `{{ results.ok.no_such_key }}`: 'dict object' has no attribute "
        "'no_such_key'"
    )
    assert ok is not None and not marker.exists(), "a task whose template failed must not run"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("echo {{ dss }}", "'dss' is undefined; did you mean 'ds'?"),
        ("echo {{ ds | upperr }}", "No filter named 'upperr'"),
        (
            "echo {{ params.regoin }}",
            "params.regoin is not a param of the pipeline; did you mean 'region'?",
        ),
        ("echo {{ var.value.x }}", "'var' is undefined; use one of"),
    ],
)
def test_names_templates_do_not_have_are_refused_when_the_pipeline_is_defined(
    text, problem
) -> None:
    with pytest.raises(DefinitionError) as exc, pipeline("names", params={"region": "eu"}):
        shell("s", template(text))
    assert problem in str(exc.value), str(exc.value)
    assert "test_engine_templates.py:" in str(exc.value)


def test_a_result_that_is_not_there_is_a_clear_error(run_pipeline) -> None:
    @task
    def boom() -> None:
        raise RuntimeError("no")

    with pipeline("missing") as p:
        b = boom()
        echo.override(id="reader", trigger_rule="all_done")(template("{{ results.boom }}"))
        b >> task(lambda: 1).override(id="after")()
    result, _ = run_pipeline(p)
    error = result.tasks["reader"].error
    assert error == (
        "task 'reader': template `{{ results.boom }}`: task 'boom' has not succeeded (it is "
        "failed); a template of 'reader' can only read the results of tasks upstream of it"
    )


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''['__class__'] }}",
        "{{ params.__init__ }}",
        "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "{{ ds | attr('__class__') }}",
    ],
)
def test_reaching_python_internals_is_refused_when_the_pipeline_is_defined(expression) -> None:
    with pytest.raises(DefinitionError, match=r"security error: template .* reaches '__"):
        template(expression)


def test_attr_with_a_computed_name_is_refused_when_the_pipeline_is_defined() -> None:
    with pytest.raises(DefinitionError, match=r"uses `attr` with a computed name"):
        template("{{ ds | attr('__cl' ~ 'ass__') }}")


def test_the_sandbox_refuses_internals_reached_at_render_time(run_pipeline, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pipeline("sandbox", params={"name": "__class__"}) as p:
        shell("esc", template(f"touch {marker}; echo {{{{ ds[params.name] }}}}"))
        echo.override(id="esc2")(template("{{ ds['__cl' ~ 'ass__'] }}"))
    result, _ = run_pipeline(p)
    for tid in ("esc", "esc2"):
        error = result.tasks[tid].error
        assert f"task {tid!r}: security error in template" in error, error
        assert "templates may not reach Python internals" in error
    assert not marker.exists()


def test_template_syntax_errors_are_reported_where_the_task_is_defined() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"^[^ ]+test_engine_templates.py:\d+: template syntax error in `echo \{\{ ds`: unexpected end",
    ):
        template("echo {{ ds ")


def test_templates_are_part_of_the_fingerprint() -> None:
    def build(text: str):
        with pipeline("fp") as p:
            shell("s", template(text))
        return p.build().fingerprint()

    assert build("echo {{ ds }}") != build("echo {{ ds_nodash }}")


REFUSED_AT_LOAD = [
    ("echo 'hello {{ params.x }}'", "'...' quotes"),
    ("echo $'\\' {{ params.x }}'", "$'...' quotes"),
    ("cat <<EOF\n{{ params.x }}\nEOF", "a here-document"),
    ("echo hi  # note {{ params.x }}", "a comment"),
    ("echo hi #c {{- params.x -}}", "a comment"),
    ('echo "`echo "{{ params.x }}"`"', "`...` backticks"),
    ("echo `echo {{ params.x }}`", "`...` backticks"),
    ("echo ${UNSET_V:-{{ params.x }}}", "a ${...} expansion"),
    ("echo $(( {{ params.x }} + 1 ))", "an arithmetic expression ((...))"),
    ("(( {{ params.x }} > 0 )) && echo big", "an arithmetic expression ((...))"),
    ("[[ {{ params.x }} -eq 1 ]] && echo one", "a [...] (arithmetic, test or subscript)"),
    ("a[{{ params.x }}]=1", "a [...] (arithmetic, test or subscript)"),
]


@pytest.mark.parametrize(("command", "where"), REFUSED_AT_LOAD)
def test_values_where_a_variable_would_not_work_are_refused_at_load(command, where) -> None:
    with pytest.raises(DefinitionError) as exc, pipeline("quotes", params={"x": "x"}):
        shell("s", template(command))
    assert "template value `{{" in str(exc.value) and f"sits in {where}:" in str(exc.value)


TRICKY = [
    # every way found in review to move a value into quotes, a comment or a re-parse
    'echo "hello {{ params.x }}"',
    'echo \\ #"{{ params.x }}"',
    'echo "$(echo "{{ params.x }}")"',
    'echo "${UNSET_V:-"{{ params.x }}"}"',
    'echo "{% set a = "%}" %}{{ params.x }}"',
    'echo {% raw %}{#{% endraw %}"{{ params.x }}"',
    'echo "{{ params.x ~ ("" | raw) }}"',
    'echo {% if false %}"{% endif %}"{{ params.x }}"',
    "echo {{ '\"' | raw }}{{ params.x }}{{ '\"' | raw }}",
    'echo "$(case a in a) echo "{{ params.x }}";; esac)"',
    "echo checking \\\n#{{ params.x }}",
    'echo "$\\\n( echo "{{ params.x }}" )"',
    'echo "${V:-\'}"\'}\'"{{ params.x }}"',
    "echo {% for i in [1, 2] %}{% if i == 2 %}{{ params.x | quote }}{% endif %}"
    '{% if i == 1 %}"{% endif %}{% endfor %}"',
    "{% filter upper %}echo {{ params.x }}{% endfilter %}",
    "echo {{ params.x }}{{ params.x }} {{ [params.x, params.x] }}",
]
PAYLOADS = [
    "$(touch {m})",
    "`touch {m}`",
    "x\ntouch {m} #",
    "x'; touch {m} #",
    'x"; touch {m} #',
    "a[$(touch {m})]",
]


@pytest.mark.parametrize("command", TRICKY)
def test_no_value_ever_runs_as_shell_code(run_pipeline, tmp_path: Path, command) -> None:
    marker = tmp_path / "PWNED"
    try:
        with pipeline("tricky", params={"x": "x"}) as p:
            shell("s", template(command), cwd=str(tmp_path))
    except DefinitionError:
        return  # refused when the pipeline is defined: nothing can run
    for payload in PAYLOADS:
        result, _ = run_pipeline(p, params={"x": payload.format(m=marker)})
        error = result.tasks["s"].error
        assert error is None or error.startswith(("task 's': template", "command exited")), error
        assert not marker.exists(), (command, payload)


def test_values_inside_double_quotes_work(run_pipeline, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with pipeline("dq", params={"x": ""}) as p:
        shell("s", template(f'printf "%s|" "hello {{{{ params.x }}}}!" {{{{ params.x }}}} > {out}'))
    for value in ("a b", "$(id)", "`id`", '"', "'", "\\", "*", "x\ny"):
        result, _ = run_pipeline(p, params={"x": value})
        assert result.ok, result.tasks
        assert out.read_text() == f"hello {value}!|{value}|"


@pytest.mark.parametrize("who", ["$(touch pwned)", "`touch pwned`", "x; touch pwned #", "a'b\"c"])
def test_bare_values_stay_one_word_whatever_they_hold(run_pipeline, tmp_path: Path, who) -> None:
    out = tmp_path / "out.txt"
    with pipeline("bare", params={"who": ""}) as p:
        shell(
            "s",
            template(
                f"printf '%s|' hello {{{{ params.who }}}} {{{{ params.who | quote }}}} > {out}"
            ),
            cwd=str(tmp_path),
        )
    result, _ = run_pipeline(p, params={"who": who})
    assert result.ok, result.tasks
    assert out.read_text() == f"hello|{who}|{who}|"
    assert not (tmp_path / "pwned").exists()


def test_a_raw_value_inside_quotes_is_the_authors_choice(run_pipeline, tmp_path: Path) -> None:
    out = tmp_path / "raw.txt"
    with pipeline("raw") as p:
        shell("s", template(f'echo "day {{{{ ds | raw }}}}" > {out}'))
    result, _ = run_pipeline(p, logical_date=DAY)
    assert result.ok and out.read_text() == "day 2024-01-31\n"


def test_a_template_reads_only_upstream_results_however_it_names_them(run_pipeline) -> None:
    with pipeline("aliased") as p:
        rows()
        # the alias hides the dependency from the load-time analysis: refused at run time
        echo.override(id="reader")(template("{% set r = results %}{{ r.rows }}"))
    result, _ = run_pipeline(p, executor="inline")
    assert result.tasks["reader"].error == (
        "task 'reader': template `{{ r.rows }}`: task 'rows' is not "
        "upstream of 'reader'; a template reads only the results of upstream tasks (write "
        "`results.rows` in it, or add rows >> reader)"
    )


def test_the_logical_date_is_kept_in_utc() -> None:
    from datetime import timedelta, timezone

    from lockgate.model.intervals import RunDates

    dates = RunDates.at(datetime(2024, 1, 31, 2, 0, tzinfo=timezone(timedelta(hours=5))))
    assert dates.logical_date == datetime(2024, 1, 30, 21, 0, tzinfo=UTC)
    assert dates.logical_date.utcoffset() == timedelta(0)
    assert RunDates.from_timestamps(*dates.timestamps()) == dates
