"""SQL datasets (lockgate.io.sql) on a real SQLite file and a real PostgreSQL database: round
trips of the common Arrow types, streamed reads, atomic overwrite/append/upsert, schema checks,
and the one-line errors (unreachable host, wrong password, missing file/table, bad query)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lockgate.errors import DataError
from lockgate.io import sql
from lockgate.io.connect import open_reader, open_writer
from lockgate.io.copy import copy
from lockgate.io.dataset import Dataset
from lockgate.io.sql_postgres import libpq_url
from lockgate.model.classification import tag_of

from .conftest import PG_PASSWORD

UTC = dt.UTC
Uri = Callable[[str], str]


def _table(rows: int = 5, start: int = 0) -> pa.Table:
    ids = list(range(start, start + rows))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "small": pa.array([i % 100 if i % 4 else None for i in ids], pa.int64()),
            "score": pa.array([i / 4 if i % 3 else None for i in ids], pa.float64()),
            "name": pa.array([f"name {i} é" if i % 5 != 1 else None for i in ids]),
            "active": pa.array([None if i % 7 == 2 else i % 2 == 0 for i in ids]),
            "seen": pa.array(
                [dt.datetime(2024, 1, 1, 12, 30, 15, 123456) + dt.timedelta(hours=i) for i in ids],
                pa.timestamp("us"),
            ),
            "created": pa.array(
                [
                    None if i % 6 == 3 else dt.datetime(2023, 6, 1, tzinfo=UTC) + dt.timedelta(i)
                    for i in ids
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "born": pa.array(
                [dt.date(1950, 1, 1) + dt.timedelta(days=97 * i) for i in ids], pa.date32()
            ),
            "amount": pa.array(
                [Decimal(i * 1234567).scaleb(-2) if i % 4 != 3 else None for i in ids],
                pa.decimal128(12, 2),
            ),
        }
    )


def _read(uri: str, batch_rows: int = 65_536, **kwargs: object) -> pa.Table:
    dataset = Dataset(uri, **kwargs)  # type: ignore[arg-type]
    with open_reader(dataset, batch_rows=batch_rows) as reader:
        return pa.Table.from_batches(list(reader), reader.schema)


def _write(uri: str, table: pa.Table, **kwargs: object) -> object:
    with open_writer(Dataset(uri), table.schema, **kwargs) as writer:  # type: ignore[arg-type]
        writer.write(table)
    return writer.commit()


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by("id")


def _one_line(exc: pytest.ExceptionInfo[DataError]) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


# -- round trips ------------------------------------------------------------------------------


def test_round_trip_of_the_common_types(sql_uri: Uri) -> None:
    table = _table(40)
    result = _write(sql_uri("things"), table)
    assert result.rows == 40 and result.mode == "overwrite"
    back = _read(sql_uri("things"))
    assert back.schema == table.schema
    assert _sorted(back).equals(table)


def test_more_types_and_odd_column_names(sql_uri: Uri) -> None:
    table = pa.table(
        {
            'odd "name"; drop': pa.array([1, 2], pa.int16()),
            "Mixed Case": pa.array(["a", "b"], pa.large_string()),
            "blob": pa.array([b"\x00\x01", None], pa.binary()),
            "at": pa.array([dt.time(1, 2, 3, 4), None], pa.time64("us")),
            "nanos": pa.array([dt.datetime(2020, 1, 1, 1, 1, 1, 7), None], pa.timestamp("ns")),
            "codes": pa.array(["x", "y"]).dictionary_encode(),
            "nothing": pa.nulls(2),
            "huge": pa.array(
                [Decimal("-123456789012345678901234.123456"), None], pa.decimal128(30, 6)
            ),
        }
    )
    _write(sql_uri("odd"), table)
    back = _read(sql_uri("odd"))
    assert back.column_names == table.column_names
    assert back.column('odd "name"; drop').to_pylist() == [1, 2]
    assert back.column("Mixed Case").to_pylist() == ["a", "b"]
    assert back.column("blob").to_pylist() == [b"\x00\x01", None]
    assert back.column("at").to_pylist() == [dt.time(1, 2, 3, 4), None]
    assert back.column("nanos").to_pylist() == [dt.datetime(2020, 1, 1, 1, 1, 1, 7), None]
    assert back.column("codes").to_pylist() == ["x", "y"]
    assert back.column("nothing").to_pylist() == [None, None]
    assert back.column("huge").type == pa.decimal128(30, 6)
    assert back.column("huge").equals(table.column("huge"))


def test_empty_tables_round_trip(sql_uri: Uri) -> None:
    empty = _table(1).slice(0, 0)
    assert _write(sql_uri("none"), empty).rows == 0
    back = _read(sql_uri("none"))
    assert back.num_rows == 0 and back.schema == empty.schema
    back = _read(sql_uri("none"), query="SELECT id, name FROM none WHERE id > 5")
    assert back.num_rows == 0 and back.column_names == ["id", "name"]


def test_reads_stream_in_bounded_batches_with_the_schema_first(sql_uri: Uri) -> None:
    _write(sql_uri("big"), _table(2500))
    with open_reader(Dataset(sql_uri("big")), batch_rows=1000) as reader:
        assert reader.schema.names[:2] == ["id", "small"]
        sizes = [b.num_rows for b in reader]
    assert sum(sizes) == 2500 and max(sizes) <= 1000 and len(sizes) >= 3


def test_declared_tags_are_on_the_schema_and_every_batch(sql_uri: Uri) -> None:
    _write(sql_uri("people"), _table(10))
    dataset = Dataset(sql_uri("people"), tags={"name": "pii.name", "born": "pii.dob"})
    with sql.open_reader(dataset, batch_rows=4) as reader:
        assert tag_of(reader.schema.field("name")) == "pii.name"
        assert tag_of(reader.schema.field("born")) == "pii.dob"
        assert tag_of(reader.schema.field("id")) is None
        batches = list(reader)
    assert all(tag_of(b.schema.field("name")) == "pii.name" for b in batches)


def test_reads_a_query(sql_uri: Uri) -> None:
    _write(sql_uri("things"), _table(20))
    query = (
        "SELECT id, upper(name) AS shout, amount, id * 2 AS twice FROM things "
        "WHERE id >= 10 ORDER BY id;"
    )
    back = _read(sql_uri("things"), query=query)
    assert back.column_names == ["id", "shout", "amount", "twice"]
    assert back.column("id").to_pylist() == list(range(10, 20))
    assert back.column("twice").to_pylist() == [2 * i for i in range(10, 20)]
    assert back.column("shout").to_pylist()[0].startswith("NAME 10 ")
    assert back.column("amount").type == pa.decimal128(12, 2)


def test_sqlite_tables_made_by_other_tools(tmp_path: Path) -> None:
    """SQLite keeps each value's own type: columns with no declared type, a text column that
    is NULL for many rows first, numbers of both kinds in one NUMERIC column."""
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE t (a, b TEXT, c NUMERIC, d DATETIME, e DECIMAL(10,2))")
        rows = [(i, None, i, "2024-05-01 10:00:00", i) for i in range(3000)]
        rows += [("text", "late text", 2.5, "2024-05-02T11:30:00", 1.25)]
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
    back = _read(f"sqlite:///{path}#t", batch_rows=1000)
    assert back.num_rows == 3001
    assert back.schema.field("a").type == pa.string()
    assert back.column("a").to_pylist()[-1] == "text"
    assert back.column("b").to_pylist()[-1] == "late text"
    assert back.schema.field("c").type == pa.float64()
    assert back.column("c").to_pylist()[-1] == 2.5
    assert back.column("d").to_pylist()[-1] == dt.datetime(2024, 5, 2, 11, 30)
    assert back.schema.field("e").type == pa.decimal128(10, 2)
    assert back.column("e").to_pylist()[-1] == Decimal("1.25")


def test_copy_between_sqlite_and_postgresql(tmp_path: Path, pg_url: str) -> None:
    table = _table(300)
    lite = f"sqlite:///{tmp_path / 'a.db'}#src"
    _write(lite, table)
    result = copy(Dataset(lite), Dataset(f"{pg_url}#public.dst"), batch_rows=128)
    assert result.rows == 300
    assert _sorted(_read(f"{pg_url}#public.dst")).equals(table)
    back = f"sqlite:///{tmp_path / 'b.db'}#back"
    copy(Dataset(f"{pg_url}#dst"), Dataset(back))
    assert _sorted(_read(back)).equals(table)


# -- atomic writes ----------------------------------------------------------------------------


def _tables_in(uri: str) -> set[str]:
    if uri.startswith("sqlite"):
        path = uri.split("sqlite:///", 1)[1].split("#")[0]
        with sqlite3.connect(path) as con:
            return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    import psycopg

    with psycopg.connect(uri.split("#")[0]) as con:
        rows = con.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r[0] for r in rows}


def test_overwrite_keeps_readers_on_the_old_table_until_commit(sql_uri: Uri) -> None:
    old, new = _table(10), _table(7, start=100)
    _write(sql_uri("t"), old)
    writer = open_writer(Dataset(sql_uri("t")), new.schema)
    writer.write(new.slice(0, 3))
    writer.write(new.slice(3))
    assert _sorted(_read(sql_uri("t"))).equals(old)
    result = writer.commit()
    assert writer.commit() is result  # idempotent
    writer.abort()  # nothing after a commit
    assert _sorted(_read(sql_uri("t"))).equals(new)
    assert _tables_in(sql_uri("t")) == {"t"}


def test_a_failing_write_leaves_the_old_table(sql_uri: Uri) -> None:
    old = _table(10)
    _write(sql_uri("t"), old, keys=("id",))
    for mode, keys in (("overwrite", ()), ("append", ()), ("upsert", ("id",))):
        with (
            pytest.raises(RuntimeError, match="boom"),
            open_writer(Dataset(sql_uri("t")), old.schema, mode=mode, keys=keys) as writer,
        ):
            writer.write(_table(5, start=50))
            raise RuntimeError("boom")
        assert _sorted(_read(sql_uri("t"))).equals(old), mode
        with pytest.raises(DataError, match="aborted"):
            writer.commit()
    assert _tables_in(sql_uri("t")) == {"t"}


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import pyarrow as pa
    from lockgate.io.connect import open_writer
    from lockgate.io.dataset import Dataset
    batch = pa.table({"id": pa.array(range(1000), pa.int64()), "v": ["x" * 20] * 1000})
    writer = open_writer(Dataset(sys.argv[1]), batch.schema)
    for i in range(1_000_000):
        writer.write(batch)
        if i == 2:
            print("writing", flush=True)
    """
)


