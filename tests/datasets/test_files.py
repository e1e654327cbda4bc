"""The file connector on local files: CSV, Parquet and JSONL read and written through
`lockgate.io.files` (and the `open_reader`/`open_writer` dispatch), tags through Parquet,
atomic overwrite and append, and one-line errors naming the dataset."""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockgate.errors import DataError
from lockgate.io import files
from lockgate.io.base import Reader, Writer, WriteResult
from lockgate.io.connect import open_reader, open_writer
from lockgate.io.copy import copy
from lockgate.io.dataset import Dataset
from lockgate.io.formats import is_temp_name
from lockgate.model.classification import tag_of, with_tag

EXTENSIONS = ["csv", "parquet", "jsonl", "csv.gz", "jsonl.bz2", "csv.zst"]


def _table(rows: int = 10, start: int = 0) -> pa.Table:
    ids = range(start, start + rows)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "email": [f"user{i}@example.com" for i in ids],
            "zip": [f"0{2100 + i}" for i in ids],
            "born": pa.array([dt.date(1980, 1, 1 + i % 28) for i in ids]),
        }
    )


def _write(dataset: Dataset, table: pa.Table, mode: str = "overwrite") -> WriteResult:
    with open_writer(dataset, table.schema, mode=mode) as writer:
        for batch in table.to_batches(max_chunksize=3):
            writer.write(batch)
    return writer.commit()


def _read(dataset: Dataset, batch_rows: int = 65_536) -> pa.Table:
    with open_reader(dataset, batch_rows=batch_rows) as reader:
        return pa.Table.from_batches(list(reader), schema=reader.schema)


def _as_text(table: pa.Table) -> pa.Table:
    """What a CSV file gives back: every column as text."""
    return pa.table({n: table.column(n).cast(pa.string()) for n in table.column_names})


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_round_trip_in_each_format(tmp_path: Path, ext: str) -> None:
    table = _table(1000)
    dataset = Dataset(str(tmp_path / f"t.{ext}"))
    result = _write(dataset, table)
    assert result == WriteResult(
        str(tmp_path / f"t.{ext}"), 1000, "overwrite", (tmp_path / f"t.{ext}").stat().st_size
    )
    with open_reader(dataset, batch_rows=300) as reader:
        assert isinstance(reader, Reader)
        assert reader.schema.names == table.column_names  # known before the first batch
        batches = list(reader)
    assert [b.num_rows for b in batches] == [300, 300, 300, 100]
    back = pa.Table.from_batches(batches)
    if ext.startswith("csv"):
        assert back.equals(_as_text(table))  # text, as written: the zip codes keep their 0
    elif ext.startswith("jsonl"):
        assert back.column("id").to_pylist() == list(range(1000))
        assert back.column("email").equals(table.column("email"))
    else:
        assert back.equals(table)
    assert _leftovers(tmp_path) == []


def test_file_uris_and_a_declared_format(tmp_path: Path) -> None:
    table = _table(5)
    target = tmp_path / "export.txt"
    dataset = Dataset(target.as_uri(), format="parquet")
    result = _write(dataset, table)
    assert result.target == target.as_uri()
    assert pq.read_table(target).equals(table)
    assert _read(dataset).equals(table)
    with pytest.raises(DataError, match=r"^file://.*export\.txt: unknown file extension \.txt"):
        _read(Dataset(target.as_uri()))


def test_writer_follows_the_protocol_and_commit_is_idempotent(tmp_path: Path) -> None:
    dataset = Dataset(str(tmp_path / "t.parquet"))
    writer = files.open_writer(dataset, _table().schema)
    assert isinstance(writer, Writer)
    writer.write(_table())
    first = writer.commit()
    assert writer.commit() is first
    writer.abort()  # after a commit: nothing to undo
    assert _read(dataset).num_rows == 10
    with pytest.raises(DataError, match="already closed"):
        writer.write(_table())


