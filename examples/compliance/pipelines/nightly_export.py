"""Nightly export of production customers to the prod zone's work folder (a pipeline of the
team's; seed_activity.py records a change to it made at 02:00)."""

from lockgate import copy, pipeline

KEEP_DAYS = 30  # changed at 02:00 (was 90): the change the compliance job flags

with pipeline("nightly_export", params={"keep_days": KEEP_DAYS}, tags=["etl"]) as p:
    copy(
        "extract", source="sqlite:///data/production.db#customers", target="work/customers.parquet"
    )
