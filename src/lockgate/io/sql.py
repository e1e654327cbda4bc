"""SQL datasets: `sqlite:///path.db#table` and `postgresql://user:pw@host:port/db#schema.table`
(or a query, with the dataset's `query`), read and written as Arrow record batches through
ADBC, the drivers' Arrow-native fast path.

Reads stream (memory flat in table size). Every write is one transaction, so readers see the
old rows until the commit and a failure, an abort or a killed process leaves the table as it
was. An existing table keeps its definition in every mode (keys, constraints, indexes, grants,
triggers, views on it): the data must have its columns (by name) and is cast to their types.

- overwrite deletes the table's rows and inserts the new ones (DELETE, not TRUNCATE, so
  PostgreSQL readers are not blocked); a missing table is filled under a temporary name and
  renamed at commit;
- append inserts into the table (created when missing);
- upsert fills a temporary staging table, checks that no key is null or repeated, then
  `INSERT ... SELECT ... ON CONFLICT (keys) DO UPDATE` sets every other column; the table needs
  a unique index on the keys (lockgate creates one whenever it creates a table and keys are
  given).

SQL datasets take no `options`. SQLite locking (WAL for files lockgate creates, deferred
writes to rollback-journal files) is described in sql_sqlite.py.

SQL tables cannot carry classification tags: the reader puts the dataset's declared `tags` on
its schema, and the task layer records them in the store. The dialects live in sql_sqlite.py and
sql_postgres.py, the type mapping in sql_types.py, the error messages in sql_errors.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

import pyarrow as pa

from lockgate.errors import DataError
from lockgate.io.base import BATCH_ROWS, AtomicWriter, ClosingReader, WriteResult
from lockgate.io.dataset import Dataset, check_mode, display
from lockgate.io.schemas import declared
from lockgate.io.sql_threads import Background, Prefetch
from lockgate.io.sql_types import (
    Column,
    Table,
    check_names,
    check_storable,
    conform,
    match_table,
    quote,
    rechunk,
)


class Dialect(Protocol):
    """What sql_sqlite.SQLite and sql_postgres.PostgreSQL provide."""

    dialect: str
    where: str
    secret: str | None
    """The password, kept out of every message."""
    deferred: bool
    """After `connect(write=True)`: the rows go to a staging table and reach the table only
    at commit, after `lock` (SQLite files in rollback-journal mode)."""

    def table(self, text: str | None) -> Table: ...
    def connect(self, *, write: bool) -> Any: ...
    def commit(self, conn: Any, cur: Any) -> None: ...
    def rollback(self, conn: Any, cur: Any) -> None: ...
    def discard(self) -> None: ...
    def lock(self, cur: Any) -> None: ...
    def write_error(self, exc: BaseException) -> DataError: ...
    def columns(self, cur: Any, table: Table, schema: pa.Schema) -> list[Column] | None: ...
    def new_column(self, field: pa.Field) -> Column: ...
    def create(self, cur: Any, table: Table, columns: list[Column], *, temporary: bool) -> None: ...
    def staging(self, cur: Any, table: Table, columns: list[Column]) -> Table: ...
    def drop_staging(self, cur: Any, stage: Table) -> None: ...
    def temporary_name(self, table: Table) -> Table: ...
    def replace(self, cur: Any, new: Table, table: Table) -> None: ...
    def index_name(self, table: Table) -> str: ...
    def ingest(self, cur: Any, table: Table, batch: pa.RecordBatch, *, temporary: bool) -> None: ...
    def read(
        self, cur: Any, table: Table | None, query: str | None, batch_rows: int
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]: ...


def dialect_for(dataset: Dataset) -> Dialect:
    """The dialect object for an `sqlite` or `postgresql` dataset."""
    location = dataset.location
    where = display(dataset.uri)
    if location.kind == "sqlite":
        from lockgate.io.sql_sqlite import SQLite

        return SQLite(where, location.path)
    if location.kind == "postgresql":
        from lockgate.io.sql_postgres import PostgreSQL

        return PostgreSQL(where, location.url)
    raise DataError(f"{where}: not an SQL dataset (sqlite:/// or postgresql://)")


def _close(handle: Any) -> None:
    """Close a cursor or connection; after a failure, closing must not hide the failure."""
    with contextlib.suppress(Exception):
        handle.close()


def check_options(dataset: Dataset, where: str) -> None:
    """DataError for any option: SQL datasets take none (a query goes in `query`)."""
    for key in dataset.options or {}:
        raise DataError(
            f"{where}: unknown option {key!r} for an SQL dataset; an SQL dataset takes no "
            "options (a query goes in `query`, the table after # in the URI)"
        )


class SqlReader(ClosingReader):
    """A table or query being read: `schema` first, then record batches of at most
    `batch_rows` rows, once."""

    def __init__(self, dataset: Dataset, *, batch_rows: int = BATCH_ROWS) -> None:
        if batch_rows < 1:
            raise DataError(f"{display(dataset.uri)}: batch_rows must be at least 1")
        self.dataset = dataset
        sql = dialect_for(dataset)
        check_options(dataset, sql.where)
        location = dataset.location
        if dataset.query is None and location.table is None:
            sql.table(None)  # the "name the table" error
        table = sql.table(location.table) if dataset.query is None else None
        self._conn = sql.connect(write=False)
        self._cur = self._conn.cursor()  # the stream lives as long as its cursor
        try:
            schema, batches = sql.read(self._cur, table, dataset.query, batch_rows)
        except BaseException:
            _close(self._cur)
            _close(self._conn)
            raise
        try:
            self._schema = declared(schema, dataset.tags, sql.where)
        except BaseException:
            _close(self._cur)
            _close(self._conn)
            raise
        self._batches = rechunk(batches, batch_rows)
        self._prefetch: Prefetch | None = None
        self._used = False

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self._used:
            raise DataError(f"{display(self.dataset.uri)}: a reader can be iterated only once")
        self._used = True
        self._prefetch = Prefetch(self._batches)  # the next batches come while this one goes
        try:
            for batch in self._prefetch:
                yield pa.RecordBatch.from_arrays(batch.columns, schema=self._schema)
        finally:
            self.close()

    def __del__(self) -> None:
        # a reader dropped unread still closes its connection
        with contextlib.suppress(Exception):
            self.close()

    def close(self) -> None:
        if self._prefetch is not None:
            self._prefetch.close()
            self._prefetch = None
        if self._conn is not None:
            _close(self._cur)
            _close(self._conn)
            self._conn = None


class SqlWriter(AtomicWriter):
    """A table being written in one transaction: nothing is visible until `commit()`."""

    def __init__(
        self,
        dataset: Dataset,
        schema: pa.Schema,
        *,
        mode: str = "overwrite",
        keys: tuple[str, ...] = (),
    ) -> None:
        check_mode(mode, keys)
        self.dataset = dataset
        self.mode = mode
        self.keys = tuple(keys)
        self.rows = 0
        self._sql = sql = dialect_for(dataset)
        self.where = sql.where
        check_options(dataset, self.where)
        if dataset.query is not None:
            raise DataError(f"{self.where}: a query cannot be written to; name a table with #")
        self.table = sql.table(dataset.location.table)
        check_storable(schema, self.where)
        check_names(schema, self.keys, self.where)
        declared(schema, dataset.tags, self.where)  # tags must name columns of the data
        self._schema = schema
        self._result: WriteResult | None = None
        self._done = False
        self._pipe: Background | None = None
        self._conn = sql.connect(write=True)
        self._cur = self._conn.cursor()
        try:
            self._prepare(schema)
            # inserts run in a worker thread while the caller reads the next batch
            self._pipe = Background(self._ingest)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, DataError) or not isinstance(exc, Exception):
                raise
            raise sql.write_error(exc) from None

    def _prepare(self, schema: pa.Schema) -> None:
        """Check the table (or plan its creation) and open what the rows go into, inside the
        transaction (a deferred SQLite write: a temporary table, checked again at commit)."""
        sql, cur = self._sql, self._cur
        self._stage: Table | None = None
        self._existing = existing = sql.columns(cur, self.table, schema)
        if existing is None:
            self.columns = [sql.new_column(f) for f in schema]
        else:
            # every mode writes into the table as it is: keys, constraints, indexes, grants,
            # triggers stay; the data is cast to its column types
            self.columns = match_table(schema, existing, self.where, str(self.table))
            if self.mode == "upsert":
                self._check_conflict_target()
        self.target = self.table
        if sql.deferred:  # everything happens at commit
            self._stage = self.target = sql.staging(cur, self.table, self.columns)
            return
        if existing is None:
            if self.mode == "overwrite":  # filled under another name, renamed at commit
                self.target = sql.temporary_name(self.table)
                sql.create(cur, self.target, self.columns, temporary=False)
                return
            sql.create(cur, self.table, self.columns, temporary=False)
            if self.keys:
                self._index()
        elif self.mode == "overwrite":  # readers keep the old rows until the commit
            cur.execute(f"DELETE FROM {self.table.sql}")
        if self.mode == "upsert":
            self._stage = self.target = sql.staging(cur, self.table, self.columns)

    def _index(self) -> None:
        keys = ", ".join(quote(k) for k in self.keys)
        self._cur.execute(
            f"CREATE UNIQUE INDEX {quote(self._sql.index_name(self.table))} "
            f"ON {self.table.sql} ({keys})"
        )

    def _check_conflict_target(self) -> None:
        """A zero-row upsert: the database says now, not after the data, whether the table
        has the unique index the upsert needs."""
        try:
            self._cur.execute(self._upsert_sql(self.table, "1 = 0"))
        except Exception as exc:
            if "ON CONFLICT" not in str(exc):
                raise
            keys = ", ".join(self.keys)
            index = self._sql.index_name(self.table)
            raise DataError(
                f"{self.where}: upsert needs a unique index on ({keys}) of table {self.table}, "
                f"which has none; create one (CREATE UNIQUE INDEX {index} ON {self.table} "
                f"({keys})) or write with mode append or overwrite"
            ) from None

    def _check_keys(self, stage: Table) -> None:
        """DataError when rows to upsert have a null key or share a key: a null key never
        matches (the row would be added again on every run) and two rows for one key leave
        the result to chance."""
        cur = self._cur
        null = " OR ".join(f"{quote(k)} IS NULL" for k in self.keys)
        keys = ", ".join(quote(k) for k in self.keys)
        cur.execute(f"SELECT CAST(count(*) AS BIGINT) FROM {stage.sql} WHERE {null}")
        nulls = int(cur.fetchone()[0] or 0)
        cur.execute(
            "SELECT CAST(count(*) AS BIGINT), CAST(coalesce(sum(n), 0) AS BIGINT) FROM "
            f"(SELECT count(*) AS n FROM {stage.sql} WHERE NOT ({null}) GROUP BY {keys} "
            "HAVING count(*) > 1) AS repeated"
        )
        shared, rows = (int(v or 0) for v in cur.fetchone())
        problems = []
        if nulls:
            problems.append(f"{nulls} row(s) have a null key")
        if shared:
            problems.append(f"{rows} row(s) share {shared} key value(s)")
        if problems:
            raise DataError(
                f"{self.where}: upsert needs exactly one row per key ({', '.join(self.keys)}) "
                f"and no null keys, but {' and '.join(problems)}; drop or fill the null keys "
                "and keep one row per key in the data"
            )

    def _upsert_sql(self, source: Table, where: str) -> str:
        cols = ", ".join(quote(c.name) for c in self.columns)
        updates = [
            f"{quote(c.name)} = excluded.{quote(c.name)}"
            for c in self.columns
            if c.name not in self.keys
        ]
        action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
        return (
            f"INSERT INTO {self.table.sql} ({cols}) SELECT {cols} FROM {source.sql} "
            f"WHERE {where} ON CONFLICT ({', '.join(quote(k) for k in self.keys)}) {action}"
        )

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Add a batch (or table) of the writer's schema; not visible until commit."""
        if self._done:
            raise DataError(f"{self.where}: the write is already finished")
        batches = batch.to_batches() if isinstance(batch, pa.Table) else [batch]
        try:
            for one in batches:
                if not one.num_rows:
                    continue
                assert self._pipe is not None
                self._pipe.put(conform(one, self.columns, self.where))
                self.rows += one.num_rows
        except DataError:
            self.abort()
            raise
        except Exception as exc:
            self.abort()
            raise self._sql.write_error(exc) from None

    def _ingest(self, data: pa.RecordBatch) -> None:
        self._sql.ingest(self._cur, self.target, data, temporary=self._stage is not None)

    def _apply_deferred(self) -> None:
        """A deferred write's commit: lock the file, check the table did not change since the
        write began, then move the staged rows in."""
        sql, cur, stage = self._sql, self._cur, self._stage
        assert stage is not None
        sql.lock(cur)
        if sql.columns(cur, self.table, self._schema) != self._existing:
            raise DataError(
                f"{self.where}: table {self.table} was created, dropped or altered by someone "
                "else while lockgate wrote it; nothing was written: retry"
            )
        if self._existing is None:
            sql.create(cur, self.table, self.columns, temporary=False)
            if self.keys:
                self._index()
        elif self.mode == "overwrite":
            cur.execute(f"DELETE FROM {self.table.sql}")
        if self.mode != "upsert":
            cols = ", ".join(quote(c.name) for c in self.columns)
            cur.execute(f"INSERT INTO {self.table.sql} ({cols}) SELECT {cols} FROM {stage.sql}")

    def commit(self) -> WriteResult:
        """Make the write visible (once; later calls return the same result)."""
        if self._result is not None:
            return self._result
        if self._done:
            raise DataError(f"{self.where}: the write was aborted; nothing to commit")
        sql, cur = self._sql, self._cur
        try:
            assert self._pipe is not None
            self._pipe.finish()
            if sql.deferred:
                self._apply_deferred()
            elif self.mode == "overwrite" and self._existing is None:
                sql.replace(cur, self.target, self.table)
                if self.keys:
                    self._index()
            if self.mode == "upsert" and self._stage is not None:
                self._check_keys(self._stage)
                cur.execute(self._upsert_sql(self._stage, "1 = 1"))
            if self._stage is not None:
                sql.drop_staging(cur, self._stage)
            sql.commit(self._conn, self._cur)
        except Exception as exc:
            self.abort()
            if isinstance(exc, DataError):
                raise
            raise sql.write_error(exc) from None
        self._done = True
        _close(self._cur)
        _close(self._conn)
        self._result = WriteResult(self.where, self.rows, self.mode)
        return self._result

    def abort(self) -> None:
        """Roll back: the table stays as it was (nothing after a commit)."""
        if self._done:
            return
        self._done = True
        if self._pipe is not None:
            self._pipe.stop()
        with contextlib.suppress(Exception):  # a broken connection rolls back on its own
            self._sql.rollback(self._conn, self._cur)
        _close(self._cur)
        _close(self._conn)
        self._sql.discard()

    def __del__(self) -> None:
        # a writer dropped without commit or abort writes nothing
        with contextlib.suppress(Exception):
            if getattr(self, "_conn", None) is not None:
                self.abort()


def open_reader(dataset: Dataset, *, batch_rows: int = BATCH_ROWS) -> SqlReader:
    """A reader of an SQL table or query; DataError naming the dataset when it cannot be read
    (no database file, unreachable server, refused credentials, no such table, bad query)."""
    return SqlReader(dataset, batch_rows=batch_rows)


def open_writer(
    dataset: Dataset,
    schema: pa.Schema,
    *,
    mode: str = "overwrite",
    keys: tuple[str, ...] = (),
) -> SqlWriter:
    """An atomic writer of an SQL table for batches of `schema` (one transaction)."""
    return SqlWriter(dataset, schema, mode=mode, keys=keys)
