"""Arrow string arrays as numpy byte buffers and back: the zero-copy plumbing of the transforms.

The vectorised transforms read every row's bytes straight from an array's data buffer (no
Python string per value) and build their output buffers with numpy, then wrap them as Arrow
arrays that keep the input's nulls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import PrivacyError

Bytes = npt.NDArray[np.uint8]
Ints = npt.NDArray[np.int64]

_INT32_MAX = (1 << 31) - 1


@dataclass(frozen=True)
class Layout:
    """The rows of a string or binary array: row i is `data[starts[i] : starts[i] + lens[i]]`."""

    starts: Ints
    lens: Ints
    data: Bytes


def layout(values: pa.Array) -> Layout:
    """The byte layout of a string/binary array (large ones too), sliced arrays included.

    `data` is a read-only view of the array's own buffer; null rows have whatever bytes the
    array holds for them (usually none).
    """
    n = len(values)
    wide = pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type)
    width = 8 if wide else 4
    buffers = values.buffers()
    if n == 0 or buffers[1] is None:
        zero = np.zeros(n, dtype=np.int64)
        return Layout(zero, zero.copy(), np.zeros(0, dtype=np.uint8))
    offsets = np.frombuffer(
        buffers[1], dtype=np.int64 if wide else np.int32, count=n + 1, offset=values.offset * width
    ).astype(np.int64)
    base, end = int(offsets[0]), int(offsets[-1])
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)[base:end]
        if buffers[2] is not None and end > base
        else np.zeros(0, dtype=np.uint8)
    )
    starts = offsets[:-1] - base
    return Layout(starts, np.diff(offsets), data)


def validity(values: pa.Array) -> pa.Buffer | None:
    """A validity bitmap for `values` starting at bit 0 (None when there are no nulls)."""
    if values.null_count == 0:
        return None
    return pc.is_valid(values).buffers()[1]


def build(data: Bytes, lens: Ints, like: pa.Array | None) -> pa.Array:
    """A string array of `len(lens)` rows, row i being the next `lens[i]` bytes of `data`,
    null where `like` is null (no nulls when None). Large offsets when the data needs them."""
    n = len(lens)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    if offsets[-1] > _INT32_MAX:
        kind, offs = pa.large_string(), offsets
    else:
        kind, offs = pa.string(), offsets.astype(np.int32)
    return pa.Array.from_buffers(
        kind,
        n,
        [
            None if like is None else validity(like),
            pa.py_buffer(offs),
            pa.py_buffer(np.ascontiguousarray(data)),
        ],
        null_count=0 if like is None else like.null_count,
    )


def fixed(chars: Bytes, like: pa.Array, *, keep_empty: bool = True) -> pa.Array:
    """A string array whose row i is the bytes of `chars[i]` (all rows the same width).

    Null where `like` is null; with `keep_empty`, rows empty in `like` stay empty strings.
    """
    n, width = chars.shape
    if keep_empty and n:
        empty = layout(like).lens == 0
        if empty.any():
            lens = np.where(empty, 0, width).astype(np.int64)
            return build(chars[~empty].reshape(-1), lens, like)
    lens = np.full(n, width, dtype=np.int64)
    return build(chars.reshape(-1), lens, like)


def as_text(values: pa.Array, op: str, column: str = "", *, binary_ok: bool = False) -> pa.Array:
    """`values` as a string array: numbers, dates, times and booleans are formatted as text,
    nested values (structs, lists, maps) as JSON text; binary stays binary when `binary_ok`
    (its bytes are used as they are)."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        return as_text(values.dictionary_decode(), op, column, binary_ok=binary_ok)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return values
    if binary_ok and (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
        return values
    if pa.types.is_null(kind):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_nested(kind):
        # structs, lists and maps become their JSON text: the column is text from then on
        from lockgate.io.formats import json_texts

        return json_texts(values)
    try:
        return pc.cast(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise PrivacyError(
            f"{op} cannot read column {column or '?'!r} of type {kind} as text"
            + ("; its bytes are not UTF-8" if pa.types.is_binary(kind) else "")
        ) from None


_HEX_PAIRS = np.array([list(f"{i:02x}".encode()) for i in range(256)], dtype=np.uint8)
_HEX = _HEX_PAIRS.view(np.uint16).ravel()
"""The two hex characters of each byte value, as one 16-bit word (one lookup per byte)."""


def hex_chars(raw: Bytes, count: int) -> Bytes:
    """The first `count` lowercase hex characters of each row of `raw` ((n, k) bytes)."""
    whole = (count + 1) // 2
    return _HEX[raw[:, :whole]].view(np.uint8)[:, :count]
