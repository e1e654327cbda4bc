"""The seed tutorial's pipeline: extract >> transform >> load, three shell tasks.

Run it with `lockgate run examples/simple_pipeline.py`.
"""

from lockgate import pipeline, shell

with pipeline(
    "simple_pipeline_py",
    description="Extract, transform and load, as in the tutorial",
    schedule="@daily",
    defaults={"retries": 1, "retry_delay": 5},
) as simple_pipeline:
    extract = shell("extract", "echo 'Extracting data'")
    transform = shell("transform", "echo 'Transforming data'")
    load = shell("load", "echo 'Loading data'")

    extract >> transform >> load
