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
    shutil.copytree(EXAMPLES, copy, ignore=shutil.ignore_patterns("__pycache__"))
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


def test_the_demo_script_runs(examples: Path) -> None:
    import subprocess
    import sys

    from .helpers import _env

    (examples / ".venv").symlink_to(Path(sys.prefix))  # the demo calls .venv/bin/lockgate
    done = subprocess.run(
        ["bash", "examples/demo.sh"], cwd=examples, env=_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for line in ("Loading data", "report for 2024-01-31 us:", "(no Airflow installed)"):
        assert line in done.stdout, done.stdout
