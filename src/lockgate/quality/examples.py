"""Failing rows shown as examples: JSON data, with classified values masked.

A column whose classification tag is raw (`pii.email`, not `pii.email/tokenized`) shows `***`
for every non-null value: never a partial value, since even the last characters of an e-mail or
a card number can identify someone. A null stays null (that it is missing is what `not_null`
reports). Columns that are not the data's own (computed by a `sql` check) are masked too when the
data has any raw column, since they may be derived from it.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lockgate.model.classification import is_raw

if TYPE_CHECKING:
    import pyarrow as pa

MASK = "***"
MAX_EXAMPLES = 5
MAX_TEXT = 200
"""Characters of a text value kept in an example."""
MAX_ITEMS = 20
"""Items of a list value kept in an example."""


class Masker:
    """Which columns of a result to mask, from the data's classification tags."""

    def __init__(self, tags: Mapping[str, str | None]) -> None:
        self._raw = {name.lower() for name, tag in tags.items() if is_raw(tag)}
        self._known = {name.lower() for name in tags}

    @property
    def any_raw(self) -> bool:
        return bool(self._raw)

    def masks(self, column: str, *, derived_too: bool = False) -> bool:
        """True when `column` must not be shown; `derived_too` also masks columns that are not
        the data's own while the data has raw columns (a query's computed columns)."""
        key = column.lower()
        if key in self._raw:
            return True
        return derived_too and self.any_raw and key not in self._known

    def text(self, column: str, value: object) -> str:
        """`value` for a message: `***` when the column is masked."""
        return MASK if self.masks(column) else str(value)


def rows(table: pa.Table, masker: Masker, *, derived_too: bool = False) -> list[dict[str, Any]]:
    """The first `MAX_EXAMPLES` rows of `table` as JSON data, masked."""
    import pyarrow as pa

    head = table.slice(0, MAX_EXAMPLES)
    out: list[dict[str, Any]] = [{} for _ in range(head.num_rows)]
    for index, name in enumerate(head.column_names):
        column = head.column(index)
        key = name if all(name not in row for row in out[:1]) else f"{name}#{index}"
        masked = masker.masks(name, derived_too=derived_too)
        try:
            values = column.to_pylist()
        except (pa.ArrowException, ValueError, OverflowError):
            values = column.cast(pa.string(), safe=False).to_pylist()
        for row, value in zip(out, values, strict=True):
            row[key] = None if value is None else (MASK if masked else jsonable(value))
    return out


def jsonable(value: Any) -> Any:
    """`value` as JSON data: dates in ISO 8601, decimals as text, long text cut."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "..."
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        text = base64.b64encode(raw[:48]).decode()
        return f"base64:{text}" + ("..." if len(raw) > 48 else "")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value[:MAX_ITEMS]]
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return jsonable(str(value))
