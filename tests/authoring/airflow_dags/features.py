"""More of the subset: callbacks, timeouts, backoff, native templates, macros and filters,
template files, group default_args, @task_group results, templates_dict, @task.bash."""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.decorators import task, task_group
from airflow.exceptions import AirflowSkipException
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator
from airflow.utils.task_group import TaskGroup

FAILURES = []


def record_failure(context):
    FAILURES.append(
        {
            "task": context["task_instance"].task_id,
            "dag": context["dag"].dag_id,
            "ds": context["ds"],
            "error": str(context["exception"]),
        }
    )


def shout(value):
    return str(value).upper()


def render(templates_dict, ds, **context):
    return {"templated": templates_dict, "ds": ds, "n": context["params"]["n"]}


with DAG(
    "features",
    start_date=datetime(2024, 1, 1),
    schedule=timedelta(hours=6),
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(seconds=30),
        "execution_timeout": timedelta(seconds=20),
        "on_failure_callback": record_failure,
    },
    params={"n": 4, "items": ["a", "b"]},
    user_defined_macros={"project": "lockgate"},
    user_defined_filters={"shout": shout},
    render_template_as_native_obj=True,
    dagrun_timeout=timedelta(hours=1),
    max_active_runs=1,
    max_active_tasks=4,
    doc_md="# Features\nA tour.",
) as dag:
    macros = BashOperator(
        task_id="macros",
        bash_command="echo {{ project }} {{ 'x' | shout }} {{ dag.dag_id }} {{ task.task_id }}",
    )
    script = BashOperator(task_id="script", bash_command="script.sh", env={"N": "{{ params.n }}"})
    native = PythonOperator(
        task_id="native",
        python_callable=lambda items, n: {"items": items, "n": n},
        op_kwargs={"items": "{{ params['items'] }}", "n": "{{ params.n }}"},
        retries=0,
    )
    templates = PythonOperator(
        task_id="templates", python_callable=render, templates_dict={"day": "{{ ds_nodash }}"}
    )
    fails = PythonOperator(task_id="fails", python_callable=lambda: 1 / 0, retries=0)

    with TaskGroup("flat", prefix_group_id=False, default_args={"retries": 5}) as flat:
        in_flat = BashOperator(task_id="in_flat", bash_command="echo flat")

    @task
    def skipper():
        raise AirflowSkipException("nothing to do")

    @task
    def add(a, b):
        return a + b

    @task_group
    def adders(x):
        return add(add(x, 1), 2)

    @task.bash(env={"WHO": "{{ params.n }}"})
    def greet(total):
        return f'echo "hello $WHO {total} {{{{ ds }}}}"'

    @task.bash
    def slow():
        return "sleep 5"

    total = adders(10)
    greet(total)
    second = adders(total)
    skipper()
    slow.override(task_id="slow", execution_timeout=timedelta(seconds=0.5), retries=0)()
