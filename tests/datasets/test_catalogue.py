"""Classification travels through formats that cannot carry it: the tags of a CSV or SQL
target are recorded in the store when lockgate writes it, and put back on the columns when a
later task reads it; datasets named through a connection are reported by their full URI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import lockgate
from lockgate.api import open_store
from lockgate.authoring.python import copy, pipeline
from lockgate.config import Project
from lockgate.model.classification import tag_of, with_tag


def test_tags_come_back_from_the_catalogue(project: Project) -> None:
    schema = pa.schema(
        [with_tag(pa.field("email", pa.string()), "pii.email"), pa.field("n", pa.int64())]
    )
    pq.write_table(
        pa.table({"email": ["a@x.io", "b@y.io"], "n": [1, 2]}, schema=schema),
        project.root / "in.parquet",
    )
    with pipeline("to_sql") as p1:
        copy("load", source="in.parquet", target="sqlite:///shop.db#people")
        copy("export", source="in.parquet", target="out/people.csv")
    assert lockgate.run(p1, project=project).ok

    store = open_store(project)
    entry = store.dataset(f"sqlite:///{project.root / 'shop.db'}#people")
    assert entry is not None, [r["uri"] for r in store._rows("SELECT uri FROM datasets")]
    assert {f["name"]: f["tag"] for f in entry["schema"]} == {"email": "pii.email", "n": None}

    # a later pipeline reading the SQL table and the CSV file gets the tags back
    with pipeline("from_sql") as p2:
        copy("back", source="sqlite:///shop.db#people", target="back.parquet")
        copy("csv_back", source="out/people.csv", target="csv_back.parquet")
    assert lockgate.run(p2, project=project).ok
    for name in ("back.parquet", "csv_back.parquet"):
        field = pq.read_schema(project.root / name).field("email")
        assert tag_of(field) == "pii.email", name


def test_a_stale_catalogue_entry_is_harmless(project: Project) -> None:
    db = project.root / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, email TEXT)")
        conn.execute("INSERT INTO t VALUES (1, 'a@x.io')")
    store = open_store(project)
    store.record_dataset(
        f"sqlite:///{db}#t",
        "sqlite",
        [{"name": "gone", "type": "string", "tag": "pii.name"}],
        1,
    )
    with pipeline("stale") as p:
        copy("c", source="sqlite:///app.db#t", target="t.parquet")
    assert lockgate.run(p, project=project).ok
    assert all(tag_of(f) is None for f in pq.read_schema(project.root / "t.parquet"))


def test_a_connection_dataset_is_reported_by_its_full_uri(project: Project) -> None:
    (project.root / "lockgate.toml").write_text(
        '[connections.shop]\nurl = "sqlite:///shop.db"\n', encoding="utf-8"
    )
    project = Project.load(project.root)
    with sqlite3.connect(project.root / "shop.db") as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, amount REAL)")
        conn.executemany("INSERT INTO orders VALUES (?, ?)", [(1, 9.5), (2, 3.0)])
    with pipeline("named") as p:
        copy("c", source={"uri": "orders", "connection": "shop"}, target="orders.parquet")
    result = lockgate.run(p, project=project)
    assert result.ok, {t.id: t.error for t in result.tasks.values()}
    assert pq.read_table(project.root / "orders.parquet").num_rows == 2
    store = open_store(project)
    [edge] = store.lineage(result.run_id)
    assert edge["input_uri"] == f"sqlite:///{project.root / 'shop.db'}#orders"
    assert edge["output_uri"].endswith("orders.parquet")


def test_one_dataset_however_its_path_is_written(project: Project, monkeypatch) -> None:
    import subprocess
    import sys

    schema = pa.schema([with_tag(pa.field("email", pa.string()), "pii.email")])
    pq.write_table(pa.table({"email": ["a@x.io"]}, schema=schema), project.root / "users.parquet")
    monkeypatch.chdir(project.root)
    open_store(project)  # the CLI records into an existing metadata DB, never creates one
    lockgate_bin = str(Path(sys.executable).parent / "lockgate")
    done = subprocess.run(
        [lockgate_bin, "copy", "users.parquet", "./users.csv"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    with pipeline("again") as p:
        copy("c", source=f"file://{project.root}/users.csv", target="back.parquet")
    assert lockgate.run(p, project=project).ok
    assert tag_of(pq.read_schema(project.root / "back.parquet").field("email")) == "pii.email"
