"""The data tasks `read`, `copy`, `sql` and `check` in Python and YAML pipelines, run by the
engine: files, SQLite and PostgreSQL, tags carried through SQL, checks that block a write (and
the tasks after it) or only warn, the facts each task reports, load-time errors, and the
example pipeline."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lockgate
from lockgate.authoring.discovery import load_file
from lockgate.authoring.python import check, copy, read, sql
from lockgate.config import Project
from lockgate.engine.events import EventBus
from lockgate.errors import DataError, DefinitionError
from lockgate.io import tasks as io_tasks
from lockgate.model import facts
from lockgate.model.classification import tag_of
from lockgate.model.refs import Template
from lockgate.model.task import TaskKind

DAY = datetime(2024, 1, 31, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]

ORDERS = """\
order_id,customer_id,email,amount
1,C1,ann@example.org,120.50
2,C2,bob@example.net,80.00
3,C1,ann@example.org,15.25
4,C3,chloe@example.com,240.00
"""
CUSTOMERS = """\
customer_id,name,country
C1,Ann,DE
C2,Bob,FR
C3,Chloe,US
"""


@pytest.fixture
def data(project: Project) -> Path:
    """The project's data/orders.csv and data/customers.csv."""
    (project.root / "data").mkdir()
    (project.root / "data" / "orders.csv").write_text(ORDERS)
    (project.root / "data" / "customers.csv").write_text(CUSTOMERS)
    return project.root


def _run(pipe: Any, project: Project, *, ok: bool = True, **kwargs: Any) -> Any:
    result = lockgate.run(
        pipe, executor="inline", store=False, project=project, logical_date=DAY, **kwargs
    )
    if ok:
        assert result.ok, {t.id: t.error for t in result.tasks.values()}
    return result


def _facts(pipe: Any, project: Project, **kwargs: Any) -> tuple[Any, list[tuple[str, Any]]]:
    """Run `pipe` and return its result and the facts the engine emitted as events."""
    bus = EventBus()
    seen: list[tuple[str, Any]] = []
    bus.subscribe(
        lambda e: (
            seen.append((e.kind, e.data))
            if e.kind in (facts.DATASET_READ, facts.DATASET_WRITTEN, facts.QUALITY_CHECKED)
            else None
        )
    )
    return _run(pipe, project, bus=bus, **kwargs), seen


def _sqlite_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        con.close()


# -- Python -------------------------------------------------------------------------------------
def test_python_copy_csv_to_parquet_to_sqlite(data: Path, project: Project):
    with lockgate.pipeline("stage") as p:
        staged = copy(
            "stage",
            source="data/orders.csv",
            target="out/{{ ds }}/orders.parquet",
            column_tags={"email": "pii.email"},
            retries=1,
        )
        loaded = copy(
            "load",
            source="out/{{ ds }}/orders.parquet",
            target="sqlite:///out/shop.db#orders",
        )
        staged >> loaded
    pipe = p.build()
    task = pipe.tasks["stage"]
    assert task.kind is TaskKind.PYTHON and task.fn is io_tasks.copy_task
    assert isinstance(task.kwargs["target"], Template) and task.settings.retries == 1
    assert pipe.tasks["load"].upstream == ("stage",)

    result, seen = _facts(pipe, project)
    doc = result.result("stage")
    assert doc["rows"] == 4 and doc["mode"] == "overwrite"
    assert {c["name"]: c["tag"] for c in doc["schema"]}["email"] == "pii.email"
    parquet = data / "out" / "2024-01-31" / "orders.parquet"
    assert tag_of(pq.read_schema(parquet).field("email")) == "pii.email"
    assert pq.read_table(parquet).column("order_id").to_pylist() == ["1", "2", "3", "4"]
    assert _sqlite_rows(data / "out" / "shop.db", "orders")[0] == (
        "1",
        "C1",
        "ann@example.org",
        "120.50",
    )
    written = [d for k, d in seen if k == facts.DATASET_WRITTEN]
    assert [w["uri"] for w in written] == [str(parquet), f"sqlite:///{data}/out/shop.db#orders"]
    assert written[1]["inputs"] == [str(parquet)] and written[1]["kind"] == "sqlite"
    assert {c["name"]: c["tag"] for c in written[1]["schema"]}["email"] == "pii.email"
    read_facts = [d for k, d in seen if k == facts.DATASET_READ]
    assert [r["rows"] for r in read_facts] == [4, 4]


