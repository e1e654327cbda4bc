from airflow import DAG
from airflow.operators.bash import BashOperator
from datetime import datetime

with DAG(dag_id="simple_pipeline", start_date=datetime(2023,1,1), schedule_interval='@daily') as dag:
    task1 = BashOperator(task_id="extract", bash_command="echo 'Extracting data'")
    task2 = BashOperator(task_id="transform", bash_command="echo 'Transforming data'")
    task3 = BashOperator(task_id="load", bash_command="echo 'Loading data'")

    task1 >> task2 >> task3
