"""`fpe` and `fpe_decrypt`: format-preserving encryption with NIST FF1 (SP 800-38G).

FF3/FF3-1 are not offered: NIST withdrew FF3 after published attacks. FF1 runs per value in
Rust (`fastfpe`, about 5 µs a value, with the GIL released), so a column is deduplicated first
and large ones are encrypted on several threads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import PrivacyError
from lockgate.privacy.transforms.operation import Context, Operation, Values
from lockgate.privacy.transforms.options import KEY_OPTION, Option
from lockgate.privacy.transforms.strings import as_text, build, layout

PURPOSE = "fpe"
DIGITS = "0123456789"
LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()
ALPHABETS = {
    "digits": DIGITS,
    "lower_alphanumeric": DIGITS + LOWER,
    "upper_alphanumeric": DIGITS + UPPER,
    "alphanumeric": DIGITS + LOWER + UPPER,
    "lower": LOWER,
    "upper": UPPER,
    "letters": LOWER + UPPER,
}
MIN_DOMAIN = 1_000_000
"""NIST SP 800-38G Rev. 1: radix ** length must be at least one million."""
PARALLEL_FROM = 20_000
"""Columns with more distinct values than this are encrypted on several threads."""


def min_length(alphabet: str) -> int:
    """The fewest characters of `alphabet` FF1 accepts (6 digits, 4 alphanumerics...)."""
    return math.ceil(math.log(MIN_DOMAIN) / math.log(len(alphabet)) - 1e-9)


def _seen_bytes(values: Values) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Which byte values occur in the column's non-null text."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    seen = np.zeros(256, dtype=bool)
    for chunk in chunks:
        text = as_text(chunk, "fpe")
        data = layout(text).data
        if len(data):
            seen |= np.bincount(data, minlength=256).astype(bool)
    return seen


def decide_alphabet(values: Values) -> str | None:
    """The smallest standard alphabet holding every ASCII letter and digit of the column, or
    None when it has none yet (all null or empty): what `alphabet: auto` means."""
    seen = _seen_bytes(values)
    lower, upper = seen[0x61:0x7B].any(), seen[0x41:0x5B].any()
    if lower and upper:
        return "alphanumeric"
    if lower:
        return "lower_alphanumeric"
    if upper:
        return "upper_alphanumeric"
    return "digits" if seen[0x30:0x3A].any() else None


def _auto_alphabet(values: Values) -> str:
    return decide_alphabet(values) or "digits"


def check_alphabet(values: pa.Array, alphabet: str, column: str, row_offset: int = 0) -> None:
    """Fail, naming the row, when a value holds an ASCII letter or digit outside `alphabet`.

    For an alphabet decided by `auto` on earlier rows: such a character would be left as it is
    (taken for a separator) rather than encrypted, leaking it.
    """
    text = as_text(values, "fpe", column)
    rows = layout(text)
    if not len(rows.data):
        return
    alnum = np.zeros(256, dtype=bool)
    for chars in (DIGITS, LOWER, UPPER):
        alnum[np.frombuffer(chars.encode(), dtype=np.uint8)] = True
    alnum[np.frombuffer(ALPHABETS[alphabet].encode(), dtype=np.uint8)] = False
    bad = alnum[rows.data]
    if not bad.any():
        return
    valid = pc.is_valid(text).to_numpy(zero_copy_only=False)
    outside = np.flatnonzero(bad)
    owners = np.searchsorted(rows.starts + rows.lens, outside, side="right")
    hits = [int(r) for r in owners if valid[r]]
    if not hits:
        return
    both = pa.chunked_array([text.slice(hits[0], 1), pa.array([ALPHABETS[alphabet]])])
    wider = decide_alphabet(both) or "alphanumeric"
    raise PrivacyError(
        f"fpe: row {row_offset + hits[0]} of column {column!r} has characters outside alphabet "
        f"{alphabet!r}, which `auto` chose from the column's first values; set the rule's "
        f"option alphabet: {wider}"
    )


def _prepare(values: Values, ctx: Context) -> Context:
    if ctx.options["alphabet"] != "auto":
        return ctx
    return replace(ctx, options={**ctx.options, "alphabet": _auto_alphabet(values)})


def _cipher(ctx: Context, decrypt: bool) -> Callable[[list[str]], list[str]]:
    """FF1 over a list of values made only of the alphabet's characters."""
    from fastfpe import ff1

    _, key = ctx.key(PURPOSE)
    key_hex, tweak = key.hex(), str(ctx.options["tweak"]).encode().hex()
    alphabet = ALPHABETS[str(ctx.options["alphabet"])]
    function = ff1.decrypt if decrypt else ff1.encrypt

    def run(part: list[str]) -> list[str]:
        return [function(key_hex, tweak, alphabet, v) if v else v for v in part]

    return run


