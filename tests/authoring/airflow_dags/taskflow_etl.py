"""An Airflow 3 TaskFlow ETL: dicts passed between tasks, multiple_outputs, duplicates."""

import json

import pendulum
from airflow.sdk import dag, get_current_context, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "etl"],
)
def tutorial_taskflow_api(factor: int = 2):
    """### TaskFlow ETL
    Extract, transform and load order data."""

    @task()
    def extract():
        data_string = '{"1001": 301.27, "1002": 433.21, "1003": 502.22}'
        return json.loads(data_string)

    @task(multiple_outputs=True)
    def transform(order_data_dict: dict):
        total_order_value = 0
        for value in order_data_dict.values():
            total_order_value += value
        return {"total_order_value": total_order_value, "count": len(order_data_dict)}

    @task
    def summarize(orders: dict) -> dict[str, float]:
        return {"max": max(orders.values()), "min": min(orders.values())}

    @task()
    def load(total_order_value: float, count: int, extremes: dict, **context):
        print(f"Total order value is: {total_order_value:.2f}")
        return {
            "total": round(total_order_value, 2),
            "count": count,
            "max": extremes["max"],
            "low": None,
            "ds": context["ds"],
            "dag_id": context["dag"].dag_id,
        }

    @task
    def scale(value: float, by: int) -> float:
        return round(value * by, 2)

    @task
    def whoami():
        ctx = get_current_context()
        return {"task": ctx["ti"].task_id, "try": ctx["ti"].try_number, "run": ctx["run_id"]}

    order_data = extract()
    order_summary = transform(order_data)
    extremes = summarize(order_data)
    loaded = load(order_summary["total_order_value"], order_summary["count"], extremes)
    first = scale(extremes["min"], factor)
    second = scale(first, 10)
    scale.override(task_id="scaled_max")(extremes["max"], by=factor)
    loaded >> whoami()
    second >> whoami()


tutorial_taskflow_api()
