"""The privacy engine as pipeline tasks: `scan()`, `mask()` and `redact()` in Python, `scan:`,
`mask:` and `redact:` in YAML, run in-process and by the CLI; definition errors; and
`import lockgate` staying free of pyarrow."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lockgate
from lockgate import mask, pipeline, redact, scan, task
from lockgate.authoring.discovery import load_file
from lockgate.config import Project
from lockgate.errors import DefinitionError
from lockgate.io.formats import write_table
from lockgate.model.classification import is_raw, tag_of
from lockgate.model.refs import Template
from lockgate.model.task import TaskKind
from lockgate.privacy import tasks as privacy_tasks
from lockgate.privacy.keys import ensure_key_file, keys_file_of

DAY = datetime(2024, 1, 31, tzinfo=UTC)
ROWS = 50


def customers() -> pa.Table:
    return pa.table(
        {
            "customer_id": [f"C{i:04d}" for i in range(ROWS)],
            "email": [f"person{i}@example{i % 3}.org" for i in range(ROWS)],
            "ssn": [f"{120 + i:03d}-{11 + i % 80:02d}-{2000 + i:04d}" for i in range(ROWS)],
            "city": ["Springfield" if i % 2 else "Shelbyville" for i in range(ROWS)],
        }
    )


@pytest.fixture
def data(project: Project) -> Path:
    """The project's data/customers.csv, and a key file for the keyed operations."""
    (project.root / "data").mkdir()
    write_table(project.root / "data" / "customers.csv", customers())
    ensure_key_file(keys_file_of(project))
    return project.root


def _run(pipe: object, project: Project, executor: str = "inline") -> lockgate.RunResult:
    result = lockgate.run(
        pipe,  # type: ignore[arg-type]
        executor=executor,
        store=False,
        project=project,
        logical_date=DAY,
    )
    assert result.ok, {t.id: t.error for t in result.tasks.values()}
    return result


# -- Python -------------------------------------------------------------------------------------
def test_python_pipeline_scans_and_masks_a_file(data: Path, project: Project):
    with pipeline("protect") as p:
        found = scan("scan", input="data/customers.csv", sample_size=20)
        masked = mask(
            "mask",
            input="data/customers.csv",
            output="masked/{{ ds }}/customers.parquet",
            rules=[
                {"column": "email", "op": "tokenize", "classification": "pii.email"},
                {"column": "ssn", "op": "redact", "classification": "pii.ssn"},
            ],
            retries=1,
        )
        found >> masked
    pipe = p.build()
    assert pipe.tasks["mask"].kind is TaskKind.PYTHON
    assert pipe.tasks["mask"].fn is privacy_tasks.mask_task
    assert isinstance(pipe.tasks["mask"].kwargs["output"], Template)
    assert pipe.tasks["mask"].settings.retries == 1

    result = _run(pipe, project)
    report = result.result("scan")
    classes = {c["name"]: c["classification"] for c in report["columns"]}
    assert classes["email"] == "pii.email" and classes["customer_id"] is None
    assert report["rows_sampled"] == 20

    summary = result.result("mask")
    assert summary["rows"] == ROWS
    assert summary["columns_by_op"] == {"tokenize": ["email"], "redact": ["ssn"]}
    assert summary["tags"] == {"email": "pii.email/tokenized", "ssn": "pii.ssn/redacted"}
    out_file = data / "masked" / "2024-01-31" / "customers.parquet"
    out = pq.read_table(out_file)
    assert set(out.column("email").to_pylist()).isdisjoint(customers().column("email").to_pylist())
    assert out.column("city").to_pylist() == customers().column("city").to_pylist()
    assert tag_of(out.schema.field("email")) == "pii.email/tokenized"


