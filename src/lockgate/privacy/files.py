"""Streaming readers and writers of CSV, Parquet and JSONL files, in Arrow record batches.

Memory stays flat in file size: files are read a block at a time and written batch by batch. A
writer writes to a temporary file next to its target and renames it into place only when the
job succeeded, so a failed or interrupted job leaves the old file as it was.

CSV columns are read as strings, exactly as written (no type guessing: ZIP codes keep their
leading zeros, ids are not turned into floats) and empty fields read as empty strings; written
CSV quotes every text value (pyarrow's writer). JSONL column types are inferred from the first
16 MiB. Only Parquet keeps field metadata, and so the columns' classification tags; CSV and JSONL
files have nowhere to keep them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from lockgate.errors import PrivacyError

FORMATS = ("csv", "parquet", "jsonl")
EXTENSIONS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
"""File extensions and the format they mean; `.gz`, `.bz2` and `.zst` may follow CSV and JSONL."""
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}

BATCH_ROWS = 65_536
"""Rows per batch handed to the caller, at most."""
CSV_BLOCK = 4 << 20
JSON_BLOCK = 16 << 20
"""Bytes parsed at a time. JSONL column types are inferred from the first block."""
PARQUET_BUFFER = 1 << 20
"""Bytes read ahead per Parquet column."""
ROW_GROUP_ROWS = 1 << 18
ROW_GROUP_BYTES = 128 << 20
"""Parquet output is written in row groups of this many rows (or bytes), whichever comes
first: small row groups write slower and compress worse; big ones take memory."""

_CSV_ROW = re.compile(r"Row #(\d+): Expected (\d+) columns, got (\d+)")


def _name(path: str | os.PathLike[str]) -> str:
    return os.fspath(path)


def detect_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The file's format: `fmt` when given, else from its extension (`.csv`, `.parquet`...)."""
    if fmt is not None:
        wanted = fmt.lower().lstrip(".")
        wanted = {"pq": "parquet", "ndjson": "jsonl"}.get(wanted, wanted)
        if wanted not in FORMATS:
            raise PrivacyError(f"unknown file format {fmt!r}; use one of {', '.join(FORMATS)}")
        return wanted
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    found = EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if found is None:
        ext = suffixes[-1] if suffixes else "(none)"
        raise PrivacyError(
            f"{_name(path)}: unknown file extension {ext}; name it .csv, .parquet or .jsonl "
            "or give the format explicitly"
        )
    return found


def _compression(path: str | os.PathLike[str]) -> str | None:
    return COMPRESSIONS.get(Path(path).suffix.lower())


def _open_error(path: str | os.PathLike[str], exc: BaseException) -> PrivacyError:
    """An OSError or Arrow error raised while reading `path`, as one line naming the file."""
    name = _name(path)
    if isinstance(exc, FileNotFoundError) or (
        isinstance(exc, OSError) and not os.path.exists(name)
    ):
        return PrivacyError(f"{name}: no such file")
    if isinstance(exc, IsADirectoryError) or os.path.isdir(name):
        return PrivacyError(f"{name}: is a folder, not a file")
    if isinstance(exc, PermissionError):
        return PrivacyError(f"{name}: permission denied")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    row = _CSV_ROW.search(text)
    if row:
        line, expected, got = row.groups()
        return PrivacyError(
            f"{name}: malformed CSV at line {line}: {got} fields where the header has {expected}"
        )
    text = text.replace("CSV parse error: ", "malformed CSV: ")
    text = text.replace("JSON parse error: ", "malformed JSON lines: ")
    if "unexpected field" in text:
        text += f" (a field that first appears after the first {JSON_BLOCK >> 20} MiB)"
    return PrivacyError(f"{name}: {text}")


def _rechunk(batches: Iterator[pa.RecordBatch], rows: int, merge: bool) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of at most `rows` rows: big batches are sliced (zero-copy);
    with `merge`, small ones (a CSV block holds a few thousand rows) are joined up to `rows`."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        if not merge:
            for offset in range(0, batch.num_rows, rows):
                yield batch.slice(offset, rows) if batch.num_rows > rows else batch
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            joined = pending[0] if len(pending) == 1 else pa.concat_batches(pending)
            yield joined.slice(0, rows) if count > rows else joined
            rest = joined.slice(rows)
            pending, count = ([rest] if rest.num_rows else []), rest.num_rows
    if pending:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)


