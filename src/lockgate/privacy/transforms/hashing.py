"""`hash`: a keyed hash of each value, in full, as hex."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pyarrow as pa

from lockgate.privacy.transforms.cmac import cmac_layout
from lockgate.privacy.transforms.operation import Context, Operation
from lockgate.privacy.transforms.options import KEY_OPTION, Option
from lockgate.privacy.transforms.strings import Bytes, as_text, fixed, hex_chars, layout
from lockgate.privacy.transforms.tokenize import purpose

PURPOSE = "hash"
ALGORITHMS = ("cmac-aes256", "hmac-sha256")


def _hmac_rows(key: bytes, text: pa.Array) -> Bytes:
    rows = layout(text)
    raw = rows.data.tobytes()
    digest, sha256 = hmac.digest, hashlib.sha256
    joined = b"".join(
        [
            digest(key, raw[start : start + length], sha256)
            for start, length in zip(rows.starts.tolist(), rows.lens.tolist(), strict=True)
        ]
    )
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(rows.lens), 32)


def hash_values(values: pa.Array, ctx: Context) -> pa.Array:
    """Replace each value with its keyed hash in hex: AES-256-CMAC (32 hex characters, the
    default, computed for all rows at once) or `algorithm: hmac-sha256` (64 hex characters,
    one value at a time, about five times slower).

    The key is derived for hashing only (never the tokenization key), so hashes and tokens of
    the same value are unrelated. Like tokens, hashes are equal for equal values in every
    column and table (unless `per_column: true`) and change when the key rotates (pin it with
    `key`). Option `prefix` puts text before each hash. Numbers and dates are hashed as text.
    Nulls stay null, empty strings stay empty.
    """
    text = as_text(values, ctx.op, ctx.column, binary_ok=True)
    _, key = ctx.key(purpose(ctx, PURPOSE))
    if ctx.options["algorithm"] == "hmac-sha256":
        digests, count = _hmac_rows(key, text), 64
    else:
        digests, count = cmac_layout(key, layout(text)), 32
    prefix = str(ctx.options["prefix"]).encode()
    chars = np.empty((len(text), len(prefix) + count), dtype=np.uint8)
    chars[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    chars[:, len(prefix) :] = hex_chars(digests, count)
    return fixed(chars, text)


OPERATION = Operation(
    name="hash",
    form="hashed",
    summary="replace each value with its keyed hash (hex)",
    needs_key=True,
    run=hash_values,
    options=(
        KEY_OPTION,
        Option("algorithm", "choice", "cmac-aes256", "cmac-aes256 or hmac-sha256", ALGORITHMS),
        Option("prefix", "str", "", "text before each hash"),
        Option("per_column", "bool", False, "make hashes depend on the column name too"),
    ),
)
