"""Arrow types as SQL columns: the kinds of column lockgate moves, which kinds a table column
accepts, and the casts between them (shared by the SQLite and PostgreSQL dialects).

A `kind` is what a column means, whatever its width: `bool`, `int`, `float`, `decimal`,
`string`, `binary`, `date`, `timestamp`, `timestamptz`, `time`, `null` (no values yet) or
`any` (an SQLite column with no declared type). Tables are created from the kind of each Arrow
field; appends are checked kind against kind, then cast to the table's exact types.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import DataError

ACCEPTS: dict[str, frozenset[str]] = {
    "bool": frozenset({"bool", "int"}),
    "int": frozenset({"int", "float", "decimal"}),
    "float": frozenset({"float"}),
    "decimal": frozenset({"decimal", "float"}),
    "string": frozenset({"string"}),
    "binary": frozenset({"binary"}),
    "date": frozenset({"date"}),
    "timestamp": frozenset({"timestamp", "timestamptz"}),
    "timestamptz": frozenset({"timestamptz", "timestamp"}),
    "time": frozenset({"time"}),
}
"""Incoming kind -> the kinds of table column that take it without losing meaning."""


def quote(name: str) -> str:
    """`name` as a quoted SQL identifier (any column name, safely)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """`text` as a quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Table:
    """A table name from a dataset URI (`table` or `schema.table`), quoted on demand."""

    name: str
    schema: str | None = None

    @classmethod
    def parse(cls, text: str) -> Table:
        schema, _, name = text.rpartition(".")
        return cls(name, schema or None)

    @property
    def sql(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}" if self.schema else quote(self.name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class Column:
    """A column of a table being written: its name, kind, Arrow type written (`storage`,
    what the driver ingests) and SQL type (for CREATE TABLE)."""

    name: str
    kind: str
    storage: pa.DataType
    sql_type: str
    fit: pa.DataType | None = None
    """The declared decimal type values must fit first (a value that does not is an error)."""
    numeric: bool = False
    """SQLite NUMERIC affinity: decimal text becomes a 64-bit integer or a double, so values
    that would lose digits on the way are refused."""


def kind_of(t: pa.DataType) -> str:
    """The kind of an Arrow type; `other` for nested and other types SQL tables do not hold."""
    if pa.types.is_dictionary(t):
        return kind_of(t.value_type)
    checks: list[tuple[Callable[[pa.DataType], bool], str]] = [
        (pa.types.is_boolean, "bool"),
        (pa.types.is_integer, "int"),
        (pa.types.is_floating, "float"),
        (pa.types.is_decimal, "decimal"),
        (lambda x: pa.types.is_string(x) or pa.types.is_large_string(x), "string"),
        (lambda x: x == pa.string_view(), "string"),
        (
            lambda x: (
                pa.types.is_binary(x)
                or pa.types.is_large_binary(x)
                or pa.types.is_fixed_size_binary(x)
                or x == pa.binary_view()
            ),
            "binary",
        ),
        (pa.types.is_date, "date"),
        (pa.types.is_time, "time"),
        (pa.types.is_null, "null"),
    ]
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    for check, kind in checks:
        if check(t):
            return kind
    return "other"


def canonical_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type lockgate writes for `t`: no dictionaries, large or view variants;
    microsecond timestamps (tz-aware ones in UTC) and times; 32-day dates."""
    kind = kind_of(t)
    if pa.types.is_dictionary(t):
        return canonical_type(t.value_type)
    if kind == "string":
        return pa.string()
    if kind == "binary":
        return pa.binary()
    if kind == "date":
        return pa.date32()
    if kind == "timestamp":
        return pa.timestamp("us")
    if kind == "timestamptz":
        return pa.timestamp("us", tz="UTC")
    if kind == "time":
        return pa.time64("us")
    if kind == "null":
        return pa.string()
    if kind == "float" and t == pa.float16():
        return pa.float32()
    if kind == "int" and pa.types.is_unsigned_integer(t):
        return {8: pa.int16(), 16: pa.int32()}.get(t.bit_width, pa.int64())
    if kind == "decimal" and t.precision <= 38 and not pa.types.is_decimal128(t):
        return pa.decimal128(t.precision, t.scale)
    return t


def check_storable(schema: pa.Schema, where: str) -> None:
    """DataError naming the columns SQL tables cannot hold (lists, structs, maps...)."""
    bad = [f"{f.name} ({f.type})" for f in schema if kind_of(f.type) == "other"]
    if bad:
        raise DataError(
            f"{where}: SQL tables cannot hold column(s) {', '.join(bad)}; select or convert "
            "them (e.g. to JSON text) before writing"
        )


def check_names(schema: pa.Schema, keys: Sequence[str], where: str) -> None:
    """DataError on duplicate column names or upsert keys that are not columns."""
    dupes = sorted(n for n, count in Counter(schema.names).items() if count > 1)
    if dupes:
        raise DataError(f"{where}: column name(s) {', '.join(dupes)} appear twice; rename them")
    missing = [k for k in keys if k not in schema.names]
    if missing:
        raise DataError(
            f"{where}: key column(s) {', '.join(missing)} are not in the data "
            f"(columns: {', '.join(schema.names)})"
        )