def test_parquet_keeps_tags_and_declared_tags_win(tmp_path: Path) -> None:
    table = _table()
    schema = table.schema.set(1, with_tag(table.schema.field("email"), "pii.email"))
    path = tmp_path / "t.parquet"
    _write(Dataset(str(path)), table.cast(schema))
    read = _read(Dataset(str(path)))
    assert tag_of(read.schema.field("email")) == "pii.email"
    assert tag_of(read.schema.field("zip")) is None
    declared = Dataset(str(path), tags={"email": "pii.email/tokenized", "zip": "pii.address"})
    with open_reader(declared) as reader:
        assert tag_of(reader.schema.field("email")) == "pii.email/tokenized"
        assert tag_of(reader.schema.field("zip")) == "pii.address"
        batch = next(iter(reader))
        assert tag_of(batch.schema.field("zip")) == "pii.address"  # batches carry them too


def test_tags_travel_through_copy_and_declared_target_tags(tmp_path: Path) -> None:
    src = tmp_path / "people.csv"
    _write(Dataset(str(src)), _table(100))
    mid = Dataset(str(tmp_path / "people.parquet"))
    result = copy(Dataset(str(src), tags={"email": "pii.email"}), mid)
    assert result.rows == 100
    assert tag_of(pq.read_schema(tmp_path / "people.parquet").field("email")) == "pii.email"
    # Parquet -> Parquet: the tag rides along; a target's own declaration is added
    out = Dataset(str(tmp_path / "out.parquet"), tags={"zip": "pii.address"})
    copy(mid, out)
    schema = pq.read_schema(tmp_path / "out.parquet")
    assert (tag_of(schema.field("email")), tag_of(schema.field("zip"))) == (
        "pii.email",
        "pii.address",
    )


def test_declared_tags_must_name_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _write(Dataset(str(path)), _table())
    with pytest.raises(DataError, match=r"t\.csv: tags name column 'emial'.*did you mean 'email'"):
        open_reader(Dataset(str(path), tags={"emial": "pii.email"}))


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_append_adds_rows_after_the_old_ones(tmp_path: Path, ext: str) -> None:
    dataset = Dataset(str(tmp_path / f"t.{ext}"))
    _write(dataset, _table(5))
    result = _write(dataset, _table(4, start=5), mode="append")
    assert (result.rows, result.mode) == (4, "append")
    back = _read(dataset)
    assert back.num_rows == 9
    assert [int(v) for v in back.column("id").to_pylist()] == list(range(9))
    if ext == "parquet":
        assert back.equals(_table(9))
    assert _leftovers(tmp_path) == []


def test_append_to_a_missing_target_creates_it(tmp_path: Path) -> None:
    dataset = Dataset(str(tmp_path / "new.parquet"))
    assert _write(dataset, _table(3), mode="append").rows == 3
    assert _read(dataset).equals(_table(3))


def test_append_matches_columns_by_name_and_keeps_tags(tmp_path: Path) -> None:
    table = _table(3)
    schema = table.schema.set(1, with_tag(table.schema.field("email"), "pii.email"))
    dataset = Dataset(str(tmp_path / "t.parquet"))
    _write(dataset, table.cast(schema))
    shuffled = _table(2, start=3).select(["zip", "born", "email", "id"])
    _write(dataset, shuffled, mode="append")
    back = _read(dataset)
    assert back.column_names == ["id", "email", "zip", "born"]  # the file's order stays
    assert back.column("id").to_pylist() == [0, 1, 2, 3, 4]
    assert tag_of(back.schema.field("email")) == "pii.email"


def test_append_to_csv_without_a_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,name\n1,ann", encoding="utf-8")
    _write(Dataset(str(path)), pa.table({"name": ["bob"], "id": [2]}), mode="append")
    assert path.read_text(encoding="utf-8") == 'id,name\n1,ann\n2,"bob"\n'


