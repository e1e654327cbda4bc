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
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from lockgate.errors import DataError

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
CSV_MAX_BLOCK = 64 << 20
"""A CSV row longer than a block is re-read with blocks 4x larger, up to this size."""
JSON_BLOCK = 16 << 20
"""Bytes parsed at a time. JSONL column types are inferred from the first block."""
PARQUET_BUFFER = 1 << 20
"""Bytes read ahead per Parquet column."""
ROW_GROUP_ROWS = 1 << 18
ROW_GROUP_BYTES = 128 << 20
"""Parquet output is written in row groups of this many rows (or bytes), whichever comes
first: small row groups write slower and compress worse; big ones take memory."""

_CSV_ROW = re.compile(r"Row #(\d+): Expected (\d+) columns, got (\d+)")
_CSV_ROW_NUMBER = re.compile(r"Row #(\d+)")
_STRADDLING = "straddling object straddles"
CSV_PARSE = pacsv.ParseOptions(newlines_in_values=True)
"""RFC 4180: a quoted value may hold line breaks (addresses, notes)."""


def _name(path: str | os.PathLike[str]) -> str:
    return os.fspath(path)


def detect_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The file's format: `fmt` when given, else from its extension (`.csv`, `.parquet`...)."""
    if fmt is not None:
        wanted = fmt.lower().lstrip(".")
        wanted = {"pq": "parquet", "ndjson": "jsonl"}.get(wanted, wanted)
        if wanted not in FORMATS:
            raise DataError(f"unknown file format {fmt!r}; use one of {', '.join(FORMATS)}")
        return wanted
    if os.path.isdir(_name(path)):
        raise DataError(f"{_name(path)}: is a folder; give a file name")
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    found = EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if found is None:
        ext = suffixes[-1] if suffixes else "(none)"
        raise DataError(
            f"{_name(path)}: unknown file extension {ext}; name it .csv, .parquet or .jsonl "
            "or give the format explicitly"
        )
    return found


def _compression(path: str | os.PathLike[str]) -> str | None:
    return COMPRESSIONS.get(Path(path).suffix.lower())


def _open_error(path: str | os.PathLike[str], exc: BaseException) -> DataError:
    """An OSError or Arrow error raised while reading `path`, as one line naming the file."""
    name = _name(path)
    if isinstance(exc, FileNotFoundError) or (
        isinstance(exc, OSError) and not os.path.exists(name)
    ):
        return DataError(f"{name}: no such file")
    if isinstance(exc, IsADirectoryError) or os.path.isdir(name):
        return DataError(f"{name}: is a folder, not a file")
    if isinstance(exc, PermissionError):
        return DataError(f"{name}: permission denied")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    row = _CSV_ROW.search(text)
    if row:
        line, expected, got = row.groups()
        return DataError(
            f"{name}: malformed CSV at line {line}: {got} fields where the header has {expected}"
        )
    if "invalid UTF8" in text:
        number = _CSV_ROW_NUMBER.search(text)
        at = f" (row {number.group(1)})" if number else ""
        return DataError(
            f"{name}: not UTF-8 text{at}; convert it first, e.g. "
            f"`iconv -f latin1 -t utf-8 {name} > utf8.csv`"
        )
    text = text.replace("CSV parse error: ", "malformed CSV: ")
    text = text.replace("JSON parse error: ", "malformed JSON lines: ")
    if "unexpected field" in text:
        text += f" (a field that first appears after the first {JSON_BLOCK >> 20} MiB)"
    return DataError(f"{name}: {text}")


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


def _csv_reader(path: str | os.PathLike[str], stream: Any, block: int, types: bool) -> Any:
    """A pyarrow CSV reader of `stream` parsing `block` bytes at a time, values as text."""
    convert = None
    if types:
        names = _csv_names(path)
        convert = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False
        )
    return pacsv.open_csv(
        stream,
        # one thread: as fast on 2 cores, and errors then name the row
        read_options=pacsv.ReadOptions(block_size=block, use_threads=False),
        parse_options=CSV_PARSE,
        convert_options=convert,
    )


def _csv_names(path: str | os.PathLike[str]) -> list[str]:
    block = 1 << 16
    while True:
        stream = pa.input_stream(_name(path), compression=_compression(path))
        try:
            reader = _csv_reader(path, stream, block, types=False)
            names: list[str] = reader.schema.names
            reader.close()
            return names
        except pa.ArrowInvalid as exc:
            if _STRADDLING not in str(exc):
                raise
            block = _bigger_block(path, block, 1)
        finally:
            stream.close()


def _bigger_block(path: str | os.PathLike[str], block: int, row: int) -> int:
    """The next block size to try for a CSV row longer than `block` bytes, or an error."""
    if block >= CSV_MAX_BLOCK:
        raise DataError(
            f"{_name(path)}: CSV row {row} (line {row + 1} if no value spans lines) is longer "
            f"than {CSV_MAX_BLOCK >> 20} MiB, or opens a quote it never closes; check its quotes"
        )
    return min(block * 4, CSV_MAX_BLOCK)


