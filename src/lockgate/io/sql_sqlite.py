"""SQLite through ADBC: how lockgate types its columns, reads them back, and writes them.

SQLite stores a value's own type, not the column's, and ADBC's SQLite driver guesses each
result column's Arrow type from the first rows it sees. So lockgate declares types it can read
back (BOOLEAN, DATE, TIMESTAMP, TIMESTAMPTZ, TIME, DECIMAL_TEXT(p,s): decimals as exact text)
and reads every column through a first row of the right storage class (dropped before it is
handed out), then converts text and integers to dates, timestamps, decimals and booleans in
Arrow. A column with no usable declared type is typed from the values it holds. A value that
does not fit its column's declared type (SQLite does not enforce it) is an error naming the
column, never a silently rounded or zeroed value.

Locking. A database file lockgate creates is switched to WAL mode (`PRAGMA journal_mode=WAL`)
once its first write is committed (that write goes through a rollback journal, which costs
nothing on a new file, where WAL would write every page twice). In WAL mode readers never block
a write and a write never blocks readers; the mode is persistent, so other tools then see a WAL
database with its -wal and -shm files (same host only, not on network file systems). lockgate
leaves the journal mode of other files alone. In rollback-journal mode a write would wait, page
by page, for every reader of the file (a long read in another process, or the reader of a copy
between two tables of the same file), so there the writer first fills a temporary table
(SQLite's temp database, which no other connection locks) and moves the rows into the file at
commit, in one `BEGIN EXCLUSIVE` transaction. Every lock wait is bounded by `BUSY_TIMEOUT_MS`;
a database that stays locked longer fails the write with a one-line error and is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import DataError
from lockgate.io.sql_errors import message, missing_table, query_error, write_error
from lockgate.io.sql_types import Column, Table, canonical_type, kind_of, literal, quote

BUSY_TIMEOUT_MS = 30_000
"""How long a statement waits for a lock another connection holds before giving up."""
STORAGE = {"integer": pa.int64(), "real": pa.float64(), "text": pa.string(), "blob": pa.binary()}
_SENTINEL = {"integer": "0", "real": "0.0", "text": "''", "blob": "X''"}
_DECIMAL = re.compile(r"^(?:DECIMAL_TEXT|DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$")
_SQL_TYPES = {
    "bool": "BOOLEAN",
    "int": "INTEGER",
    "float": "REAL",
    "string": "TEXT",
    "binary": "BLOB",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "time": "TIME",
    "null": "TEXT",
}
_WRITE_STORAGE = {
    "bool": pa.bool_(),
    "int": pa.int64(),
    "float": pa.float64(),
    "decimal": pa.string(),
    "string": pa.string(),
    "binary": pa.binary(),
    "date": pa.string(),
    "timestamp": pa.string(),
    "timestamptz": pa.string(),
    "time": pa.string(),
    "null": pa.string(),
}
"""What ADBC ingests for each kind: SQLite's own classes, ISO 8601 text for dates and times
(`2024-05-01 10:00:00.000000`, SQLite's own layout; tz-aware values in UTC). Arrow formats
the text: three times faster than the driver's per-value formatting."""


@dataclass(frozen=True)
class Declared:
    """What a declared column type means to lockgate: the kind, the Arrow type to hand out
    and the storage class the values have (None: look at the values)."""

    kind: str
    type: pa.DataType | None
    storage: str | None


def declared(decl: str) -> Declared:
    """Read a declared SQLite column type the way SQLite's affinity rules and lockgate's own
    type names say."""
    d = " ".join(decl.upper().split())
    base = d.split("(")[0].strip()
    if base in ("BOOLEAN", "BOOL"):
        return Declared("bool", pa.bool_(), "integer")
    if base == "DATE":
        return Declared("date", pa.date32(), "text")
    if base in ("DATETIME", "TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE"):
        return Declared("timestamp", pa.timestamp("us"), "text")
    if base in ("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"):
        return Declared("timestamptz", pa.timestamp("us", tz="UTC"), "text")
    if base == "TIME":
        return Declared("time", pa.time64("us"), "text")
    number = _DECIMAL.match(d)
    if number and base == "DECIMAL_TEXT":
        return Declared("decimal", _decimal(number), "text")
    if "INT" in d:
        return Declared("int", pa.int64(), "integer")
    if any(x in d for x in ("CHAR", "CLOB", "TEXT")):
        return Declared("string", pa.string(), "text")
    if "BLOB" in d:
        return Declared("binary", pa.binary(), "blob")
    if any(x in d for x in ("REAL", "FLOA", "DOUB")):
        return Declared("float", pa.float64(), "real")
    if number:
        return Declared("decimal", _decimal(number), None)
    return Declared("any", None, None)


def _decimal(match: re.Match[str]) -> pa.DataType:
    precision, scale = int(match.group(1)), int(match.group(2) or 0)
    precision = max(1, precision)
    return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)


