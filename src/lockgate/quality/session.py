"""The DuckDB connection checks run in: the data as the table `data`, referenced datasets as
`ref_N`, external access off once they are loaded.

A `pyarrow.Table` is scanned in place (zero copy). A reader can be read only once, so it is
spooled into a DuckDB table in one pass, batch by batch (DuckDB spills to a private temporary
folder past its memory limit, so a dataset larger than memory is fine); no row ever becomes a
Python object. The spill folder (0700) is made in the folder the caller gives (tasks give the
project's private `.lockgate/tmp`), else in the system's temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from lockgate.errors import LockgateError, describe
from lockgate.quality.examples import Masker

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

MEMORY_LIMIT = "512MB"
"""DuckDB's memory for one run of checks; past it, spooled data and joins spill to disk."""

SPOOL_ROWS = 262_144
SPOOL_BYTES = 64 << 20
"""A reader's batches are inserted into DuckDB this many rows (or bytes) at a time: each
INSERT has a fixed cost of tens of milliseconds, so one per small batch would dominate."""

_LITERAL = re.compile(r"'(?:[^']|'')*'")


def quote(name: str) -> str:
    """`name` as a DuckDB identifier (any text is safe)."""
    return '"' + name.replace('"', '""') + '"'


def as_arrow(data: object) -> pa.Table | pa.RecordBatchReader:
    """`data` as a table or a one-pass reader: a `pyarrow.Table`, `RecordBatch`,
    `RecordBatchReader`, a lockgate `Reader`, or anything exporting an Arrow stream (polars,
    pandas)."""
    import pyarrow as pa

    if isinstance(data, pa.Table | pa.RecordBatchReader):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "schema") and hasattr(data, "__iter__") and isinstance(data.schema, pa.Schema):
        return pa.RecordBatchReader.from_batches(data.schema, iter(data))
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data)
    raise TypeError(
        f"expected an Arrow table or a reader of record batches, got {type(data).__name__}"
    )


class Session:
    """One DuckDB connection holding the data; use as a context manager."""

    def __init__(
        self,
        data: pa.Table | pa.RecordBatchReader,
        tags: Mapping[str, str | None],
        *,
        memory_limit: str = MEMORY_LIMIT,
        temp_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        import duckdb

        self.data = data
        self.schema: pa.Schema = data.schema
        self.masker = Masker(tags)
        self._folder = tempfile.mkdtemp(prefix="lockgate-quality-", dir=temp_dir)  # 0700
        try:
            self.con: duckdb.DuckDBPyConnection = duckdb.connect(":memory:")
            folder = self._folder.replace("'", "''")
            self.con.execute(f"SET temp_directory = '{folder}'")
            self.con.execute("SET memory_limit = ?", [memory_limit])
            self.con.execute("SET preserve_insertion_order = false")
            self.con.execute("SET TimeZone = 'UTC'")
        except BaseException:
            shutil.rmtree(self._folder, ignore_errors=True)
            raise
        self._refs = 0
        self._types: dict[str, str] | None = None
        self.loaded = False

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)

    def load(self) -> None:
        """Make the data the table `data` (a reader is read here, once)."""
        import pyarrow as pa

        if self.loaded:
            return
        if isinstance(self.data, pa.Table):
            self.con.register("data", self.data)
        else:
            self._spool(self.data, "data", "*")
        self.loaded = True

    def _spool(self, reader: pa.RecordBatchReader, name: str, select: str) -> None:
        """Copy a reader into the DuckDB table `name`, a batch at a time, pulled in this thread
        (a source may belong to it, like an sqlite3 connection); `select` picks its columns."""
        import pyarrow as pa

        staging = f"lockgate_{name}_batch"
        self.con.register(staging, pa.Table.from_batches([], reader.schema))
        self.con.execute(f"CREATE TABLE {name} AS SELECT {select} FROM {staging}")
        pending: list[pa.RecordBatch] = []
        rows = size = 0

        def flush() -> None:
            self.con.register(staging, pa.Table.from_batches(pending, reader.schema))
            self.con.execute(f"INSERT INTO {name} SELECT {select} FROM {staging}")
            pending.clear()

        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            size += batch.nbytes
            if rows >= SPOOL_ROWS or size >= SPOOL_BYTES:
                flush()
                rows = size = 0
        if pending:
            flush()
        self.con.unregister(staging)

    def add_reference(
        self, source: pa.Table | pa.RecordBatchReader, columns: tuple[str, ...]
    ) -> str:
        """Load the key columns of a referenced dataset; the name of its table."""
        import pyarrow as pa

        self._refs += 1
        name = f"ref_{self._refs}"
        if isinstance(source, pa.Table):
            self.con.register(name, source)
            return name
        self._spool(source, name, ", ".join(quote(c) for c in columns))
        return name

    def lock(self) -> None:
        """No file, network or settings access for the checks' queries (custom SQL included)."""
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")

    def column_type(self, column: str) -> str:
        """DuckDB's type of a column of `data` (e.g. `VARCHAR`, `BIGINT`)."""
        if self._types is None:
            rows = self.con.execute("DESCRIBE data").fetchall()
            self._types = {str(r[0]): str(r[1]) for r in rows}
        return self._types.get(column, "VARCHAR")

    def scalars(self, sql: str, params: list[Any]) -> tuple[Any, ...]:
        """The one row of an aggregate query."""
        found = self.con.execute(sql, params).fetchall()
        return tuple(found[0]) if found else ()

    def table(self, sql: str, params: list[Any]) -> pa.Table:
        """A query's rows as Arrow (never as Python rows first)."""
        return self.con.sql(sql, params=params or None).to_arrow_table()

    def failure(self, exc: BaseException) -> str:
        """A query's error as one line; text literals hidden when the data is classified, since
        an error may quote a value (`Could not convert string '...'`)."""
        text = str(exc) if isinstance(exc, LockgateError) else describe(exc)
        text = text.splitlines()[0] if text else type(exc).__name__
        if self.masker.any_raw:
            text = _LITERAL.sub("'***'", text)
        return text
