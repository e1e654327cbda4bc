"""Format-preserving tokens: each value's characters replaced by keyed pseudo-random ones of
the same class (digits by digits, letters by letters of the same case), punctuation kept.

`ab.Cd-12@mail.com` might become `xq.Pz-83@kfbm.qwe`, or `xq.Pz-83@mail.com` when the domain
is kept. The replacement characters come from an AES keystream seeded by the value's keyed
CMAC tag, so equal values give equal tokens; they are not unique (short values collide) and
cannot be reversed (use `fpe` for that). A non-ASCII character becomes one lowercase ASCII
letter, so the token has as many characters as the value.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from lockgate.privacy.transforms.rows import Block, Int32s, transform_rows
from lockgate.privacy.transforms.strings import Bytes

BLOCK = 16


def _keystream(key: bytes, tags: Bytes, block: Block) -> Bytes:
    """One keystream byte per data byte: row r's bytes come from AES(key, tag_r xor j) for
    its 16-byte blocks j = 0, 1, ..."""
    count = (block.lens + (BLOCK - 1)) // BLOCK
    first = np.zeros(len(count), dtype=np.int32)
    np.cumsum(count[:-1], out=first[1:])
    owner = np.repeat(np.arange(len(count)), count)
    counters = tags.view(np.uint64)[owner]
    counters[:, 1] ^= (np.arange(len(owner)) - first[owner]).astype(np.uint64)
    aes = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    stream = np.frombuffer(aes.update(counters.tobytes()), dtype=np.uint8)
    # byte k of row r is stream byte 16 * first[r] + k
    shift = block.row_of_byte(first * BLOCK - block.starts)
    return stream[np.arange(len(block.data), dtype=np.int32) + shift]


def shape_tokens(values: pa.Array, tags: Bytes, key: bytes, *, keep_domain: bool) -> pa.Array:
    """The format-preserving token of every row of the string array `values`; `tags` are the
    rows' keyed CMAC tags."""

    def shape(block: Block) -> tuple[Bytes, Int32s]:
        data = block.data
        ks = _keystream(key, tags[block.first : block.first + len(block.lens)], block)
        out = data.copy()
        digit = (data >= 0x30) & (data <= 0x39)
        upper = (data >= 0x41) & (data <= 0x5A)
        # lowercase letters and the first byte of each non-ASCII character
        letter = ((data >= 0x61) & (data <= 0x7A)) | (data >= 0xC0)
        out[digit] = 0x30 + ks[digit] % 10
        out[upper] = 0x41 + ks[upper] % 26
        out[letter] = 0x61 + ks[letter] % 26
        follow = (data >= 0x80) & (data < 0xC0)  # continuation bytes: dropped
        if keep_domain:
            at = data == 0x40
            rank, after, total = block.ranks(at)
            domain = (after == 0) & (rank > 0) & ~at
            out[domain] = data[domain]
            follow &= ~domain
        if not follow.any():
            return out, block.lens
        _, _, dropped = block.ranks(follow)
        return out[~follow], block.lens - dropped

    return transform_rows(values, shape)