def test_a_killed_writer_leaves_the_old_table(sql_uri: Uri) -> None:
    old = pa.table({"id": pa.array([1, 2], pa.int64()), "v": ["a", "b"]})
    _write(sql_uri("t"), old)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, sql_uri("t")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _read(sql_uri("t")).equals(old)


def test_append_adds_rows_and_creates_a_missing_table(sql_uri: Uri) -> None:
    first, second = _table(5), _table(5, start=5)
    result = _write(sql_uri("log"), first, mode="append")
    assert result.rows == 5
    _write(sql_uri("log"), second, mode="append")
    assert _sorted(_read(sql_uri("log"))).equals(pa.concat_tables([first, second]))


def test_append_takes_columns_in_any_order_and_narrower_tables(sql_uri: Uri) -> None:
    ddl = "CREATE TABLE narrow (name TEXT, id INTEGER, total NUMERIC(8,2), day DATE)"
    uri = sql_uri("narrow")
    if uri.startswith("sqlite"):
        with sqlite3.connect(uri.split("sqlite:///", 1)[1].split("#")[0]) as con:
            con.execute(ddl)
    else:
        import psycopg

        with psycopg.connect(uri.split("#")[0]) as con:
            con.execute(ddl.replace("NUMERIC(8,2)", "NUMERIC(8,2) NOT NULL"))
    data = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "day": pa.array([dt.date(2024, 2, 29), None]),
            "total": pa.array([Decimal("1.50"), Decimal("-2.25")], pa.decimal128(10, 2)),
            "name": ["a", None],
        }
    )
    _write(uri, data, mode="append")
    back = _read(uri)
    assert back.column_names == ["name", "id", "total", "day"]
    assert back.column("id").to_pylist() == [1, 2]
    assert back.column("total").to_pylist() == [Decimal("1.50"), Decimal("-2.25")]
    assert back.column("day").to_pylist() == [dt.date(2024, 2, 29), None]


