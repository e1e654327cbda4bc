"""Airflow-style DAG files run unchanged: the seed tutorial, a TaskFlow ETL, branching with
task groups, templates and retries, and XComs (no Apache Airflow installed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import lockgate
from lockgate.authoring.discovery import load_file
from lockgate.config import Project
from lockgate.model.pipeline import Pipeline

DAGS = Path(__file__).parent / "airflow_dags"
LOGICAL = datetime(2024, 1, 31, tzinfo=UTC)
_BIN = Path(sys.executable).parent / "lockgate"
LOCKGATE = str(_BIN) if _BIN.exists() else (shutil.which("lockgate") or "lockgate")


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    env.update(COLUMNS="200", TERM="dumb", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [LOCKGATE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def copy_dag(name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.copyfile(DAGS / name, target)
    return target


def one(path: Path) -> Pipeline:
    pipes = load_file(path)
    assert len(pipes) == 1, pipes
    return pipes[0]


def run(pipe: Pipeline, project: Project, executor: str = "threads", **params: object):
    return lockgate.run(
        pipe,
        params=params,
        executor=executor,
        store=False,
        project=project,
        logical_date=LOGICAL,
    )


def run_id_of(out: str) -> str:
    found = re.search(r"^run (\S+) of ", out, re.M)
    assert found, out
    return found.group(1)


def test_seed_tutorial_dag_loads_shows_and_runs(tmp_path: Path):
    path = copy_dag("simple_pipeline.py", tmp_path / "dags")
    (tmp_path / "lockgate.toml").write_text("[lockgate]\npipelines = 'dags'\n")
    pipe = one(path)
    assert pipe.origin == "airflow"
    assert pipe.schedule == "@daily"
    assert pipe.start_date == datetime(2023, 1, 1, tzinfo=UTC)
    assert pipe.catchup is False
    assert pipe.order == ("extract", "transform", "load")
    assert pipe.tasks["transform"].upstream == ("extract",)
    assert pipe.tasks["load"].upstream == ("transform",)
    assert pipe.file == str(path) and pipe.line == 5
    assert "schedule_interval='@daily'" in (pipe.source or "")

    shown = cli(tmp_path, "show", "dags/simple_pipeline.py")
    assert shown.returncode == 0, shown.stderr
    assert "schedule: @daily" in shown.stdout and "Airflow" in shown.stdout, shown.stdout
    assert "echo 'Extracting data'" in shown.stdout
    out = shown.stdout
    assert out.index("extract") < out.index("transform") < out.index("load"), out

    done = cli(tmp_path, "run", "dags/simple_pipeline.py", "--logical-date", "2024-01-31")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "success" in done.stdout
    run_id = run_id_of(done.stdout)
    logs = cli(tmp_path, "logs", run_id)
    assert logs.returncode == 0, logs.stderr
    for text in ("Extracting data", "Transforming data", "Loading data"):
        assert text in logs.stdout, logs.stdout
    assert not [m for m in sys.modules if m == "airflow" or m.startswith("airflow.")]


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_airflow3_taskflow_etl(project: Project, executor: str):
    pipe = one(DAGS / "taskflow_etl.py")
    assert pipe.id == "tutorial_taskflow_api"
    assert pipe.schedule is None and pipe.tags == ("example", "etl")
    assert pipe.start_date == datetime(2021, 1, 1, tzinfo=UTC)
    assert pipe.params["factor"].default == 2 and pipe.params["factor"].type == "integer"
    assert pipe.description == "TaskFlow ETL"
    assert set(pipe.tasks["load"].upstream) == {"transform", "summarize"}
    assert {"scale", "scale__1", "scaled_max", "whoami", "whoami__1"} <= set(pipe.tasks)

    result = run(pipe, project, executor)
    assert result.ok, result.tasks
    assert result.result("extract") == {"1001": 301.27, "1002": 433.21, "1003": 502.22}
    assert result.result("transform") == {"total_order_value": 1236.7, "count": 3}
    assert result.result("summarize") == {"max": 502.22, "min": 301.27}  # inferred from -> dict
    assert result.result("load") == {
        "total": 1236.7,
        "count": 3,
        "max": 502.22,
        "low": None,
        "ds": "2024-01-31",
        "dag_id": "tutorial_taskflow_api",
    }
    assert result.result("scale") == 602.54
    assert result.result("scale__1") == 6025.4
    assert result.result("scaled_max") == 1004.44
    who = result.result("whoami__1")
    assert who == {"task": "whoami__1", "try": 1, "run": result.run_id}

    again = run(pipe, project, executor, factor=3)
    assert again.result("scaled_max") == 1506.66


def test_branching_groups_templates_and_retries_via_the_cli(tmp_path: Path):
    path = copy_dag("branching.py", tmp_path / "dags")
    pipe = one(path)
    assert pipe.schedule == "0 6 * * 1-5"
    assert "reports.daily" in pipe.tasks and "reports.inner.weekly" in pipe.tasks
    assert pipe.tasks["reports.inner.weekly"].upstream == ("reports.daily",)
    assert pipe.tasks["flaky"].upstream == ("reports.inner.weekly",)  # group >> task: leaves
    assert pipe.tasks["reports.daily"].upstream == ("pick",)  # task >> group: roots
    assert pipe.tasks["pick"].branch and pipe.tasks["route"].branch
    assert pipe.tasks["flaky"].settings.retries == 1
    assert pipe.tasks["flaky"].settings.retry_delay == 0

    done = cli(tmp_path, "run", "dags/branching.py", "--logical-date", "2024-01-31")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = run_id_of(done.stdout)
    logs = tmp_path / ".lockgate" / "logs" / "branching" / run_id

    def log(task: str, attempt: int = 1) -> str:
        return (logs / task / f"attempt-{attempt}.log").read_text()

    assert log("start") == "day 2024-01-31 next 2024-02-07\n"
    assert log("reports.daily") == "daily 20240131 full\n"
    assert log("reports.inner.weekly") == "weekly reports.inner.weekly\n"
    assert "first try" in log("flaky", 1) and "second try" in log("flaky", 2)
    assert not (logs / "quick").exists()  # skipped by the branch
    states = cli(tmp_path, "runs", "--json")
    assert states.returncode == 0 and '"success"' in states.stdout


def test_branching_in_process_quick_path(project: Project):
    pipe = one(DAGS / "branching.py")
    Path("flaky.marker").write_text("")  # the flaky task succeeds at once
    result = run(pipe, project, mode="quick")
    assert result.ok, result.tasks
    states = {tid: s.state.value for tid, s in result.tasks.items()}
    assert states["quick"] == "success"
    assert states["reports.daily"] == states["reports.inner.weekly"] == "skipped"
    assert states["flaky"] == "skipped"  # all_success after a skipped upstream
    assert states["join"] == "success"  # none_failed_min_one_success


def test_xcom_push_pull_and_templates(project: Project):
    pipes = {p.id: p for p in load_file(DAGS / "xcoms.py")}
    result = run(pipes["xcoms"], project)
    assert result.ok, result.tasks
    assert result.result("pull") == {
        "rows": [1, 2, 3],
        "rv": "pushed",
        "line": "last line",  # BashOperator: the last line of output
        "both": ["pushed", "last line"],
        "missing": None,
        "skipped": None,
    }
    # a TaskFlow consumer sees the return value and pushed keys, not lockgate's envelope
    assert result.result("consume") == {"value": "pushed", "rows": [1, 2, 3]}
    assert result.result("templated") == "rows=1,2,3 rv=pushed line=last line"
    assert result.result("env_task") == "got last line"
    assert result.tasks["skipper"].state.value == "skipped"  # exit code 99

    bad = run(pipes["xcom_not_upstream"], project)
    assert not bad.ok
    error = bad.tasks["sneaky"].error or ""
    assert "'other' is not upstream of 'sneaky'" in error, error


def test_xcoms_in_worker_processes(project: Project):
    pipes = {p.id: p for p in load_file(DAGS / "xcoms.py")}
    result = run(pipes["xcoms"], project, "processes")
    assert result.ok, result.tasks
    assert result.result("pull")["rows"] == [1, 2, 3]
    assert result.result("consume") == {"value": "pushed", "rows": [1, 2, 3]}


def test_more_of_the_subset(project: Project):
    from lockgate.authoring.discovery import module_name_for

    path = DAGS / "features.py"
    pipe = one(path)
    assert pipe.schedule == "every 6h"
    assert pipe.run_timeout == 3600 and pipe.max_active_runs == 1 and pipe.max_active_tasks == 4
    assert pipe.description == "Features"
    assert pipe.params["items"].default == ["a", "b"]
    settings = pipe.tasks["macros"].settings
    assert (settings.retries, settings.retry_delay, settings.retry_backoff) == (2, 1.0, 2.0)
    assert (settings.max_retry_delay, settings.timeout) == (30.0, 20.0)
    assert pipe.tasks["in_flat"].settings.retries == 5  # TaskGroup default_args, no prefix
    assert {"adders.add", "adders.add__1", "adders__1.add", "adders__1.add__1"} <= set(pipe.tasks)
    assert pipe.tasks["greet"].upstream == ("adders.add__1",)  # @task_group returns its result
    assert pipe.tasks["adders__1.add"].upstream == ("adders.add__1",)

    result = run(pipe, project)
    states = {tid: s.state.value for tid, s in result.tasks.items()}
    assert states["fails"] == "failed" and states["slow"] == "failed"
    assert states["skipper"] == "skipped"  # AirflowSkipException
    assert "timed out" in (result.tasks["slow"].error or "")
    assert result.result("macros") == "lockgate X features macros"
    assert result.result("script") == "script for 2024-01-31 with N=4"  # template file
    assert result.result("native") == {"items": ["a", "b"], "n": 4}  # native rendering
    assert result.result("templates") == {
        "templated": {"day": "20240131"},
        "ds": "2024-01-31",
        "n": 4,
    }
    assert result.result("greet") == "hello 4 13 2024-01-31"
    assert result.result("adders__1.add__1") == 16
    failures = sys.modules[module_name_for(path)].FAILURES
    assert {f["task"] for f in failures} >= {"fails", "slow"}
    fail = next(f for f in failures if f["task"] == "fails")
    assert fail == {
        "task": "fails",
        "dag": "features",
        "ds": "2024-01-31",
        "error": "ZeroDivisionError: division by zero",
    }


def test_params_and_dag_function_parameters(tmp_path: Path, project: Project):
    path = tmp_path / "params_dag.py"
    path.write_text(
        "from datetime import datetime\n"
        "from airflow.decorators import dag, task\n"
        "from airflow.models.param import Param\n"
        "from airflow.operators.bash import BashOperator\n"
        "@dag(start_date=datetime(2024, 1, 1), params={\n"
        "    'env': Param('dev', type='string', enum=['dev', 'prod'], description='Target'),\n"
        "    'limit': Param(None, type=['null', 'integer'], minimum=1),\n"
        "    'name': Param(type='string', minLength=2, title='Name'),\n"
        "})\n"
        "def with_params(size: int = 3, who='me'):\n"
        "    @task\n"
        "    def show(size, who, **context):\n"
        "        return [size, who, context['params']['env'], context['params']['limit']]\n"
        "    show(size, who) >> BashOperator(task_id='b', bash_command='echo $WHO',\n"
        "                                    env={'WHO': who})\n"
        "with_params()\n"
    )
    pipe = one(path)
    params = pipe.params
    assert params["env"].enum == ("dev", "prod") and params["env"].description == "Target"
    assert params["limit"].nullable and params["limit"].type == "integer"
    assert params["name"].required and params["name"].min_length == 2
    assert params["size"].default == 3 and params["who"].default == "me"
    result = run(pipe, project, name="Ann", size=5, env="prod")
    assert result.ok, result.tasks
    assert result.result("show") == [5, "me", "prod", None]
    assert result.result("b") == "me"


def test_airflow_1_provide_context_is_accepted_as_the_no_op_it_is(project: Project, tmp_path: Path):
    path = tmp_path / "pc.py"
    path.write_text(
        "from datetime import datetime\n"
        "from airflow import DAG\n"
        "from airflow.operators.python import PythonOperator\n\n"
        "def f(**context):\n"
        "    return context['ds']\n\n"
        "with DAG('pc', start_date=datetime(2024, 1, 1)):\n"
        "    PythonOperator(task_id='f', python_callable=f, provide_context=True)\n"
    )
    result = run(one(path), project)
    assert result.ok and result.result("f") == "2024-01-31"
