"""YAML pipelines: every key of the format loaded and checked, runs end to end (inline, worker
processes, the CLI), shell quoting of template values, and the committed JSON Schema."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml_helpers

import lockgate
from lockgate.authoring.discovery import find_pipeline, load_file
from lockgate.authoring.yaml_loader import Document
from lockgate.authoring.yaml_schema import pipeline_json_schema
from lockgate.config import Project
from lockgate.errors import ConfigError
from lockgate.model.params import Param
from lockgate.model.refs import Template
from lockgate.model.settings import TaskSettings
from lockgate.model.states import RunState, TaskState
from lockgate.model.task import TaskKind
from lockgate.model.trigger_rules import TriggerRule

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "docs" / "pipeline.schema.json"
DOC_FILE = REPO / "docs" / "yaml.md"
_BIN = Path(sys.executable).parent / "lockgate"
DAY = datetime(2024, 1, 31, tzinfo=UTC)

FULL = """\
# every key of the format (the cwd of `undo` is filled in by the test)
id: nightly_report
description: Builds the nightly report.
tags: [reports, finance]
schedule: "@daily"
start_date: 2024-01-01
end_date: 2025-01-01T06:30:00Z
catchup: false
max_active_runs: 1
max_active_tasks: 4
run_timeout: 2h
pools: {db: 2}
params:
  region: eu
  limit:
    type: integer
    default: 10
    description: Most rows to load.
    minimum: 1
    maximum: 1000
  mode:
    type: string
    default: full
    enum: [full, delta]
    pattern: "[a-z]+"
    min_length: 2
    max_length: 10
  day:
    type: string
    description: The day to report on.
defaults:
  retries: 2
  retry_delay: 0s
  retry_backoff: 2
  retry_jitter: 0.5
  max_retry_delay: 1m
  timeout: 5m
  trigger_rule: all_success
  pool: db
  pool_slots: 1
tasks:
  extract:
    shell: "echo extracting {{ ds }} {{ macros.ds_add(ds, 1) }} for {{ params.region }} $FIXED $REGION_ENV"
    env: {REGION_ENV: "{{ params.region }}", FIXED: 5}
    cwd: "{{ params.day }}"
    output_result: true
  argv:
    shell: [printf, "%s|%s", "{{ ds }}", "{{ params.region }}"]
    output_result: true
  rows:
    python: yaml_helpers:make_rows
    args: [3, "{{ params.region }}"]
    depends_on: extract
  transform:
    python: yaml_helpers.clean
    kwargs: {rows: "{{ results.rows }}", limit: "{{ params.limit }}", day: "{{ ds }}"}
    depends_on: [extract]
    retries: 3
    retry_delay: 0
    timeout: 10m
    trigger_rule: all_done
    description: Cleans the rows.
    tags: [pii]
    on_success: yaml_helpers:on_success
    on_failure: [yaml_helpers:on_failure]
    on_retry: yaml_helpers.on_retry
  choose:
    python: yaml_helpers:choose
    args: ["{{ results.transform }}"]
    branch: true
  left:
    shell: echo left
    depends_on: [choose]
  right:
    shell: echo right
    depends_on: [choose]
  maybe:
    shell: exit 99
    skip_exit_codes: [99]
  risky:
    shell: echo trying; exit 3
    retries: 0
    compensate_with: undo
    on_failure: yaml_helpers:on_failure
  undo:
    shell: 'echo "undoing $LOCKGATE_FAILED_TASK" > undo.txt'
    cwd: @OUTDIR@
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def line_of(text: str, marker: str) -> int:
    hits = [i for i, line in enumerate(text.splitlines(), 1) if marker in line]
    assert len(hits) == 1, (marker, hits)
    return hits[0]


@pytest.fixture
def full(project: Project) -> Path:
    out = project.root / "out"
    out.mkdir()
    return write(project.root / "pipelines", "full.yaml", FULL.replace("@OUTDIR@", str(out)))