def test_upsert_updates_matching_keys_and_inserts_the_rest(sql_uri: Uri) -> None:
    base = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "v": ["a", "b", "c"]})
    _write(sql_uri("kv"), base, mode="upsert", keys=("id",))  # creates the table + index
    change = pa.table({"id": pa.array([3, 4], pa.int64()), "v": ["C", "d"]})
    result = _write(sql_uri("kv"), change, mode="upsert", keys=("id",))
    assert result.rows == 2 and result.mode == "upsert"
    back = _sorted(_read(sql_uri("kv")))
    assert back.to_pydict() == {"id": [1, 2, 3, 4], "v": ["a", "b", "C", "d"]}


def test_upsert_on_composite_keys(sql_uri: Uri) -> None:
    schema = pa.schema([("day", pa.date32()), ("shop", pa.string()), ("sales", pa.int64())])
    d1, d2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
    base = pa.table({"day": [d1, d1, d2], "shop": ["x", "y", "x"], "sales": [1, 2, 3]}, schema)
    _write(sql_uri("sales"), base, keys=("day", "shop"))  # overwrite with keys: unique index
    change = pa.table({"day": [d1, d2], "shop": ["y", "y"], "sales": [20, 40]}, schema)
    _write(sql_uri("sales"), change, mode="upsert", keys=("day", "shop"))
    back = _read(sql_uri("sales")).sort_by([("day", "ascending"), ("shop", "ascending")])
    assert back.to_pylist() == [
        {"day": d1, "shop": "x", "sales": 1},
        {"day": d1, "shop": "y", "sales": 20},
        {"day": d2, "shop": "x", "sales": 3},
        {"day": d2, "shop": "y", "sales": 40},
    ]


