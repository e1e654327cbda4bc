"""AES-CMAC (NIST SP 800-38B) of every row of an Arrow string/binary array, all rows at once.

A per-value loop over hmac or hashlib costs about 1 µs a value in the interpreter alone; here
block j of every row that has one is encrypted in a single AES-ECB call, so the interpreter
runs once per block index, not once per value, and a million short values take a fraction of
a second. The result equals `cryptography`'s `cmac.CMAC(AES(key))` byte for byte.

Rows longer than `LONG_ROW` blocks are computed one by one with `cryptography` itself, so one
huge value cannot make every pass of the vectorised loop run for it alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from lockgate.privacy.transforms.strings import Bytes, Layout, layout

BLOCK = 16
BLOCK_ROWS = 1 << 16
"""Rows per pass of the vectorised loop."""
LONG_ROW = 64
"""Rows with more blocks than this (1 KiB) are computed one at a time."""

Words = npt.NDArray[np.uint64]


def _double(block: bytes) -> bytes:
    """Multiplication by x in GF(2^128), as SP 800-38B derives the subkeys."""
    value = int.from_bytes(block, "big") << 1
    if value >> 128:
        value = (value ^ 0x87) & ((1 << 128) - 1)
    return value.to_bytes(16, "big")


def _tables(k1: bytes, k2: bytes) -> tuple[Words, Words]:
    """`keep[r]` masks the r bytes left in a row's last block; `fold[r]` is its padding xor the
    subkey. Row 17 of both leaves a block that is not a row's last one unchanged."""
    keep = np.zeros((18, BLOCK), dtype=np.uint8)
    fold = np.zeros((18, BLOCK), dtype=np.uint8)
    for left in range(17):
        keep[left, :left] = 0xFF
        if left == BLOCK:
            fold[left] = np.frombuffer(k1, dtype=np.uint8)
        else:
            fold[left] = np.frombuffer(k2, dtype=np.uint8)
            fold[left, left] ^= 0x80
    keep[17] = 0xFF
    return keep.view(np.uint64), fold.view(np.uint64)


def cmac_rows(key: bytes, values: pa.Array) -> Bytes:
    """The 16-byte AES-CMAC tag of each row's bytes under `key`, as an (n, 16) uint8 array.

    Null rows get the tag of whatever bytes they hold (usually none): callers mask them.
    """
    return cmac_layout(key, layout(values))


def cmac_layout(key: bytes, rows: Layout) -> Bytes:
    """`cmac_rows` for rows given as a byte layout."""
    n = len(rows.lens)
    tags = np.zeros((n, 2), dtype=np.uint64)
    aes = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    k1 = _double(aes.update(bytes(BLOCK)))
    tables = _tables(k1, _double(k1))
    # a block of rows at a time: the temporaries stay in cache and their memory is reused
    for at in range(0, n, BLOCK_ROWS):
        starts = rows.starts[at : at + BLOCK_ROWS]
        lens = rows.lens[at : at + BLOCK_ROWS]
        begin, end = int(starts[0]), int(starts[-1] + lens[-1])
        part = Layout(starts - begin, lens, rows.data[begin:end])
        tags[at : at + BLOCK_ROWS] = _cmac_block(key, aes, tables, part)
    return tags.view(np.uint8)


def _cmac_block(key: bytes, aes: Any, tables: tuple[Words, Words], rows: Layout) -> Words:
    n = len(rows.lens)
    keep, fold = tables
    tags = np.zeros((n, 2), dtype=np.uint64)
    lens = rows.lens
    blocks = np.maximum((lens + (BLOCK - 1)) >> 4, 1)
    long_rows = np.flatnonzero(blocks > LONG_ROW)
    if len(long_rows):
        for row in long_rows.tolist():
            start = int(rows.starts[row])
            mac = cmac.CMAC(algorithms.AES(key))
            mac.update(rows.data[start : start + int(lens[row])].tobytes())
            tags[row] = np.frombuffer(mac.finalize(), dtype=np.uint64)
        blocks = np.where(blocks > LONG_ROW, 0, blocks)

    # 8-byte little-endian words at every byte offset of the data (reads past a row's end are
    # masked off; 16 zero bytes of padding keep the last row's reads inside the buffer)
    padded = np.zeros(len(rows.data) + BLOCK, dtype=np.uint8)
    padded[: len(rows.data)] = rows.data
    words: Words = np.ndarray((len(padded) - 7,), dtype=np.uint64, buffer=padded, strides=(1,))
    last_left = lens - (blocks - 1) * BLOCK  # bytes in each row's last block: 0..16
    most = int(blocks.max())
    every = int(blocks.min())
    for j in range(most):
        if j < every:
            active: slice | npt.NDArray[np.intp] = slice(None)
            row_blocks, row_starts, row_left = blocks, rows.starts, last_left
        else:
            active = np.flatnonzero(blocks > j)
            row_blocks, row_starts, row_left = (
                blocks[active],
                rows.starts[active],
                last_left[active],
            )
        pos = row_starts + j * BLOCK
        pick = np.where(row_blocks - 1 == j, row_left, 17)
        state = tags[active]
        block = np.empty_like(state)
        block[:, 0] = (words[pos] & keep[pick, 0]) ^ fold[pick, 0] ^ state[:, 0]
        block[:, 1] = (words[pos + 8] & keep[pick, 1]) ^ fold[pick, 1] ^ state[:, 1]
        tags[active] = np.frombuffer(aes.update(block.tobytes()), dtype=np.uint64).reshape(-1, 2)
    return tags
