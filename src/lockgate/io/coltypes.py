"""Column types for files whose format does not say them: the `types` option of a file or S3
dataset (`options: {types: {amount: double, id: int64, day: date32}}`). CSV columns are read as
text exactly as written (no guessing: ZIP codes keep their leading zeros); `types` converts the
columns it names, an empty CSV field becoming null."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import DataError

_DECIMAL = re.compile(r"^decimal(?:128)?\((\d+),\s*(\d+)\)$")
_ALIASES = {"integer": "int64", "int": "int64", "float": "double", "boolean": "bool",
            "text": "string", "date": "date32", "timestamp": "timestamp[us]",
            "datetime": "timestamp[us]"}  # fmt: skip
TYPE_NAMES = "int64, int32, double, float32, bool, string, date32, timestamp[us], decimal(P,S)"


def parse_type(name: object, label: str, column: str) -> pa.DataType:
    """The Arrow type a `types` entry names; DataError naming the column otherwise."""
    text = str(name).strip().lower()
    match = _DECIMAL.match(text)
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    try:
        return pa.type_for_alias(_ALIASES.get(text, text))
    except (ValueError, KeyError):
        raise DataError(
            f"{label}: types: {name!r} (column {column!r}) is not a column type; use one of "
            f"{TYPE_NAMES}"
        ) from None


def typed_schema(schema: pa.Schema, types: Any, label: str) -> pa.Schema:
    """`schema` with the columns `types` names set to their types (tags kept)."""
    if not isinstance(types, Mapping) or not types:
        raise DataError(f"{label}: the types option maps columns to types: {{amount: double}}")
    fields = []
    for field in schema:
        if field.name in types:
            field = field.with_type(parse_type(types[field.name], label, field.name))
        fields.append(field)
    unknown = [c for c in types if c not in schema.names]
    if unknown:
        from lockgate.errors import did_you_mean

        hint = did_you_mean(unknown[0], schema.names, "its columns are")
        raise DataError(f"{label}: types name column {unknown[0]!r}, which it does not have{hint}")
    return pa.schema(fields, metadata=schema.metadata)


def convert(batch: pa.RecordBatch, schema: pa.Schema, label: str) -> pa.RecordBatch:
    """`batch` with its columns converted to `schema`'s types; DataError naming the column
    (never the value: it is data, maybe personal)."""
    columns = []
    for array, field in zip(batch.columns, schema, strict=True):
        if array.type != field.type:
            if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
                array = pc.if_else(pc.equal(array, ""), pa.scalar(None, array.type), array)
            try:
                array = pc.cast(array, field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise DataError(
                    f"{label}: column {field.name!r} holds a value that is not {field.type}; "
                    "fix the data or the types option"
                ) from None
        columns.append(array)
    return pa.RecordBatch.from_arrays(columns, schema=schema)