def new_column(field: pa.Field) -> Column:
    """How a new SQLite table holds an Arrow field."""
    t = canonical_type(field.type)
    kind = kind_of(t)
    if kind == "decimal":
        return Column(field.name, kind, pa.string(), f"DECIMAL_TEXT({t.precision},{t.scale})")
    return Column(field.name, kind, _WRITE_STORAGE[kind], _SQL_TYPES[kind])


def existing_column(name: str, decl: str, field: pa.Field | None) -> Column:
    """How lockgate writes into an existing column (as `field`, the incoming data, when the
    declared type does not say)."""
    d = declared(decl)
    sql_type = decl or "no declared type"
    if d.kind == "any":
        incoming = new_column(field) if field is not None else None
        storage = incoming.storage if incoming is not None else pa.string()
        return Column(name, "any", storage, sql_type)
    if d.kind == "decimal":
        # values must fit the declared (p,s); NUMERIC affinity keeps numbers as integers or
        # doubles, DECIMAL_TEXT as exact text
        return Column(name, "decimal", pa.string(), sql_type, fit=d.type, numeric=d.storage is None)
    return Column(name, d.kind, _WRITE_STORAGE[d.kind], sql_type)


def _uri(path: str, mode: str) -> str:
    return f"{Path(path).as_uri()}?mode={mode}"