@pytest.mark.parametrize(
    ("ext", "new", "message"),
    [
        (
            "parquet",
            pa.table({"id": ["a"], "email": ["x"], "zip": ["1"], "born": [dt.date(2000, 1, 1)]}),
            r"cannot append: .*\(id is int64 there, string here\); write the same columns",
        ),
        (
            "csv",
            pa.table({"id": [1], "mail": ["x"], "zip": ["1"], "born": ["2000-01-01"]}),
            r"cannot append: .*columns not in the existing data: mail; columns missing: email\)",
        ),
        (
            "jsonl",
            pa.table({"id": ["a"], "email": ["x"], "zip": ["1"], "born": ["2000-01-01"]}),
            r"cannot append: .*\(id holds number values there, text here\)",
        ),
    ],
)
def test_append_with_other_columns_is_refused(
    tmp_path: Path, ext: str, new: pa.Table, message: str
) -> None:
    path = tmp_path / f"t.{ext}"
    _write(Dataset(str(path)), _table(3))
    before = path.read_bytes()
    with pytest.raises(DataError, match=rf"^{tmp_path}/t\.{ext}: {message}") as info:
        _write(Dataset(str(path)), new, mode="append")
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_upsert_is_refused_for_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        open_writer(
            Dataset(str(tmp_path / "t.parquet")), _table().schema, mode="upsert", keys=("id",)
        )
    assert str(info.value) == (
        f"{tmp_path}/t.parquet: upsert needs a SQL target (sqlite:// or postgresql://); "
        "use overwrite or append for files"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_a_failing_write_leaves_the_old_file(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"t.{ext}"
    _write(Dataset(str(path)), _table(5))
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="source broke"):  # noqa: SIM117
        with open_writer(Dataset(str(path)), _table().schema) as writer:
            writer.write(_table(1000))
            raise RuntimeError("source broke")
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []
    with pytest.raises(DataError, match="aborted; nothing written"):
        writer.commit()


def test_append_that_fails_midway_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _write(Dataset(str(path)), _table(5))
    before = path.read_bytes()
    writer = open_writer(Dataset(str(path)), _table().schema, mode="append")
    writer.write(_table(3, start=5))
    with pytest.raises(DataError, match=r"t\.csv: cannot write: the rows have columns id where"):
        writer.write(pa.table({"id": [1]}))
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_rows_are_converted_to_the_writer_types(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.int64()), ("score", pa.float64())])
    dataset = Dataset(str(tmp_path / "t.parquet"))
    with open_writer(dataset, schema) as writer:
        writer.write(pa.table({"score": [1.5], "id": pa.array([7], pa.int32())}))
    assert _read(dataset).to_pylist() == [{"id": 7, "score": 1.5}]
    with pytest.raises(DataError, match="do not convert to the dataset's types"):  # noqa: SIM117
        with open_writer(dataset, schema) as writer:
            writer.write(pa.table({"id": ["seven"], "score": [1.0]}))
    assert _read(dataset).to_pylist() == [{"id": 7, "score": 1.5}]
    assert _leftovers(tmp_path) == []


def test_temp_file_is_recognisable_and_private_while_written(tmp_path: Path) -> None:
    path = tmp_path / "orders.parquet"
    path.write_bytes(b"old")
    path.chmod(0o640)
    with open_writer(Dataset(str(path)), _table().schema) as writer:
        writer.write(_table())
        [tmp] = _leftovers(tmp_path)
        assert tmp.startswith(".orders.parquet.lockgate-") and tmp.endswith(".tmp")
        assert is_temp_name(tmp) and not is_temp_name("orders.parquet")
        assert stat.S_IMODE((tmp_path / tmp).stat().st_mode) == 0o600
        assert path.read_bytes() == b"old"  # not visible before commit
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the old file's mode is kept
    assert _leftovers(tmp_path) == []


def test_missing_parent_folders_are_created_and_removed_on_failure(tmp_path: Path) -> None:
    dataset = Dataset(str(tmp_path / "a" / "b" / "t.jsonl"))
    with pytest.raises(RuntimeError):  # noqa: SIM117
        with open_writer(dataset, _table().schema) as writer:
            writer.write(_table())
            assert (tmp_path / "a" / "b").is_dir()
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []  # nothing left behind, not even the folders
    _write(dataset, _table())
    assert _read(dataset).num_rows == 10