def test_upsert_needs_a_unique_index_on_the_keys(sql_uri: Uri) -> None:
    _write(sql_uri("plain"), _table(3))  # lockgate created it without keys: no index
    with pytest.raises(DataError) as exc:
        _write(sql_uri("plain"), _table(2), mode="upsert", keys=("id",))
    text = _one_line(exc)
    assert "upsert needs a unique index on (id)" in text and "CREATE UNIQUE INDEX" in text
    assert _read(sql_uri("plain")).num_rows == 3


def test_upsert_keys_must_be_columns(sql_uri: Uri) -> None:
    with pytest.raises(DataError, match="key column.*nope.*not in the data"):
        _write(sql_uri("t"), _table(2), mode="upsert", keys=("nope",))


# -- schema mismatch --------------------------------------------------------------------------


def test_schema_mismatch_names_the_dataset_and_the_columns(sql_uri: Uri) -> None:
    _write(sql_uri("t"), _table(3))
    uri = sql_uri("t")
    extra = _table(2).append_column("bonus", pa.array([1, 2]))
    with pytest.raises(DataError) as exc:
        _write(uri, extra, mode="append")
    text = _one_line(exc)
    assert text.startswith(uri.split("#")[0]) and "bonus" in text and "not in the table" in text
    with pytest.raises(DataError) as exc:
        _write(uri, _table(2).drop_columns(["name", "born"]), mode="append")
    assert "missing column(s) name, born" in _one_line(exc)
    wrong = _table(2).set_column(0, "id", pa.array(["a", "b"]))
    with pytest.raises(DataError) as exc:
        _write(uri, wrong, mode="upsert", keys=("name",))
    assert "id is string but the table has" in _one_line(exc)
    assert _read(uri).num_rows == 3


