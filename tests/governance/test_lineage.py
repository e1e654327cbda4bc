"""`lockgate lineage`: the graph around a dataset of a 3-step pipeline (upstream, downstream,
depth, JSON), one-line errors with close names, walks that end on cycles and wide graphs (SQLite
and PostgreSQL), and `--subject`, which finds a person's tokenized e-mail in the staging copy
and the raw one in the source without ever printing or storing it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.cli import helpers
from tests.cli.helpers import _env, one_line_error, write
from tests.cli.helpers import lockgate as cli

import lockgate
from lockgate import copy, pipeline
from lockgate.api import open_store
from lockgate.config import Project
from lockgate.governance.lineage import resolve, walk
from lockgate.governance.subjects import find_subject

SUBJECT = "Person7@Example.org"
"""The data subject searched for: the e-mail of row 7, as a user might type it."""

FLOW = """
from lockgate import copy, mask, pipeline, sql

with pipeline("customers") as p:
    ingest = copy(
        "ingest",
        source={"uri": "data/raw.csv", "tags": {"email": "pii.email", "card": "pci.pan"}},
        target="prod/customers.parquet",
    )
    protect = mask(
        "protect",
        input="prod/customers.parquet",
        output="staging/customers.parquet",
        rules=[
            {"column": "email", "op": "tokenize"},
            {"column": "card", "op": "mask", "options": {"keep_last": 4}},
        ],
    )
    report = sql(
        "report",
        query="select email, count(*) as orders from c group by email",
        inputs={"c": "staging/customers.parquet"},
        target="analytics/report.parquet",
    )
    ingest >> protect >> report
"""


def _raw_csv(root: Path, rows: int = 20) -> None:
    (root / "data").mkdir(exist_ok=True)
    lines = [f"{i},person{i}@example.org,41111111111{i:05d}" for i in range(rows)]
    lines.append(f"{rows},person7@example.org,4111111111100099")  # the subject twice
    (root / "data" / "raw.csv").write_text("id,email,card\n" + "\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project that ran the 3-step pipeline once, by the CLI."""
    root = tmp_path_factory.mktemp("shop")
    assert cli(root, "init").code == 0
    write(root / "pipelines", "customers.py", FLOW)
    _raw_csv(root)
    ran = cli(root, "run", "customers", "--json")
    assert ran.code == 0, ran
    return root


def test_lineage_shows_upstream_and_downstream_datasets_and_jobs(shop: Path) -> None:
    done = cli(shop, "lineage", "staging/customers.parquet")
    assert done.code == 0, done
    lines = done.out.splitlines()
    assert lines[0].startswith("staging/customers.parquet (file; 21 row(s); ")
    assert "email=pii.email/tokenized" in lines[0] and "card=pci.pan/masked" in lines[0]
    assert lines[1] == "upstream (made from):"
    assert "<- customers.protect (last run " in lines[2]
    assert lines[2].endswith("<- prod/customers.parquet")
    assert "<- customers.ingest" in lines[3] and lines[3].endswith("<- data/raw.csv")
    assert lines[3].startswith("    ")  # one level further
    assert lines[4] == "downstream (made into):"
    assert "-> customers.report" in lines[5] and lines[5].endswith("-> analytics/report.parquet")

    doc = cli(shop, "lineage", str(shop / "analytics" / "report.parquet"), "--json").json()
    assert doc["dataset"] == str(shop / "analytics" / "report.parquet")
    distances = {
        Path(d["uri"]).relative_to(shop).as_posix(): d["distance"] for d in doc["datasets"]
    }
    assert distances == {
        "data/raw.csv": -3,
        "prod/customers.parquet": -2,
        "staging/customers.parquet": -1,
        "analytics/report.parquet": 0,
    }
    jobs = [(e["pipeline"], e["task"], e["runs"]) for e in doc["upstream"]]
    assert jobs == [
        ("customers", "report", 1),
        ("customers", "protect", 1),
        ("customers", "ingest", 1),
    ]
    assert doc["downstream"] == [] and doc["truncated"] is False
    tags = {Path(d["uri"]).name: d.get("tags") for d in doc["datasets"]}
    assert tags["customers.parquet"] in (
        {"email": "pii.email", "card": "pci.pan"},
        {"email": "pii.email/tokenized", "card": "pci.pan/masked"},
    )