def test_python_sql_join_carries_tags_into_parquet(data: Path, project: Project):
    with lockgate.pipeline("enrich", params={"min": 50}) as p:
        copy(
            "stage",
            source="data/orders.csv",
            target="out/orders.parquet",
            column_tags={"email": "pii.email"},
        )
        sql(
            "join",
            query="""
                select o.order_id, o.email as contact, upper(c.name) as shout, c.country
                from orders o join customers c on o.customer_id = c.customer_id
                where cast(o.amount as double) >= $min
                order by o.order_id
            """,
            inputs={"orders": "out/orders.parquet", "customers": "data/customers.csv"},
            parameters={"min": "{{ params.min }}"},
            target="out/joined.parquet",
            column_tags={"shout": "pii.name"},
            depends_on=["stage"],
        )
        sql(
            "peek",
            query="select * from joined",
            inputs={"joined": "out/joined.parquet"},
            depends_on=["join"],
        )
    result, seen = _facts(p.build(), project)
    out = pq.read_table(data / "out" / "joined.parquet")
    assert out.column("order_id").to_pylist() == ["1", "2", "4"]
    assert tag_of(out.schema.field("contact")) == "pii.email"
    assert tag_of(out.schema.field("shout")) == "pii.name"
    assert tag_of(out.schema.field("country")) is None
    doc = result.result("join")
    assert doc["rows"] == 3 and set(doc["inputs"]) == {"orders", "customers"}
    peek = result.result("peek")
    assert peek["rows"] == 3
    assert peek["preview"][0] == {
        "order_id": "1",
        "contact": "***",
        "shout": "***",
        "country": "DE",
    }
    written = next(d for k, d in seen if k == facts.DATASET_WRITTEN and "joined" in d["uri"])
    assert sorted(written["inputs"]) == sorted(
        [str(data / "out" / "orders.parquet"), str(data / "data" / "customers.csv")]
    )
    reads = {Path(d["uri"]).name: d["rows"] for k, d in seen if k == facts.DATASET_READ}
    assert reads["customers.csv"] == 3 and reads["joined.parquet"] == 3


def test_python_data_tasks_take_values_from_upstream_tasks(data: Path, project: Project):
    @lockgate.task
    def pick() -> str:
        return "data/customers.csv"

    with lockgate.pipeline("picked") as p:
        chosen = pick()
        read("count", source=chosen, checks=[{"row_count": {"min": 3, "max": 3}}])
    pipe = p.build()
    assert pipe.tasks["count"].upstream == ("pick",)
    assert _run(pipe, project).result("count")["rows"] == 3


def test_python_builder_errors_are_definition_errors(project: Project):
    with pytest.raises(DefinitionError, match="must be created inside a pipeline"):
        copy("c", source="a.csv", target="b.csv")
    with (
        pytest.raises(DefinitionError, match=r"checks\[0\] \(range\): unknown argument 'mn'"),
        lockgate.pipeline("p"),
    ):
        copy("c", source="a.csv", target="b.csv", checks=[{"range": {"column": "x", "mn": 1}}])
    with (
        pytest.raises(DefinitionError, match="mode upsert needs the key columns"),
        lockgate.pipeline("q"),
    ):
        copy("c", source="a.csv", target="sqlite:///x.db#t", mode="upsert")
    with pytest.raises(DefinitionError, match="give checks"), lockgate.pipeline("r"):
        check("c", dataset="a.csv", checks=[])
    with pytest.raises(DefinitionError, match="give inputs="), lockgate.pipeline("s"):
        sql("s", query="select 1", inputs={})
    with pytest.raises(DefinitionError, match="params.nope"), lockgate.pipeline("t"):
        read("r", source="{{ params.nope }}.csv")
    with pytest.raises(DefinitionError) as info, lockgate.pipeline("u"):
        read("r", source="a.csv", checks=[{"not_null": ["id"]}])
        read("r", source="b.csv")
    assert "duplicate task id 'r'" in str(info.value)
    assert str(info.value).startswith(__file__), str(info.value)


