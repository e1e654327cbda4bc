"""PostgreSQL through ADBC: reads stream with COPY ... TO STDOUT (binary), writes with COPY
FROM STDIN (binary) inside the writer's transaction.

Binary COPY wants each column's exact type (an int8 value does not go into an int4 column), so
lockgate reads the table's column types first and casts every batch to them. Readers use a
read-only session, so a dataset's query can never change the database. Table and column names
are quoted as written (case kept).
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import DataError
from lockgate.io.sql_errors import (
    connect_error,
    message,
    missing_table,
    password,
    query_error,
    write_error,
)
from lockgate.io.sql_types import Column, Table, canonical_type, kind_of, literal, quote

CONNECT_TIMEOUT_S = 5
"""libpq's connect_timeout unless the URI sets one: an unreachable host fails fast."""
MAX_NAME = 63
"""PostgreSQL's identifier length limit (NAMEDATALEN - 1)."""
_TYPES: dict[str, tuple[str, pa.DataType]] = {
    "bool": ("bool", pa.bool_()),
    "int2": ("int", pa.int16()),
    "int4": ("int", pa.int32()),
    "int8": ("int", pa.int64()),
    "float4": ("float", pa.float32()),
    "float8": ("float", pa.float64()),
    "text": ("string", pa.string()),
    "varchar": ("string", pa.string()),
    "bpchar": ("string", pa.string()),
    "name": ("string", pa.string()),
    "json": ("string", pa.string()),
    "bytea": ("binary", pa.binary()),
    "date": ("date", pa.date32()),
    "timestamp": ("timestamp", pa.timestamp("us")),
    "timestamptz": ("timestamptz", pa.timestamp("us", tz="UTC")),
    "time": ("time", pa.time64("us")),
}
"""PostgreSQL column types lockgate writes: the kind, and the Arrow type COPY takes."""
_INT_SQL = {8: "SMALLINT", 16: "SMALLINT", 32: "INTEGER", 64: "BIGINT"}
_SQL_TYPES = {
    "bool": "BOOLEAN",
    "string": "TEXT",
    "binary": "BYTEA",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "time": "TIME",
    "null": "TEXT",
}


def libpq_url(url: str) -> str:
    """`url` as libpq takes it: scheme postgresql://, a connect timeout unless one is set.
    The query is kept byte for byte: libpq decodes only %XX (a `+` stays a `+`), so decoding
    and re-encoding it would change a `?password=` holding a space or a plus sign."""
    parts = urlsplit(url)
    query = parts.query
    if not any(item.partition("=")[0] == "connect_timeout" for item in query.split("&")):
        query = "&".join(q for q in (query, f"connect_timeout={CONNECT_TIMEOUT_S}") if q)
    return urlunsplit(parts._replace(scheme="postgresql", query=query))


def numeric_type(typmod: int) -> pa.DataType:
    """Arrow type for numeric(p,s) (typmod = (p << 16 | s) + 4); float64 for a numeric with no
    declared precision (aggregates, NUMERIC columns), which has no fixed scale."""
    if typmod < 4:
        return pa.float64()
    precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
    if precision <= 38:
        return pa.decimal128(precision, scale)
    return pa.decimal256(min(precision, 76), scale)


def logical(field: pa.Field) -> tuple[pa.Field, Callable[[Any], Any]]:
    """The field handed out for a result column (the driver's metadata dropped, numerics as
    decimals) and the function that converts the driver's array to it."""
    meta = field.metadata or {}
    t = field.type
    if isinstance(t, pa.BaseExtensionType):
        storage = t.storage_type
        if meta.get(b"POSTGRESQL:type") == b"numeric":
            to = numeric_type(int(meta.get(b"POSTGRESQL:typmod", b"-1")))
            return pa.field(field.name, to), lambda a: pc.cast(_storage(a), to)
        return pa.field(field.name, storage), _storage
    return pa.field(field.name, t), lambda a: a


def _scaled_numerics(schema: pa.Schema | None) -> tuple[list[str], dict[int, pa.DataType]]:
    """The select list reading numeric(p<=18, s) columns as int8 scaled by 10^s, and which
    columns (by position) those are with their decimal type; none when names repeat."""
    if schema is None or len(set(schema.names)) != len(schema.names):
        return [], {}
    selects, scaled = [], {}
    for i, field in enumerate(schema):
        meta = field.metadata or {}
        column = quote(field.name)
        to = None
        if meta.get(b"POSTGRESQL:type") == b"numeric":
            to = numeric_type(int(meta.get(b"POSTGRESQL:typmod", b"-1")))
        if to is not None and pa.types.is_decimal128(to) and to.precision <= 18:
            selects.append(f"({column} * 1{'0' * to.scale})::int8 AS {column}")
            scaled[i] = to
        else:
            selects.append(column)
    return selects, scaled