def test_local_errors_are_one_line_naming_the_dataset(tmp_path: Path) -> None:
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    schema = _table().schema
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: open_reader(Dataset(str(tmp_path / "nope.csv"))), r"nope\.csv: no such file$"),
        (lambda: open_reader(Dataset(str(tmp_path / "folder.csv"))), r"folder\.csv: is a folder"),
        (
            lambda: open_writer(Dataset(str(tmp_path / "folder.csv")), schema),
            r"folder\.csv: is a folder; give a file name",
        ),
        (
            lambda: _read(Dataset(str(tmp_path / "bad.csv"))),
            r"bad\.csv: malformed CSV at line 3: 3 fields where the header has 2",
        ),
        (
            lambda: open_writer(Dataset(str(tmp_path / "afile" / "t.csv")), schema),
            r"t\.csv: cannot write under '.*/afile': it is a file, not a folder$",
        ),
        (
            lambda: open_reader(Dataset(str(tmp_path / "bad.csv"), options={"delimiter": ";"})),
            r"bad\.csv: unknown option 'delimiter' for a file dataset; use one of types",
        ),
        (
            lambda: open_writer(Dataset(str(tmp_path / "t.xlsx")), schema),
            r"t\.xlsx: unknown file extension \.xlsx",
        ),
    ]
    for call, pattern in cases:
        with pytest.raises(DataError) as info:
            call()
        text = str(info.value)
        assert "\n" not in text, text
        assert text.startswith(str(tmp_path)), text
        assert re.search(pattern, text), (pattern, text)


def test_large_file_streams_in_bounded_batches(tmp_path: Path) -> None:
    rows = 300_000
    table = pa.table({"id": pa.array(range(rows), pa.int64()), "v": pa.array([1.5] * rows)})
    dataset = Dataset(str(tmp_path / "big.parquet"))
    _write(dataset, table)
    with files.open_reader(dataset, batch_rows=50_000) as reader:
        assert reader.num_rows == rows
        sizes = [b.num_rows for b in reader]
    assert sizes == [50_000] * 6
    copied = copy(dataset, Dataset(str(tmp_path / "big.csv")), batch_rows=50_000)
    assert copied.rows == rows
    assert os.path.getsize(tmp_path / "big.csv") == copied.written.bytes


def test_the_types_option_converts_text_columns(tmp_path: Path) -> None:
    from decimal import Decimal

    (tmp_path / "o.csv").write_text(
        "id,amount,day,zip,note\n1,120.50,2024-01-31,01234,\n2,,2024-02-01,99501,x\n"
    )
    types = {"id": "int64", "amount": "decimal(10,2)", "day": "date", "note": "string"}
    with open_reader(Dataset(str(tmp_path / "o.csv"), options={"types": types})) as reader:
        assert str(reader.schema.field("amount").type) == "decimal128(10, 2)"
        table = pa.Table.from_batches(list(reader), schema=reader.schema)
    assert table.column("id").to_pylist() == [1, 2]
    assert table.column("amount").to_pylist() == [Decimal("120.50"), None]  # empty: null
    assert str(table.column("day").type) == "date32[day]"
    assert table.column("zip").to_pylist() == ["01234", "99501"], "untyped columns stay text"
    bad = tmp_path / "bad.csv"
    bad.write_text("id,amount\n1,12 EUR\n")
    with (
        pytest.raises(DataError) as exc,
        open_reader(Dataset(str(bad), options={"types": {"amount": "double"}})) as reader,
    ):
        list(reader)
    assert "column 'amount' holds a value that is not double" in str(exc.value)
    assert "12 EUR" not in str(exc.value), "the value is data: never in the message"
    with pytest.raises(DataError, match=r"'money' \(column 'amount'\) is not a column type"):
        open_reader(Dataset(str(bad), options={"types": {"amount": "money"}}))
    with pytest.raises(DataError, match="types name column 'amt'.*did you mean 'amount'"):
        open_reader(Dataset(str(bad), options={"types": {"amt": "double"}}))
    with pytest.raises(DataError, match="the types option is for reading"):
        open_writer(Dataset(str(tmp_path / "t.csv"), options={"types": {}}), pa.schema([]))