# -- checks -------------------------------------------------------------------------------------
def test_an_error_check_blocks_the_write_and_the_tasks_after_it(data: Path, project: Project):
    target = data / "out" / "orders.parquet"
    target.parent.mkdir()
    old = pa.table({"order_id": ["old"]})
    pq.write_table(old, target)
    before = target.read_bytes()
    with lockgate.pipeline("gate") as p:
        stage = copy(
            "stage",
            source="data/orders.csv",
            target="out/orders.parquet",
            checks=[
                {"unique": "customer_id"},
                {"accepted_values": {"column": "customer_id", "values": ["C1", "C2"]}},
                {"not_null": ["email"], "severity": "warn"},
            ],
        )
        after = copy("after", source="out/orders.parquet", target="out/copy.csv")
        stage >> after
    result, seen = _facts(p, project, ok=False)
    stage_state = result.tasks["stage"]
    assert stage_state.state.value == "failed"
    error = stage_state.error or ""
    assert "\n" not in error
    assert "2 data-quality check(s) failed on" in error and str(target) in error
    assert (
        "unique(customer_id) 2 row(s)" in error and "accepted_values(customer_id) 1 row(s)" in error
    )
    assert result.tasks["after"].state.value == "upstream_failed"
    assert target.read_bytes() == before  # the old target, untouched
    assert not (data / "out" / "copy.csv").exists()
    assert sorted(os.listdir(target.parent)) == ["orders.parquet"]  # no temporary file left
    checked = [d for k, d in seen if k == facts.QUALITY_CHECKED]
    assert [(c["name"], c["passed"]) for c in checked] == [
        ("unique(customer_id)", False),
        ("accepted_values(customer_id)", False),
        ("not_null(email)", True),
    ]
    assert not [d for k, d in seen if k == facts.DATASET_WRITTEN]
    assert not os.listdir(project.state_dir / "tmp")  # the spool is gone


def test_warn_checks_are_recorded_and_the_write_goes_on(data: Path, project: Project):
    with lockgate.pipeline("warned") as p:
        copy(
            "stage",
            source="data/orders.csv",
            target="sqlite:///out.db#orders",
            column_tags={"email": "pii.email"},
            checks=[
                {
                    "regex": {"column": "email", "pattern": r"[^@]+@example\.org"},
                    "severity": "warn",
                },
                {"row_count": {"min": 1}},
            ],
        )
    result, seen = _facts(p, project)
    doc = result.result("stage")
    assert doc["rows"] == 4
    regex = doc["checks"][0]
    assert regex["passed"] is False and regex["failing_rows"] == 2
    assert regex["examples"] and all(e["email"] == "***" for e in regex["examples"])
    assert len(_sqlite_rows(data / "out.db", "orders")) == 4
    assert [d["passed"] for k, d in seen if k == facts.QUALITY_CHECKED] == [False, True]


