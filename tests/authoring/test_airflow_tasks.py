"""What Airflow tasks are handed when they start (upstream results only if they may pull
XComs), and the environment of bash commands (`env` / `append_env`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import lockgate
from lockgate.authoring.discovery import load_file
from lockgate.config import Project
from lockgate.model.pipeline import Pipeline

LOGICAL = datetime(2024, 1, 31, tzinfo=UTC)
HEAD = (
    "from datetime import datetime\n"
    "from airflow import DAG\n"
    "from airflow.operators.bash import BashOperator\n"
    "from airflow.operators.python import PythonOperator, get_current_context\n"
    "from airflow.decorators import task\n"
    "START = datetime(2024, 1, 1)\n"
)


def load_one(path: Path) -> Pipeline:
    (pipe,) = load_file(path)
    return pipe


def run(pipe: Pipeline, project: Project, executor: str = "threads"):
    return lockgate.run(pipe, executor=executor, store=False, project=project, logical_date=LOGICAL)


def test_a_long_chain_of_tasks_that_do_not_pull_gets_only_its_argument_inputs(
    tmp_path: Path, project: Project
):
    path = tmp_path / "long_chain.py"
    path.write_text(
        HEAD
        + "def step(i, previous=None):\n"
        + "    return i if previous is None else previous + 1\n"
        + "def quiet():\n"
        + "    return 'no pulls'\n"
        + "with DAG('long_chain', start_date=START):\n"
        + "    tasks = []\n"
        + "    for i in range(300):\n"
        + "        if i % 10 == 5:  # takes the previous task's result as an argument\n"
        + "            op = PythonOperator(task_id=f't{i}', python_callable=step,\n"
        + "                                op_args=[i], op_kwargs={'previous': tasks[-1].output})\n"
        + "        elif i % 10 == 7:\n"
        + "            op = PythonOperator(task_id=f't{i}', python_callable=quiet)\n"
        + "        else:\n"
        + "            op = PythonOperator(task_id=f't{i}', python_callable=step, op_args=[i])\n"
        + "        if tasks:\n"
        + "            tasks[-1] >> op\n"
        + "        tasks.append(op)\n"
    )
    pipe = load_one(path)
    assert len(pipe.tasks) == 300
    for i in range(300):
        task = pipe.tasks[f"t{i}"]
        wanted = (f"t{i - 1}",) if i % 10 == 5 else ()
        assert task.data_upstream() == wanted, (i, task.kwargs)
        assert task.args == () and len(task.kwargs) <= 1, (i, task.kwargs)
        assert task.upstream == ((f"t{i - 1}",) if i else ())
    result = run(pipe, project)
    assert result.ok, {t: s.error for t, s in result.tasks.items() if s.error}
    assert result.result("t15") == 15 and result.result("t17") == "no pulls"
    assert result.result("t295") == 295


PULLS = """
def helper_pulls():
    return get_current_context()["ti"].xcom_pull(task_ids="a")

def by_ti(ti):
    return ti.xcom_pull(task_ids="a")

def by_context():
    return get_current_context()["ti"].xcom_pull(task_ids="a")

def by_kwargs(**context):
    return context["ti"].xcom_pull(task_ids="a", key="extra")

def by_nested():
    def inner():
        return get_current_context()["task_instance"].xcom_pull(task_ids="a")
    return inner()

def by_helper():
    return helper_pulls()

def elsewhere():
    import af_pull_helper
    return af_pull_helper.pull_a()

def push(ti):
    ti.xcom_push("extra", "pushed")
    return "from a"

@task
def flow_pull(x, ti=None):
    return [x, ti.xcom_pull(task_ids="a")]

@task.bash
def bash_pull():
    return "echo {{ ti.xcom_pull(task_ids='a') }}"

with DAG("pulls", start_date=START):
    a = PythonOperator(task_id="a", python_callable=push)
    b = PythonOperator(task_id="b", python_callable=lambda: "from b")
    a >> b
    for fn in (by_ti, by_context, by_kwargs, by_nested, by_helper, elsewhere):
        b >> PythonOperator(task_id=fn.__name__, python_callable=fn)
    b >> [flow_pull(b.output), bash_pull()]