def test_lineage_one_way_and_depth(shop: Path) -> None:
    up = cli(
        shop,
        "lineage",
        "file://" + str(shop / "prod" / "customers.parquet"),
        "--upstream",
        "--json",
    ).json()
    assert [Path(e["input"]).name for e in up["upstream"]] == ["raw.csv"] and up["downstream"] == []
    down = cli(shop, "lineage", "data/raw.csv", "--downstream", "--depth", "1", "--json").json()
    assert [Path(e["output"]).as_posix()[-22:] for e in down["downstream"]] == [
        "prod/customers.parquet"
    ]
    assert down["truncated"] is True  # the graph goes on past depth 1
    text = cli(shop, "lineage", "data/raw.csv", "--downstream", "--depth", "1")
    assert "the graph goes on" in text.out, text
    assert "upstream" not in text.out


def test_lineage_errors_are_one_line_with_close_names(shop: Path, tmp_path: Path) -> None:
    line = one_line_error(cli(shop, "lineage", "staging/customer.parquet"))
    assert "staging/customer.parquet is not in this project's catalogue or lineage" in line
    assert f"did you mean '{shop / 'staging' / 'customers.parquet'}'" in line
    line = one_line_error(cli(shop, "lineage"))
    assert "give a dataset" in line
    line = one_line_error(cli(shop, "lineage", "x.csv", "--subject", "a@b.c"))
    assert "--subject searches every dataset" in line
    line = one_line_error(cli(shop, "lineage", "x.csv", "--class", "pii.email"))
    assert "--class goes with --subject" in line
    line = one_line_error(
        cli(shop, "lineage", "--subject", "a@b.c", "--class", "pii.email/tokenized")
    )
    assert "is not a classification" in line
    (tmp_path / "empty").mkdir()
    line = one_line_error(cli(tmp_path / "empty", "lineage", "x.csv"))
    assert "no metadata database yet" in line
    assert not (tmp_path / "empty" / ".lockgate").exists()  # looking created nothing


