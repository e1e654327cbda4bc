"""Streaming readers and writers of CSV, Parquet and JSONL files, in Arrow record batches.

Memory stays flat in file size: files are read a block at a time and written batch by batch. A
writer writes to a temporary file next to its target and renames it into place only when the
job succeeded, so a failed or interrupted job leaves the old file as it was.

CSV columns are read as strings, exactly as written (no type guessing: ZIP codes keep their
leading zeros, ids are not turned into floats) and empty fields read as empty strings; written
CSV quotes every text value (pyarrow's writer). JSONL column types are inferred from the first
16 MiB. Only Parquet keeps field metadata, and so the columns' classification tags; CSV and JSONL
files have nowhere to keep them.

Readers and writers also work on file objects (`opener`, `Encoder`), so object storage (fsspec)
reuses the same formats: `lockgate.io.files` builds its local and S3 datasets on them.
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
from typing import IO, Any

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


Opener = Callable[[], IO[bytes]]
"""Opens the data afresh: a new binary file object at its start (e.g. an fsspec file)."""

TEMP_MARK = ".lockgate-"
"""Temporary files are named `.NAME.lockgate-xxxxxxxx.tmp`: a write killed by SIGKILL leaves one
behind, and the name says whose it is and that it is never the dataset itself."""


NAME_MAX = 255
"""The longest file name, in bytes, that common file systems take."""


def _name(path: str | os.PathLike[str]) -> str:
    return os.fspath(path)


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of lockgate's temporary files (`.NAME.lockgate-xxxx.tmp`)."""
    base = os.path.basename(name)
    return base.startswith(".") and base.endswith(".tmp") and TEMP_MARK in base


def detect_format(
    path: str | os.PathLike[str], fmt: str | None = None, *, local: bool = True
) -> str:
    """The file's format: `fmt` when given, else from its extension (`.csv`, `.parquet`...).
    `local=False`: `path` only names the data (an object key), so no local folder is checked."""
    if fmt is not None:
        wanted = fmt.lower().lstrip(".")
        wanted = {"pq": "parquet", "ndjson": "jsonl"}.get(wanted, wanted)
        if wanted not in FORMATS:
            raise DataError(f"unknown file format {fmt!r}; use one of {', '.join(FORMATS)}")
        return wanted
    if local and os.path.isdir(_name(path)):
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


def _open_error(
    path: str | os.PathLike[str],
    exc: BaseException,
    *,
    label: str | None = None,
    local: bool = True,
) -> DataError:
    """An OSError or Arrow error raised while reading `path`, as one line naming the file
    (`label` when given). `local`: `path` is a local file, whose state explains an OSError."""
    where = _name(path)
    name = label or where
    if isinstance(exc, FileNotFoundError) or (
        local and isinstance(exc, OSError) and not os.path.exists(where)
    ):
        return DataError(f"{name}: no such file")
    if isinstance(exc, IsADirectoryError) or (local and os.path.isdir(where)):
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


def _csv_reader(stream: Any, block: int, names: Sequence[str] | None) -> Any:
    """A pyarrow CSV reader of `stream` parsing `block` bytes at a time; the columns `names`
    are read as text (None: let pyarrow infer, enough to read the header)."""
    convert = None
    if names is not None:
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


def _bigger_block(name: str, block: int, row: int) -> int:
    """The next block size to try for a CSV row longer than `block` bytes, or an error."""
    if block >= CSV_MAX_BLOCK:
        raise DataError(
            f"{name}: CSV row {row} (line {row + 1} if no value spans lines) is longer "
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

    Messages name the file by `label` (default: the path). With `opener`, the data is read
    from the file objects it returns (object storage) instead of the local file `path`, which
    then only names it (format, compression); `size` is its size in bytes. `parquet_buffer`
    is the read-ahead per Parquet column (each read is a request on object storage).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fmt: str | None = None,
        batch_rows: int = BATCH_ROWS,
        merge: bool = True,
        label: str | None = None,
        opener: Opener | None = None,
        size: int | None = None,
        parquet_buffer: int = PARQUET_BUFFER,
    ) -> None:
        self.path = _name(path)
        self.name = label or self.path
        self.format = detect_format(path, fmt)
        self.batch_rows = max(1, batch_rows)
        self.merge = merge
        self.done = 0
        self.num_rows: int | None = None
        self._opener = opener
        self._parquet_buffer = parquet_buffer
        self._closers: list[Callable[[], object]] = []
        try:
            self.total = size if size is not None else os.path.getsize(self.path)
            self._batches = self._open()
        except (OSError, pa.ArrowException) as exc:
            self.close()
            raise self._error(exc) from None
        try:
            check_unique_names(self.name, self.schema.names)
        except DataError:
            self.close()
            raise

    def _error(self, exc: BaseException) -> DataError:
        return _open_error(self.path, exc, label=self.name, local=self._opener is None)

    def _source(self) -> Any:
        """The file to read: the local path, or a new file object from the opener."""
        if self._opener is None:
            return self.path
        handle = self._opener()
        self._closers.append(handle.close)
        return handle

    def _stream(self) -> Any:
        """A new input stream of the file's bytes, decompressed."""
        stream = pa.input_stream(self._source(), compression=_compression(self.path))
        self._closers.append(stream.close)
        return stream

    def _csv_names(self) -> list[str]:
        """The CSV header's column names (read with growing blocks if a row is very long)."""
        block = 1 << 16
        while True:
            stream = self._stream()
            try:
                reader = _csv_reader(stream, block, None)
                names: list[str] = reader.schema.names
                reader.close()
                return names
            except pa.ArrowInvalid as exc:
                if _STRADDLING not in str(exc):
                    raise
                block = _bigger_block(self.name, block, 1)
            finally:
                stream.close()

    def _open(self) -> Iterator[pa.RecordBatch]:
        if self.format == "parquet":
            # pre_buffer would keep every row group read so far in its cache: memory would grow
            # with the file. Without it, each column is streamed through a small buffer.
            parquet = pq.ParquetFile(
                self._source(), pre_buffer=False, buffer_size=self._parquet_buffer
            )
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
        stream = self._stream()
        reader = pajson.open_json(stream, read_options=pajson.ReadOptions(block_size=JSON_BLOCK))
        self._closers.append(reader.close)
        self.schema = reader.schema
        return iter(reader)

    def _open_csv(self, block: int) -> Any:
        names = self._csv_names()
        reader = _csv_reader(self._stream(), block, names)
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
                block = _bigger_block(self.name, self._csv_block, produced + 1)
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
            raise self._error(exc) from None
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
    """A new, empty temporary file next to `target` (`.NAME.lockgate-xxxxxxxx.tmp`, see
    `TEMP_MARK`), readable by its owner only (0600) from the start, so no other user can read
    the output while it is written. A name too long for that is shortened (a file name is at
    most 255 bytes)."""
    path = Path(_name(target))
    while True:
        suffix = f"{TEMP_MARK}{secrets.token_hex(4)}.tmp"
        base = f".{path.name}"
        while len(os.fsencode(base + suffix)) > NAME_MAX:
            base = base[:-1]
        tmp = str(path.parent / (base + suffix))
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