# -- every key ----------------------------------------------------------------------------------
def test_every_key_is_loaded(full: Path):
    (pipe,) = load_file(full)
    text = full.read_text()
    assert pipe.id == "nightly_report"
    assert pipe.description == "Builds the nightly report."
    assert pipe.tags == ("reports", "finance")
    assert pipe.schedule == "@daily"
    assert pipe.start_date == datetime(2024, 1, 1, tzinfo=UTC)
    assert pipe.end_date == datetime(2025, 1, 1, 6, 30, tzinfo=UTC)
    assert pipe.catchup is False
    assert (pipe.max_active_runs, pipe.max_active_tasks) == (1, 4)
    assert pipe.run_timeout == 7200.0
    assert dict(pipe.pools) == {"db": 2}
    assert (pipe.origin, pipe.file, pipe.source) == ("yaml", str(full.resolve()), text)
    assert pipe.line == line_of(text, "id: nightly_report") == 2

    assert pipe.params["region"] == Param("eu")
    assert pipe.params["region"].type == "string"
    assert pipe.params["limit"] == Param(
        10, type="integer", description="Most rows to load.", minimum=1, maximum=1000
    )
    assert pipe.params["mode"] == Param(
        "full", type="string", enum=("full", "delta"), pattern="[a-z]+", min_length=2, max_length=10
    )
    day = pipe.params["day"]
    assert day.required and day.type == "string" and day.description == "The day to report on."

    assert pipe.defaults == TaskSettings(
        retries=2,
        retry_delay=0.0,
        retry_backoff=2.0,
        retry_jitter=0.5,
        max_retry_delay=60.0,
        timeout=300.0,
        trigger_rule=TriggerRule.ALL_SUCCESS,
        pool="db",
        pool_slots=1,
    )
    tasks = pipe.tasks
    assert list(tasks) == [
        "extract",
        "argv",
        "rows",
        "transform",
        "choose",
        "left",
        "right",
        "maybe",
        "risky",
        "undo",
    ]
    for tid, task in tasks.items():
        assert task.file == str(full.resolve())
        assert task.line == line_of(text, f"  {tid}:"), tid

    extract = tasks["extract"]
    assert extract.kind is TaskKind.SHELL
    assert isinstance(extract.command, Template) and extract.command.mode == "shell"
    assert extract.command.source.startswith("echo extracting {{ ds }}")
    assert extract.env["REGION_ENV"] == Template("{{ params.region }}", "text")
    assert extract.env["FIXED"] == "5"  # numbers become text
    assert extract.cwd == Template("{{ params.day }}", "text")
    assert extract.output_result is True and extract.upstream == ()
    assert extract.settings == pipe.defaults

    argv = tasks["argv"]
    assert argv.command == Template(["printf", "%s|%s", "{{ ds }}", "{{ params.region }}"], "text")

    rows = tasks["rows"]
    assert rows.kind is TaskKind.PYTHON and rows.fn is yaml_helpers.make_rows
    assert rows.args == (3, Template("{{ params.region }}", "native"))
    assert rows.upstream == ("extract",) and rows.wants_context is False

    transform = tasks["transform"]
    assert transform.fn is yaml_helpers.clean and transform.wants_context is True
    assert transform.kwargs == {
        "rows": Template("{{ results.rows }}", "native", ("rows",)),
        "limit": Template("{{ params.limit }}", "native"),
        "day": Template("{{ ds }}", "native"),
    }
    assert transform.kwargs["rows"].refs == ("rows",)
    assert transform.upstream == ("extract", "rows")  # depends_on, then what templates read
    assert transform.settings == TaskSettings(
        retries=3,
        retry_delay=0.0,
        retry_backoff=2.0,
        retry_jitter=0.5,
        max_retry_delay=60.0,
        timeout=600.0,
        trigger_rule=TriggerRule.ALL_DONE,
        pool="db",
        pool_slots=1,
    )
    assert transform.description == "Cleans the rows." and transform.tags == ("pii",)
    assert transform.on_success == (yaml_helpers.on_success,)
    assert transform.on_failure == (yaml_helpers.on_failure,)
    assert transform.on_retry == (yaml_helpers.on_retry,)

    assert tasks["choose"].branch is True and tasks["choose"].upstream == ("transform",)
    assert tasks["left"].upstream == ("choose",) and tasks["left"].command == "echo left"
    assert tasks["maybe"].skip_exit_codes == (99,)
    assert tasks["risky"].compensation == "undo" and tasks["risky"].settings.retries == 0
    assert pipe.compensations == frozenset({"undo"})
    assert tasks["undo"].cwd == str(full.parent.parent / "out")