def _csv_names(path: str | os.PathLike[str]) -> list[str]:
    stream = pa.input_stream(_name(path), compression=_compression(path))
    try:
        reader = pacsv.open_csv(
            stream, read_options=pacsv.ReadOptions(block_size=1 << 16, use_threads=False)
        )
        names: list[str] = reader.schema.names
        reader.close()
        return names
    finally:
        stream.close()


class BatchReader:
    """An open CSV, Parquet or JSONL file read in record batches of at most `batch_rows` rows.

    With `merge` (the default), batches hold `batch_rows` rows but the last, even where the
    format parses smaller blocks; without, batches come as parsed (no copy). `total` and `done`
    measure progress: rows for Parquet (known from its footer), bytes for CSV and JSONL
    (estimated from what was read).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fmt: str | None = None,
        batch_rows: int = BATCH_ROWS,
        merge: bool = True,
    ) -> None:
        self.path = _name(path)
        self.format = detect_format(path, fmt)
        self.batch_rows = max(1, batch_rows)
        self.merge = merge
        self.done = 0
        self.num_rows: int | None = None
        self._closers: list[Callable[[], object]] = []
        try:
            self.total = os.path.getsize(self.path)
            self._batches = self._open()
        except (OSError, pa.ArrowException) as exc:
            self.close()
            raise _open_error(path, exc) from None

    def _open(self) -> Iterator[pa.RecordBatch]:
        if self.format == "parquet":
            # pre_buffer would keep every row group read so far in its cache: memory would grow
            # with the file. Without it, each column is streamed through a small buffer.
            parquet = pq.ParquetFile(self.path, pre_buffer=False, buffer_size=PARQUET_BUFFER)
            self._closers.append(parquet.close)
            self.schema: pa.Schema = parquet.schema_arrow
            self.num_rows = self.total = parquet.metadata.num_rows
            batches: Iterator[pa.RecordBatch] = parquet.iter_batches(
                batch_size=self.batch_rows, use_threads=True
            )
            return batches
        stream = pa.input_stream(self.path, compression=_compression(self.path))
        self._closers.append(stream.close)
        if self.format == "csv":
            names = _csv_names(self.path)
            reader = pacsv.open_csv(
                stream,
                # one thread: as fast on 2 cores, and errors then name the row
                read_options=pacsv.ReadOptions(block_size=CSV_BLOCK, use_threads=False),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names}, strings_can_be_null=False
                ),
            )
        else:
            reader = pajson.open_json(
                stream, read_options=pajson.ReadOptions(block_size=JSON_BLOCK)
            )
        self._closers.append(reader.close)
        self.schema = reader.schema
        return iter(reader)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        rows = self.format == "parquet"
        try:
            for batch in _rechunk(self._batches, self.batch_rows, self.merge):
                # bytes: an Arrow batch of text is about the size of the text it was read from
                self.done = (
                    self.done + batch.num_rows
                    if rows
                    else min(self.total, self.done + batch.nbytes)
                )
                yield batch
        except (OSError, pa.ArrowException) as exc:
            raise _open_error(self.path, exc) from None
        finally:
            self.close()
        self.done = self.total

    def close(self) -> None:
        while True:
            try:
                closing = self._closers.pop()
            except IndexError:  # all closed (maybe by another thread)
                return
            closing()

    def __enter__(self) -> BatchReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_batches(
    path: str | os.PathLike[str], *, batch_rows: int = BATCH_ROWS, fmt: str | None = None
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The file's schema and an iterator of its record batches (streamed, never all at once)."""
    reader = BatchReader(path, fmt=fmt, batch_rows=batch_rows)
    return reader.schema, iter(reader)