# -- errors ----------------------------------------------------------------------------------


def test_unreachable_host() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connection refused
        uri = f"postgresql://me:hunter2@127.0.0.1:{port}/db#t"
        with pytest.raises(DataError) as exc:
            _read(uri)
    text = _one_line(exc)
    assert "cannot reach the PostgreSQL server at 127.0.0.1" in text
    assert "hunter2" not in text and "me:***@" in text
    with pytest.raises(DataError, match="cannot reach"):
        _write(uri, _table(1))


def test_a_silent_host_times_out_after_a_few_seconds() -> None:
    """libpq's connect_timeout bounds a connection to a host that never answers."""
    assert "connect_timeout=5" in libpq_url("postgresql://u@10.0.0.1/db")
    assert libpq_url("postgres://u@h/db?connect_timeout=2&sslmode=disable") == (
        "postgresql://u@h/db?connect_timeout=2&sslmode=disable"
    )


def test_wrong_credentials(pg_password_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    good = pg_password_server
    _write(f"{good}#t", _table(3))
    assert _read(f"{good}#t").num_rows == 3
    bad = good.replace(good.split(":")[2].split("@")[0], "wrong-password")
    with pytest.raises(DataError) as exc:
        _read(f"{bad}#t")
    text = _one_line(exc)
    assert "refused the credentials of user 'postgres'" in text
    assert "wrong-password" not in text and "***" in text
    no_password = good.replace(":" + good.split(":")[2].split("@")[0], "")
    with pytest.raises(DataError) as exc:
        _write(f"{no_password}#t", _table(1))
    assert "password" in _one_line(exc)
    assert PG_PASSWORD not in str(exc.value)


def test_missing_sqlite_file_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nope.db"
    with pytest.raises(DataError) as exc:
        _read(f"sqlite:///{path}#t")
    assert f"no SQLite database file at {path}" in _one_line(exc)
    assert not path.exists()


def test_sqlite_target_folders_and_file_are_created(tmp_path: Path) -> None:
    nested = tmp_path / "no" / "such" / "x.db"
    with (
        pytest.raises(RuntimeError),
        open_writer(Dataset(f"sqlite:///{nested}#t"), _table(1).schema),
    ):
        raise RuntimeError("no data after all")
    assert not (tmp_path / "no").exists()  # an aborted write removes the folders it made
    _write(f"sqlite:///{nested}#t", _table(1))
    assert _read(f"sqlite:///{nested}#t").num_rows == 1
    path = tmp_path / "new.db"
    with pytest.raises(RuntimeError), open_writer(Dataset(f"sqlite:///{path}#t"), _table(1).schema):
        raise RuntimeError("no data after all")
    assert not path.exists()  # an aborted first write leaves no empty database
    _write(f"sqlite:///{path}#t", _table(2))
    assert path.is_file() and _read(f"sqlite:///{path}#t").num_rows == 2


def test_missing_table(sql_uri: Uri) -> None:
    _write(sql_uri("present"), _table(1))
    with pytest.raises(DataError) as exc:
        _read(sql_uri("absent"))
    text = _one_line(exc)
    assert "no table absent" in text and text.startswith(sql_uri("x").split("#")[0])


def test_bad_query_gives_the_databases_message(sql_uri: Uri) -> None:
    _write(sql_uri("t"), _table(1))
    with pytest.raises(DataError) as exc:
        _read(sql_uri("t"), query="SELECT nosuchcolumn FROM t")
    text = _one_line(exc)
    assert "the query failed" in text and "nosuchcolumn" in text


def test_reading_never_changes_the_database(sql_uri: Uri) -> None:
    _write(sql_uri("t"), _table(3))
    with pytest.raises(DataError, match="the query failed"):
        _read(sql_uri("t"), query="DELETE FROM t RETURNING id")
    assert _read(sql_uri("t")).num_rows == 3


def test_dirty_sqlite_column_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "dirty.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE t (n INTEGER)")
        con.executemany("INSERT INTO t VALUES (?)", [(1,), ("one",)] + [(2,)] * 3000)
        con.execute("CREATE TABLE later (n INTEGER)")
        con.executemany("INSERT INTO later VALUES (?)", [(1,)] * 3000 + [(2.5,)])
    for table in ("t", "later"):  # mixed in the first batch, and in a later one
        with pytest.raises(DataError) as exc:
            _read(f"sqlite:///{path}#{table}", batch_rows=1000)
        text = _one_line(exc)
        assert "column n holds values of more than one type" in text and "CAST" in text


