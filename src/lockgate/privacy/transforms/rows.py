"""Byte-level transforms of string arrays, a block of rows at a time.

Per-byte work (which bytes are digits, how many digits follow each one) needs per-byte index
arrays four times the size of the data. Done on the whole column those temporaries run to
hundreds of megabytes and most of the time goes to page faults; done 64K rows at a time they
stay in cache and their memory is reused, which is several times faster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from lockgate.privacy.transforms.strings import Bytes, build, layout

Item = TypeVar("Item", bound=np.generic)
Bools = npt.NDArray[np.bool_]
Int32s = npt.NDArray[np.int32]

BLOCK_ROWS = 1 << 16
"""Rows per block."""


@dataclass(frozen=True)
class Block:
    """Some consecutive rows: row i is `data[starts[i] : starts[i] + lens[i]]`; `first` is the
    index of row 0 in the whole array."""

    data: Bytes
    starts: Int32s
    lens: Int32s
    first: int

    def row_of_byte(self, per_row: npt.NDArray[Item]) -> npt.NDArray[Item]:
        """`per_row` values spread to every byte of their row."""
        return np.repeat(per_row, self.lens)

    def ranks(self, mask: Bools) -> tuple[Int32s, Int32s, Int32s]:
        """For true cells of `mask` counted within each row: each byte's inclusive rank, the
        count after it, and each row's total."""
        running = np.zeros(len(mask) + 1, dtype=np.int32)
        np.cumsum(mask.view(np.uint8), dtype=np.int32, out=running[1:])
        before = running[self.starts]
        total = running[self.starts + self.lens] - before
        rank = running[1:] - np.repeat(before, self.lens)
        return rank, np.repeat(total, self.lens) - rank, total


BlockFn = Callable[[Block], tuple[Bytes, npt.NDArray[np.integer]]]
"""A block's rows -> `(data, lens)` of the transformed rows, in the same order."""


def transform_rows(values: pa.Array, fn: BlockFn) -> pa.Array:
    """A string array whose rows are `fn` applied to the rows of `values`; nulls stay null."""
    rows = layout(values)
    n = len(rows.lens)
    datas: list[Bytes] = []
    lens: list[npt.NDArray[np.integer]] = []
    for at in range(0, n, BLOCK_ROWS):
        starts = rows.starts[at : at + BLOCK_ROWS]
        sizes = rows.lens[at : at + BLOCK_ROWS]
        begin, end = int(starts[0]), int(starts[-1] + sizes[-1])
        block = Block(
            rows.data[begin:end],
            (starts - begin).astype(np.int32),
            sizes.astype(np.int32),
            at,
        )
        data, size = fn(block)
        datas.append(data)
        lens.append(size)
    if not datas:
        return pa.array([], pa.string())
    return build(np.concatenate(datas), np.concatenate(lens).astype(np.int64), values)
