"""`tokenize`: deterministic keyed tokens, so joins across tables, files and runs still match."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import PrivacyError
from lockgate.privacy.transforms.cmac import cmac_layout
from lockgate.privacy.transforms.operation import Context, Operation
from lockgate.privacy.transforms.options import KEY_OPTION, Option
from lockgate.privacy.transforms.rows import Block, Int32s, transform_rows
from lockgate.privacy.transforms.shape import shape_tokens
from lockgate.privacy.transforms.strings import Bytes, as_text, fixed, hex_chars, layout

PURPOSE = "tokenize"


def purpose(ctx: Context, base: str) -> str:
    """The key purpose: `base`, or `base` scoped to the column with option `per_column`."""
    return f"{base}/column={ctx.column}" if ctx.options.get("per_column") else base


def domains(text: pa.Array) -> pa.Array:
    """Each value from its last `@` on (`@example.com`), empty when it has none."""

    def after_at(block: Block) -> tuple[Bytes, Int32s]:
        at = block.data == 0x40
        rank, after, total = block.ranks(at)
        domain = (after == 0) & (rank > 0)
        _, _, size = block.ranks(domain)
        return block.data[domain], size

    return transform_rows(text, after_at)


def _with_domain(tokens: pa.Array, text: pa.Array) -> pa.Array:
    """`token@domain` where the value is an email address, the token alone elsewhere."""
    return pc.binary_join_element_wise(tokens, domains(text), pa.scalar("", tokens.type))


def tokenize(values: pa.Array, ctx: Context) -> pa.Array:
    """Replace each value with a keyed token: `tok_` and 20 hex characters (80 bits of the
    value's AES-CMAC under the tokenization key; options `prefix` and `length`, 16-32).

    The same value gives the same token in every column, table and run as long as the key is
    the same, so tokenized tables still join; the column name is not part of the token unless
    `per_column: true`. Rotating the keyring changes every token: pin the key id (option
    `key`) where tokens must keep matching across time. Tokens cannot be reversed (use `fpe`
    or `encrypt` for that).

    `format_preserving: true` keeps each value's shape instead: digits stay digits, letters stay
    letters of the same case, punctuation, `@` and `.` stay (short values may collide).
    `keep_domain: true` keeps an email's domain (`tok_...@example.com`). Numbers and dates are
    tokenized as text, so `42` and `"42"` get the same token. Nulls stay null, empty strings
    stay empty.
    """
    shaped = bool(ctx.options["format_preserving"])
    text = as_text(values, ctx.op, ctx.column, binary_ok=not shaped)
    _, key = ctx.key(purpose(ctx, PURPOSE))
    rows = layout(text)
    tags = cmac_layout(key, rows)
    if shaped:
        _, shape_key = ctx.key(purpose(ctx, PURPOSE + "/shape"))
        return shape_tokens(text, tags, shape_key, keep_domain=ctx.options["keep_domain"])
    prefix = str(ctx.options["prefix"]).encode()
    width = len(prefix) + ctx.options["length"]
    chars = np.empty((len(text), width), dtype=np.uint8)
    chars[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    chars[:, len(prefix) :] = hex_chars(tags, ctx.options["length"])
    tokens = fixed(chars, text)
    if ctx.options["keep_domain"]:
        if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
            raise PrivacyError(f"{ctx.op}: option 'keep_domain' needs a text column")
        return _with_domain(tokens, text)
    return tokens


OPERATION = Operation(
    name="tokenize",
    form="tokenized",
    summary="replace each value with a deterministic keyed token (joins still match)",
    needs_key=True,
    run=tokenize,
    options=(
        KEY_OPTION,
        Option("prefix", "str", "tok_", "text before the hex digits of each token"),
        Option("length", "int", 20, "hex characters per token", minimum=16, maximum=32),
        Option(
            "format_preserving",
            "bool",
            False,
            "keep the value's shape: digits stay digits, letters letters, punctuation kept",
        ),
        Option("keep_domain", "bool", False, "keep the domain of email addresses"),
        Option(
            "per_column",
            "bool",
            False,
            "make tokens depend on the column name too (equal values in different columns differ)",
        ),
    ),
)