# -- subjects -----------------------------------------------------------------------------------
def test_subject_is_found_tokenized_in_staging_and_raw_in_the_source(shop: Path) -> None:
    done = cli(shop, "lineage", "--subject", SUBJECT, "--class", "pii.email", "--json")
    assert done.code == 0, done
    doc = done.json()
    found = {
        (Path(m["dataset"]).relative_to(shop).as_posix(), m["column"]): m for m in doc["matches"]
    }
    assert set(found) == {
        ("prod/customers.parquet", "email"),
        ("staging/customers.parquet", "email"),
        ("analytics/report.parquet", "email"),
    }
    raw = found[("prod/customers.parquet", "email")]
    assert (raw["tag"], raw["form"], raw["rows"]) == ("pii.email", "raw", 2)
    staged = found[("staging/customers.parquet", "email")]
    assert (staged["tag"], staged["form"], staged["rows"]) == (
        "pii.email/tokenized",
        "tokenized",
        2,
    )
    assert found[("analytics/report.parquet", "email")]["rows"] == 1  # grouped by e-mail
    assert doc["key_ids"] == ["k1"] and doc["class"] == "pii.email" and doc["skipped"] == []
    path = [(Path(e["input"]).name, e["task"], Path(e["output"]).parent.name) for e in doc["paths"]]
    assert sorted(path) == [
        ("customers.parquet", "protect", "staging"),
        ("customers.parquet", "report", "analytics"),
    ]
    # the identifier is never printed back, in any spelling
    for text in (done.out, done.err):
        assert SUBJECT.lower() not in text.lower()

    # from standard input (kept out of the shell history), as text
    proc = subprocess.run(
        [helpers.LOCKGATE, "lineage", "--subject", "-"],
        cwd=shop,
        env=_env(),
        input=SUBJECT + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "searched 3 dataset(s)" in proc.stdout
    assert (
        "staging/customers.parquet  column email (pii.email/tokenized, tokenized): 2 row(s)"
        in proc.stdout
    )
    assert "prod/customers.parquet  column email (pii.email, raw): 2 row(s)" in proc.stdout
    assert "lineage between them:" in proc.stdout
    assert SUBJECT.lower() not in (proc.stdout + proc.stderr).lower()
    # nor stored: the metadata database never holds it
    database = (shop / ".lockgate" / "lockgate.db").read_bytes().lower()
    assert SUBJECT.lower().encode() not in database

    missing = cli(shop, "lineage", "--subject", "nobody@example.org", "--json").json()
    assert missing["matches"] == [] and missing["searched"] == 3


# -- walks --------------------------------------------------------------------------------------
@pytest.fixture
def ring(db_url: str, project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project (metadata DB from `db_url`) whose run made a cycle, a -> b -> a, and a fan-out
    of 30 copies of a; `name` is classified pii.name."""
    monkeypatch.setenv("LOCKGATE_DB_URL", db_url)
    here = Project.load(project.root)
    (here.root / "a.csv").write_text("id,name\n1,x\n")
    with pipeline("ring") as p:
        name = {"name": "pii.name"}  # declared on every read: CSV cannot carry it
        there = copy("there", source={"uri": "a.csv", "tags": name}, target="b.csv")
        back = copy("back", source={"uri": "b.csv", "tags": name}, target="a.csv")
        there >> back
        for i in range(30):
            back >> copy(f"fan{i}", source={"uri": "a.csv", "tags": name}, target=f"fan/{i}.csv")
    result = lockgate.run(p, project=here, executor="inline")
    assert result.ok, {t.id: t.error for t in result.tasks.values() if t.error}
    return here


def test_walks_end_on_cycles_and_wide_graphs(ring: Project) -> None:
    store = open_store(ring)
    a = resolve(store, "a.csv", ring.root)
    graph = walk(store, a, depth=50)
    assert {Path(u).name for u in graph.datasets} >= {"a.csv", "b.csv"}
    assert len(graph.datasets) == 32 and not graph.truncated
    up = {(Path(e.input).name, e.task_id) for e in graph.upstream}
    assert up == {("b.csv", "back"), ("a.csv", "there")}  # round the cycle once, then stop

    small = walk(store, a, upstream=False, max_nodes=10)
    assert len(small.datasets) == 10 and small.truncated

    with pytest.raises(lockgate.LockgateError, match="--depth must be from 1 to 50"):
        walk(store, a, depth=0)


def test_subject_search_reports_datasets_it_cannot_read(ring: Project) -> None:
    from lockgate.privacy.keys import Keyring

    store = open_store(ring)
    (ring.root / "b.csv").unlink()  # catalogued, gone from disk
    report = find_subject(ring, store, " X ", "pii.name", keyring=Keyring.generate("k9"))
    assert report.searched == 32 and report.key_ids == ["k9"]
    found = {Path(m.dataset).name: (m.column, m.form, m.rows) for m in report.matches}
    assert found["a.csv"] == ("name", "raw", 1) and len(found) == 31
    [(gone, reason)] = report.skipped
    assert Path(gone).name == "b.csv" and "b.csv" in reason and "\n" not in reason
    # a.csv to each of its 30 copies, and round the cycle through b.csv back to a.csv
    assert len(report.paths) == 32
    assert json.dumps(report.to_json())


def test_a_misspelt_subject_class_is_an_error_not_an_empty_answer(shop: Path) -> None:
    line = one_line_error(cli(shop, "lineage", "--subject", SUBJECT, "--class", "pii.emial"))
    assert "--class 'pii.emial' is in no dataset of the catalogue" in line
    assert "did you mean 'pii.email'?" in line