def test_tables_need_a_name_and_sqlite_has_no_schemas(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="name the table"):
        _write(f"sqlite:///{tmp_path / 'a.db'}", _table(1))
    with pytest.raises(DataError, match="has no schema 'sales'"):
        _write(f"sqlite:///{tmp_path / 'a.db'}#sales.t", _table(1))
    with pytest.raises(DataError, match="cannot hold column.*tags"):
        _write(f"sqlite:///{tmp_path / 'a.db'}#t", pa.table({"tags": [["a"], ["b"]]}))


# -- what the review found --------------------------------------------------------------------


def _sqlite_path(uri: str) -> str:
    return uri.split("sqlite:///", 1)[1].split("#")[0]


def _execute(uri: str, *statements: str) -> None:
    """Run DDL/DML on the database of `uri` with its own driver (another tool)."""
    if uri.startswith("sqlite"):
        with sqlite3.connect(_sqlite_path(uri)) as con:
            for statement in statements:
                con.execute(statement)
        return
    import psycopg

    with psycopg.connect(uri.split("#")[0]) as con:
        for statement in statements:
            con.execute(statement)


def test_sqlite_numeric_columns_are_read_without_rounding(tmp_path: Path) -> None:
    """SQLite does not enforce NUMERIC(5,2): a value that does not fit is an error naming the
    column (never the value), not 0.00 or 0.12."""
    path = tmp_path / "n.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE ok (id INTEGER, amount NUMERIC(5,2))")
        con.executemany("INSERT INTO ok VALUES (?, ?)", [(1, 1.5), (2, 0.1), (3, 0.29), (4, 7)])
        for name, value in (("big", 123456.78), ("fine", 0.125), ("nan", float("inf"))):
            con.execute(f"CREATE TABLE {name} (id INTEGER, amount NUMERIC(5,2))")
            con.executemany(f"INSERT INTO {name} VALUES (?, ?)", [(1, 1.5), (2, value)])
        con.execute("CREATE TABLE text (amount DECIMAL_TEXT(5,2))")
        con.execute("INSERT INTO text VALUES ('0.125')")
    back = _read(f"sqlite:///{path}#ok")
    assert back.schema.field("amount").type == pa.decimal128(5, 2)
    assert back.column("amount").to_pylist() == [
        Decimal("1.50"),
        Decimal("0.10"),
        Decimal("0.29"),
        Decimal("7.00"),
    ]
    for name, value in (("big", "123456"), ("fine", "0.125"), ("nan", "inf"), ("text", "0.125")):
        with pytest.raises(DataError) as exc:
            _read(f"sqlite:///{path}#{name}")
        text = _one_line(exc)
        assert text.startswith(f"sqlite:///{path}#{name}: column amount holds a value that")
        assert value not in text.lower()


