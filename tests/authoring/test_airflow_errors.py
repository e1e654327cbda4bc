"""Outside the Airflow subset: one-line errors naming the feature, the file and the line;
and templates that try to leave the sandbox refuse the file before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAD = (
    "from datetime import datetime, timedelta\n"
    "from airflow import DAG\n"
    "from airflow.operators.bash import BashOperator\n"
    "from airflow.operators.python import PythonOperator\n"
)
START = "start_date=datetime(2024, 1, 1)"

CASES = {
    "provider": (
        "from airflow.providers.postgres.operators.postgres import PostgresOperator  # HERE\n",
        ["airflow.providers.postgres.operators.postgres", "provider operators"],
    ),
    "sensor": (
        "from airflow.sensors.filesystem import FileSensor  # HERE\n",
        ["airflow.sensors.filesystem", "sensors are not supported"],
    ),
    "sdk_sensor": (
        "from airflow.sdk import BaseSensorOperator  # HERE\n",
        ["BaseSensorOperator", "sensors are not supported"],
    ),
    "executor_config": (
        f"with DAG('x', {START}):\n"
        "    BashOperator(task_id='a', bash_command='echo', executor_config={'k': 1})  # HERE\n",
        ["executor_config", "BashOperator('a')"],
    ),
    "queue": (
        f"with DAG('x', {START}, default_args={{'queue': 'bash_queue'}}):  # HERE\n"
        "    BashOperator(task_id='a', bash_command='echo')\n",
        ["queue='bash_queue'", "executor queues"],
    ),
    "variable": (
        "from airflow.models import Variable  # HERE\nbucket = Variable.get('bucket')\n",
        ["Variable", "Airflow Variables are not supported"],
    ),
    "variable_attribute": (
        "import airflow.sdk\nbucket = airflow.sdk.Variable.get('bucket')  # HERE\n",
        ["Variable", "Airflow Variables are not supported"],
    ),
    "virtualenv": (
        "from airflow.operators.python import PythonVirtualenvOperator  # HERE\n",
        ["PythonVirtualenvOperator"],
    ),
    "task_flavour": (
        "from airflow.decorators import task\n@task.docker(image='x')  # HERE\ndef f():\n    pass\n",
        ["@task.docker"],
    ),
    "misspelt": (
        f"with DAG('x', {START}):\n    BashOperator(task_id='a', bash_comand='echo')  # HERE\n",
        ["unknown argument 'bash_comand'", "did you mean 'bash_command'"],
    ),
    "misspelt_default_args": (
        f"with DAG('x', {START}, default_args={{'retires': 2}}):  # HERE\n"
        "    BashOperator(task_id='a', bash_command='echo')\n",
        ["'retires'", "did you mean 'retries'"],
    ),
    "depends_on_past": (
        f"with DAG('x', {START}, default_args={{'depends_on_past': True}}):  # HERE\n"
        "    BashOperator(task_id='a', bash_command='echo')\n",
        ["depends_on_past=True", "earlier runs"],
    ),
    "dag_callback": (
        f"with DAG('x', {START}, on_failure_callback=print):  # HERE\n"
        "    BashOperator(task_id='a', bash_command='echo')\n",
        ["on_failure_callback", "DAG-level callbacks"],
    ),
    "dataset_schedule": (
        f"with DAG('x', {START}, schedule=[object()]):  # HERE\n"
        "    BashOperator(task_id='a', bash_command='echo')\n",
        ["DAG 'x': schedule", "Datasets (airflow.datasets)", "got object"],
    ),
    "custom_operator": (
        "from airflow.models.baseoperator import BaseOperator\n"
        "class Mine(BaseOperator):\n"
        "    def execute(self, context):\n"
        "        pass\n"
        f"with DAG('x', {START}):\n"
        "    Mine(task_id='a')  # HERE\n",
        ["custom operator Mine"],
    ),
    "mapping": (
        f"with DAG('x', {START}):\n"
        "    BashOperator.partial(task_id='a').expand(bash_command=['a'])  # HERE\n",
        ["dynamic task mapping"],
    ),
    "duplicate_task": (
        f"with DAG('x', {START}):\n"
        "    BashOperator(task_id='a', bash_command='echo')\n"
        "    BashOperator(task_id='a', bash_command='echo')  # HERE\n",
        ["duplicate task id 'a'"],
    ),
    "task_params": (
        f"with DAG('x', {START}):\n"
        "    BashOperator(task_id='a', bash_command='echo', params={'x': 1})  # HERE\n",
        ["task-level params"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_outside_the_subset_is_a_one_line_error(write, load_error, line_of, case: str):
    source, needles = CASES[case]
    path = write(f"dags/{case}.py", HEAD + source, header=False)
    err = load_error(path)
    assert err.line == line_of(path, "# HERE"), str(err)
    for needle in needles:
        assert needle in str(err), str(err)


def test_template_escaping_the_sandbox_refuses_the_file_and_runs_nothing(tmp_path: Path, write):
    marker = tmp_path / "ran.marker"
    path = write(
        "dags/escape.py",
        HEAD
        + f"with DAG('escape', {START}):\n"
        + f"    first = BashOperator(task_id='first', bash_command='touch {marker}')\n"
        + "    evil = BashOperator(\n"
        + "        task_id='evil', bash_command=\"echo {{ ''.__class__.__mro__ }}\"  # HERE\n"
        + "    )\n"
        + "    first >> evil\n",
        header=False,
    )
    (tmp_path / "lockgate.toml").write_text("[lockgate]\npipelines = 'dags'\n")
    lockgate_bin = Path(sys.executable).parent / "lockgate"
    done = subprocess.run(
        [str(lockgate_bin), "run", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert "security error" in done.stderr and "__mro__" in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert not marker.exists()
    assert not (tmp_path / ".lockgate" / "logs" / "escape").exists()


def test_security_error_in_python_op_templates(write, load_error, line_of):
    path = write(
        "dags/escape_py.py",
        HEAD
        + f"with DAG('x', {START}):\n"
        + "    PythonOperator(task_id='p', python_callable=print,\n"
        + "                   op_kwargs={'v': '{{ params.__class__ }}'})  # HERE\n",
        header=False,
    )
    err = load_error(path)
    assert "security error" in str(err) and "__class__" in str(err)
