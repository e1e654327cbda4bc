"""Pipeline time zones and dataset triggers: the model's checks, and the Python, YAML and
Airflow forms giving the same model values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lockgate import pipeline, shell, task
from lockgate.authoring.discovery import load_file
from lockgate.errors import DefinitionError
from lockgate.model.pipeline import Pipeline
from lockgate.model.task import Task, TaskKind
from lockgate.model.timetables import CronTimetable

BERLIN = ZoneInfo("Europe/Berlin")


def _shell(tid: str = "t", **fields: object) -> Task:
    return Task(tid, TaskKind.SHELL, command="true", file="f.py", line=7, **fields)  # type: ignore[arg-type]


def _pipe(**fields: object) -> Pipeline:
    fields.setdefault("tasks", {"t": _shell()})
    return Pipeline("p", file="p.py", line=3, **fields)  # type: ignore[arg-type]


def _error(**fields: object) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        _pipe(**fields)
    return info.value


@task
def work() -> int:
    return 1


# -- the model ----------------------------------------------------------------------------------
def test_naive_dates_are_wall_clock_times_in_the_pipeline_zone() -> None:
    pipe = _pipe(
        timezone="Europe/Berlin",
        schedule="@daily",
        start_date=datetime(2024, 3, 30),
        end_date=date(2024, 4, 2),
    )
    assert pipe.tz is BERLIN
    assert pipe.start_date == datetime(2024, 3, 30, tzinfo=BERLIN)
    assert pipe.start_date is not None and pipe.start_date.utcoffset() == timedelta(hours=1)
    assert pipe.end_date is not None and pipe.end_date.utcoffset() == timedelta(hours=2)
    aware = datetime(2024, 3, 30, 6, tzinfo=UTC)
    assert _pipe(timezone="Europe/Berlin", start_date=aware).start_date.tzinfo is UTC  # type: ignore[union-attr]
    assert _pipe(start_date=datetime(2024, 1, 1)).start_date == datetime(2024, 1, 1, tzinfo=UTC)


def test_timetable_is_the_schedule_in_the_pipeline_zone_and_made_once() -> None:
    pipe = _pipe(timezone="Europe/Berlin", schedule="0 6 * * *", start_date=datetime(2024, 1, 1))
    table = pipe.timetable()
    assert table == CronTimetable("0 6 * * *", BERLIN, pipe.start_date, None)
    assert pipe.timetable() is table
    run = table.next_run(datetime(2024, 7, 1, tzinfo=UTC))
    assert run is not None and run.due_at == datetime(2024, 7, 1, 6, tzinfo=BERLIN)
    assert _pipe(schedule=None).timetable() is None
    assert _pipe(datasets=("s3://b/k",)).timetable() is None


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("", "unknown time zone ''"),
        (2, "timezone must be an IANA name"),
    ],
)
def test_an_unknown_time_zone_is_a_definition_error(value: object, needle: str) -> None:
    err = _error(timezone=value)
    assert needle in str(err) and (err.file, err.line) == ("p.py", 3), err
    assert str(err).startswith("p.py:3: pipeline 'p': "), err


@pytest.mark.parametrize(
    ("datasets", "needle"),
    [
        (("orders",), "'orders' is not a dataset URI: write scheme://location"),
        (("s3://",), "'s3://' is not a dataset URI"),
        (("1s3://b",), "'1s3://b' is not a dataset URI"),
        (("s3://b/my file",), "contains whitespace"),
        (("s3://" + "x" * 996,), "is 1001 characters long; at most 1000"),
        (("s3://a", "s3://a"), "dataset URI 's3://a' is listed twice"),
        ("s3://a", "expected a list of dataset URIs, got 's3://a'"),
        ((3,), "a dataset URI must be text, got 3"),
    ],
)
def test_dataset_uris_are_checked(datasets: object, needle: str) -> None:
    err = _error(datasets=datasets)
    assert needle in str(err) and str(err).startswith("p.py:3: pipeline 'p': datasets: "), err


def test_a_uri_of_1000_characters_is_accepted_and_lists_become_tuples() -> None:
    uri = "s3://" + "x" * 995
    pipe = _pipe(datasets=[uri, "file:///data/a.csv", "postgresql+psycopg://db/s#t"])
    assert pipe.datasets == (uri, "file:///data/a.csv", "postgresql+psycopg://db/s#t")


def test_a_schedule_and_datasets_together_are_refused() -> None:
    err = _error(schedule="@daily", datasets=("s3://b/k",))
    assert "a pipeline runs on a time schedule or on dataset updates, not both" in str(err)
    assert (err.file, err.line) == ("p.py", 3)


def test_produces_is_checked_at_the_task_line() -> None:
    err = _error(tasks={"t": _shell(produces=("s3://a", "nope"))})
    assert str(err).startswith("f.py:7: task 't': produces: 'nope' is not a dataset URI"), err
    err = _error(tasks={"t": _shell(produces=["s3://a"])})
    assert "produces must be a tuple of dataset URIs" in str(err)


def test_time_zone_datasets_and_produces_change_the_fingerprint() -> None:
    base = _pipe().fingerprint()
    assert _pipe(timezone="UTC").fingerprint() == base
    others = {
        _pipe(timezone="Europe/Berlin").fingerprint(),
        _pipe(datasets=("s3://b/k",)).fingerprint(),
        _pipe(tasks={"t": _shell(produces=("s3://b/k",))}).fingerprint(),
    }
    assert base not in others and len(others) == 3


# -- the Python API -----------------------------------------------------------------------------
def test_python_schedule_list_means_datasets_and_tasks_declare_produces() -> None:
    @task(produces=["s3://lake/a"])
    def load() -> None: ...

    with pipeline("p", schedule=["s3://lake/in", "s3://lake/other"], timezone="Asia/Tokyo") as p:
        load()
        shell("copy", "cp a b", produces="file:///tmp/b")
        work.override(id="w", produces=("s3://lake/w",))()
    pipe = p.build()
    assert (pipe.schedule, pipe.datasets) == (None, ("s3://lake/in", "s3://lake/other"))
    assert pipe.timezone == "Asia/Tokyo"
    assert {tid: t.produces for tid, t in pipe.tasks.items()} == {
        "load": ("s3://lake/a",),
        "copy": ("file:///tmp/b",),
        "w": ("s3://lake/w",),
    }


def test_python_errors_name_the_line(write, load_error, line_of) -> None:
    cases = {
        "decorator": "@task(produces=['nope'])  # HERE\ndef f():\n    pass\n",
        "shell": "with pipeline('p'):\n    shell('s', 'true', produces=['a b'])  # HERE\n",
        "zone": "with pipeline('p', timezone='Nowhere/Town'):  # HERE\n    shell('s', 'true')\n",
        "empty": "with pipeline('p', schedule=[]):  # HERE\n    shell('s', 'true')\n",
        "repeat": "with pipeline('p', schedule=['s3://a', 's3://a']):  # HERE\n"
        "    shell('s', 'true')\n",
    }
    needles = {
        "decorator": "produces: 'nope' is not a dataset URI",
        "shell": "produces: dataset URI 'a b' contains whitespace",
        "zone": "unknown time zone 'Nowhere/Town'",
        "empty": "schedule: an empty list names no datasets",
        "repeat": "datasets: dataset URI 's3://a' is listed twice",
    }
    for name, source in cases.items():
        path = write(f"{name}.py", source)
        err = load_error(path)
        assert err.line == line_of(path, "# HERE"), err
        assert needles[name] in str(err), err


# -- YAML ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        (
            "schedule:\n  - s3://a\n  - orders\n",
            "4:5: schedule[1]: ",
            "'orders' is not a dataset URI",
        ),
        ("schedule: [s3://a, s3://a]\n", "2:20: schedule[1]: ", "'s3://a' is listed twice"),
        ("schedule: s3://a/b\n", "2:11: schedule: ", "is a dataset URI: a pipeline triggered"),
        ("schedule: {a: 1}\n", "2:11: schedule: ", "or a list of dataset URIs, got a mapping"),
        ("timezone: Europe/Berlinn\n", "2:11: timezone: ", "unknown time zone 'Europe/Berlinn'"),
        ("timezone: 1\n", "2:11: timezone: ", "expected an IANA time zone name"),
    ],
)
def test_yaml_pipeline_errors_have_line_and_column(
    write, load_error, text: str, where: str, needle: str
) -> None:
    path = write("p.yaml", "id: p\n" + text + "tasks:\n  t:\n    shell: 'true'\n", header=False)
    err = load_error(path)
    assert str(err).startswith(f"{path.resolve()}:{where}"), err
    assert needle in str(err), err


@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        ("    produces: [s3://a, 'x y']\n", "5:24: tasks.t.produces[1]: ", "contains whitespace"),
        ("    produces:\n      - s3://a\n      - s3://a\n", "7:9: tasks.t.produces[1]: ", "twice"),
        ("    produces: 7\n", "5:15: tasks.t.produces: ", "expected a list, got 7"),
    ],
)
def test_yaml_produces_errors_have_line_and_column(
    write, load_error, text: str, where: str, needle: str
) -> None:
    path = write("p.yaml", "id: p\ntasks:\n  t:\n    shell: 'true'\n" + text, header=False)
    err = load_error(path)
    assert str(err).startswith(f"{path.resolve()}:{where}"), err
    assert needle in str(err), err


# -- the three forms give equal model values ----------------------------------------------------
PYTHON_TIMED = """
    from datetime import datetime
    from lockgate import pipeline, shell

    with pipeline("timed", schedule="0 6 * * *", timezone="Europe/Berlin",
                  start_date=datetime(2024, 3, 1)):
        shell("load", "true", produces=["s3://lake/orders.parquet"])
