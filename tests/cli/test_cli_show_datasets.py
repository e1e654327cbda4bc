"""`lockgate show` of pipelines with a time zone, dataset triggers and tasks that update
datasets."""

from __future__ import annotations

import re
from pathlib import Path

from .helpers import lockgate, write


def test_show_names_the_zone_the_datasets_and_what_tasks_update(tmp_path: Path) -> None:
    assert lockgate(tmp_path, "init").code == 0
    write(
        tmp_path / "pipelines",
        "report.yaml",
        """
        schedule: [s3://lake/orders.parquet, "s3://lake/[raw]/customers"]
        timezone: Europe/Berlin
        start_date: 2024-03-01
        tasks:
          build:
            shell: "true"
            produces: file:///data/report.csv
        """,
    )
    write(
        tmp_path / "pipelines",
        "ingest.py",
        """
        from lockgate import pipeline, shell

        with pipeline("ingest", schedule="@hourly"):
            shell("load", "true")
        """,
    )
    done = lockgate(tmp_path, "show", "report")
    assert done.code == 0, done
    lines = done.out.splitlines()
    assert "schedule: dataset updates" in lines[0], done
    assert lines[1] == "runs when updated: s3://lake/orders.parquet, s3://lake/[raw]/customers"
    assert lines[2] == "time zone Europe/Berlin · start 2024-03-01", done
    assert re.search(r"^build +shell +- +true +updates file:///data/report\.csv *$", done.out, re.M)

    plain = lockgate(tmp_path, "show", "ingest")
    assert plain.code == 0, plain
    assert "time zone" not in plain.out and "runs when updated" not in plain.out, plain
    assert "updates" not in plain.out, plain