def test_python_mask_auto_takes_its_input_from_an_upstream_task(data: Path, project: Project):
    @task
    def pick_file() -> str:
        return "data/customers.csv"

    with pipeline("auto") as p:
        source = pick_file()
        mask("mask", input=source, output="out/auto.parquet", auto=True)
        redact("redact", input="notes.txt", output="out/notes.txt", entities=["email"])
    (data / "notes.txt").write_text("mail jane@example.com from 10.0.0.1\n")
    pipe = p.build()
    assert pipe.tasks["mask"].upstream == ("pick_file",)

    result = _run(pipe, project, executor="threads")
    summary = result.result("mask")
    assert summary["rows"] == ROWS and "email" in summary["columns_by_op"]["tokenize"]
    out = pq.read_table(data / "out" / "auto.parquet")
    assert all(not is_raw(tag_of(f)) for f in out.schema)
    assert (data / "out" / "notes.txt").read_text() == "mail [EMAIL] from 10.0.0.1\n"
    assert result.result("redact")["spans"] == {"email": 1}


def test_python_builder_errors_are_definition_errors(project: Project):
    with pytest.raises(DefinitionError, match="give rules= .* or auto=True"), pipeline("p"):
        mask("m", input="a.csv", output="b.csv")
    with pytest.raises(DefinitionError, match="must be created inside a pipeline"):
        scan("s", input="a.csv")
    with pytest.raises(DefinitionError, match="params.nope"), pipeline("q"):
        mask("m", input="{{ params.nope }}.csv", output="b.csv", auto=True)
    with pytest.raises(DefinitionError, match="retires"), pipeline("r"):
        scan("s", input="a.csv", retires=2)


def test_a_task_failure_names_the_problem_in_one_line(data: Path, project: Project):
    with pipeline("bad") as p:
        mask(
            "m",
            input="data/customers.csv",
            output="o.parquet",
            rules=[{"column": "x", "op": "hash"}],
        )
        scan("s", input="data/nope.csv")
    result = lockgate.run(p, executor="inline", store=False, project=project)
    assert not result.ok
    assert "has no column 'x'" in (result.tasks["m"].error or "")
    assert "nope.csv: no such file" in (result.tasks["s"].error or "")
    assert "\n" not in (result.tasks["m"].error or "") + (result.tasks["s"].error or "")


# -- YAML ---------------------------------------------------------------------------------------
YAML = """\
id: protect_yaml
params:
  folder: masked
tasks:
  classify:
    scan:
      input: data/customers.csv
      sample_size: 25
  protect:
    depends_on: classify
    retries: 1
    mask:
      input: data/customers.csv
      output: "{{ params.folder }}/{{ ds }}/customers.parquet"
      rules:
        - column: email
          op: tokenize
        - column: ssn
          op: redact
          classification: pii.ssn
  protect_all:
    mask:
      input: data/customers.csv
      output: masked/all.csv
      rules: rules.yaml
      auto: true
  clean_log:
    redact:
      input: app.log
      output: "{{ params.folder }}/app.log"
      entities: [email]
"""


def _yaml_project(data: Path) -> Path:
    (data / "pipelines" / "protect.yaml").write_text(YAML)
    (data / "rules.yaml").write_text("rules:\n  - column: city\n    op: nullify\n")
    (data / "app.log").write_text("GET /a by ann@example.com\nGET /b\n")
    return data / "pipelines" / "protect.yaml"


def test_yaml_pipeline_scans_and_masks_a_file(data: Path, project: Project):
    (pipe,) = load_file(_yaml_project(data))
    assert pipe.tasks["protect"].fn is privacy_tasks.mask_task
    assert pipe.tasks["clean_log"].fn is privacy_tasks.redact_task
    assert pipe.tasks["protect"].upstream == ("classify",)

    result = _run(pipe, project)
    classes = {c["name"]: c["classification"] for c in result.result("classify")["columns"]}
    assert classes["email"] == "pii.email" and classes["ssn"] == "pii.ssn"
    summary = result.result("protect")
    assert summary["rows"] == ROWS
    assert summary["columns_by_op"] == {"tokenize": ["email"], "redact": ["ssn"]}
    out = pq.read_table(data / "masked" / "2024-01-31" / "customers.parquet")
    assert set(out.column("ssn").to_pylist()).isdisjoint(customers().column("ssn").to_pylist())
    both = result.result("protect_all")["columns_by_op"]
    assert both["nullify"] == ["city"] and "email" in both["tokenize"]
    assert (data / "masked" / "app.log").read_text() == "GET /a by [EMAIL]\nGET /b\n"