"""


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_a_callable_that_pulls_gets_every_upstream_result(
    tmp_path: Path, project: Project, executor: str
):
    (tmp_path / "af_pull_helper.py").write_text(
        "from lockgate.authoring.airflow.context import get_current_context\n"
        "def pull_a():\n"
        "    return get_current_context()['ti'].xcom_pull(task_ids='a')\n"
    )
    path = tmp_path / "pulls.py"
    path.write_text(HEAD + PULLS)
    pipe = load_one(path)
    assert pipe.tasks["b"].data_upstream() == ()
    for tid in ("by_ti", "by_context", "by_kwargs", "by_nested", "by_helper", "bash_pull"):
        assert set(pipe.tasks[tid].data_upstream()) == {"a", "b"}, tid
    assert set(pipe.tasks["flow_pull"].data_upstream()) == {"a", "b"}
    assert pipe.tasks["elsewhere"].data_upstream() == ()  # its pull is in another module

    result = run(pipe, project, executor)
    errors = {t: s.error for t, s in result.tasks.items() if s.error}
    assert set(errors) == {"elsewhere"}, errors
    for tid in ("by_ti", "by_context", "by_nested", "by_helper", "bash_pull"):
        assert result.result(tid) == "from a", tid
    assert result.result("by_kwargs") == "pushed"
    assert result.result("flow_pull") == ["from b", "from a"]
    error = errors["elsewhere"]
    assert "the result of task 'a' was not handed to task 'elsewhere'" in error, error
    assert "take a `ti` parameter in elsewhere()" in error, error


def env_dag(tmp_path: Path, append_env: str) -> Pipeline:
    path = tmp_path / f"env_{append_env.replace('=', '_') or 'default'}.py"
    args = f", {append_env}" if append_env else ""
    path.write_text(
        HEAD
        + "SHOW = 'echo \"${AF_COMPAT_VISIBLE:-unset} $MINE $AIRFLOW_CTX_TASK_ID\"'\n"
        + "@task.bash(env={'MINE': 'mine'}"
        + args
        + ")\n"
        + "def flow_env():\n"
        + "    return SHOW\n"
        + "@task.bash\n"
        + "def flow_no_env():\n"
        + "    return SHOW\n"
        + "with DAG('env', start_date=START):\n"
        + "    BashOperator(task_id='op_env', bash_command=SHOW, env={'MINE': 'mine'}"
        + args
        + ")\n"
        + "    BashOperator(task_id='op_no_env', bash_command=SHOW)\n"
        + "    flow_env()\n"
        + "    flow_no_env()\n"
    )
    return load_one(path)


@pytest.mark.parametrize("append_env", ["", "append_env=False", "append_env=True"])
def test_bash_env_replaces_the_environment_unless_append_env(
    tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch, append_env: str
):
    monkeypatch.setenv("AF_COMPAT_VISIBLE", "inherited")
    pipe = env_dag(tmp_path, append_env)
    appends = append_env == "append_env=True"
    assert pipe.tasks["op_env"].inherit_env is appends
    assert pipe.tasks["op_no_env"].inherit_env is True
    result = run(pipe, project)
    assert result.ok, {t: s.error for t, s in result.tasks.items()}
    seen = "inherited" if appends else "unset"
    assert result.result("op_env") == f"{seen} mine op_env"
    assert result.result("flow_env") == f"{seen} mine flow_env"
    assert result.result("op_no_env") == "inherited  op_no_env"
    assert result.result("flow_no_env") == "inherited  flow_no_env"


def test_output_encoding_must_be_utf8(write, load_error, line_of):
    ok = write(
        "dags/utf8.py",
        HEAD
        + "with DAG('utf8', start_date=START):\n"
        + "    BashOperator(task_id='a', bash_command='echo', output_encoding='UTF8')\n"
        + "    BashOperator(task_id='b', bash_command='echo', output_encoding='utf-8')\n",
        header=False,
    )
    assert set(load_one(ok).tasks) == {"a", "b"}
    for name, line in (
        ("op", "    BashOperator(task_id='a', bash_command='echo', output_encoding='latin-1')"),
        (
            "flow",
            "    @task.bash(output_encoding='latin-1')\n    def a():\n        return 'echo'\n    a()",
        ),
    ):
        path = write(
            f"dags/latin_{name}.py",
            HEAD + "with DAG('latin', start_date=START):\n" + line + "  # HERE\n",
            header=False,
        )
        err = load_error(path)
        assert err.line == line_of(path, "# HERE"), str(err)
        assert "output_encoding='latin-1' is outside lockgate's Airflow subset" in str(err)
        assert "read as UTF-8" in str(err)