def test_every_key_runs_end_to_end(full: Path, project: Project):
    (pipe,) = load_file(full)
    with pytest.raises(ConfigError, match="param 'day'.*is required"):
        lockgate.run(pipe, executor="inline", store=False, project=project, logical_date=DAY)
    yaml_helpers.CALLS.clear()
    result = lockgate.run(
        pipe,
        params={"day": "out"},  # also the (templated) working folder of `extract`
        executor="inline",
        store=False,
        project=project,
        logical_date=DAY,
    )
    states = {tid: t.state for tid, t in result.tasks.items()}
    assert states == {
        "extract": TaskState.SUCCESS,
        "argv": TaskState.SUCCESS,
        "rows": TaskState.SUCCESS,
        "transform": TaskState.SUCCESS,
        "choose": TaskState.SUCCESS,
        "left": TaskState.SUCCESS,
        "right": TaskState.SKIPPED,  # not chosen by the branch
        "maybe": TaskState.SKIPPED,  # exit code 99 is in skip_exit_codes
        "risky": TaskState.FAILED,
        "undo": TaskState.SUCCESS,  # the compensation of risky
    }
    assert result.state is RunState.FAILED
    assert result.result("extract") == "extracting 2024-01-31 2024-02-01 for eu 5 eu"
    assert result.result("argv") == "2024-01-31|eu"
    rows = [{"id": 1, "name": "eu-1"}, {"id": 2, "name": "eu-2"}, {"id": 3, "name": "eu-3"}]
    assert result.result("rows") == rows
    # `{{ results.rows }}` reached the function as a list, `{{ params.limit }}` as an int
    assert result.result("transform") == {"kept": rows, "day": "2024-01-31", "attempt": 2}
    assert result.tasks["transform"].attempts == 2
    assert result.result("choose") == "left"
    assert result.tasks["risky"].attempts == 1
    assert (project.root / "out" / "undo.txt").read_text() == "undoing risky\n"
    assert sorted(yaml_helpers.CALLS) == [
        ("failure", "risky", 1),
        ("retry", "transform", 1),
        ("success", "transform", 2),
    ]


# -- smaller behaviours -------------------------------------------------------------------------
def test_plain_values_merges_and_other_forms(project: Project, run_inline):
    path = write(
        project.root / "pipelines",
        "plain_one.yml",
        """\
        defaults: &common
          retries: 1
        params: {n: 2}
        schedule: null
        tasks:
          first:
            shell: echo hi
          second:
            <<: *common
            retries: 4
            python: yaml_helpers.identity
            args: [{a: [1, "{{ params.n }}"]}]
          third:
            python: yaml_helpers:decorated
            kwargs: {value: 21}
          fourth:
            <<: *common
            python: yaml_helpers:identity
            args: [["no template", =, "<<"]]
          fifth:
            shell: |
              {% if params.n > 1 %}echo big{% else %}echo small{% endif %}
            output_result: true
        """,
    )
    (pipe,) = load_file(path)
    assert pipe.id == "plain_one" and pipe.schedule is None  # the id is the file's stem
    first, second, third, fourth, fifth = pipe.tasks.values()
    assert first.command == "echo hi" and first.settings.retries == 1  # plain text stays text
    assert second.settings.retries == 4  # a key of the mapping wins over a merged one
    assert second.args == (Template({"a": [1, "{{ params.n }}"]}, "native"),)
    assert third.fn is yaml_helpers.decorated.fn  # a @task function: the plain function
    assert fourth.args == (["no template", "=", "<<"],) and fourth.settings.retries == 1
    assert isinstance(fifth.command, Template) and fifth.command.mode == "shell"
    result = run_inline(pipe)
    assert result.ok, result
    assert result.result("second") == {"a": [1, 2]}  # a lone {{ }} keeps the value's type
    assert result.result("third") == 42
    assert result.result("fifth") == "big"


