"""`lockgate show RUN`: a run's tasks, the datasets it wrote with their classifications and
inputs, and its data-quality results (classified example values stay masked)."""

from __future__ import annotations

from pathlib import Path

from .helpers import lockgate, one_line_error, write

FLOW = """
from lockgate import pipeline, task
from lockgate.model import facts


@task
def frame():
    import pandas as pd

    return pd.DataFrame({"n": [1, 2, 3]})


@task
def load() -> None:
    facts.report(
        facts.DATASET_WRITTEN,
        {"uri": "sqlite:///staging.db#customers", "kind": "sqlite", "rows": 120,
         "mode": "overwrite", "inputs": ["postgresql://app@db:5432/prod#customers"],
         "schema": [{"name": "id", "type": "int64", "tag": None},
                    {"name": "email", "type": "string", "tag": "pii.email/tokenized"}]},
    )
    for name, passed, failing in (("unique(id)", True, 0), ("not_null(email)", False, 2)):
        facts.report(
            facts.QUALITY_CHECKED,
            {"dataset": "sqlite:///staging.db#customers", "name": name, "check": name[:-1].split("(")[0],
             "severity": "warn", "passed": passed, "failing_rows": failing,
             "examples": [] if passed else [{"id": 7, "email": "***"}]},
        )


with pipeline("provision") as p:
    load()
    frame()
"""


def test_show_run_lists_datasets_and_checks(tmp_path: Path) -> None:
    assert lockgate(tmp_path, "init").code == 0
    write(tmp_path / "pipelines", "provision.py", FLOW)
    ran = lockgate(tmp_path, "run", "provision", "--json")
    assert ran.code == 0, ran
    run_id = ran.json()["run_id"]

    doc = lockgate(tmp_path, "show", run_id[:20], "--json")
    assert doc.code == 0, doc
    found = doc.json()
    assert found["run"]["run_id"] == run_id and found["run"]["state"] == "success"
    tasks = {t["task_id"]: t for t in found["tasks"]}
    assert set(tasks) == {"load", "frame"} and "table" not in tasks["load"]
    assert tasks["frame"]["table"]["rows"] == 3 and tasks["frame"]["table"]["frame"] == "pandas"
    [written] = found["datasets"]
    assert written["uri"] == "sqlite:///staging.db#customers" and written["rows"] == 120
    assert written["inputs"] == ["postgresql://app@db:5432/prod#customers"]
    assert [(c["name"], c["passed"], c["failing_rows"]) for c in found["checks"]] == [
        ("unique(id)", True, 0),
        ("not_null(email)", False, 2),
    ]

    text = lockgate(tmp_path, "show", run_id)
    assert text.code == 0, text
    assert f"run {run_id}" in text.out and "pipeline provision" in text.out
    assert "email=pii.email/tokenized" in text.out
    assert "postgresql://app@db:5432/prod#customers" in text.out
    assert "not_null(email)" in text.out and "failed (2 row(s))" in text.out
    assert '"email": "***"' in text.out
    assert "table: 3 row(s) (pandas)" in text.out

    listed = lockgate(tmp_path, "runs")
    assert "checks" in listed.out and "1/2 passed" in listed.out, listed
    assert lockgate(tmp_path, "runs", "--json").json()["runs"][0]["checks"] == {
        "total": 2,
        "failed": 1,
    }

    # a pipeline is still shown by id, and --json is for runs only
    assert lockgate(tmp_path, "show", "provision").code == 0
    assert "--json is for runs" in one_line_error(lockgate(tmp_path, "show", "provision", "--json"))
    # an id shaped like a run that matches none is looked up as a pipeline
    assert "20991231T000000" in one_line_error(lockgate(tmp_path, "show", "20991231T000000"))


def test_run_output_names_failed_warn_checks(tmp_path: Path) -> None:
    assert lockgate(tmp_path, "init").code == 0
    (tmp_path / "orders.csv").write_text("id,country\n1,DE\n2,XX\n3,YY\n")
    write(
        tmp_path / "pipelines",
        "stage.yaml",
        """
        tasks:
          stage:
            copy:
              source: orders.csv
              target: orders.parquet
              checks:
                - accepted_values: {column: country, values: [DE, FR]}
                  severity: warn
                - not_null: id
        """,
    )
    ran = lockgate(tmp_path, "run", "stage")
    assert ran.code == 0, ran
    [line] = [x for x in ran.out.splitlines() if " stage " in x and " ok " in x]
    assert line.endswith("1 warning(s): accepted_values(country) failed on 2 row(s)"), line


def test_show_describes_data_tasks_by_what_they_read_and_write(tmp_path: Path) -> None:
    assert lockgate(tmp_path, "init").code == 0
    write(
        tmp_path / "pipelines",
        "move.yaml",
        """
        tasks:
          pull:
            copy:
              source: "postgresql://etl:hunter2@db:5432/shop#orders"
              target: lake/orders.parquet
          join:
            depends_on: pull
            sql:
              query: select * from o join c using (id)
              inputs: {o: lake/orders.parquet, c: lake/customers.parquet}
              target: "sqlite:///dw.db#joined"
          hide:
            depends_on: join
            mask: {input: lake/orders.parquet, output: lake/masked.parquet, auto: true}
        """,
    )
    shown = lockgate(tmp_path, "show", "move")
    assert shown.code == 0, shown
    assert "copy postgresql://etl:***@db:5432/shop#orders -> lake/orders.parquet" in shown.out
    assert "sql over o, c -> sqlite:///dw.db#joined" in shown.out
    assert "mask lake/orders.parquet -> lake/masked.parquet" in shown.out
    assert "hunter2" not in shown.out