def read_table(path: str | os.PathLike[str], *, fmt: str | None = None) -> pa.Table:
    """The whole file as one table (for small files and tests; use `read_batches` for large)."""
    reader = BatchReader(path, fmt=fmt)
    return pa.Table.from_batches(list(reader), schema=reader.schema)


def _json_default(value: object) -> Any:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class BatchWriter:
    """Writes record batches to `path` through a temporary file renamed into place on `close`.

    Use it as a context manager: leaving the block with an exception (or calling `abort`)
    removes the temporary file and leaves any existing file at `path` untouched.
    """

    def __init__(
        self, path: str | os.PathLike[str], schema: pa.Schema, *, fmt: str | None = None
    ) -> None:
        self.path = _name(path)
        self.format = detect_format(path, fmt)
        self.schema = schema
        self.rows = 0
        target = Path(self.path)
        if target.is_dir():
            raise PrivacyError(f"{self.path}: is a folder; give a file name to write")
        if not target.parent.is_dir():
            raise PrivacyError(f"{self.path}: folder {str(target.parent)!r} does not exist")
        self.tmp = str(target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp")
        self._writer: Any = None
        self._sink: Any = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        try:
            self._open()
        except (OSError, pa.ArrowException) as exc:
            self.abort()
            raise PrivacyError(f"{self.path}: cannot write: {str(exc).splitlines()[0]}") from None

    def _open(self) -> None:
        compression = _compression(self.path)
        if self.format == "parquet":
            self._writer = pq.ParquetWriter(self.tmp, self.schema)
            return
        self._sink = pa.output_stream(self.tmp, compression=compression)
        if self.format == "csv":
            self._writer = pacsv.CSVWriter(
                self._sink,
                self.schema.remove_metadata(),
                write_options=pacsv.WriteOptions(quoting_style="needed"),
            )

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Append the rows of a batch (or table) whose schema is the writer's."""
        if not batch.num_rows:
            return
        try:
            if self.format == "jsonl":
                self._write_jsonl(batch)
            elif self.format == "csv":
                self._writer.write(batch)
            else:
                self._pending.extend(batch.to_batches() if isinstance(batch, pa.Table) else [batch])
                self._pending_rows += batch.num_rows
                self._pending_bytes += batch.nbytes
                if self._pending_rows >= ROW_GROUP_ROWS or self._pending_bytes >= ROW_GROUP_BYTES:
                    self._flush()
        except (OSError, pa.ArrowException, TypeError, ValueError) as exc:
            raise PrivacyError(f"{self.path}: cannot write: {str(exc).splitlines()[0]}") from None
        self.rows += batch.num_rows

    def _flush(self) -> None:
        """Write the pending Parquet batches as one row group."""
        if self._pending:
            table = pa.Table.from_batches(self._pending, schema=self.schema)
            self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
            self._writer.write_table(table, row_group_size=table.num_rows)

    def _write_jsonl(self, batch: pa.RecordBatch | pa.Table) -> None:
        dumps = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode
        text = "".join(dumps(row) + "\n" for row in batch.to_pylist())
        self._sink.write(text.encode("utf-8"))

    def close(self) -> None:
        """Finish the file and move it into place (replacing any file there)."""
        if self._writer is not None:
            try:
                self._flush()
                self._writer.close()
            except (OSError, pa.ArrowException) as exc:
                self.abort()
                raise PrivacyError(
                    f"{self.path}: cannot write: {str(exc).splitlines()[0]}"
                ) from None
            self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        if self.tmp and os.path.exists(self.tmp):
            os.replace(self.tmp, self.path)
        self.tmp = ""

    def abort(self) -> None:
        """Drop what was written; the target is left as it was."""
        for closing in (self._writer, self._sink):
            if closing is not None:
                with contextlib.suppress(OSError, pa.ArrowException):
                    closing.close()
        self._writer = self._sink = None
        self._pending = []
        if self.tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)
        self.tmp = ""

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_table(path: str | os.PathLike[str], table: pa.Table, *, fmt: str | None = None) -> None:
    """Write a whole table atomically (see `BatchWriter`)."""
    with BatchWriter(path, table.schema, fmt=fmt) as writer:
        writer.write(table)