def test_found_by_id_and_cached_by_content(project: Project):
    path = write(project.root / "pipelines", "by_id.yaml", "tasks: {a: {shell: echo}}\n")
    first = find_pipeline("by_id", project.pipelines_dir)
    assert first.id == "by_id" and load_file(path)[0] is first
    path.write_text("tasks: {a: {shell: echo}, b: {shell: echo}}\n")
    assert list(find_pipeline("by_id", project.pipelines_dir).tasks) == ["a", "b"]


def test_shell_quoting_keeps_values_data(project: Project):
    path = write(
        project.root / "pipelines",
        "quoting.yaml",
        """\
        params:
          region: eu
        tasks:
          string:
            shell: "echo {{ params.region }} > string.txt"
          argv:
            shell: [sh, -c, 'echo "$0" > argv.txt', "{{ params.region }}"]
          env:
            shell: 'echo "$REGION" > env.txt'
            env: {REGION: "{{ params.region }}"}
        """,
    )
    (pipe,) = load_file(path)
    evil = "x; touch pwned `touch pwned2` $(touch pwned3) 'q' \"d\""
    result = lockgate.run(
        pipe,
        params={"region": evil},
        executor="inline",
        store=False,
        project=project,
        logical_date=DAY,
    )
    assert result.ok, result
    for name in ("string", "argv", "env"):
        assert (project.root / f"{name}.txt").read_text() == evil + "\n", name
    assert not list(project.root.glob("pwned*"))


def test_shell_quoting_of_filters_that_return_markup(project: Project):
    path = write(
        project.root / "pipelines",
        "markup.yaml",
        """\
        params: {region: eu}
        tasks:
          safe:
            shell: "echo {{ params.region | safe }} > safe.txt"
          json:
            shell: "printf '%s\\n' {{ params | tojson }} > json.txt"
        """,
    )
    (pipe,) = load_file(path)
    evil = "x\ntouch pwned"
    lockgate.run(pipe, params={"region": evil}, executor="inline", store=False, project=project)
    assert not (project.root / "pwned").exists()
    assert (project.root / "safe.txt").read_text() == evil + "\n"
    assert json.loads((project.root / "json.txt").read_text()) == {"region": evil}


STEPS = """\
import os


def produce(region):
    return {"pid": os.getpid(), "rows": [region, region.upper()]}


def consume(data, ctx):
    assert isinstance(data, dict) and isinstance(data["rows"], list)
    return {"pid": os.getpid(), "rows": data["rows"], "task": ctx.task_id}
"""


def test_processes_executor_reloads_the_yaml_file(project: Project):
    folder = project.root / "pipelines"
    write(folder, "yaml_proc_steps.py", STEPS)
    path = write(
        folder,
        "in_processes.yaml",
        """\
        params: {region: eu}
        tasks:
          produce:
            python: yaml_proc_steps:produce
            args: ["{{ params.region }}"]
          consume:
            python: yaml_proc_steps.consume
            kwargs: {data: "{{ results.produce }}"}
        """,
    )
    (pipe,) = load_file(path)
    result = lockgate.run(
        pipe, executor="processes", store=False, project=project, logical_date=DAY
    )
    assert result.ok, {t: s.error for t, s in result.tasks.items()}
    produced, consumed = result.result("produce"), result.result("consume")
    assert produced["rows"] == ["eu", "EU"]
    assert consumed == {"pid": consumed["pid"], "rows": ["eu", "EU"], "task": "consume"}
    assert os.getpid() not in (produced["pid"], consumed["pid"])