def test_yaml_pipeline_runs_from_the_cli(data: Path):
    _yaml_project(data)
    cli = str(Path(sys.executable).parent / "lockgate")
    env = {"PATH": "/usr/bin:/bin", "TERM": "dumb", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [cli, "run", "protect_yaml", "-d", "2024-02-01", "-p", "folder=safe", "-e", "processes"]
        + ["--json"],  # worker processes: the task functions travel by name
        cwd=data,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    states = {t["id"]: t["state"] for t in json.loads(done.stdout)["tasks"]}
    assert set(states.values()) == {"success"}, states
    out = pq.read_table(data / "safe" / "2024-02-01" / "customers.parquet")
    assert out.num_rows == ROWS
    tested = subprocess.run(
        [cli, "test", "protect_yaml", "protect"],
        cwd=data,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode == 0, (tested.stdout, tested.stderr)
    result = next(line for line in tested.stdout.splitlines() if line.startswith("result: "))
    assert json.loads(result.removeprefix("result: "))["rows"] == ROWS


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (
            "mask: {input: a.csv, output: b.csv}",
            "tasks.t.mask: give `rules:` (a rules file or a list of rules) or `auto: true`",
        ),
        (
            "mask: {input: a.csv, output: b.csv, auto: true, sample_sise: 5}",
            "tasks.t.mask: unknown key 'sample_sise'; did you mean 'sample_size'?",
        ),
        (
            "mask: {input: a.csv, auto: true}",
            "tasks.t.mask: missing required key 'output'",
        ),
        (
            "mask: {input: a.csv, output: b.csv, rules: 3}",
            "tasks.t.mask.rules: expected a rules file (text) or a list of rules",
        ),
        (
            "mask: {input: a.csv, output: b.csv, auto: true}\n    env: {A: b}",
            "tasks.t: 'env' is a key of shell tasks, not of mask tasks",
        ),
        (
            "scan: {input: a.csv}\n    sample_size: 5",
            "tasks.t: 'sample_size' goes under `scan:`",
        ),
        (
            "scan: {input: '{{ results.nope }}'}",
            "template reads results.nope, but there is no task 'nope'",
        ),
    ],
)
def test_yaml_privacy_task_errors_are_located(tmp_path: Path, task: str, expected: str):
    path = tmp_path / "p.yaml"
    path.write_text(f"tasks:\n  t:\n    {task}\n")
    with pytest.raises(DefinitionError) as info:
        load_file(path)
    assert expected in str(info.value), str(info.value)
    assert str(info.value).startswith(f"{path}:"), str(info.value)


# -- staying light ------------------------------------------------------------------------------
def test_import_and_pipeline_definition_do_not_load_pyarrow(tmp_path: Path):
    code = textwrap.dedent(
        """
        import sys
        import lockgate
        assert "pyarrow" not in sys.modules, "import lockgate loaded pyarrow"
        with lockgate.pipeline("p") as p:
            lockgate.mask("m", input="a.csv", output="b.parquet", auto=True)
            lockgate.scan("s", input="a.csv")
        from lockgate.authoring.discovery import load_file
        load_file(sys.argv[1])
        print(sorted(m for m in ("pyarrow", "numpy", "phonenumbers") if m in sys.modules))
        """
    )
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text("tasks:\n  s:\n    scan: {input: a.csv}\n")
    done = subprocess.run(
        [sys.executable, "-c", code, str(yaml_file)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
