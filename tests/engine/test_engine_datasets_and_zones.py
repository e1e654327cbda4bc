"""Run dates in the pipeline's time zone, and the DatasetUpdated events of tasks that succeed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import lockgate
from lockgate import pipeline, shell, task, template
from lockgate.api import open_store
from lockgate.config import Project
from lockgate.engine import events as ev
from lockgate.model.intervals import RunDates
from lockgate.model.states import RunState, TaskState

from .conftest import EXECUTORS
from .helpers import boom, ok

BERLIN = ZoneInfo("Europe/Berlin")
MIDNIGHT_IN_BERLIN = datetime(2024, 3, 29, 23, tzinfo=UTC)
"""2024-03-30 00:00 in Berlin (winter time, +01:00): the day before the switch to summer time."""
DATES = "{{ ds }}|{{ ts }}|{{ ts_nodash_with_tz }}|{{ yesterday_ds }}|{{ data_interval_end | ds }}"


@task
def echo(value: object) -> object:
    return value


@task
def flaky(ctx) -> str:  # type: ignore[no-untyped-def]
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return "ok"


@task
def skipper(ctx) -> None:  # type: ignore[no-untyped-def]
    ctx.skip("nothing new")


# -- dates --------------------------------------------------------------------------------------
def test_run_dates_astimezone_keeps_the_instants() -> None:
    dates = RunDates.at(MIDNIGHT_IN_BERLIN)
    local = dates.astimezone(BERLIN)
    assert local.logical_date.tzinfo is BERLIN
    assert local.logical_date == dates.logical_date
    assert local.logical_date.isoformat() == "2024-03-30T00:00:00+01:00"
    assert local.timestamps() == dates.timestamps()


ZONED = f"""
from lockgate import pipeline, shell, task, template

@task
def echo(value):
    return value

@task
def dates_of(ctx):
    # the run dates a task sees in its context, in whatever process runs it
    return [
        ctx.logical_date.isoformat(),
        ctx.data_interval_start.isoformat(),
        str(ctx.logical_date.tzinfo),
    ]

with pipeline("berlin", timezone="Europe/Berlin"):
    echo.override(id="rendered")(template({DATES!r}))
    dates_of.override(id="ctx")()
    shell("sh", template("test {{{{ ds }}}} = 2024-03-30"))
