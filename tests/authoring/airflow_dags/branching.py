from datetime import datetime, timedelta

from airflow import DAG
from airflow.decorators import task
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import BranchPythonOperator
from airflow.utils.task_group import TaskGroup

default_args = {
    "owner": "data-team",
    "depends_on_past": False,
    "email_on_failure": False,
    "retries": 1,
    "retry_delay": timedelta(seconds=0),
}


def choose(**context):
    return "reports" if context["params"]["mode"] == "full" else "quick"


with DAG(
    "branching",
    default_args=default_args,
    description="Branches, groups, templates and retries",
    schedule="0 6 * * 1-5",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["demo"],
    params={"mode": "full"},
) as dag:
    start = BashOperator(task_id="start", bash_command="echo 'day {{ ds }} next {{ macros.ds_add(ds, 7) }}'")
    pick = BranchPythonOperator(task_id="pick", python_callable=choose)
    quick = EmptyOperator(task_id="quick")
    with TaskGroup("reports") as reports:
        daily = BashOperator(task_id="daily", bash_command="echo daily {{ ds_nodash }} {{ params.mode }}")
        with TaskGroup("inner") as inner:
            weekly = BashOperator(task_id="weekly", bash_command="echo weekly {{ ti.task_id }}")
        daily >> inner
    flaky = BashOperator(
        task_id="flaky",
        bash_command="if [ -f flaky.marker ]; then echo second try; else touch flaky.marker; echo first try; exit 1; fi",
    )

    @task.branch
    def route(value):
        return ["left"] if value == "second try" else ["right"]

    left = EmptyOperator(task_id="left")
    right = EmptyOperator(task_id="right")
    join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")

    start >> pick >> [quick, reports]
    reports >> flaky
    route(flaky.output) >> [left, right]
    [left, right, quick] >> join