class Encoder:
    """Encodes record batches of `schema` as CSV, Parquet or JSONL into an open output stream
    (a local temporary file, an object-storage upload), batch by batch.

    `header=False` leaves out the CSV header (rows appended after existing ones). `finish`
    completes the format (Parquet's footer) and leaves the stream open: its owner closes it.
    Errors are the libraries' own (OSError, Arrow errors); the owner words them.
    """

    def __init__(self, sink: Any, schema: pa.Schema, fmt: str, *, header: bool = True) -> None:
        self.schema = schema
        self.format = fmt
        self.rows = 0
        self._sink = sink
        self._writer: Any = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        if fmt == "parquet":
            self._writer = pq.ParquetWriter(sink, schema)
        elif fmt == "csv":
            self._writer = pacsv.CSVWriter(
                sink,
                schema.remove_metadata(),
                write_options=pacsv.WriteOptions(quoting_style="needed", include_header=header),
            )

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Append the rows of a batch (or table) whose schema is the encoder's."""
        if not batch.num_rows:
            return
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

    def finish(self) -> None:
        """Write what is pending and the format's trailer; the stream stays open."""
        if self._writer is not None:
            self._flush()
            writer, self._writer = self._writer, None
            writer.close()

    def discard(self) -> None:
        """Drop the encoder: the output is being thrown away (its stream may be closed
        already), so errors closing the format's writer do not matter."""
        self._pending = []
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()


class BatchWriter:
    """Writes record batches to `path` through a temporary file renamed into place on `close`.

    Use it as a context manager: leaving the block with an exception (or calling `abort`)
    removes the temporary file and leaves any existing file at `path` untouched. The
    temporary file is owner-only while it is written; the finished file gets the mode of the
    file it replaces, or the umask's default for a new file (see `move_into_place`). Messages
    name the file by `label` (default: the path).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: pa.Schema,
        *,
        fmt: str | None = None,
        label: str | None = None,
    ) -> None:
        self.path = _name(path)
        self.name = label or self.path
        self.schema = schema
        target = Path(self.path)
        if target.is_dir():
            raise DataError(f"{self.name}: is a folder; give a file name to write")
        if not target.parent.is_dir():
            raise DataError(f"{self.name}: folder {str(target.parent)!r} does not exist")
        self.format = detect_format(path, fmt)
        self.tmp = ""
        self._sink: Any = None
        self._encoder: Encoder | None = None
        try:
            self.tmp = private_temp(self.path)
            compression = None if self.format == "parquet" else _compression(self.path)
            self._sink = pa.output_stream(self.tmp, compression=compression)
            self._encoder = Encoder(self._sink, schema, self.format)
        except (OSError, pa.ArrowException) as exc:
            self.abort()
            raise self._error(exc) from None
        except BaseException:  # e.g. SIGTERM's SystemExit right after the temp file was made
            self.abort()
            raise

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self._encoder.rows if self._encoder is not None else 0

    def _error(self, exc: BaseException) -> DataError:
        if isinstance(exc, OSError) and exc.strerror:
            return DataError(f"{self.name}: cannot write: {exc.strerror}")
        return DataError(f"{self.name}: cannot write: {str(exc).splitlines()[0]}")

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Append the rows of a batch (or table) whose schema is the writer's."""
        if self._encoder is None:
            raise DataError(f"{self.name}: cannot write: the writer is closed")
        try:
            self._encoder.write(batch)
        except (OSError, pa.ArrowException, TypeError, ValueError) as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        """Finish the file and move it into place (replacing any file there)."""
        try:
            if self._encoder is not None:
                self._encoder.finish()
            if self._sink is not None:
                self._sink.close()
                self._sink = None
            if self.tmp and os.path.exists(self.tmp):
                move_into_place(self.tmp, self.path)
        except (OSError, pa.ArrowException) as exc:
            self.abort()
            raise self._error(exc) from None
        self.tmp = ""

    def abort(self) -> None:
        """Drop what was written; the target is left as it was."""
        if self._encoder is not None:
            self._encoder.discard()
        if self._sink is not None:
            with contextlib.suppress(OSError, pa.ArrowException):
                self._sink.close()
            self._sink = None
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
