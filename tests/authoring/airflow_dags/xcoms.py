from datetime import datetime

from airflow import DAG
from airflow.decorators import task
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator


def push(ti, **_):
    ti.xcom_push(key="rows", value=[1, 2, 3])
    return "pushed"


def pull(ti):
    return {
        "rows": ti.xcom_pull(task_ids="push", key="rows"),
        "rv": ti.xcom_pull(task_ids="push"),
        "line": ti.xcom_pull(task_ids="shout"),
        "both": ti.xcom_pull(task_ids=["push", "shout"]),
        "missing": ti.xcom_pull(task_ids="push", key="nope"),
        "skipped": ti.xcom_pull(task_ids="skipper"),
    }


with DAG("xcoms", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    pusher = PythonOperator(task_id="push", python_callable=push)
    shout = BashOperator(task_id="shout", bash_command="echo hello; echo last line")
    skipper = BashOperator(task_id="skipper", bash_command="exit 99")
    puller = PythonOperator(
        task_id="pull", python_callable=pull, trigger_rule="none_failed"
    )
    templated = BashOperator(
        task_id="templated",
        bash_command=(
            "echo rows={{ ti.xcom_pull(task_ids='push', key='rows') | join(',') }} "
            "rv={{ ti.xcom_pull(task_ids='push') }} "
            "line=\"{{ task_instance.xcom_pull('shout') }}\""
        ),
    )

    @task
    def consume(value, rows):
        return {"value": value, "rows": rows}

    consumed = consume(pusher.output, pusher.output["rows"])
    env_task = BashOperator(
        task_id="env_task", bash_command='echo "got $VALUE"', env={"VALUE": shout.output}
    )
    [pusher, shout, skipper] >> puller >> templated


def sneaky(ti):
    return ti.xcom_pull(task_ids="other")


with DAG("xcom_not_upstream", start_date=datetime(2024, 1, 1), schedule=None) as dag2:
    PythonOperator(task_id="other", python_callable=lambda: 1)
    PythonOperator(task_id="sneaky", python_callable=sneaky)
