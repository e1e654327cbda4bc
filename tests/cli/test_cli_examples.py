"""Every example in examples/ runs as its README section says (one per form: Python, YAML, Airflow)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .helpers import lockgate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A copy of examples/, so runs write their state and outputs under tmp_path."""
    copy = tmp_path / "examples"
    skip = shutil.ignore_patterns("__pycache__", ".lockgate", "data", "work")  # a demo's state
    shutil.copytree(EXAMPLES, copy, ignore=skip)
    return tmp_path


def _run(cwd: Path, *args: str):
    done = lockgate(cwd, "run", *args, "--logical-date", "2024-01-31")
    assert done.code == 0, done
    return done


def _logs(cwd: Path) -> str:
    run_id = lockgate(cwd, "runs", "--limit", "1", "--json").json()["runs"][0]["id"]
    return lockgate(cwd, "logs", run_id).out


def test_python_example(examples: Path) -> None:
    _run(examples, "examples/simple_pipeline.py")
    assert "Loading data" in _logs(examples)


def test_yaml_example(examples: Path) -> None:
    _run(examples, "examples/yaml/daily_report.yaml", "-p", "region=us")
    logs = _logs(examples)
    assert 'report for 2024-01-31 us: {"returned": 1, "shipped": 2}' in logs, logs
    shown = lockgate(examples, "show", "examples/yaml/daily_report.yaml")
    assert "(YAML)" in shown.out and 'one of "eu", "us"' in shown.out, shown


def test_airflow_seed_dag_example(examples: Path) -> None:
    _run(examples, "examples/airflow/simple_pipeline.py")
    logs = _logs(examples)
    for word in ("Extracting data", "Transforming data", "Loading data"):
        assert word in logs
    shown = lockgate(examples, "show", "examples/airflow/simple_pipeline.py")
    assert "schedule: @daily" in shown.out and "(Airflow DAG file)" in shown.out, shown


def test_airflow_taskflow_example(examples: Path) -> None:
    _run(examples, "examples/airflow/taskflow_etl.py")
    assert "report for 2024-01-31: 3 orders worth 1236.70" in _logs(examples)


def test_the_demo_provisions_masked_test_data_and_the_gate_refuses_raw_data(
    examples: Path,
) -> None:
    import sqlite3
    import subprocess
    import sys

    from .helpers import _env

    (examples / ".venv").symlink_to(Path(sys.prefix))  # the demo calls .venv/bin/lockgate
    done = subprocess.run(
        ["bash", "examples/demo.sh"], cwd=examples, env=_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in (
        "production database data/production.db: 2000 customers, 4072 orders",
        "success in",
        "rows in the staging zone: customers 2,000, orders 4,072",
        "tokenize customer_id, email; redact full_name, phone, ssn, street_address; "
        "truncate card_number; generalize date_of_birth; redact_text support_notes",
        "checks: 4 of 4 passed",
        "policy gate: 6 write(s) allowed, 0 refused",
        "audit chain OK",
        "refused: error: policy gate refused writing",
        "lockgate up",
    ):
        assert line in out, out
    assert len(out.splitlines()) < 60, "the demo's output stays short"
    project = examples / "examples" / "provisioning"
    prod = sqlite3.connect(project / "data" / "production.db")
    staging = sqlite3.connect(project / "data" / "staging.db")
    emails = {e for (e,) in prod.execute("SELECT email FROM customers")}
    ssns = {s for (s,) in prod.execute("SELECT ssn FROM customers")}
    cards = {c for (c,) in prod.execute("SELECT card_number FROM customers")}
    dump = "\n".join(staging.iterdump())
    for raw in (*list(emails)[:200], *list(ssns)[:200], *list(cards)[:200]):
        assert raw not in dump, raw
    # tokens keep the joins: every order still finds its customer
    (orphans,) = staging.execute(
        "SELECT count(*) FROM orders o LEFT JOIN customers c USING (customer_id) "
        "WHERE c.customer_id IS NULL"
    ).fetchone()
    assert orphans == 0
    (joined,) = staging.execute(
        "SELECT count(*) FROM orders o JOIN customers c ON o.customer_email = c.email"
    ).fetchone()
    assert joined == 4072
    assert not staging.execute(
        "SELECT name FROM sqlite_master WHERE name = 'customers_unmasked'"
    ).fetchall(), "the refused copy wrote nothing"
    again = subprocess.run(  # deterministic and repeatable: the same data the second time
        ["bash", "examples/demo.sh"], cwd=examples, env=_env(), capture_output=True, text=True
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert {e for (e,) in prod.execute("SELECT email FROM customers")} == emails