def test_sqlite_numeric_columns_refuse_decimals_they_would_round(tmp_path: Path) -> None:
    """A NUMERIC(p,s) column of another tool keeps numbers as integers or doubles (15
    significant digits): lockgate refuses what it would round instead of losing digits."""
    uri = f"sqlite:///{tmp_path / 'n.db'}#n"
    _execute(uri, "CREATE TABLE n (id INTEGER, amount NUMERIC(20,2))")
    exact = [Decimal("1.50"), Decimal("3.00"), Decimal("-0.05"), Decimal("1234567890123.45")]
    exact += [Decimal("123456789012345678.00")]  # a whole number: kept as a 64-bit integer
    good = pa.table(
        {"id": pa.array(range(5), pa.int64()), "amount": pa.array(exact, pa.decimal128(20, 2))}
    )
    _write(uri, good, mode="append")
    assert _read(uri).column("amount").to_pylist() == exact
    long = good.slice(0, 1).set_column(
        1, "amount", pa.array([Decimal("12345678901234567.89")], pa.decimal128(20, 2))
    )
    for mode in ("append", "overwrite"):
        with pytest.raises(DataError) as exc:
            _write(uri, long, mode=mode)
        text = _one_line(exc)
        assert "column amount has 1 value(s) with more than 15 significant digits" in text
        assert "DECIMAL_TEXT" in text and "12345678901234567" not in text
    finer = pa.table({"id": [9], "amount": pa.array([Decimal("1.234")], pa.decimal128(10, 3))})
    with pytest.raises(DataError, match="column amount .* does not fit"):
        _write(uri, finer, mode="append")
    assert _read(uri).column("amount").to_pylist() == exact