def _unscaled(array: Any, to: pa.DataType) -> Any:
    """int8 values scaled by 10^scale as decimal128(p, scale): the same 64-bit integers,
    sign-extended to the decimal's 128 bits (no per-value work)."""
    import numpy as np

    length = len(array) + array.offset
    values = np.frombuffer(array.buffers()[1], dtype=np.int64, count=length)
    words = np.empty((length, 2), dtype=np.int64)
    words[:, 0] = values
    words[:, 1] = values >> 63
    return pa.Array.from_buffers(
        to,
        len(array),
        [array.buffers()[0], pa.py_buffer(words)],
        null_count=array.null_count,
        offset=array.offset,
    )


def _storage(array: Any) -> Any:
    if isinstance(array, pa.ChunkedArray):
        return pa.chunked_array([_storage(c) for c in array.chunks])
    return array.storage if isinstance(array, pa.ExtensionArray) else array


class PostgreSQL:
    """The PostgreSQL side of lockgate's SQL connector (one dataset)."""

    dialect = "postgresql"
    deferred = False
    """Writes go straight into the table: PostgreSQL readers never block them."""

    def __init__(self, where: str, url: str) -> None:
        self.where = where
        self.url = url
        self.secret = password(url)

    def table(self, text: str | None) -> Table:
        if text is None:
            raise DataError(
                f"{self.where}: name the table: postgresql://host/db#table or #schema.table"
            )
        return Table.parse(text)

    # -- connections ------------------------------------------------------------------------

    def connect(self, *, write: bool) -> Any:
        import adbc_driver_postgresql.dbapi as postgresql

        try:
            conn = postgresql.connect(libpq_url(self.url), autocommit=not write)
        except Exception as exc:
            raise connect_error(self.where, self.url, exc, CONNECT_TIMEOUT_S) from None
        if not write:  # reading a dataset never changes the database, whatever the query
            try:
                with conn.cursor() as cur:
                    cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            except Exception as exc:
                conn.close()
                raise DataError(f"{self.where}: {message(exc, self.secret)}") from None
        return conn

    def commit(self, conn: Any, cur: Any) -> None:
        conn.commit()

    def rollback(self, conn: Any, cur: Any) -> None:
        conn.rollback()

    def discard(self) -> None:
        """Nothing to remove: an aborted transaction leaves nothing behind."""

    def lock(self, cur: Any) -> None:
        """Never called: PostgreSQL writes are not deferred."""

    def write_error(self, exc: BaseException) -> DataError:
        """A failed write as a one-line DataError (the password never in it)."""
        return write_error(self.where, exc, self.secret)

    # -- tables -----------------------------------------------------------------------------

    def columns(self, cur: Any, table: Table, schema: pa.Schema) -> list[Column] | None:
        """The existing table's columns (None when there is no such table)."""
        cur.execute(f"SELECT to_regclass({literal(table.sql)}) IS NOT NULL")
        (exists,) = cur.fetchone()
        if not exists:
            return None
        cur.execute(f"SELECT * FROM {table.sql} WHERE 1 = 0")
        fields = {f.name: f for f in schema}
        found = []
        for field in cur.fetch_arrow_table().schema:
            meta = field.metadata or {}
            name = meta.get(b"POSTGRESQL:type", b"").decode() or str(field.type)
            typmod = int(meta.get(b"POSTGRESQL:typmod", b"-1"))
            if name == "numeric":
                to = numeric_type(typmod)
                if not pa.types.is_decimal(to):  # no scale: the data's own decimals go in
                    incoming = fields.get(field.name)
                    t = canonical_type(incoming.type) if incoming is not None else None
                    to = t if t is not None and pa.types.is_decimal(t) else pa.decimal128(38, 0)
                found.append(Column(field.name, "decimal", to, "numeric"))
            elif name in _TYPES:
                kind, storage = _TYPES[name]
                found.append(Column(field.name, kind, storage, name))
            else:
                found.append(Column(field.name, name, pa.null(), name))
        return found

    def new_column(self, field: pa.Field) -> Column:
        """How a new PostgreSQL table holds an Arrow field."""
        t = canonical_type(field.type)
        kind = kind_of(t)
        if kind == "int":
            storage = pa.int16() if t.bit_width == 8 else t
            return Column(field.name, kind, storage, _INT_SQL[t.bit_width])
        if kind == "float":
            sql = "REAL" if t == pa.float32() else "DOUBLE PRECISION"
            return Column(field.name, kind, t, sql)
        if kind == "decimal":
            return Column(field.name, kind, t, f"NUMERIC({t.precision},{t.scale})")
        return Column(field.name, kind, t, _SQL_TYPES[kind])

    def create(self, cur: Any, table: Table, columns: list[Column], *, temporary: bool) -> None:
        body = ", ".join(f"{quote(c.name)} {c.sql_type}" for c in columns)
        cur.execute(f"CREATE {'TEMP ' if temporary else ''}TABLE {table.sql} ({body})")

    def staging(self, cur: Any, table: Table, columns: list[Column]) -> Table:
        """A temporary table like `table` (its column types), dropped at commit."""
        stage = Table(f"_lockgate_stage_{secrets.token_hex(4)}")
        cur.execute(f"CREATE TEMP TABLE {stage.sql} (LIKE {table.sql}) ON COMMIT DROP")
        return stage

    def drop_staging(self, cur: Any, stage: Table) -> None:
        """Dropped at commit (ON COMMIT DROP)."""

    def temporary_name(self, table: Table) -> Table:
        name = f"_lockgate_new_{secrets.token_hex(4)}_{table.name}"
        return Table(name.encode()[:MAX_NAME].decode(errors="ignore"), table.schema)

    def replace(self, cur: Any, new: Table, table: Table) -> None:
        cur.execute(f"DROP TABLE IF EXISTS {table.sql}")
        cur.execute(f"ALTER TABLE {new.sql} RENAME TO {quote(table.name)}")

    def index_name(self, table: Table) -> str:
        return table.name.encode()[: MAX_NAME - 13].decode(errors="ignore") + "_lockgate_key"

    def ingest(self, cur: Any, table: Table, batch: pa.RecordBatch, *, temporary: bool) -> None:
        cur.adbc_ingest(
            table.name,
            batch,
            mode="append",
            db_schema_name=None if temporary else table.schema,
            temporary=temporary,
        )

    # -- reading ----------------------------------------------------------------------------

    def read(
        self, cur: Any, table: Table | None, query: str | None, batch_rows: int
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The schema and batches of a table or a query, streamed by binary COPY.

        Numerics of up to 18 digits travel as scaled int8 (`amount * 100`) and become
        decimals again in Arrow: the driver's per-value numeric-to-text conversion cost
        more than all other columns together."""
        if query is not None:
            query = query.strip().rstrip(";").strip()
            relation = f"({query}) AS _lockgate_query"
        else:
            assert table is not None
            relation = table.sql
        try:
            cur.execute(f"SELECT * FROM {relation} WHERE 1 = 0")
            described = cur.fetch_arrow_table().schema
        except Exception as exc:
            if query is None and missing_table(exc):
                raise DataError(
                    f"{self.where}: no table {table} in the database; check the name after # "
                    "(#table or #schema.table)"
                ) from None
            described = None  # not a query that can be a subquery (SHOW, EXPLAIN...): as is
        selects, scaled = _scaled_numerics(described)
        sql = f"SELECT {', '.join(selects)} FROM {relation}" if scaled else None
        try:
            cur.execute(sql or (query if query is not None else f"SELECT * FROM {relation}"))
            stream = cur.fetch_record_batch()
        except Exception as exc:
            raise query_error(self.where, exc, self.secret) from None
        fields: list[pa.Field] = []
        convert: list[Callable[[Any], Any]] = []
        for i, field in enumerate(stream.schema):
            if i in scaled:
                fields.append(pa.field(field.name, scaled[i]))
                convert.append(functools.partial(_unscaled, to=scaled[i]))
            else:
                f, c = logical(field)
                fields.append(f)
                convert.append(c)
        schema = pa.schema(fields)
        return schema, self._batches(stream, schema, convert)

    def _batches(
        self, stream: Any, schema: pa.Schema, convert: list[Callable[[Any], Any]]
    ) -> Iterator[pa.RecordBatch]:
        while True:
            try:
                batch = stream.read_next_batch()
            except StopIteration:
                return
            except Exception as exc:
                raise DataError(
                    f"{self.where}: reading failed: {message(exc, self.secret)}"
                ) from None
            try:
                arrays = [convert[i](batch.column(i)) for i in range(len(convert))]
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DataError(
                    f"{self.where}: a value does not convert to Arrow: {str(exc).splitlines()[0]}"
                ) from None
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