def _run_all(run: Callable[[list[str]], list[str]], values: list[str]) -> list[str]:
    """`run` over `values`, on several threads for long lists (fastfpe releases the GIL)."""
    workers = min(os.cpu_count() or 1, 8)
    if len(values) <= PARALLEL_FROM or workers < 2:
        return run(values)
    size = math.ceil(len(values) / workers)
    with ThreadPoolExecutor(workers) as pool:
        parts = pool.map(run, [values[i : i + size] for i in range(0, len(values), size)])
        return [value for part in parts for value in part]


def _run(values: pa.Array, ctx: Context, decrypt: bool) -> pa.Array:
    if ctx.options["alphabet"] == "auto":
        ctx = _prepare(values, ctx)
    name = str(ctx.options["alphabet"])
    text = as_text(values, ctx.op, ctx.column)
    rows = layout(text)
    member = np.zeros(256, dtype=bool)
    member[np.frombuffer(ALPHABETS[name].encode(), dtype=np.uint8)] = True
    inside = member[rows.data]
    valid = pc.is_valid(text).to_numpy(zero_copy_only=False)
    if not valid.all():
        inside &= np.repeat(valid, rows.lens)
    # the alphabet's characters of each value, separators and other characters taken out
    running = np.zeros(len(inside) + 1, dtype=np.int64)
    np.cumsum(inside.view(np.uint8), dtype=np.int64, out=running[1:])
    counts = running[rows.starts + rows.lens] - running[rows.starts]
    shortest = min_length(ALPHABETS[name])
    short = np.flatnonzero((counts > 0) & (counts < shortest) & valid)
    if len(short):
        row = int(short[0])
        raise PrivacyError(
            f"{ctx.op}: {ctx.where(row)} has {counts[row]} character(s) of alphabet {name!r}; FF1 "
            f"needs at least {shortest} (a domain of {MIN_DOMAIN:,} values): use tokenize or "
            "mask for values this short"
        )
    plain = inside.all() and bool((counts == rows.lens).all())
    stripped = text if plain else build(rows.data[inside], counts, text)
    # each distinct value once
    encoded = stripped.dictionary_encode()
    try:
        done = _run_all(_cipher(ctx, decrypt), encoded.dictionary.to_pylist())
    except ValueError:
        action = "decrypt" if decrypt else "encrypt"
        raise PrivacyError(
            f"{ctx.op}: FF1 could not {action} column {ctx.column or '?'!r}"
        ) from None
    result = pc.take(pa.array(done, type=stripped.type), encoded.indices)
    if plain:
        return result
    out = rows.data.copy()
    out[inside] = layout(result).data
    return build(out, rows.lens, text)


def fpe_encrypt(values: pa.Array, ctx: Context) -> pa.Array:
    """Encrypt each value with NIST FF1 (AES-256, key derived for FPE) so that it keeps its
    format: with the `digits` alphabet digits stay digits and every other character (spaces,
    dashes) stays in place; other alphabets (`upper_alphanumeric`, `alphanumeric`...) likewise
    keep letters and digits within the alphabet. `auto` (default) picks the smallest standard
    alphabet holding the column's letters and digits (`mask_file` decides it once per column,
    from its first values, so every batch uses and records the same one). Reversible with `fpe_decrypt` and the
    same key; equal values give equal ciphertexts (joins still match).

    A value with fewer alphabet characters than FF1 allows (radix ** length must reach
    1,000,000: 6 digits, 4 alphanumerics) is an error naming its row; empty values and values
    without alphabet characters stay as they are. The key id, alphabet and tweak are recorded
    in the field metadata so that `fpe_decrypt` finds them. Numbers are encrypted as text (the
    result is text: leading zeros matter). Nulls stay null.
    """
    return _run(values, ctx, decrypt=False)


def fpe_decrypt(values: pa.Array, ctx: Context) -> pa.Array:
    """Reverse `fpe`: needs the same key id, alphabet and tweak, which are read from the field
    metadata `fpe` wrote (pass `key` and `alphabet` when decrypting a bare array)."""
    return _run(values, ctx, decrypt=True)


_OPTIONS = (
    KEY_OPTION,
    Option(
        "alphabet",
        "choice",
        "auto",
        "the characters encrypted: auto, " + ", ".join(ALPHABETS),
        choices=("auto", *ALPHABETS),
    ),
    Option(
        "tweak", "str", "", "a public tweak: the same value under other tweaks encrypts differently"
    ),
)

ENCRYPT = Operation(
    name="fpe",
    form="fpe",
    summary="format-preserving encryption (NIST FF1): digits stay digits, reversible with the key",
    needs_key=True,
    run=fpe_encrypt,
    options=_OPTIONS,
    prepare=_prepare,
    records=("alphabet", "tweak"),
    per_unique=False,
)

DECRYPT = Operation(
    name="fpe_decrypt",
    form="decrypted",
    summary="reverse fpe with the key id, alphabet and tweak recorded on the column",
    needs_key=True,
    run=fpe_decrypt,
    options=_OPTIONS,
    prepare=_prepare,
    records=("alphabet", "tweak"),
    reverses=True,
    per_unique=False,
)