"""
YAML_TIMED = """
    id: timed
    schedule: "0 6 * * *"
    timezone: Europe/Berlin
    start_date: 2024-03-01
    tasks:
      load:
        shell: "true"
        produces: [s3://lake/orders.parquet]
"""
AIRFLOW_TIMED = """
    import pendulum
    from airflow import DAG
    from airflow.datasets import Dataset
    from airflow.operators.bash import BashOperator

    with DAG("timed", schedule="0 6 * * *",
             start_date=pendulum.datetime(2024, 3, 1, tz="Europe/Berlin")):
        BashOperator(task_id="load", bash_command="true",
                     outlets=[Dataset("s3://lake/orders.parquet")])
"""
PYTHON_TRIGGERED = """
    from lockgate import pipeline, task

    @task(produces=["file:///data/report.csv"])
    def report():
        pass

    with pipeline("triggered", schedule=["s3://lake/orders.parquet", "s3://lake/customers"]):
        report()
"""
YAML_TRIGGERED = """
    id: triggered
    schedule:
      - s3://lake/orders.parquet
      - s3://lake/customers
    tasks:
      report:
        python: os:getcwd
        produces: file:///data/report.csv
"""
AIRFLOW_TRIGGERED = """
    from airflow.sdk import DAG, Asset, task

    with DAG("triggered", schedule=[Asset("s3://lake/orders.parquet"),
                                    Asset(name="customers", uri="s3://lake/customers")]):
        @task(outlets=[Asset("file:///data/report.csv")])
        def report():
            pass

        report()
"""


def _facts(pipe: Pipeline) -> tuple[object, ...]:
    return (
        pipe.id,
        pipe.schedule,
        pipe.datasets,
        pipe.timezone,
        pipe.tz,
        pipe.start_date,
        pipe.timetable(),
        {tid: t.produces for tid, t in pipe.tasks.items()},
    )


@pytest.mark.parametrize(
    "sources",
    [
        (PYTHON_TIMED, YAML_TIMED, AIRFLOW_TIMED),
        (PYTHON_TRIGGERED, YAML_TRIGGERED, AIRFLOW_TRIGGERED),
    ],
    ids=["timed", "triggered"],
)
def test_python_yaml_and_airflow_give_the_same_values(write, sources: tuple[str, ...]) -> None:
    python, yaml, airflow = sources
    facts = [
        _facts(load_file(write(name, source, header=False))[0])
        for name, source in (("a.py", python), ("b.yaml", yaml), ("c.py", airflow))
    ]
    assert facts[0] == facts[1] == facts[2]
    start = facts[0][5]
    if start is not None:  # the same wall clock, zone and instant
        assert isinstance(start, datetime) and start.tzinfo is BERLIN
        assert start == datetime(2024, 2, 29, 23, tzinfo=UTC)


# -- Airflow ------------------------------------------------------------------------------------
AIRFLOW_HEAD = (
    "import datetime as dt\n"
    "import pendulum\n"
    "from zoneinfo import ZoneInfo\n"
    "from airflow import DAG\n"
    "from airflow.datasets import Dataset\n"
    "from airflow.operators.bash import BashOperator\n"
)


@pytest.mark.parametrize(
    ("start", "zone"),
    [
        ("pendulum.datetime(2024, 1, 1, tz='America/New_York')", "America/New_York"),
        ("dt.datetime(2024, 1, 1, tzinfo=ZoneInfo('Asia/Kolkata'))", "Asia/Kolkata"),
        ("pendulum.datetime(2024, 1, 1)", "UTC"),
        ("dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)", "UTC"),
        ("dt.datetime(2024, 1, 1)", "UTC"),
        ("None", "UTC"),
    ],
)
def test_an_aware_dag_start_date_gives_the_pipeline_its_zone(write, start: str, zone: str) -> None:
    source = (
        AIRFLOW_HEAD + f"with DAG('z', schedule='@daily', start_date={start}):\n"
        "    BashOperator(task_id='a', bash_command='true')\n"
    )
    pipe = load_file(write("z.py", source, header=False))[0]
    assert pipe.timezone == zone
    if pipe.start_date is not None:
        assert type(pipe.start_date) is datetime  # a stdlib datetime, not a pendulum one
        assert pipe.start_date.tzinfo is pipe.tz
        expected = "UTC" if pipe.tz is UTC else zone
        assert str(pipe.start_date.tzinfo) == expected


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (
            "with DAG('x', start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))):  # HERE\n",
            "start_date has a fixed UTC offset (UTC+02:00); give it an IANA time zone",
        ),
        (
            "with DAG('x', start_date=pendulum.datetime(2024, 1, 1, tz=pendulum.FixedTimezone(-3600))):  # HERE\n",
            "start_date has a fixed UTC offset (-01:00)",
        ),
        (
            "with DAG('x', schedule=[Dataset('s3://a'), 'daily']):  # HERE\n",
            "schedule must be Datasets (airflow.datasets) or Assets (airflow.sdk), got str: 'daily'",
        ),
        ("with DAG('x', schedule=[]):  # HERE\n", "schedule=[] names no datasets"),
        ("with DAG('x', schedule=Dataset('orders')):  # HERE\n", "Dataset: 'orders' is not a"),
        (
            "with DAG('x', schedule=Dataset('s3://a') | Dataset('s3://b')):  # HERE\n",
            "conditions on datasets",
        ),
    ],
)
def test_airflow_dag_errors_name_the_line(write, load_error, line_of, line, needle) -> None:
    source = AIRFLOW_HEAD + line + "    BashOperator(task_id='a', bash_command='true')\n"
    path = write("x.py", source, header=False)
    err = load_error(path)
    assert err.line == line_of(path, "# HERE"), err
    assert needle in str(err), err


@pytest.mark.parametrize(
    ("outlets", "needle"),
    [
        ("['s3://a']", "task 'a': outlets must be Datasets (airflow.datasets) or Assets"),
        ("[Dataset('s3://a'), 3]", "got int: 3"),
        ("[object(), 'x']", "got object, str"),
    ],
)
def test_outlets_that_are_not_datasets_are_refused(
    write, load_error, line_of, outlets: str, needle: str
) -> None:
    source = (
        AIRFLOW_HEAD + "with DAG('x'):\n"
        f"    BashOperator(task_id='a', bash_command='true', outlets={outlets})  # HERE\n"
    )
    path = write("x.py", source, header=False)
    err = load_error(path)
    assert err.line == line_of(path, "# HERE"), err
    assert needle in str(err), err


def test_airflow_outlets_on_every_kind_of_task(write) -> None:
    source = (
        AIRFLOW_HEAD + "from airflow.decorators import task\n"
        "from airflow.operators.python import PythonOperator\n"
        "with DAG('x', schedule=Dataset('s3://in'),\n"
        "         default_args={'outlets': [Dataset('s3://default')]}):\n"
        "    a = BashOperator(task_id='a', bash_command='true', outlets=Dataset('s3://a'))\n"
        "    b = PythonOperator(task_id='b', python_callable=print,\n"
        "                       outlets=[Dataset('s3://b1'), Dataset('s3://b2')])\n"
        "    c = BashOperator(task_id='c', bash_command='true')\n"
        "    @task.bash(outlets=[Dataset('s3://d')])\n"
        "    def d():\n"
        "        return 'true'\n"
        "    a >> b >> c >> d()\n"
    )
    pipe = load_file(write("x.py", source, header=False))[0]
    assert pipe.datasets == ("s3://in",)
    assert {tid: t.produces for tid, t in pipe.tasks.items()} == {
        "a": ("s3://a",),
        "b": ("s3://b1", "s3://b2"),
        "c": ("s3://default",),
        "d": ("s3://d",),
    }


def test_dataset_aliases_stay_outside_the_subset(write, load_error) -> None:
    path = write("x.py", "from airflow.datasets import DatasetAlias\n", header=False)
    err = load_error(path)
    assert "DatasetAlias (from airflow.datasets) is outside lockgate's Airflow subset" in str(err)
    assert "dataset aliases, conditions and metadata are not supported" in str(err)
    path = write("y.py", "from airflow.sdk import Dataset\n", header=False)
    assert "import Dataset from airflow.datasets" in str(load_error(path))


def test_fixed_offset_zero_is_utc(write) -> None:
    source = (
        AIRFLOW_HEAD + "with DAG('x', schedule='@daily',\n"
        "         start_date=pendulum.datetime(2024, 1, 1, tz=pendulum.FixedTimezone(0))):\n"
        "    BashOperator(task_id='a', bash_command='true')\n"
    )
    pipe = load_file(write("x.py", source, header=False))[0]
    assert pipe.timezone == "UTC"
    assert pipe.start_date == datetime(2024, 1, 1, tzinfo=UTC)
    assert pipe.start_date is not None and pipe.start_date.tzinfo is UTC


def test_naive_end_date_of_a_zoned_dag_is_utc_shown_in_its_zone(write) -> None:
    source = (
        AIRFLOW_HEAD + "with DAG('x', schedule='@daily',\n"
        "         start_date=pendulum.datetime(2024, 1, 1, tz='Europe/Berlin'),\n"
        "         end_date=dt.datetime(2024, 6, 30, 22)):\n"
        "    BashOperator(task_id='a', bash_command='true')\n"
    )
    pipe = load_file(write("x.py", source, header=False))[0]
    assert pipe.end_date == datetime(2024, 7, 1, tzinfo=BERLIN)
    assert pipe.end_date is not None and pipe.end_date.tzinfo is BERLIN


def test_yaml_dates_with_an_offset_keep_it(write) -> None:
    path = write(
        "p.yaml",
        "timezone: Europe/Berlin\nstart_date: 2024-01-01T06:00:00Z\n"
        "tasks:\n  t:\n    shell: 'true'\n",
        header=False,
    )
    pipe = load_file(Path(path))[0]
    assert pipe.start_date == datetime(2024, 1, 1, 6, tzinfo=UTC)
    assert pipe.start_date is not None and pipe.start_date.utcoffset() == timedelta(0)