def test_sql_checks_gate_the_result_and_check_tasks_gate_their_downstream(
    data: Path, project: Project
):
    (data / "out").mkdir()
    with lockgate.pipeline("sqlgate") as p:
        sql(
            "big",
            query="select customer_id, count(*) as n from orders group by 1",
            inputs={"orders": "data/orders.csv"},
            target="out/counts.parquet",
            checks=[{"range": {"column": "n", "max": 1}}],
        )
        gate = check(
            "gate",
            dataset="data/customers.csv",
            checks=[{"accepted_values": {"column": "country", "values": ["DE", "FR"]}}],
        )
        later = read("later", source="data/customers.csv")
        gate >> later
    result = _run(p, project, ok=False)
    assert "range(n) 1 row(s)" in (result.tasks["big"].error or "")
    assert not (data / "out" / "counts.parquet").exists()
    assert "accepted_values(country) 1 row(s)" in (result.tasks["gate"].error or "")
    assert result.tasks["later"].state.value == "upstream_failed"


def test_read_and_check_tasks_report_rows_schema_and_results(data: Path, project: Project):
    with lockgate.pipeline("reads") as p:
        read("plain", source="data/orders.csv", column_tags={"email": "pii.email"})
        check(
            "checked",
            dataset={"uri": "data/customers.csv", "tags": {"name": "pii.name"}},
            checks=[
                {"schema": {"columns": {"customer_id": "string", "country": "string"}}},
                {"references": {"column": "customer_id", "dataset": "data/orders.csv"}},
                {
                    "references": {"column": "name", "dataset": "data/orders.csv", "to": "email"},
                    "severity": "warn",
                },
            ],
        )
    result, seen = _facts(p, project)
    plain = result.result("plain")
    assert plain["rows"] == 4 and "checks" not in plain
    assert {c["name"]: c["tag"] for c in plain["schema"]}["email"] == "pii.email"
    checked = result.result("checked")
    assert checked["rows"] == 3
    assert [c["passed"] for c in checked["checks"]] == [True, True, False]
    assert checked["checks"][2]["examples"][0]["name"] == "***"  # declared pii.name
    read_uris = [Path(d["uri"]).name for k, d in seen if k == facts.DATASET_READ]
    assert read_uris == ["orders.csv", "customers.csv"]


def test_sql_previews_mask_every_column_computed_from_a_raw_one(data: Path, project: Project):
    orders = {"uri": "data/orders.csv", "tags": {"email": "pii.email"}}
    for query in [
        "select upper(email) as contact from orders",
        "select email || '' as contact from orders",
        "with x as (select email as e from orders) select e as contact from x",
        "select * from (select email as contact from orders)",
    ]:
        doc = io_tasks.sql_task(query, {"orders": orders})
        assert doc["preview"][0] == {"contact": "***"}, query
        assert {c["name"]: c["tag"] for c in doc["schema"]}["contact"] == "pii.email"
    counted = io_tasks.sql_task("select count(email) as n from orders", {"orders": orders})
    assert counted["preview"] == [{"n": 4}]  # a count is not an e-mail address