def check_unique_names(path: str | os.PathLike[str], names: Sequence[str]) -> None:
    """Every column name appears once: rules, tags and scan results name columns, so a
    duplicated name (a CSV header `email,email,name`) is one error naming it."""
    counts = Counter(names)
    repeated = [n for n, c in counts.items() if c > 1]
    if repeated:
        first = repeated[0]
        more = f" (and {len(repeated) - 1} more repeated name(s))" if len(repeated) > 1 else ""
        raise DataError(
            f"{_name(path)}: column {first!r} appears {counts[first]} times in the header"
            f"{more}; give each column a distinct name"
        )


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
        try:
            check_unique_names(self.path, self.schema.names)
        except DataError:
            self.close()
            raise

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
        if self.format == "csv":
            first = self._open_csv(CSV_BLOCK)
            self.schema = first.schema
            return self._csv_batches(first)
        stream = pa.input_stream(self.path, compression=_compression(self.path))
        self._closers.append(stream.close)
        reader = pajson.open_json(stream, read_options=pajson.ReadOptions(block_size=JSON_BLOCK))
        self._closers.append(reader.close)
        self.schema = reader.schema
        return iter(reader)

    def _open_csv(self, block: int) -> Any:
        stream = pa.input_stream(self.path, compression=_compression(self.path))
        self._closers.append(stream.close)
        reader = _csv_reader(self.path, stream, block, types=True)
        self._closers.append(reader.close)
        self._csv_block = block
        return reader

    def _csv_batches(self, reader: Any) -> Iterator[pa.RecordBatch]:
        """The CSV's batches; a row longer than a block re-reads the file with larger blocks,
        skipping the rows already produced."""
        produced = 0
        while True:
            skip = produced
            try:
                for batch in reader:
                    if skip >= batch.num_rows:
                        skip -= batch.num_rows
                        continue
                    if skip:
                        batch, skip = batch.slice(skip), 0
                    produced += batch.num_rows
                    yield batch
                return
            except pa.ArrowInvalid as exc:
                if _STRADDLING not in str(exc):
                    raise
                block = _bigger_block(self.path, self._csv_block, produced + 1)
                self.close()
                reader = self._open_csv(block)

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


def private_temp(target: str | os.PathLike[str]) -> str:
    """A new, empty temporary file next to `target` (`.NAME.xxxxxxxx.tmp`), readable by its
    owner only (0600) from the start, so no other user can read the output while it is written."""
    path = Path(_name(target))
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # pragma: no cover - 32 random bits already taken
            continue
        os.close(fd)
        return tmp


def _umask_mode() -> int:
    """The mode a new file gets by default: 0666 less the process's umask."""
    mask = os.umask(0o077)
    os.umask(mask)
    return 0o666 & ~mask


def move_into_place(tmp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Rename the finished temporary file `tmp` to `target`, durably and without widening
    access: the file gets the mode of the file it replaces (a 0600 output stays 0600) or, when
    there is none, the usual mode of a new file (0666 less the umask, as `cp` or a shell
    redirection would give); its data is flushed to disk (fsync) before the rename and the
    folder's entry after it, so a crash leaves the old file or the new one, never a torn one."""
    tmp, target = os.fspath(tmp), _name(target)
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = _umask_mode()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    try:
        folder = os.open(os.path.dirname(os.path.abspath(target)), os.O_RDONLY)
    except OSError:  # pragma: no cover - folders that cannot be opened (some platforms)
        return
    try:
        os.fsync(folder)
    except OSError:  # pragma: no cover - file systems without fsync on folders
        pass
    finally:
        os.close(folder)


def json_texts(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Nested values (structs, lists, maps) as their JSON text, so that they can be scanned
    and masked as text (`{"email": "a@example.com", "tags": ["x"]}`); nulls stay null."""
    dumps = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode
    return pa.array([None if v is None else dumps(v) for v in values.to_pylist()], type=pa.string())


class BatchWriter:
    """Writes record batches to `path` through a temporary file renamed into place on `close`.

    Use it as a context manager: leaving the block with an exception (or calling `abort`)
    removes the temporary file and leaves any existing file at `path` untouched. The
    temporary file is owner-only while it is written; the finished file gets the mode of the
    file it replaces, or the umask's default for a new file (see `move_into_place`).
    """

    def __init__(
        self, path: str | os.PathLike[str], schema: pa.Schema, *, fmt: str | None = None
    ) -> None:
        self.path = _name(path)
        self.schema = schema
        self.rows = 0
        target = Path(self.path)
        if target.is_dir():
            raise DataError(f"{self.path}: is a folder; give a file name to write")
        if not target.parent.is_dir():
            raise DataError(f"{self.path}: folder {str(target.parent)!r} does not exist")
        self.format = detect_format(path, fmt)
        self.tmp = ""
        self._writer: Any = None
        self._sink: Any = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        try:
            self.tmp = private_temp(self.path)
            self._open()
        except (OSError, pa.ArrowException) as exc:
            self.abort()
            raise DataError(f"{self.path}: cannot write: {str(exc).splitlines()[0]}") from None

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
            raise DataError(f"{self.path}: cannot write: {str(exc).splitlines()[0]}") from None
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
                raise DataError(f"{self.path}: cannot write: {str(exc).splitlines()[0]}") from None
            self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        if self.tmp and os.path.exists(self.tmp):
            try:
                move_into_place(self.tmp, self.path)
            except OSError as exc:
                self.abort()
                raise DataError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
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


def check_distinct(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Refuse to write a job's output over its input (`x.csv` and `./x.csv`, links too)."""
    src, dst = _name(source), _name(target)
    if src == "-" or dst == "-":
        return
    try:
        same = os.path.samefile(src, dst)
    except OSError:  # one of them does not exist yet
        same = os.path.realpath(src) == os.path.realpath(dst)
    if same:
        raise DataError(
            f"{dst}: is the input file too; write to another file (it would replace the source)"
        )


def write_table(path: str | os.PathLike[str], table: pa.Table, *, fmt: str | None = None) -> None:
    """Write a whole table atomically (see `BatchWriter`)."""
    with BatchWriter(path, table.schema, fmt=fmt) as writer:
        writer.write(table)
