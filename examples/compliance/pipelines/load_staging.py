"""A careless copy of production customers, raw e-mails included, to the staging zone: the
policy gate refuses it and nothing is written (the violation the compliance job reports)."""

from lockgate import copy, pipeline

with pipeline("load_staging", tags=["etl"]) as p:
    copy(
        "load",
        source="sqlite:///data/production.db#customers",
        target="sqlite:///data/staging.db#customers",
    )
