"""An Airflow 3 TaskFlow DAG, unchanged: lockgate runs it without Apache Airflow installed.

lockgate run examples/airflow/taskflow_etl.py --logical-date 2024-01-31
"""

import json

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example"],
    default_args={"retries": 2},
)
def taskflow_etl():
    """Extract orders, total them, and report the total."""

    @task()
    def extract() -> dict:
        data = '{"1001": 301.27, "1002": 433.21, "1003": 502.22}'
        return json.loads(data)

    @task(multiple_outputs=True)
    def transform(orders: dict) -> dict:
        return {"total_order_value": round(sum(orders.values()), 2), "orders": len(orders)}

    @task()
    def load(total: float, count: int) -> str:
        line = f"{count} orders worth {total:.2f}"
        print(line)
        return line

    summary = transform(extract())
    loaded = load(summary["total_order_value"], summary["orders"])
    report = BashOperator(
        task_id="report",
        bash_command="echo 'report for {{ ds }}: {{ ti.xcom_pull(task_ids=\"load\") }}'",
    )
    loaded >> report


taskflow_etl()