def match_table(
    schema: pa.Schema, table_columns: Sequence[Column], where: str, table: str
) -> list[Column]:
    """The table's columns in the table's order after checking that `schema` has exactly these
    columns, each of a kind the table column accepts; one-line DataError otherwise (every mode
    writes into an existing table as it is: its definition is never replaced)."""
    names = set(schema.names)
    have = {c.name: c for c in table_columns}
    missing = [c.name for c in table_columns if c.name not in names]
    extra = [n for n in schema.names if n not in have]
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        problems.append(f"column(s) {', '.join(extra)} not in the table")
    for field in schema:
        column = have.get(field.name)
        if column is None or column.kind == "any":
            continue
        kind = kind_of(field.type)
        if kind != "null" and column.kind not in ACCEPTS.get(kind, frozenset()):
            problems.append(f"{field.name} is {field.type} but the table has {column.sql_type}")
    if problems:
        raise DataError(
            f"{where}: the data does not match table {table}: {'; '.join(problems)}; make the "
            "columns match (lockgate keeps an existing table's definition in every mode; drop "
            "the table to have it created from the data)"
        )
    return list(table_columns)


def cast_array(
    array: pa.Array | pa.ChunkedArray, to: pa.DataType, column: str, where: str
) -> pa.Array | pa.ChunkedArray:
    """`array` as type `to`; DataError naming the column when a value does not fit."""
    if array.type == to:
        return array
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
        if array.type == to:
            return array
    source = kind_of(array.type)
    try:
        if pa.types.is_string(to) and source in ("timestamp", "timestamptz", "time", "date"):
            # ISO text, UTC for tz-aware values: a cast to naive keeps the UTC instant and
            # formats 30x faster than a zoned one
            array = cast_array(array, canonical_type(array.type), column, where)
            if source == "timestamptz":
                array = pc.cast(array, pa.timestamp("us"))
            return pc.cast(array, pa.string())
        if source in ("timestamp", "timestamptz", "time") and kind_of(to) == source:
            # sub-microsecond digits go: neither SQLite's text nor PostgreSQL keep them
            return pc.cast(array, to, safe=False)
        return pc.cast(array, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        reason = str(exc).splitlines()[0]
        raise DataError(
            f"{where}: column {column} ({array.type}) does not fit the table's {to}: {reason}"
        ) from None


def conform(batch: pa.RecordBatch, columns: Sequence[Column], where: str) -> pa.RecordBatch:
    """`batch` with exactly `columns`, in their order, cast to their storage types."""
    names = batch.schema.names
    arrays: list[Any] = []
    for column in columns:
        if column.name not in names:
            raise DataError(
                f"{where}: a batch lacks column {column.name} (columns: {', '.join(names)})"
            )
        array = batch.column(names.index(column.name))
        if column.fit is not None:
            array = cast_array(array, column.fit, column.name, where)
        if column.numeric and pa.types.is_decimal(array.type):
            array = numeric_text(array, column, where)
        arrays.append(cast_array(array, column.storage, column.name, where))
    if len(names) != len(columns):
        extra = sorted(set(names) - {c.name for c in columns})
        raise DataError(f"{where}: a batch has column(s) {', '.join(extra)} not being written")
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in columns])


NUMERIC_DIGITS = 15
"""Significant digits a double keeps exactly (decimal -> double -> decimal)."""


def numeric_text(array: Any, column: Column, where: str) -> Any:
    """Decimals as the text an SQLite NUMERIC-affinity column stores without loss: whole values
    without a fraction (kept as 64-bit integers), others with it (kept as doubles, so at most 15
    significant digits); DataError naming the column when a value would lose digits."""
    text = pc.cast(array, pa.string())  # Arrow writes tiny values as 1E-8
    if array.type.scale > 0:
        text = pc.replace_substring_regex(text, r"\.0+$", "")  # 3.00 -> 3: an integer
    mantissa = pc.replace_substring_regex(text, r"E.*$", "")
    fraction = pc.or_(pc.match_substring(text, "."), pc.match_substring(text, "E"))
    digits = pc.replace_substring_regex(mantissa, r"[-.]", "")
    significant = pc.utf8_length(pc.utf8_trim(digits, "0"))
    whole = pc.replace_substring_regex(pc.replace_substring_regex(mantissa, r"\..*$", ""), "-", "")
    # integers beyond 18 digits may not fit 64 bits: SQLite keeps them as doubles too
    lossy = pc.and_(
        pc.greater(significant, NUMERIC_DIGITS),
        pc.or_(fraction, pc.greater(pc.utf8_length(whole), 18)),
    )
    count = pc.sum(pc.cast(lossy, pa.int64())).as_py() or 0
    if count:
        raise DataError(
            f"{where}: column {column.name} has {count} value(s) with more than "
            f"{NUMERIC_DIGITS} significant digits, which its {column.sql_type} column would "
            "round (SQLite keeps such numbers as doubles); write them to a DECIMAL_TEXT(p,s) "
            "column, which keeps exact text, or cast the column to float64 first"
        )
    return text


def rechunk(batches: Any, rows: int) -> Any:
    """`batches` cut to at most `rows` rows each; empty batches dropped."""
    for batch in batches:
        if batch.num_rows <= rows:
            if batch.num_rows:
                yield batch
            continue
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)
