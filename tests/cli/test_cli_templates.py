"""Run dates and templates through the command line: --logical-date, and resume keeping them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from .helpers import LOCKGATE, _env, lockgate, one_line_error, write

PIPELINE = """
from lockgate import pipeline, shell, template

with pipeline("dated", params={"region": "eu"}) as p:
    a = shell("a", template("echo {{ ds }} {{ params.region }} > a.txt"))
    b = shell("b", template("echo {{ ds }} {{ macros.ds_add(ds, 1) }} > b.txt; [ -f go ] || sleep 60"))
    a >> b
"""


def test_logical_date_reaches_templates_and_survives_resume(tmp_path: Path) -> None:
    write(tmp_path, "pipelines/dated.py", PIPELINE)
    assert lockgate(tmp_path, "init").code == 0
    proc = subprocess.Popen(
        [LOCKGATE, "run", "dated", "--logical-date", "2024-02-28", "-p", "region=us", "--json"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / "b.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    run = json.loads(out)
    assert run["state"] == "cancelled"
    assert (tmp_path / "a.txt").read_text() == "2024-02-28 us\n"

    (tmp_path / "go").write_text("")
    os.utime(tmp_path / "pipelines" / "dated.py")
    resumed = lockgate(tmp_path, "resume", run["run_id"], "--json")
    assert resumed.code == 0, resumed
    assert (tmp_path / "b.txt").read_text() == "2024-02-28 2024-02-29\n"
    runs = lockgate(tmp_path, "runs", "--json").json()["runs"]
    assert runs[0]["id"] == run["run_id"] and runs[0]["state"] == "success"


def test_a_bad_logical_date_is_a_one_line_error(tmp_path: Path) -> None:
    write(tmp_path, "pipelines/dated.py", PIPELINE)
    line = one_line_error(lockgate(tmp_path, "run", "dated", "--logical-date", "2024-02-30"))
    assert line == (
        "error: --logical-date '2024-02-30' is not a date; use YYYY-MM-DD or an ISO 8601 date-time"
    )


def test_test_command_renders_templates_with_the_given_date(tmp_path: Path) -> None:
    write(tmp_path, "pipelines/dated.py", PIPELINE)
    done = lockgate(tmp_path, "test", "dated", "a", "-d", "2030-01-01T10:00:00+02:00")
    assert done.code == 0, done
    assert (tmp_path / "a.txt").read_text() == "2030-01-01 eu\n"


DAG = """
from datetime import datetime
from airflow import DAG
from airflow.operators.python import PythonOperator

def first():
    return 1

def second():
    return 2

def third(ti):
    print("pulled", ti.xcom_pull(task_ids="a"), ti.xcom_pull(task_ids="b"))
    return "done"

def flaky():
    print("attempt")
    raise RuntimeError("always")

with DAG("pulls", start_date=datetime(2024, 1, 1), default_args={"retries": 3}):
    a = PythonOperator(task_id="a", python_callable=first)
    b = PythonOperator(task_id="b", python_callable=second)
    c = PythonOperator(task_id="c", python_callable=third)
    d = PythonOperator(task_id="d", python_callable=flaky)
    a >> b >> c >> d
"""


def test_test_command_takes_the_results_of_ancestors_and_runs_once(tmp_path: Path) -> None:
    write(tmp_path, "dags/pulls.py", DAG)
    done = lockgate(tmp_path, "test", "dags/pulls.py", "c", "-i", "a=10", "-i", "b=20")
    assert done.code == 0, done
    assert "pulled 10 20" in done.out
    flaky = lockgate(tmp_path, "test", "dags/pulls.py", "d", "-i", "c=3")
    assert flaky.code == 1, flaky
    assert flaky.out.count("attempt\n") == 1, "a tested task runs once, without its retries"
    line = one_line_error(lockgate(tmp_path, "test", "dags/pulls.py", "e"))
    assert line == "error: pipeline 'pulls' has no task 'e'; tasks: a, b, c, d"