def test_copy_between_two_tables_of_one_sqlite_file(tmp_path: Path) -> None:
    """The reader of the source holds the file while the target is written: in a file of
    another tool (rollback journal) and in one lockgate made (WAL) alike."""
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (id INTEGER, name TEXT)")
        con.executemany("INSERT INTO t VALUES (?, ?)", ((i, "x" * 80) for i in range(60_000)))
    source, target = Dataset(f"sqlite:///{other}#t"), Dataset(f"sqlite:///{other}#t2")
    assert copy(source, target, batch_rows=4096).rows == 60_000  # hung before
    assert _read(f"sqlite:///{other}#t2").equals(_read(f"sqlite:///{other}#t"))
    own = f"sqlite:///{tmp_path / 'own.db'}"
    copy(Dataset(f"sqlite:///{other}#t"), Dataset(f"{own}#t"))
    with sqlite3.connect(tmp_path / "own.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for mode in ("overwrite", "append"):
        copy(Dataset(f"{own}#t"), Dataset(f"{own}#t2"), mode=mode)
    assert _read(f"{own}#t2").num_rows == 120_000


_LONG_READER = textwrap.dedent(
    """
    import sqlite3, sys, time
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN")
    con.execute("SELECT count(*) FROM t").fetchall()  # a read transaction, held
    print("reading", flush=True)
    time.sleep(60)
    """
)


def test_a_write_blocked_by_a_long_read_fails_within_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lockgate.io import sql_sqlite

    monkeypatch.setattr(sql_sqlite, "BUSY_TIMEOUT_MS", 300)
    old, new = _table(3), _table(20_000, start=100).select(["id"])
    journal = f"sqlite:///{tmp_path / 'journal.db'}#t"
    _execute(journal, "CREATE TABLE t (id INTEGER)", "INSERT INTO t VALUES (1)")
    wal = f"sqlite:///{tmp_path / 'wal.db'}#t"
    _write(wal, old.select(["id"]))
    for uri in (journal, wal):
        reader = subprocess.Popen(
            [sys.executable, "-c", _LONG_READER, _sqlite_path(uri)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert reader.stdout is not None and reader.stdout.readline().strip() == "reading"
            if uri == journal:  # rollback journal: the write waits, then fails, cleanly
                with pytest.raises(DataError) as exc:
                    _write(uri, new)
                text = _one_line(exc)
                assert "stayed locked by another connection" in text and "WAL" in text
                assert _read(uri).column("id").to_pylist() == [1]
            else:  # WAL: reads never block a write
                assert _write(uri, new).rows == 20_000  # type: ignore[attr-defined]
        finally:
            reader.kill()
            reader.wait()
    assert _read(wal).num_rows == 20_000


def test_overwrite_keeps_an_existing_tables_definition(sql_uri: Uri) -> None:
    uri = sql_uri("people")
    pg = not uri.startswith("sqlite")
    _execute(
        uri,
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        "CREATE INDEX people_name ON people (name)",
        "CREATE VIEW named AS SELECT name FROM people",
        "INSERT INTO people VALUES (1, 'old')",
        *(["COMMENT ON TABLE people IS 'kept'"] if pg else []),
    )

    def definition() -> object:
        if not pg:
            with sqlite3.connect(_sqlite_path(uri)) as con:
                return con.execute(
                    "SELECT type, name, sql FROM sqlite_master ORDER BY 2"
                ).fetchall()
        import psycopg

        with psycopg.connect(uri.split("#")[0]) as con:
            return con.execute(
                "SELECT indexdef, obj_description('people'::regclass) FROM pg_indexes "
                "WHERE tablename = 'people' ORDER BY 1"
            ).fetchall()

    before = definition()
    data = pa.table({"name": ["a", "b"], "id": pa.array([2, 3], pa.int64())})
    assert _write(uri, data).rows == 2  # type: ignore[attr-defined]
    assert definition() == before
    assert _sorted(_read(uri)).to_pydict() == {"id": [2, 3], "name": ["a", "b"]}
    upsert = pa.table({"id": pa.array([3, 4], pa.int64()), "name": ["B", "c"]})
    _write(uri, upsert, mode="upsert", keys=("id",))  # the primary key is still there
    assert _sorted(_read(uri)).column("name").to_pylist() == ["a", "B", "c"]
    with pytest.raises(DataError) as exc:
        _write(uri, data.append_column("extra", pa.array([1, 2])))
    assert "column(s) extra not in the table" in _one_line(exc)
    with pytest.raises(DataError):  # NOT NULL still holds; the old rows stay
        _write(
            uri, pa.table({"id": pa.array([9], pa.int64()), "name": pa.array([None], pa.string())})
        )
    assert _read(uri).num_rows == 3 and definition() == before


def test_upsert_refuses_null_and_repeated_keys(sql_uri: Uri) -> None:
    uri = sql_uri("kv")
    base = pa.table({"id": pa.array([1, 2], pa.int64()), "v": ["a", "b"]})
    _write(uri, base, mode="upsert", keys=("id",))
    bad = pa.table({"id": pa.array([None, 2, 2, 3, 3, 3, None], pa.int64()), "v": list("xyzuvwt")})
    with pytest.raises(DataError) as exc:
        _write(uri, bad, mode="upsert", keys=("id",))
    text = _one_line(exc)
    assert text.startswith(uri.split("#")[0]) and "one row per key (id)" in text
    assert "2 row(s) have a null key" in text and "5 row(s) share 2 key value(s)" in text
    repeated = pa.table({"id": pa.array([5, 5], pa.int64()), "v": ["p", "q"]})
    with pytest.raises(DataError, match=r"2 row\(s\) share 1 key value"):
        _write(uri, repeated, mode="upsert", keys=("id",))
    assert _sorted(_read(uri)).equals(base)


def test_sql_datasets_reject_unknown_options_and_tags_of_missing_columns(sql_uri: Uri) -> None:
    uri = sql_uri("t")
    _write(uri, _table(2))
    with pytest.raises(DataError) as exc:
        _read(uri, options={"delimiter": ";"})
    assert "unknown option 'delimiter' for an SQL dataset" in _one_line(exc)
    with pytest.raises(DataError, match="unknown option 'batch'"):
        open_writer(Dataset(uri, options={"batch": 5}), _table(1).schema)
    with pytest.raises(DataError) as exc:
        _read(uri, tags={"emial": "pii.email"})
    assert "tags name column 'emial', which it does not have" in _one_line(exc)
    with pytest.raises(DataError, match="tags name column 'nope'"):
        open_writer(Dataset(uri, tags={"nope": "pii.email"}), _table(1).schema)
    assert _read(uri).num_rows == 2
