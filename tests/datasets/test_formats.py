"""Streaming CSV, Parquet and JSONL readers and the atomic batch writer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from lockgate.errors import DataError
from lockgate.io.formats import (
    BatchReader,
    BatchWriter,
    check_distinct,
    detect_format,
    read_batches,
    read_table,
    write_table,
)
from lockgate.model.classification import tag_of, with_tag


def _table(rows: int = 10) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "email": [f"user{i}@example.com" for i in range(rows)],
            "zip": [f"0{2100 + i}" for i in range(rows)],
            "born": pa.array([dt.date(1980, 1, 1 + i % 28) for i in range(rows)]),
        }
    )


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.CSV", "csv"),
        ("a.csv.gz", "csv"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
    ],
)
def test_format_comes_from_the_extension(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_unknown_extension_and_format_are_one_line_errors() -> None:
    with pytest.raises(DataError, match=r"data\.txt: unknown file extension \.txt"):
        detect_format("data.txt")
    with pytest.raises(DataError, match="unknown file format 'xlsx'"):
        detect_format("data.txt", "xlsx")
    assert detect_format("data.txt", "CSV") == "csv"


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl", "csv.gz"])
def test_round_trip_in_bounded_batches(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"t.{ext}"
    write_table(path, _table(1000))
    schema, batches = read_batches(path, batch_rows=128)
    sizes = [b.num_rows for b in batches]
    assert sum(sizes) == 1000
    assert max(sizes) <= 128
    assert schema.names == ["id", "email", "zip", "born"]
    back = read_table(path)
    assert back.column("email").to_pylist() == _table(1000).column("email").to_pylist()


def test_csv_columns_are_read_as_written(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('zip,amount,note\n02134,1.50,\n00501,2,"a, b"\n', encoding="utf-8")
    table = read_table(path)
    assert table.schema.types == [pa.string()] * 3
    assert table.to_pydict() == {
        "zip": ["02134", "00501"],
        "amount": ["1.50", "2"],
        "note": ["", "a, b"],
    }


def test_parquet_keeps_field_tags_and_csv_jsonl_do_not(tmp_path: Path) -> None:
    table = _table()
    schema = table.schema.set(1, with_tag(table.schema.field(1), "pii.email/tokenized"))
    tagged = pa.Table.from_arrays(table.columns, schema=schema)
    for ext in ("parquet", "csv", "jsonl"):
        write_table(tmp_path / f"t.{ext}", tagged)
        field = BatchReader(tmp_path / f"t.{ext}").schema.field("email")
        assert tag_of(field) == ("pii.email/tokenized" if ext == "parquet" else None)


def test_progress_counts_rows_for_parquet_and_bytes_for_text(tmp_path: Path) -> None:
    write_table(tmp_path / "t.parquet", _table(500))
    reader = BatchReader(tmp_path / "t.parquet", batch_rows=100)
    assert (reader.done, reader.total) == (0, 500)
    seen = []
    for batch in reader:
        seen.append(reader.done)
        assert batch.num_rows == 100
    assert seen == [100, 200, 300, 400, 500]
    write_table(tmp_path / "t.csv", _table(500))
    reader = BatchReader(tmp_path / "t.csv", batch_rows=100)
    size = (tmp_path / "t.csv").stat().st_size
    done = []
    for _ in reader:
        done.append(reader.done)
    assert reader.total == size
    assert done == sorted(done) and done[-1] <= size
    assert reader.done == size


def test_missing_file_folder_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        BatchReader(tmp_path / "nope.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match=r"dir\.csv: is a folder"):
        BatchReader(tmp_path / "dir.csv")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.csv: .*[Ee]mpty"):
        BatchReader(tmp_path / "empty.csv")


def test_malformed_csv_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n7,8\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_table(path)
    message = str(caught.value)
    assert message == f"{path}: malformed CSV at line 4: 2 fields where the header has 3"
    assert "\n" not in message


def test_malformed_parquet_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"bad\.parquet: "):
        BatchReader(tmp_path / "bad.parquet")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl: malformed JSON lines"):
        read_table(tmp_path / "bad.jsonl")


def test_writer_replaces_the_target_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    write_table(target, _table(3))
    before = target.read_bytes()
    with pytest.raises(RuntimeError), BatchWriter(target, _table().schema) as writer:
        writer.write(_table(10))
        raise RuntimeError("interrupted")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]
    with BatchWriter(target, _table().schema) as writer:
        writer.write(_table(10))
        assert target.read_bytes() == before  # nothing visible until the writer closes
    assert read_table(target).num_rows == 10
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_writer_errors_name_the_target(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        BatchWriter(tmp_path / "no" / "out.csv", _table().schema)
    with pytest.raises(DataError, match="is a folder"):
        BatchWriter(tmp_path, _table().schema, fmt="csv")
    with pytest.raises(DataError, match=r"out\.xlsx: unknown file extension"):
        BatchWriter(tmp_path / "out.xlsx", _table().schema)


def test_jsonl_writes_dates_as_iso_text(tmp_path: Path) -> None:
    write_table(tmp_path / "t.jsonl", _table(2))
    lines = (tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[0] == (
        '{"id": 0, "email": "user0@example.com", "zip": "02100", "born": "1980-01-01"}'
    )


def test_small_csv_blocks_are_merged_into_full_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lockgate.io.formats as files

    monkeypatch.setattr(files, "CSV_BLOCK", 4096)  # a few dozen rows per parsed block
    write_table(tmp_path / "t.csv", _table(3000))
    merged = [b.num_rows for b in BatchReader(tmp_path / "t.csv", batch_rows=1000)]
    assert merged == [1000, 1000, 1000]
    parsed = [b.num_rows for b in BatchReader(tmp_path / "t.csv", batch_rows=1000, merge=False)]
    assert sum(parsed) == 3000
    assert len(parsed) > 3 and max(parsed) < 1000
    rows = read_table(tmp_path / "t.csv").column("email").to_pylist()
    assert rows == _table(3000).column("email").to_pylist()


def _multiline_csv(path: Path, rows: int) -> list[str]:
    notes = [f"line one of {i}\nline two, with a comma\r\nline three" for i in range(rows)]
    body = "".join(f'{i},"{note}",x{i}\n' for i, note in enumerate(notes))
    path.write_text("id,notes,code\n" + body, encoding="utf-8")
    return notes


def test_csv_values_with_line_breaks_read_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lockgate.io.formats.CSV_BLOCK", 4096)  # many blocks, fast
    notes = _multiline_csv(tmp_path / "in.csv", 2000)
    table = read_table(tmp_path / "in.csv")
    assert table.num_rows == 2000
    assert table["notes"].to_pylist() == notes
    assert table["code"].to_pylist()[-1] == "x1999"


def test_csv_row_longer_than_a_block_is_reread_with_larger_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lockgate.io.formats.CSV_BLOCK", 1024)
    long = "y" * 10_000
    rows = [f"{i},short" for i in range(300)] + [f'300,"{long}"'] + ["301,after"]
    (tmp_path / "in.csv").write_text("id,text\n" + "\n".join(rows) + "\n", encoding="utf-8")
    table = read_table(tmp_path / "in.csv")
    assert table["id"].to_pylist() == [str(i) for i in range(302)]
    assert table["text"].to_pylist()[300:] == [long, "after"]
    # past the largest block: one line naming the row
    monkeypatch.setattr("lockgate.io.formats.CSV_MAX_BLOCK", 4096)
    with pytest.raises(DataError, match=r"in\.csv: CSV row 301 .*longer than") as err:
        read_table(tmp_path / "in.csv")
    assert "\n" not in str(err.value)


def test_latin1_csv_is_one_line_saying_how_to_convert(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes("name,city\nAnna,Paris\nJos\xe9,M\xe1laga\n".encode("latin1"))
    with pytest.raises(DataError) as err:
        read_table(tmp_path / "in.csv")
    message = str(err.value)
    assert "in.csv: not UTF-8 text" in message and "iconv -f latin1 -t utf-8" in message
    assert "\n" not in message


def test_a_folder_as_output_says_so(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError, match=r"out: is a folder; give a file name"):
        BatchWriter(tmp_path / "out", _table().schema)
    with pytest.raises(DataError, match=r"out: is a folder; give a file name"):
        detect_format(tmp_path / "out")


def test_check_distinct_refuses_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    monkeypatch.chdir(tmp_path)
    for other in ("a.csv", "./a.csv", str(tmp_path / "a.csv"), f"../{tmp_path.name}/a.csv"):
        with pytest.raises(DataError, match="is the input file too"):
            check_distinct("a.csv", other)
    check_distinct("a.csv", "b.csv")  # a new file is fine
    check_distinct("-", "-")


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_writer_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path, ext: str) -> None:
    import os
    import stat

    target = tmp_path / f"out.{ext}"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o600)
    table = pa.table({"email": ["a@example.com"]})
    seen: list[int] = []
    with BatchWriter(target, table.schema) as writer:
        seen.append(stat.S_IMODE(os.stat(writer.tmp).st_mode))  # owner-only while written
        writer.write(table)
    assert seen == [0o600]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert read_table(target).equals(table)
    # a new file gets the usual mode: 0666 less the umask
    old = os.umask(0o027)
    try:
        write_table(tmp_path / f"new.{ext}", table)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / f"new.{ext}").stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