def _lockgate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    env.update(COLUMNS="200", TERM="dumb", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    command = [str(_BIN)] if _BIN.exists() else [sys.executable, "-m", "lockgate"]
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_cli_runs_and_lists_a_yaml_pipeline(tmp_path: Path):
    folder = tmp_path / "pipelines"
    write(folder, "yaml_cli_steps.py", "def shout(text):\n    return text.upper()\n")
    write(
        folder,
        "x.yaml",
        """\
        id: cli_yaml
        params:
          region: {type: string, default: eu, enum: [eu, us]}
        tasks:
          greet:
            shell: "echo {{ ds }} {{ params.region }} > greet.txt"
          shout:
            python: yaml_cli_steps:shout
            args: ["{{ params.region }}"]
            depends_on: [greet]
        """,
    )
    done = _lockgate(
        tmp_path, "run", "pipelines/x.yaml", "--logical-date", "2024-01-31", "-p", "region=us"
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert (tmp_path / "greet.txt").read_text() == "2024-01-31 us\n"
    listed = _lockgate(tmp_path, "list")
    assert listed.returncode == 0, (listed.stdout, listed.stderr)
    row = next(line for line in listed.stdout.splitlines() if line.startswith("cli_yaml"))
    assert "success" in row and "pipelines/x.yaml" in row and "YAML" in row, row

    write(folder, "x.yaml", "tasks:\n  greet:\n    shell: echo\n    retires: 1\n")
    failed = _lockgate(tmp_path, "run", "pipelines/x.yaml")
    assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr
    assert failed.stderr.splitlines() == [
        "error: pipelines/x.yaml:4:5: tasks.greet: unknown key 'retires'; did you mean 'retries'?"
    ]


# -- the JSON Schema ----------------------------------------------------------------------------
def test_committed_schema_is_current():
    expected = json.dumps(pipeline_json_schema(), indent=2) + "\n"
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    assert committed == expected, (
        "docs/pipeline.schema.json is out of date with lockgate/authoring/yaml_schema.py; "
        "regenerate it with `lockgate schema > docs/pipeline.schema.json`"
    )


def test_schema_shape():
    schema = pipeline_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "lockgate pipeline" and "$id" not in json.dumps(schema)
    assert schema["required"] == ["tasks"]
    models = [schema, *schema["$defs"].values()]
    for model in models:
        assert model["additionalProperties"] is False, model.get("title")
        for name, prop in model["properties"].items():
            assert prop.get("description"), (model.get("title"), name)
    tasks = schema["$defs"]
    assert tasks["ShellTask"]["required"] == ["shell"]
    assert tasks["PythonTask"]["required"] == ["python"]
    durations = tasks["TaskDefaults"]["properties"]["retry_delay"]["anyOf"]
    assert {"number", "string", "null"} == {d["type"] for d in durations}


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: v.isoformat()))


def _doc_example() -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC_FILE.read_text(encoding="utf-8"), re.S)
    assert blocks, "docs/yaml.md has no ```yaml example"
    return blocks[0]


def test_docs_example_is_valid(tmp_path: Path):
    path = write(tmp_path, "example.yaml", _doc_example())
    doc = Document.parse(path.read_text(), str(path))
    spec = doc.validate()
    assert spec.id and len(spec.tasks) >= 3


def test_schema_validates_the_examples(full: Path, tmp_path: Path):
    import jsonschema

    validator = jsonschema.Draft202012Validator(pipeline_json_schema())
    validator.check_schema(validator.schema)
    for text in (full.read_text(), _doc_example()):
        doc = Document.parse(text, "example.yaml")
        validator.validate(_as_json(doc.data))
    bad = _as_json(Document.parse(full.read_text(), "x.yaml").data)
    bad["tasks"]["extract"]["retires"] = 1
    assert not validator.is_valid(bad)