# -- private temporary data ---------------------------------------------------------------------
def test_temporary_data_is_owner_only_and_what_a_killed_task_left_is_swept(
    data: Path, project: Project
):
    from lockgate.store.owners import process_owner

    tmp = io_tasks._tmp_dir(project)
    # a task killed by SIGKILL while it holds its temporary folder (the processes executor kills
    # on every timeout and cancel): no clean-up runs
    code = (
        "import sys\nfrom lockgate.config import Project\nfrom lockgate.io import tasks\n"
        "with tasks._scratch(Project.load(sys.argv[1])) as folder:\n"
        "    print(folder.name, flush=True)\n    sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(data)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    killed = child.stdout.readline().strip()
    child.kill()
    child.wait()
    child.stdout.close()
    child.stdin.close()
    assert killed.startswith("task-") and (tmp / killed / "owner").exists()
    old = tmp / "spool-old"  # an older version's spool: no owner file, a day old
    old.mkdir()
    (old / "data.arrow").write_bytes(b"rows")
    day_ago = datetime.now().timestamp() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    (tmp / "spool-new").mkdir()  # no owner file yet, just made: maybe being set up
    (tmp / "task-live").mkdir()
    (tmp / "task-live" / "owner").write_text(process_owner() + "\n")
    (tmp / "task-elsewhere").mkdir()  # another host's: its pid means nothing here
    (tmp / "task-elsewhere" / "owner").write_text("otherhost:1:1:x\n")
    (tmp / "unrelated").mkdir()

    with lockgate.pipeline("checked") as p:
        copy(
            "stage", source="data/orders.csv", target="out.parquet", checks=[{"unique": "order_id"}]
        )
    _run(p, project)
    assert sorted(os.listdir(tmp)) == ["spool-new", "task-elsewhere", "task-live", "unrelated"]

    mask = os.umask(0o022)
    try:
        with io_tasks._scratch(project) as folder, io_tasks._spool(folder) as spool:
            spool.fill([pa.record_batch({"a": [1]})], pa.schema([("a", pa.int64())]))
            assert stat.S_IMODE(tmp.stat().st_mode) == 0o700
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
            assert stat.S_IMODE((folder / "owner").stat().st_mode) == 0o600
            assert stat.S_IMODE(os.stat(spool.path).st_mode) == 0o600
            assert (folder / "owner").read_text().strip() == process_owner()
    finally:
        os.umask(mask)
    assert not folder.exists()


def test_duckdb_spills_into_the_task_s_private_folder(data: Path, project: Project):
    """Spilled data is data in clear: never in the shared system /tmp."""
    setting = "select current_setting('temp_directory') as t"
    probe = [{"sql": setting, "severity": "warn"}]
    spills = [
        io_tasks.sql_task(setting, {"orders": "data/orders.csv"})["preview"][0]["t"],
        io_tasks.copy_task("data/orders.csv", "out.parquet", checks=probe)["checks"][0],
        io_tasks.read_task("data/orders.csv", checks=probe)["checks"][0],
        io_tasks.sql_task("select * from orders", {"orders": "data/orders.csv"}, checks=probe)[
            "checks"
        ][0],
    ]
    tmp = (project.state_dir / "tmp").resolve()
    for spill in spills:
        path = Path(spill if isinstance(spill, str) else spill["examples"][0]["t"]).resolve()
        assert path.parent.parent == tmp and path.parent.name.startswith("task-"), path
    assert not os.listdir(tmp)


# -- YAML ---------------------------------------------------------------------------------------
YAML = """\
id: shop_yaml
params:
  min_amount: 50
tasks:
  stage:
    copy:
      source: data/orders.csv
      target: out/{{ ds }}/orders.parquet
      tags: {email: pii.email}
      checks:
        - not_null: [order_id]
        - unique: order_id
  enrich:
    depends_on: stage
    sql:
      query: |
        select o.order_id, o.email, c.country
        from orders o join customers c using (customer_id)
        where cast(o.amount as double) >= $min
      inputs:
        orders: out/{{ ds }}/orders.parquet
        customers: {uri: data/customers.csv, tags: {name: pii.name}}
      parameters: {min: "{{ params.min_amount }}"}
      target: sqlite:///out/shop.db#enriched
      mode: overwrite
      checks:
        - accepted_values: {column: country, values: [DE, FR]}
          severity: warn
  total:
    sql:
      query: select count(*) as n from enriched
      inputs: {enriched: "sqlite:///out/shop.db#enriched"}
    depends_on: enrich
  gate:
    depends_on: total
    check:
      dataset: sqlite:///out/shop.db#enriched
      checks: [{row_count: {min: 1, max: 10}}]
  back:
    depends_on: gate
    read:
      source: sqlite:///out/shop.db#enriched
"""


def test_yaml_pipeline_copies_transforms_checks_and_loads(data: Path, project: Project):
    path = data / "pipelines" / "shop.yaml"
    path.write_text(YAML)
    (pipe,) = load_file(path)
    assert pipe.tasks["enrich"].fn is io_tasks.sql_task
    assert pipe.tasks["gate"].fn is io_tasks.check_task
    assert pipe.tasks["back"].fn is io_tasks.read_task
    assert isinstance(pipe.tasks["enrich"].kwargs["parameters"], Template)

    result, seen = _facts(pipe, project)
    enriched = result.result("enrich")
    assert enriched["rows"] == 3 and enriched["checks"][0]["passed"] is False  # US: a warning
    assert _sqlite_rows(data / "out" / "shop.db", "enriched") == [
        ("1", "ann@example.org", "DE"),
        ("2", "bob@example.net", "FR"),
        ("4", "chloe@example.com", "US"),
    ]
    assert result.result("total")["preview"] == [{"n": 3}]
    assert result.result("gate")["checks"][0]["passed"] is True
    assert result.result("back")["rows"] == 3
    written = next(d for k, d in seen if k == facts.DATASET_WRITTEN and d["kind"] == "sqlite")
    assert {c["name"]: c["tag"] for c in written["schema"]}["email"] == "pii.email"


def test_yaml_pipeline_runs_from_the_cli_in_worker_processes(data: Path):
    (data / "pipelines" / "shop.yaml").write_text(YAML)
    cli = str(Path(sys.executable).parent / "lockgate")
    env = {"PATH": "/usr/bin:/bin", "TERM": "dumb", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [cli, "run", "shop_yaml", "-d", "2024-02-01", "-p", "min_amount=100", "-e", "processes"]
        + ["--json"],
        cwd=data,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    states = {t["id"]: t["state"] for t in json.loads(done.stdout)["tasks"]}
    assert set(states.values()) == {"success"}, states
    assert [r[0] for r in _sqlite_rows(data / "out" / "shop.db", "enriched")] == ["1", "4"]


@pytest.mark.parametrize(
    ("task", "line", "expected"),
    [
        (
            "copy:\n      source: a.csv\n      target: b.csv\n      checks:\n"
            "        - unique: id\n        - range: {column: x, mn: 3}",
            8,
            "tasks.t.copy.checks[1] (range): unknown argument 'mn'; did you mean 'min'?",
        ),
        (
            "check: {dataset: a.csv, checks: [{not_nul: [id]}]}",
            3,
            "tasks.t.check.checks[0]: unknown check 'not_nul'; did you mean 'not_null'?",
        ),
        (
            "read: {source: a.csv, checks: {not_null: id}}",
            3,
            "tasks.t.read.checks: expected a list of checks",
        ),
        (
            "copy: {source: a.csv, target: b.csv, mode: upsert}",
            3,
            "tasks.t.copy.mode: mode upsert needs the key columns: keys: [id]",
        ),
        (
            "copy: {source: a.csv, target: b.csv, mode: merge}",
            3,
            "tasks.t.copy.mode: expected one of overwrite, append, upsert, got 'merge'",
        ),
        ("copy: {source: a.csv}", 3, "tasks.t.copy: missing required key 'target'"),
        (
            "copy:\n      source: {uri: a.csv, fmt: csv}\n      target: b.csv",
            4,
            "tasks.t.copy.source: unknown key 'fmt'; did you mean 'format'?",
        ),
        (
            "sql: {query: select 1, inputs: {bad-name: a.csv}}",
            3,
            "tasks.t.sql.inputs: invalid input name 'bad-name'",
        ),
        (
            "sql: {query: select 1, inputs: {}}",
            3,
            "tasks.t.sql.inputs: expected at least 1 item(s), got none",
        ),
        ("check: {dataset: a.csv}", 3, "tasks.t.check: missing required key 'checks'"),
        (
            "write: {source: a.csv, target: b.csv}",
            2,
            "tasks.t: a task needs exactly one of: shell, python, scan, mask, redact, read, "
            "copy, sql, check",
        ),
        (
            "read: {source: a.csv}\n    sql: {query: select 1, inputs: {a: a.csv}}",
            2,
            "tasks.t: a task needs exactly one of",
        ),
        (
            "copy: {source: '{{ results.nope }}', target: b.csv}",
            3,
            "template reads results.nope, but there is no task 'nope'",
        ),
    ],
)
def test_yaml_data_task_errors_are_located(tmp_path: Path, task: str, line: int, expected: str):
    path = tmp_path / "p.yaml"
    path.write_text(f"tasks:\n  t:\n    {task}\n")
    with pytest.raises(DefinitionError) as info:
        load_file(path)
    text = str(info.value)
    assert "\n" not in text
    assert expected in text, text
    assert text.startswith(f"{path}:{line}:"), text


# -- the task functions -------------------------------------------------------------------------
def test_relative_paths_are_relative_to_the_project_folder(
    data: Path, project: Project, tmp_path_factory: pytest.TempPathFactory
):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (data / "lockgate.toml").write_text("[lockgate]\n")
    (data / "sub").mkdir()
    os.chdir(data / "sub")  # inside the project: Project.load() finds its root
    doc = io_tasks.copy_task("data/orders.csv", "sqlite:///out.db#orders")
    assert doc["target"] == f"sqlite:///{data}/out.db#orders"
    assert len(_sqlite_rows(data / "out.db", "orders")) == 4
    assert not (data / "sub" / "out.db").exists()
    os.chdir(elsewhere)
    with pytest.raises(DataError, match="no such file"):
        io_tasks.read_task("data/orders.csv")


def test_task_functions_report_their_facts(data: Path, project: Project):
    with facts.collect() as found:
        io_tasks.copy_task(
            {"uri": "data/orders.csv", "tags": {"email": "pii.email"}}, "out.parquet"
        )
        io_tasks.sql_task(
            "select email from o", {"o": "out.parquet"}, target="emails.csv", mode="overwrite"
        )
    kinds = [f["kind"] for f in found]
    assert kinds == [
        facts.POLICY_DECISION,  # the gate, before the write
        facts.DATASET_READ,
        facts.DATASET_WRITTEN,
        facts.POLICY_DECISION,
        facts.DATASET_READ,
        facts.DATASET_WRITTEN,
    ]
    assert found[0]["data"]["decision"] == "allow"
    found = [f for f in found if f["kind"] != facts.POLICY_DECISION]
    last = found[-1]["data"]
    assert last["uri"] == str(data / "emails.csv") and last["rows"] == 4
    assert last["inputs"] == [str(data / "out.parquet")]
    assert last["schema"] == [{"name": "email", "type": "string", "tag": "pii.email"}]
    assert found[0]["data"]["schema"][2] == {"name": "email", "type": "string", "tag": "pii.email"}


def test_task_errors_are_one_line_and_name_the_dataset(data: Path, project: Project):
    with pytest.raises(DataError) as info:
        io_tasks.copy_task("data/orders.csv", "out.parquet", mode="upsert", keys=["order_id"])
    assert "upsert" in str(info.value) and "out.parquet" in str(info.value)
    assert "\n" not in str(info.value)
    assert not (data / "out.parquet").exists()
    with pytest.raises(DataError, match="unknown key 'fmt'"):
        io_tasks.read_task({"uri": "data/orders.csv", "fmt": "csv"})
    with pytest.raises(DataError, match="unknown dataset scheme 'ftp'"):
        io_tasks.copy_task("ftp://host/x.csv", "out.parquet")
    with pytest.raises(DataError, match="give the inputs"):
        io_tasks.sql_task("select 1", {})
    with pytest.raises(DataError, match="give the checks"):
        io_tasks.check_task("data/orders.csv", [])


# -- the example --------------------------------------------------------------------------------
def test_the_copy_and_check_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    shutil.copytree(
        REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.chdir(tmp_path)
    (pipe,) = load_file(tmp_path / "examples" / "yaml" / "copy_and_check.yaml")
    result = _run(pipe, Project.load(tmp_path))
    enrich = result.result("enrich")
    assert enrich["rows"] == 3
    assert [c["passed"] for c in enrich["checks"]] == [True, True, True, False]  # the warning
    rows = _sqlite_rows(tmp_path / "out" / "shop.db", "orders")
    assert [(r[0], r[2]) for r in rows] == [("1001", "DE"), ("1002", "FR"), ("1004", "US")]
    staged = pq.read_schema(tmp_path / "out" / "20240131" / "orders.parquet")
    assert tag_of(staged.field("email")) == "pii.email"
    enriched = pq.read_schema(tmp_path / "out" / "20240131" / "enriched.parquet")
    assert tag_of(enriched.field("contact")) == "pii.email"


# -- staying light ------------------------------------------------------------------------------
def test_defining_data_tasks_loads_no_pyarrow_or_duckdb(tmp_path: Path):
    code = textwrap.dedent(
        """
        import sys
        import lockgate
        from lockgate.authoring.python import check, copy, read, sql
        with lockgate.pipeline("p") as p:
            copy("c", source="a.csv", target="b.parquet", checks=[{"not_null": ["id"]}])
            sql("s", query="select 1", inputs={"a": "a.csv"})
            check("k", dataset="a.csv", checks=[{"unique": "id"}])
            read("r", source="a.csv")
        from lockgate.authoring.discovery import load_file
        load_file(sys.argv[1])
        print(sorted(m for m in ("pyarrow", "duckdb", "numpy") if m in sys.modules))
        """
    )
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text(
        "tasks:\n  s:\n    copy: {source: a.csv, target: b.csv, checks: [{unique: id}]}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(yaml_file)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_table_a_python_task_returned_is_written_by_copy(project: Project) -> None:
    """`write` in the issue's words: a Python task's table goes to any dataset through copy
    (and sql/check read it too), streamed from its artifact, tags and lineage kept."""
    from lockgate import pipeline, task

    @task
    def build() -> pa.Table:
        from lockgate.model.classification import with_tag

        schema = pa.schema(
            [pa.field("id", pa.int64()), with_tag(pa.field("email", pa.string()), "pii.email")]
        )
        return pa.table({"id": [1, 2], "email": ["a@x.io", "b@y.io"]}, schema=schema)

    with pipeline("write_table") as p:
        table = build()
        copy("store", source=table, target="sqlite:///out.db#people")
        check("gate", dataset=table, checks=[{"not_null": ["email"]}])
    result, seen = _facts(p, project)
    assert result.ok, {t.id: t.error for t in result.tasks.values()}
    with sqlite3.connect(project.root / "out.db") as conn:
        assert conn.execute("SELECT id, email FROM people ORDER BY id").fetchall() == [
            (1, "a@x.io"),
            (2, "b@y.io"),
        ]
    [written] = [d for k, d in seen if k == facts.DATASET_WRITTEN]
    assert written["inputs"][0].endswith(".parquet") and "artifacts" in written["inputs"][0]
    assert {f["name"]: f["tag"] for f in written["schema"]}["email"] == "pii.email"


def test_yaml_copies_the_table_a_python_task_returned(project: Project) -> None:
    (project.root / "pipelines" / "tables.py").write_text(
        "import pyarrow as pa\n\ndef build():\n    return pa.table({'id': [1, 2, 3]})\n"
    )
    (project.root / "pipelines" / "w.yaml").write_text(
        textwrap.dedent(
            """
            tasks:
              build:
                python: tables:build
              store:
                copy:
                  source: "{{ results.build }}"
                  target: out/{{ ds_nodash }}.parquet
            """
        )
    )
    [pipe] = load_file(project.root / "pipelines" / "w.yaml")
    _run(pipe, project)
    assert pq.read_table(project.root / "out" / "20240131.parquet").column("id").to_pylist() == [
        1,
        2,
        3,
    ]
