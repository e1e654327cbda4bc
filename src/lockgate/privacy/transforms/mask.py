"""`mask` (hide all but the first/last characters) and `truncate` (keep only the last ones).

Both understand digit-formatted values such as card numbers, SSNs and phone numbers: in the
`digits` (or `card`) format only digits count and separators stay where they are, so
`4111 1111 1111 1234` masks to `**** **** **** 1234` and truncates to `1234`. That path works on
the raw bytes with numpy; the plain path on characters with pyarrow.compute.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import PrivacyError
from lockgate.privacy.tags import base_class
from lockgate.privacy.transforms.operation import Context, Operation
from lockgate.privacy.transforms.options import Option
from lockgate.privacy.transforms.rows import Block, Bools, Int32s, transform_rows
from lockgate.privacy.transforms.strings import Bytes, as_text

FORMATS = ("auto", "plain", "digits", "card", "email")
_AUTO = {"pci.pan": "card", "pii.ssn": "digits", "pii.phone": "digits", "pii.email": "email"}


def _format(ctx: Context) -> str:
    chosen = str(ctx.options["format"])
    if chosen == "auto":
        chosen = _AUTO.get(base_class(ctx.classification) or "", "plain")
    return "digits" if chosen == "card" else chosen


def _digits(block: Block) -> tuple[Bools, Int32s, Int32s, Int32s]:
    """Which bytes are ASCII digits, each byte's digit rank in its row (from 1), the digits
    after it, and each row's digit count."""
    data = block.data
    is_digit = (data >= 0x30) & (data <= 0x39)
    return (is_digit, *block.ranks(is_digit))


def _mask_digits(values: pa.Array, first: int, last: int, char: str, ctx: Context) -> pa.Array:
    code = char.encode()
    if len(code) != 1:
        raise PrivacyError(
            f"{ctx.op}: option 'char' must be one ASCII character to mask digits, got {char!r}"
        )

    def hide(block: Block) -> tuple[Bytes, Int32s]:
        is_digit, rank, after, total = _digits(block)
        short = block.row_of_byte(total <= first + last)
        hidden = is_digit & (short | ((rank > first) & (after >= last)))
        return np.where(hidden, np.uint8(code[0]), block.data), block.lens

    return transform_rows(values, hide)


def _mask_plain(values: pa.Array, first: int, last: int, char: str) -> pa.Array:
    length = pc.utf8_length(values)
    short = pc.less_equal(length, first + last)
    empty = pa.scalar("", values.type)
    head = pc.if_else(short, empty, pc.utf8_slice_codeunits(values, 0, first))
    tail = (
        pc.if_else(short, empty, pc.utf8_slice_codeunits(values, -last))
        if last
        else pc.if_else(pc.is_valid(values), empty, pa.scalar(None, values.type))
    )
    hidden = pc.if_else(short, length, pc.subtract(length, first + last))
    stars = pc.binary_repeat(pa.scalar(char, values.type), hidden)
    return pc.binary_join_element_wise(head, stars, tail, pa.scalar("", values.type))


def _mask_email(values: pa.Array, first: int, char: str) -> pa.Array:
    parts = pc.extract_regex(values, r"^(?P<local>.*)@(?P<domain>[^@]*)$")
    local = pc.struct_field(parts, "local")
    domain = pc.struct_field(parts, "domain")
    masked = _mask_plain(local, first, 0, char)
    joined = pc.binary_join_element_wise(masked, domain, pa.scalar("@", values.type))
    plain = _mask_plain(values, first, 0, char)
    return pc.if_else(pc.is_valid(parts), joined, plain)


def mask(values: pa.Array, ctx: Context) -> pa.Array:
    """Hide every character but the first `keep_first` and the last `keep_last` (default 0 and
    4) behind `char` (default `*`); the length stays. A value no longer than what would be kept
    is hidden completely.

    Option `format`: `plain` counts characters; `digits` (alias `card`) counts only digits and
    keeps every other character in place (`4111-1111-1111-1234` -> `****-****-****-1234`,
    `123-45-6789` -> `***-**-6789`); `email` hides the name but its first `keep_first`
    characters and keeps the domain (`j***@example.com` with `keep_first: 1`); `auto` (default) picks `card` for
    `pci.pan` columns, `digits` for SSNs and phones, `email` for emails, `plain` otherwise.
    Numbers and dates are masked as text. Nulls stay null.
    """
    text = as_text(values, ctx.op, ctx.column)
    first, last, char = ctx.options["keep_first"], ctx.options["keep_last"], ctx.options["char"]
    if not char:
        raise PrivacyError(f"{ctx.op}: option 'char' must not be empty")
    kind = _format(ctx)
    if kind == "digits":
        return _mask_digits(text, first, last, char, ctx)
    if kind == "email":
        return _mask_email(text, first, char)
    return _mask_plain(text, first, last, char)


def truncate(values: pa.Array, ctx: Context) -> pa.Array:
    """Keep only the last `keep_last` characters (default 4) and drop the rest.

    In the `digits`/`card` format (`auto` picks it for `pci.pan`, SSN and phone columns) only
    digits are kept, so a card number in any layout becomes its last four digits (`1234`), as
    PCI DSS truncation does. Nulls stay null.
    """
    text = as_text(values, ctx.op, ctx.column)
    last = ctx.options["keep_last"]
    if _format(ctx) == "digits":

        def tail(block: Block) -> tuple[Bytes, Int32s]:
            is_digit, _rank, after, total = _digits(block)
            return block.data[is_digit & (after < last)], np.minimum(total, last)

        return transform_rows(text, tail)
    if last == 0:
        return pc.if_else(pc.is_valid(text), pa.scalar("", text.type), pa.scalar(None, text.type))
    return pc.utf8_slice_codeunits(text, -last)


_FORMAT = Option(
    "format",
    "choice",
    "auto",
    "plain, digits (card: the same), email, or auto (from the column's classification)",
    choices=FORMATS,
)

MASK = Operation(
    name="mask",
    form="masked",
    summary="hide all but the first/last characters (card numbers: **** **** **** 1234)",
    needs_key=False,
    run=mask,
    options=(
        Option("keep_first", "int", 0, "characters (digits) kept at the start", minimum=0),
        Option("keep_last", "int", 4, "characters (digits) kept at the end", minimum=0),
        Option("char", "str", "*", "what hides each character"),
        _FORMAT,
    ),
)

TRUNCATE = Operation(
    name="truncate",
    form="truncated",
    summary="keep only the last characters (card numbers: the last 4 digits)",
    needs_key=False,
    run=truncate,
    options=(Option("keep_last", "int", 4, "characters (digits) kept", minimum=0), _FORMAT),
)
