"""`lockgate copy SRC DST`: files, SQLite and PostgreSQL through the real console script; the
summary line, --json, modes and keys, paths relative to the working folder, and one-line
errors that leave the target as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lockgate.config import Project

from .helpers import lockgate, one_line_error

ORDERS = "id,email,amount\n1,ann@example.org,10\n2,bob@example.net,20\n3,cy@example.com,30\n"


@pytest.fixture
def proj(project: Project) -> Path:
    (project.root / "data").mkdir()
    (project.root / "data" / "orders.csv").write_text(ORDERS)
    return project.root


def _rows(db: Path, table: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
    finally:
        con.close()


def test_copy_prints_one_summary_line(proj: Path):
    done = lockgate(proj, "copy", "data/orders.csv", "out.parquet")
    assert done.code == 0, done
    assert done.err == ""  # no progress bar when stderr is not a terminal
    [line] = done.out.splitlines()
    assert line.startswith("copied 3 row(s) in ") and "rows/s) -> out.parquet (overwrite)" in line
    assert pq.read_table(proj / "out.parquet").column("email").to_pylist()[0] == "ann@example.org"


def test_copy_json_into_sqlite_then_append_and_upsert(proj: Path):
    done = lockgate(proj, "copy", "data/orders.csv", "sqlite:///shop.db#orders", "--json")
    assert done.code == 0, done
    doc = done.json()
    assert doc["rows"] == 3 and doc["mode"] == "overwrite"
    assert doc["source"] == "data/orders.csv" and doc["target"] == "sqlite:///shop.db#orders"
    assert doc["rows_per_second"] >= 0 and doc["seconds"] >= 0
    assert [c["name"] for c in doc["schema"]] == ["id", "email", "amount"]

    (proj / "more.csv").write_text("id,email,amount\n4,dee@example.org,40\n")
    assert lockgate(proj, "copy", "more.csv", "sqlite:///shop.db#orders", "-m", "append").code == 0
    assert len(_rows(proj / "shop.db", "orders")) == 4

    con = sqlite3.connect(proj / "shop.db")  # upsert into an existing table needs its key
    con.execute("CREATE UNIQUE INDEX orders_id ON orders (id)")
    con.commit()
    con.close()
    (proj / "changes.csv").write_text("id,email,amount\n1,ann@example.org,11\n5,eve@x.org,50\n")
    done = lockgate(
        proj, "copy", "changes.csv", "sqlite:///shop.db#orders", "--mode", "upsert", "--key", "id"
    )
    assert done.code == 0, done
    rows = _rows(proj / "shop.db", "orders")
    assert len(rows) == 5 and rows[0] == ("1", "ann@example.org", "11")


def test_paths_are_relative_to_the_working_folder(proj: Path):
    (proj / "sub").mkdir()
    (proj / "sub" / "local.csv").write_text(ORDERS)
    done = lockgate(proj / "sub", "copy", "local.csv", "local.jsonl")
    assert done.code == 0, done
    assert len((proj / "sub" / "local.jsonl").read_text().splitlines()) == 3
    done = lockgate(proj / "sub", "copy", "../data/orders.csv", "x.txt", "--target-format", "csv")
    assert done.code == 0, done
    assert (proj / "sub" / "x.txt").read_text().splitlines()[0] == '"id","email","amount"'
    done = lockgate(proj, "copy", "sub/x.txt", "again.parquet", "--format", "csv", "--json")
    assert done.json()["rows"] == 3


def test_copy_to_and_from_postgresql(proj: Path, pg_url: str):
    loaded = lockgate(proj, "copy", "data/orders.csv", f"{pg_url}#public.orders", "--json")
    assert loaded.code == 0, loaded
    assert loaded.json()["target"] == f"{pg_url}#public.orders"
    done = lockgate(proj, "copy", f"{pg_url}#public.orders", "back.csv")
    assert done.code == 0, done
    assert "copied 3 row(s)" in done.out
    assert len((proj / "back.csv").read_text().splitlines()) == 4


def test_a_password_in_a_uri_is_never_printed(proj: Path):
    target = "postgresql://app:hunter2secret@127.0.0.1:1/shop#orders"  # nothing listens there
    line = one_line_error(lockgate(proj, "copy", "data/orders.csv", target))
    assert "hunter2secret" not in line and "app:***@127.0.0.1:1" in line, line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["data/nope.csv", "out.parquet"], "error: data/nope.csv: no such file"),
        (["ftp://host/x.csv", "out.parquet"], "error: ftp://host/x.csv: unknown dataset scheme"),
        (
            ["data/orders.csv", "out.parquet", "--mode", "upsert", "--key", "id"],
            "error: out.parquet: upsert needs a SQL target",
        ),
        (
            ["data/orders.csv", "sqlite:///shop.db#orders", "--mode", "upsert"],
            "error: --mode upsert needs the key columns: --key id",
        ),
        (
            ["data/orders.csv", "out.parquet", "--mode", "merge"],
            "error: --mode 'merge' is not a write mode; use one of overwrite, append, upsert",
        ),
        (["data/orders.csv", "sqlite:///shop.db#bad-name"], "is not a table name"),
        (["data/orders.csv", "out.xyz"], "error: out.xyz: unknown file extension .xyz"),
    ],
)
def test_errors_are_one_line_and_write_nothing(proj: Path, args: list[str], expected: str):
    (proj / "out.parquet").write_bytes(b"old")
    line = one_line_error(lockgate(proj, "copy", *args))
    assert expected in line, line
    assert (proj / "out.parquet").read_bytes() == b"old"
    assert sorted(p.name for p in proj.iterdir() if p.name.startswith(".out")) == []


def test_a_malformed_source_row_leaves_the_target_as_it_was(proj: Path):
    (proj / "bad.csv").write_text("id,email\n1,a@x.org\n2,b@x.org,extra\n")
    (proj / "out.csv").write_text("old\n")
    line = one_line_error(lockgate(proj, "copy", "bad.csv", "out.csv"))
    assert "bad.csv" in line and "line 3" in line, line
    assert (proj / "out.csv").read_text() == "old\n"


def test_help_lists_the_options(proj: Path):
    done = lockgate(proj, "copy", "--help")
    assert done.code == 0
    for option in ("--mode", "--key", "--format", "--source-connection", "--target-connection"):
        assert option in done.out, done.out