"""


@pytest.mark.parametrize("executor", EXECUTORS)
def test_templates_and_contexts_see_dates_in_the_pipeline_zone(
    run_pipeline, pipeline_file, executor
) -> None:
    pipe = pipeline_file(ZONED, name="zoned")["berlin"]
    result, _ = run_pipeline(pipe, executor=executor, logical_date=MIDNIGHT_IN_BERLIN)
    assert result.state is RunState.SUCCESS, result.tasks
    assert result.result("rendered") == (
        "2024-03-30|2024-03-30T00:00:00+01:00|20240330T000000+0100|2024-03-29|2024-03-30"
    )
    assert result.result("ctx") == [
        "2024-03-30T00:00:00+01:00",
        "2024-03-30T00:00:00+01:00",
        "Europe/Berlin",
    ]


def test_the_same_instant_in_utc_is_the_day_before(run_pipeline) -> None:
    with pipeline("utc") as p:
        echo.override(id="rendered")(template(DATES))
    result, _ = run_pipeline(p, executor="inline", logical_date=MIDNIGHT_IN_BERLIN)
    assert result.result("rendered") == (
        "2024-03-29|2024-03-29T23:00:00+00:00|20240329T230000+0000|2024-03-28|2024-03-29"
    )


def test_summer_time_dates_carry_the_summer_offset(run_pipeline) -> None:
    with pipeline("berlin", timezone="Europe/Berlin") as p:
        echo.override(id="rendered")(template("{{ ds }}|{{ ts }}"))
    result, _ = run_pipeline(
        p, executor="inline", logical_date=datetime(2024, 3, 31, 22, tzinfo=UTC)
    )
    assert result.result("rendered") == "2024-04-01|2024-04-01T00:00:00+02:00"


def test_airflow_templates_see_the_dag_zone(project: Project, tmp_path: Path) -> None:
    from lockgate.authoring.discovery import load_file

    dag = tmp_path / "zoned_dag.py"
    dag.write_text(
        "import pendulum\n"
        "from airflow import DAG\n"
        "from airflow.decorators import task\n"
        "from airflow.operators.bash import BashOperator\n"
        "with DAG('zoned', schedule='@daily',\n"
        "         start_date=pendulum.datetime(2024, 1, 1, tz='Europe/Berlin')):\n"
        "    @task\n"
        "    def seen(ds=None, logical_date=None):\n"
        "        return [ds, logical_date.isoformat(), logical_date.timezone_name]\n"
        "    BashOperator(task_id='sh', bash_command='echo {{ ds }} {{ ts }}') >> seen()\n",
        encoding="utf-8",
    )
    pipe = load_file(dag)[0]
    result = lockgate.run(
        pipe, executor="threads", store=False, project=project, logical_date=MIDNIGHT_IN_BERLIN
    )
    assert result.state is RunState.SUCCESS, result.tasks
    assert result.result("sh") == "2024-03-30 2024-03-30T00:00:00+01:00"
    assert result.result("seen") == ["2024-03-30", "2024-03-30T00:00:00+01:00", "Europe/Berlin"]


# -- DatasetUpdated -----------------------------------------------------------------------------
@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_a_succeeded_task_updates_its_datasets_right_after_succeeding(
    run_pipeline, executor
) -> None:
    with pipeline("produce") as p:
        first = ok.override(id="first", produces=["s3://lake/a", "file:///data/b.csv"])()
        echo.override(id="after")(first)
    result, rec = run_pipeline(p, executor=executor)
    assert result.state is RunState.SUCCESS
    done = rec.index(ev.TASK_SUCCEEDED, "first")
    updates = rec.events[done + 1 : done + 3]
    assert [(e.kind, e.task_id, e.attempt, e.state, e.data) for e in updates] == [
        (ev.DATASET_UPDATED, "first", 1, None, {"uri": "s3://lake/a"}),
        (ev.DATASET_UPDATED, "first", 1, None, {"uri": "file:///data/b.csv"}),
    ]
    assert rec.index(ev.TASK_QUEUED, "after") > done + 2
    assert rec.of(ev.DATASET_UPDATED, "after") == []


def test_only_success_updates_datasets(run_pipeline) -> None:
    with pipeline("outcomes") as p:
        boom.override(id="fails", produces=["s3://lake/f"])()
        skipper.override(id="skips", produces=["s3://lake/s"])()
        flaky.override(id="retried", retries=1, produces=["s3://lake/r"])()
        shell("exit3", "exit 3", skip_exit_codes=[3], produces=["s3://lake/e"])
    result, rec = run_pipeline(p, executor="threads")
    assert result.tasks["fails"].state is TaskState.FAILED
    assert result.tasks["skips"].state is TaskState.SKIPPED
    assert result.tasks["exit3"].state is TaskState.SKIPPED
    updates = rec.of(ev.DATASET_UPDATED)
    assert [(e.task_id, e.attempt, e.data) for e in updates] == [
        ("retried", 2, {"uri": "s3://lake/r"})
    ]
    assert rec.index(ev.DATASET_UPDATED) == rec.index(ev.TASK_SUCCEEDED, "retried") + 1


def test_dataset_events_are_stored_and_dates_stay_epoch_seconds(project: Project) -> None:
    with pipeline("stored", timezone="Europe/Berlin") as p:
        shell("load", "true", produces=["s3://lake/orders.parquet"])
    result = lockgate.run(p, executor="inline", project=project, logical_date=MIDNIGHT_IN_BERLIN)
    assert result.ok
    store = open_store(project)
    rows = [e for e in store.events(result.run_id) if e["kind"] == ev.DATASET_UPDATED]
    assert [(r["task_id"], r["attempt"], r["state"]) for r in rows] == [("load", 1, None)]
    assert json.loads(rows[0]["data"]) == {"uri": "s3://lake/orders.parquet"}
    run = store.get_run(result.run_id)
    assert run is not None
    assert run["logical_date"] == MIDNIGHT_IN_BERLIN.timestamp()
    assert store.task_states(result.run_id)[0]["state"] == TaskState.SUCCESS.value