class SQLite:
    """The SQLite side of lockgate's SQL connector (one dataset)."""

    dialect = "sqlite"
    secret: str | None = None

    def __init__(self, where: str, path: str) -> None:
        self.where = where
        self.path = path
        self.created = False
        self.made_folder: str | None = None
        self.deferred = False
        """A writer of a rollback-journal file: rows go to a temporary table until commit."""

    def table(self, text: str | None) -> Table:
        if text is None:
            raise DataError(f"{self.where}: name the table: sqlite:///path.db#table")
        table = Table.parse(text)
        if table.schema not in (None, "main"):
            raise DataError(
                f"{self.where}: an SQLite database has no schema {table.schema!r}; "
                f"write #{table.name}"
            )
        return Table(table.name)

    # -- connections ------------------------------------------------------------------------

    def connect(self, *, write: bool) -> Any:
        import adbc_driver_sqlite.dbapi as sqlite

        folder = os.path.dirname(self.path) or "."
        if write and not os.path.isdir(folder):
            missing = folder
            while not os.path.isdir(os.path.dirname(missing) or "."):
                missing = os.path.dirname(missing)
            self.made_folder = missing  # removed again if the write does not happen
            try:  # like a file target: missing folders are created
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise DataError(
                    f"{self.where}: cannot create folder {folder}: {exc.strerror or exc}"
                ) from None
        if not write and not os.path.isfile(self.path):
            raise DataError(f"{self.where}: no SQLite database file at {self.path}; check the path")
        self.created = write and not os.path.exists(self.path)
        try:
            # readers open read-write (but never create): the first reader after a crash rolls
            # the dead writer's journal back
            conn = sqlite.connect(_uri(self.path, "rwc" if write else "rw"), autocommit=True)
        except Exception as exc:
            raise DataError(
                f"{self.where}: cannot open the SQLite database {self.path}: {message(exc)}"
            ) from None
        cur = conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_MS)}")
            cur.fetchall()
            if write and not self.created:  # a new file has no readers to wait for
                cur.execute("PRAGMA journal_mode")
                self.deferred = str(cur.fetchall()[0][0]).lower() != "wal"
            if not self.deferred:  # a deferred writer locks the file only at commit
                cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            cur.execute("SELECT count(*) FROM sqlite_master")  # not a database file: fail now
            cur.fetchall()
            cur.close()
        except Exception as exc:
            cur.close()
            conn.close()
            self.discard()
            if _busy(exc):
                raise self.locked() from None
            raise DataError(
                f"{self.where}: cannot open the SQLite database {self.path}: {message(exc)}"
            ) from None
        return conn

    def lock(self, cur: Any) -> None:
        """Start the commit of a deferred write: the file's write lock, readers gone."""
        cur.execute("BEGIN EXCLUSIVE")

    def locked(self) -> DataError:
        seconds = BUSY_TIMEOUT_MS / 1000
        return DataError(
            f"{self.where}: the database file stayed locked by another connection (a write, "
            f"or a long read in rollback-journal mode) for {seconds:g} s; retry when it is "
            "done, or switch the file to WAL mode (PRAGMA journal_mode=WAL), where reads never "
            "block a write"
        )

    def write_error(self, exc: BaseException) -> DataError:
        """A failed write as a one-line DataError."""
        return self.locked() if _busy(exc) else write_error(self.where, exc)

    def commit(self, conn: Any, cur: Any) -> None:
        cur.execute("COMMIT")
        if self.created:  # lockgate's own file: from now on reads and writes never wait
            with contextlib.suppress(Exception):  # another connection already: next time
                cur.execute("PRAGMA journal_mode = WAL")
                cur.fetchall()

    def rollback(self, conn: Any, cur: Any) -> None:
        cur.execute("ROLLBACK")

    def discard(self) -> None:
        """Remove the database file this writer created, when the write did not happen."""
        if self.created:
            for suffix in ("", "-journal", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.unlink(self.path + suffix)
            self.created = False
            if self.made_folder is not None:
                with contextlib.suppress(OSError):  # only while still empty
                    folder = os.path.dirname(self.path)
                    while len(folder) >= len(self.made_folder):
                        os.rmdir(folder)
                        folder = os.path.dirname(folder)
                self.made_folder = None

    # -- tables -----------------------------------------------------------------------------

    def _declared(self, cur: Any, relation: str, schema: str = "main") -> list[tuple[str, str]]:
        cur.execute(
            f"SELECT name, type FROM pragma_table_info({literal(relation)}, {literal(schema)})"
        )
        return [(str(n), str(t or "")) for n, t in cur.fetchall()]

    def columns(self, cur: Any, table: Table, schema: pa.Schema) -> list[Column] | None:
        """The existing table's columns (None when there is no such table)."""
        found = self._declared(cur, table.name)
        if not found:
            return None
        fields = {f.name: f for f in schema}
        return [existing_column(n, t, fields.get(n)) for n, t in found]

    def new_column(self, field: pa.Field) -> Column:
        return new_column(field)

    def create(self, cur: Any, table: Table, columns: list[Column], *, temporary: bool) -> None:
        body = ", ".join(f"{quote(c.name)} {c.sql_type}" for c in columns)
        cur.execute(f"CREATE {'TEMP ' if temporary else ''}TABLE {table.sql} ({body})")

    def staging(self, cur: Any, table: Table, columns: list[Column]) -> Table:
        """A temporary table (SQLite's temp database) with `columns`, as declared."""
        stage = Table(f"_lockgate_stage_{secrets.token_hex(4)}")
        self.create(cur, stage, columns, temporary=True)
        return stage

    def drop_staging(self, cur: Any, stage: Table) -> None:
        cur.execute(f"DROP TABLE temp.{stage.sql}")

    def temporary_name(self, table: Table) -> Table:
        return Table(f"_lockgate_new_{secrets.token_hex(4)}_{table.name}")

    def replace(self, cur: Any, new: Table, table: Table) -> None:
        cur.execute(f"DROP TABLE IF EXISTS {table.sql}")
        cur.execute(f"ALTER TABLE {new.sql} RENAME TO {quote(table.name)}")

    def index_name(self, table: Table) -> str:
        return f"{table.name}_lockgate_key"

    def ingest(self, cur: Any, table: Table, batch: pa.RecordBatch, *, temporary: bool) -> None:
        cur.adbc_ingest(table.name, batch, mode="append", temporary=temporary)

    # -- reading ----------------------------------------------------------------------------

    def read(
        self, cur: Any, table: Table | None, query: str | None, batch_rows: int
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The schema and batches of a table or a query, read in one transaction."""
        if query is not None:
            view = f"_lockgate_query_{secrets.token_hex(4)}"
            try:
                cur.execute(f"CREATE TEMP VIEW {quote(view)} AS {query.strip().rstrip(';')}")
                found = self._declared(cur, view, "temp")
            except Exception as exc:
                raise query_error(self.where, exc) from None
            source = f"temp.{quote(view)}"
        else:
            assert table is not None
            found = self._declared(cur, table.name)
            if not found:
                raise DataError(
                    f"{self.where}: no table {table} in {self.path}; check the name after #"
                )
            source = table.sql
        plans = [declared(t) for _, t in found]
        classes = self._probe(cur, source, [n for n, _ in found], plans)
        selects, sentinels, types, storages, convert = [], [], [], [], []
        wholes: list[str] = []
        whole_of: dict[int, int] = {}
        """Decimal columns holding integers and doubles: the integers again, exactly (their
        CAST to REAL keeps 53 bits), as extra columns after the table's."""
        for i, ((name, _), plan) in enumerate(zip(found, plans, strict=True)):
            storage, cast = plan.storage, False
            if storage is None:
                storage, cast = _storage_of(classes[name], plan.kind)
            logical = plan.type or STORAGE[storage]
            if plan.storage is None and storage not in ("integer", "real"):
                logical = STORAGE[storage]  # non-numbers in a DECIMAL column stay text
            column = quote(name)
            selects.append(f"CAST({column} AS {storage.upper()})" if cast else column)
            sentinels.append(f"{_SENTINEL[storage]} AS {column}")
            types.append(pa.field(name, logical))
            storages.append(STORAGE[storage])
            convert.append(_converter(STORAGE[storage], logical))
            if pa.types.is_decimal(logical) and storage == "real" and cast:
                whole_of[i] = len(found) + len(wholes)
                wholes.append(f"CASE WHEN typeof({column}) = 'integer' THEN {column} END")
                sentinels.append(f"0 AS {quote(f'_lockgate_whole_{i}')}")
        sql = (
            f"SELECT {', '.join(sentinels)} UNION ALL "
            f"SELECT {', '.join(selects + wholes)} FROM {source}"
        )
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
        try:
            cur.execute(sql)
            stream = cur.fetch_record_batch()
        except Exception as exc:
            raise self.read_error(exc, [n for n, _ in found], query) from None
        schema = pa.schema(types)
        batches = self._batches(stream, schema, storages, convert, found, query, whole_of)
        return schema, batches

    def _probe(
        self, cur: Any, source: str, names: list[str], plans: list[Declared]
    ) -> dict[str, set[str]]:
        """The storage classes each undeclared column holds (one pass over the data)."""
        wanted = [n for n, p in zip(names, plans, strict=True) if p.storage is None]
        if not wanted:
            return {}
        kinds = ("integer", "real", "text", "blob")
        parts = [f"coalesce(max(typeof({quote(n)}) = '{k}'), 0)" for n in wanted for k in kinds]
        cur.execute(f"SELECT {', '.join(parts)} FROM {source}")
        row = cur.fetchone()
        return {
            n: {k for j, k in enumerate(kinds) if row[i * len(kinds) + j]}
            for i, n in enumerate(wanted)
        }

    def _batches(
        self,
        stream: Any,
        schema: pa.Schema,
        storage: list[pa.DataType],
        convert: list[Callable[[Any], Any]],
        found: list[tuple[str, str]],
        query: str | None,
        whole_of: dict[int, int],
    ) -> Iterator[pa.RecordBatch]:
        names = [n for n, _ in found]
        declared_as = [f"declared {t}" if t else "no declared type" for _, t in found]
        first = True
        while True:
            try:
                batch = stream.read_next_batch()
            except StopIteration:
                return
            except Exception as exc:
                raise self.read_error(exc, names, query) from None
            if first:
                batch, first = batch.slice(1), False  # the typing row
            if not batch.num_rows:
                continue
            arrays = []
            for i, field in enumerate(schema):
                column = batch.column(i)
                if column.type != storage[i] and column.null_count < len(column):
                    raise self.mixed(names[i], f"{column.type} where {storage[i]} was expected")
                try:
                    if i in whole_of:
                        arrays.append(self._whole_or_real(batch, i, whole_of[i], convert[i]))
                    else:
                        arrays.append(convert[i](column.cast(storage[i])))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, _Unfit) as exc:
                    # never the value itself: it may be personal data
                    what = exc.reason if isinstance(exc, _Unfit) else f"is not a {field.type}"
                    raise DataError(
                        f"{self.where}: column {field.name} holds a value that {what} "
                        f"({declared_as[i]}; SQLite does not enforce declared types): fix the "
                        f"value, or read the column with a query that casts it (SELECT "
                        f"CAST({quote(field.name)} AS TEXT) ...)"
                    ) from None
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    def _whole_or_real(self, batch: Any, i: int, whole: int, convert: Callable[[Any], Any]) -> Any:
        """A decimal column's integers from their exact copy, the rest from the doubles."""
        ints = batch.column(whole)
        if ints.null_count == len(ints):
            return convert(batch.column(i).cast(pa.float64()))
        ints = ints.cast(pa.int64())
        reals = pc.if_else(pc.is_null(ints), batch.column(i), pa.scalar(None, pa.float64()))
        return pc.coalesce(convert(ints), convert(reals))

    def mixed(self, name: str, detail: str) -> DataError:
        return DataError(
            f"{self.where}: column {name} holds values of more than one type ({detail}); "
            "SQLite does not enforce declared types: clean the column or read it with a "
            f"query that casts it (SELECT CAST({quote(name)} AS TEXT) ...)"
        )

    def read_error(self, exc: BaseException, names: list[str], query: str | None) -> DataError:
        text = message(exc)
        found = re.search(r"Type mismatch in column (\d+)", text)
        if found and int(found.group(1)) < len(names):
            return self.mixed(names[int(found.group(1))], text)
        if query is None and missing_table(exc):
            return DataError(f"{self.where}: the table is gone: {text}")
        return query_error(self.where, exc) if query else DataError(f"{self.where}: {text}")


def _storage_of(classes: set[str], kind: str) -> tuple[str, bool]:
    """The storage class to read a column holding values of `classes` as, and whether the
    SELECT must CAST to it."""
    if "blob" in classes:
        return "blob", len(classes) > 1
    if "text" in classes:
        return "text", len(classes) > 1
    if "real" in classes:
        return "real", "integer" in classes
    if "integer" in classes:
        return "integer", False
    return ("real" if kind == "decimal" else "text"), True


def _busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text or "sqlite_busy" in text


class _Unfit(Exception):
    """A stored value does not fit the column's declared type (`reason` never shows it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _decimals(array: Any, to: pa.DataType) -> Any:
    """Integers, doubles or text as decimals of type `to`, or _Unfit: never rounded or
    truncated. A double fits when it is the double nearest a decimal of `to`'s scale (0.1 is
    0.10; 0.125 does not fit a scale of 2), and Arrow then rounds it to that decimal."""
    if pa.types.is_floating(array.type):
        same = pc.equal(pc.round(array, to.scale), array)
        if not pc.all(pc.fill_null(same, True)).as_py():
            raise _Unfit(f"has more than {to.scale} decimal places or is not a number")
    try:
        if pa.types.is_integer(array.type):  # Arrow checks int64 -> decimal by type, not value
            array = pc.cast(array, pa.decimal128(19, 0))
        return pc.cast(array, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if pa.types.is_string(array.type):
            raise _Unfit(f"is not a number that fits {to}") from None
        raise _Unfit(f"has more than {to.precision} digits") from None


def _converter(storage: pa.DataType, logical: pa.DataType) -> Callable[[Any], Any]:
    """Storage array -> the Arrow type handed out."""
    if storage == logical:
        return lambda a: a
    if pa.types.is_decimal(logical):
        return lambda a: _decimals(a, logical)
    if pa.types.is_boolean(logical):
        return lambda a: pc.not_equal(a, 0)
    if pa.types.is_timestamp(logical):
        return lambda a: _timestamps(a, logical)
    if pa.types.is_date(logical):
        return _dates
    if pa.types.is_time(logical):
        return lambda a: _times(a, logical)
    return lambda a: pc.cast(a, logical)


def _times(text: Any, to: pa.DataType) -> Any:
    """`HH:MM:SS[.ffffff]` text as times (read as the time of day of 1970-01-01)."""
    day = pc.binary_join_element_wise(pa.scalar("1970-01-01T"), text, pa.scalar(""))
    return pc.cast(pc.cast(_timestamps(day, pa.timestamp("us")), pa.int64()), to)


def _dates(text: Any) -> Any:
    """ISO dates (or date-times, whose time is dropped) as date32."""
    try:
        return pc.cast(text, pa.date32())
    except pa.ArrowInvalid:
        return pc.cast(_timestamps(text, pa.timestamp("us")), pa.date32(), safe=False)


def _timestamps(text: Any, to: pa.DataType) -> Any:
    """ISO 8601 text as timestamps: naive text is UTC for a tz-aware `to`, text with an offset
    is converted to UTC for a naive one."""
    try:
        naive = pc.cast(text, pa.timestamp("us"))
        return naive if to.tz is None else naive.cast(to)
    except pa.ArrowInvalid:
        # with offsets (2024-05-01T10:00:00+02:00 or ...Z): the instant, in UTC
        aware = pc.cast(text, pa.timestamp("us", tz="UTC"))
        return aware if to.tz is not None else aware.cast(pa.timestamp("us"))
