"""Column types as a `schema` check writes them, and whether an Arrow type is one of them.

A type is either a family, matching every type of that kind (`integer`, `float`, `number`,
`string` (also large and view strings), `binary`, `bool`, `date`, `timestamp`, `time`,
`duration`, `decimal`, `list`, `struct`, `map`, `any`), or an exact Arrow type as pyarrow
prints it (`int64`, `double`, `timestamp[us, tz=UTC]`, `decimal128(10, 2)`), with the common
aliases (`float64` = `double`, `float32`, `date32`, `utf8`, `boolean`). A dictionary column
matches the type of its values.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lockgate.errors import did_you_mean

if TYPE_CHECKING:
    import pyarrow as pa

FAMILIES = (
    "any",
    "integer",
    "int",
    "float",
    "number",
    "numeric",
    "string",
    "str",
    "text",
    "binary",
    "bool",
    "boolean",
    "date",
    "timestamp",
    "datetime",
    "time",
    "duration",
    "decimal",
    "list",
    "struct",
    "map",
)
_EXACT_BASES = (
    "null",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "halffloat",
    "float16",
    "float32",
    "float64",
    "double",
    "large_string",
    "string_view",
    "utf8",
    "large_utf8",
    "large_binary",
    "binary_view",
    "fixed_size_binary",
    "date32",
    "date64",
    "time32",
    "time64",
    "month_day_nano_interval",
    "decimal32",
    "decimal64",
    "decimal128",
    "decimal256",
    "large_list",
    "fixed_size_list",
    "list_view",
    "large_list_view",
    "dictionary",
)
_ALIASES = {
    "float64": "double",
    "float32": "float",
    "float16": "halffloat",
    "date32": "date32[day]",
    "date64": "date64[ms]",
    "utf8": "string",
    "large_utf8": "large_string",
}
_BASE = re.compile(r"[a-z_0-9]+")


def type_problem(text: object) -> str | None:
    """None when `text` names a type a schema check understands; else what is wrong."""
    if not isinstance(text, str) or not text.strip():
        return f"expected a type name such as int64, string or timestamp, got {text!r}"
    found = _BASE.match(text.strip().lower())
    base = found.group(0) if found else ""
    known = FAMILIES + _EXACT_BASES
    if base not in known:
        return f"unknown type {text!r}" + did_you_mean(base or text, known)
    return None


def type_matches(expected: str | None, actual: pa.DataType) -> bool:
    """Whether a column of type `actual` satisfies `expected` (None: any type)."""
    import pyarrow as pa

    if pa.types.is_dictionary(actual):
        actual = actual.value_type
    want = (expected or "any").strip().lower()
    family = _in_family(want, actual)
    if family is not None:
        return family
    want = _ALIASES.get(want, want)
    return _squash(want) == _squash(str(actual).lower())


def _squash(text: str) -> str:
    return text.replace(" ", "")


_FAMILY_PREDICATES: dict[str, tuple[str, ...]] = {
    "integer": ("is_integer",),
    "int": ("is_integer",),
    "float": ("is_floating",),
    "number": ("is_integer", "is_floating", "is_decimal"),
    "numeric": ("is_integer", "is_floating", "is_decimal"),
    "string": ("is_string", "is_large_string", "is_string_view"),
    "str": ("is_string", "is_large_string", "is_string_view"),
    "text": ("is_string", "is_large_string", "is_string_view"),
    "binary": ("is_binary", "is_large_binary", "is_fixed_size_binary", "is_binary_view"),
    "bool": ("is_boolean",),
    "boolean": ("is_boolean",),
    "date": ("is_date",),
    "timestamp": ("is_timestamp",),
    "datetime": ("is_timestamp",),
    "time": ("is_time",),
    "duration": ("is_duration",),
    "decimal": ("is_decimal",),
    "list": ("is_list", "is_large_list", "is_fixed_size_list", "is_list_view"),
    "struct": ("is_struct",),
    "map": ("is_map",),
}
"""Each family and the `pyarrow.types` predicates of its members."""


def _in_family(want: str, actual: pa.DataType) -> bool | None:
    """Whether `actual` belongs to the family `want`; None when `want` is not a family."""
    if want == "any":
        return True
    names = _FAMILY_PREDICATES.get(want)
    if names is None:
        return None
    import pyarrow as pa

    return any(bool(getattr(pa.types, name, lambda _t: False)(actual)) for name in names)
