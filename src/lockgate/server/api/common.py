"""What every API module shares: bounded pages with opaque cursors, times as ISO 8601."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from lockgate.server.errors import ApiError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

T = TypeVar("T")

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (at most {MAX_LIMIT}).")
]
CursorQ = Annotated[
    str | None,
    Query(max_length=512, description="`next_cursor` of the previous page; omit for the first."),
]


class Page(BaseModel, Generic[T]):
    """One page of a list; `next_cursor` is null on the last page."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode()


def cut_page(rows: list[Any], limit: int, *key: str) -> tuple[list[Any], str | None]:
    """The first `limit` of `rows` (fetched as `limit + 1` to know whether more follow) and the
    cursor of the next page: the last row's `key` columns (the row itself without a key), or
    None on the last page."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(*(last[k] for k in key)) if key else encode_cursor(last)


def decode_cursor(
    cursor: str | None, shape: tuple[type | tuple[type, ...], ...]
) -> tuple[Any, ...] | None:
    """The values a cursor holds, checked against `shape` (a type, or types, per value; whole
    numbers must fit in 64 bits); 422 for anything else."""
    if cursor is None:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"==="))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "cursor is not one this API gave out", "invalid_cursor") from None
    if (
        not isinstance(values, list)
        or len(values) != len(shape)
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(values, shape, strict=True)
        )
        or any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in values)
    ):
        raise ApiError(422, "cursor is not one this API gave out", "invalid_cursor")
    return tuple(values)


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def parse_time(text: str | None, name: str) -> float | None:
    """An ISO 8601 date or date-time (UTC when no offset) as a timestamp; 422 otherwise."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, f"{name}: {text[:40]!r} is not an ISO 8601 date or date-time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
