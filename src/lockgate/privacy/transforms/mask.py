"""`mask` (hide all but the first/last characters) and `truncate` (keep only the last ones).

Both understand digit-formatted values such as card numbers, SSNs and phone numbers: in the
`digits` (or `card`) format only digits count and separators stay where they are, so
`4111 1111 1111 1234` masks to `**** **** **** 1234` and truncates to `1234`. That path works on
the raw bytes with numpy; the plain path on characters with pyarrow.compute.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import PrivacyError
from lockgate.model.classification import base_class
from lockgate.privacy.transforms.operation import Context, Operation
from lockgate.privacy.transforms.options import Option
from lockgate.privacy.transforms.rows import Block, Bools, Int32s, transform_rows
from lockgate.privacy.transforms.strings import Bytes, as_text

FORMATS = ("auto", "plain", "digits", "card", "alphanumeric", "email")
_AUTO = {
    "pci.pan": "card",
    "pii.ssn": "digits",
    "pii.phone": "digits",
    "pii.email": "email",
    "pii.iban": "alphanumeric",
}
MAX_SHOWN = 34
"""Default of option `max_shown`: `mask` and `truncate` show at most this percentage of a
value's (counted) characters, rounded down (about a third: 3 -> 1, 5 -> 1, 9 -> 3, 16 -> 5),
and never a whole value."""
_COUNTED = ("digits", "alphanumeric")
"""Formats in which only some characters (digits; ASCII letters and digits) count and the
others (spaces, dashes) stay in place."""


def _format(ctx: Context) -> str:
    chosen = str(ctx.options["format"])
    if chosen == "auto":
        chosen = _AUTO.get(base_class(ctx.classification) or "", "plain")
    return "digits" if chosen == "card" else chosen


def _digits(block: Block, kind: str = "digits") -> tuple[Bools, Int32s, Int32s, Int32s]:
    """Which bytes count (ASCII digits; with `alphanumeric`, ASCII letters too), each byte's
    rank among them in its row (from 1), how many come after it, and each row's count."""
    data = block.data
    counted = (data >= 0x30) & (data <= 0x39)
    if kind == "alphanumeric":
        letter = data | np.uint8(0x20)  # lower case
        counted |= (letter >= 0x61) & (letter <= 0x7A)
    return (counted, *block.ranks(counted))


def _allowed(total: npt.NDArray[np.integer], share: int) -> npt.NDArray[np.int64]:
    """The most characters shown of values of `total` characters: `share` percent of them,
    rounded down, and never all."""
    counts: npt.NDArray[np.int64] = total.astype(np.int64)
    allowed: npt.NDArray[np.int64] = np.maximum(np.minimum(counts * share // 100, counts - 1), 0)
    return allowed


def _kept(
    total: npt.NDArray[np.integer], first: int, last: int, share: int
) -> tuple[Int32s, Int32s]:
    """How many counted characters each row keeps at its start and at its end: what the
    options ask, but never more than `share` percent of the row's counted characters (the end
    first, then the start)."""
    allowed = _allowed(total, share).astype(np.int32)
    at_end = np.minimum(allowed, last).astype(np.int32)
    at_start = np.minimum(allowed - at_end, first).astype(np.int32)
    return at_start, at_end


def _mask_digits(
    values: pa.Array,
    first: int,
    last: int,
    char: str,
    ctx: Context,
    kind: str = "digits",
    share: int = MAX_SHOWN,
) -> pa.Array:
    code = char.encode()
    if len(code) != 1:
        raise PrivacyError(
            f"{ctx.op}: option 'char' must be one ASCII character to mask digits, got {char!r}"
        )
    star = np.uint8(code[0])

    def hide(block: Block) -> tuple[Bytes, Int32s]:
        is_digit, rank, after, total = _digits(block, kind)
        at_start, at_end = _kept(total, first, last, share)
        hidden = (
            is_digit & (rank > block.row_of_byte(at_start)) & (after >= block.row_of_byte(at_end))
        )
        out = np.where(hidden, star, block.data)
        bare = total == 0
        if not (bare & (block.lens > 0)).any():
            return out, block.lens
        # a value with nothing to count (`Alice` in a digits column) is hidden whole: one
        # `char` per character (the UTF-8 continuation bytes are dropped)
        in_bare = block.row_of_byte(bare)
        lead = (block.data & np.uint8(0xC0)) != np.uint8(0x80)
        out = np.where(in_bare, star, out)
        keep = ~in_bare | lead
        _rank, _after, leads = block.ranks(in_bare & lead)
        lens = np.where(bare, leads, block.lens).astype(np.int32)
        return out[keep], lens

    return transform_rows(values, hide)


def _slices(values: pa.Array, first: int, last: int, char: str) -> pa.Array:
    """Each value's first `first` and last `last` characters around one `char` per other
    character (every value at least `first + last` characters long)."""
    empty = pa.scalar("", values.type)
    head = pc.utf8_slice_codeunits(values, 0, first) if first else empty
    tail = pc.utf8_slice_codeunits(values, -last) if last else empty
    # shorter values get a negative count here; `_mask_plain` replaces those rows
    hidden = pc.max_element_wise(pc.subtract(pc.utf8_length(values), first + last), 0)
    stars = pc.binary_repeat(pa.scalar(char, values.type), hidden)
    return pc.binary_join_element_wise(head, stars, tail, empty)


def _short_rows(
    values: pa.Array, wanted: int, share: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each row's allowed characters (`share` percent of its length), and the distinct
    allowed counts below `wanted` (the rows that keep fewer characters than asked)."""
    lengths = pc.fill_null(pc.utf8_length(values), 0).to_numpy(zero_copy_only=False)
    counts = _allowed(lengths, share)
    return counts, np.unique(counts[counts < wanted])


def _mask_plain(
    values: pa.Array, first: int, last: int, char: str, share: int = MAX_SHOWN
) -> pa.Array:
    out = _slices(values, first, last, char)
    if not first + last:
        return out
    counts, short = _short_rows(values, first + last, share)
    for allowed in short.tolist():  # at most first + last passes, over short values only
        at_end = min(allowed, last)
        at_start = min(allowed - at_end, first)
        rows = pa.array(counts == allowed)
        out = pc.if_else(rows, _slices(values, at_start, at_end, char), out)
    return pc.if_else(pc.is_valid(values), out, pa.scalar(None, out.type))  # nulls stay null


def _mask_email(values: pa.Array, first: int, char: str, share: int) -> pa.Array:
    parts = pc.extract_regex(values, r"^(?P<local>.*)@(?P<domain>[^@]*)$")
    local = pc.struct_field(parts, "local")
    domain = pc.struct_field(parts, "domain")
    masked = _mask_plain(local, first, 0, char, share)
    joined = pc.binary_join_element_wise(masked, domain, pa.scalar("@", values.type))
    plain = _mask_plain(values, first, 0, char, share)
    return pc.if_else(pc.is_valid(parts), joined, plain)


def mask(values: pa.Array, ctx: Context) -> pa.Array:
    """Hide every character but the first `keep_first` and the last `keep_last` (default 0 and
    4) behind `char` (default `*`); the length stays.

    A mask never shows most of a value: at most `max_shown` percent (default 34, about a
    third, rounded down) of its characters (of its digits in the `digits` format), and never
    all of them. A value too short for what is asked keeps fewer (the last ones first); one of
    fewer than 3 characters is hidden whole. So `Alice` -> `****e`, ZIP `12345` -> `****5`,
    `Bob` -> `**b`, `Al` -> `**`, SSN `123-45-6789` -> `***-**-*789` (`max_shown: 50` shows
    `6789`), while a card number keeps its last 4 digits (`**** **** **** 1234`; first 6 and
    last 4 need `max_shown: 63`).

    Option `format`: `plain` counts characters; `digits` (alias `card`) counts only digits and
    keeps every other character in place (`4111-1111-1111-1234` -> `****-****-****-1234`);
    `alphanumeric` likewise counts ASCII letters and digits (IBANs: `DE89 3704 0044 0532 0130
    00` -> `**** **** **** **** **30 00`); in both, a value with nothing to count (`Alice` in
    a digits column) is hidden whole (`*****`). `email` hides the name but its first
    `keep_first` characters (within the same third) and keeps the domain (`jo*****@example.com`
    with `keep_first: 2`); `auto` (default) picks `card` for `pci.pan` columns, `digits` for
    SSNs and phones, `alphanumeric` for IBANs, `email` for emails, `plain` otherwise. Numbers
    and dates are masked as text. Nulls stay null.
    """
    text = as_text(values, ctx.op, ctx.column)
    first, last, char = ctx.options["keep_first"], ctx.options["keep_last"], ctx.options["char"]
    share = ctx.options["max_shown"]
    if not char:
        raise PrivacyError(f"{ctx.op}: option 'char' must not be empty")
    kind = _format(ctx)
    if kind in _COUNTED:
        return _mask_digits(text, first, last, char, ctx, kind, share)
    if kind == "email":
        return _mask_email(text, first, char, share)
    return _mask_plain(text, first, last, char, share)


def truncate(values: pa.Array, ctx: Context) -> pa.Array:
    """Keep only the last `keep_last` characters (default 4) and drop the rest.

    Like `mask`, never more than `max_shown` percent (default 34, about a third) of a value's
    characters (digits), and never all: `Bob` -> `b`, `4111` -> `1`, and a value of fewer
    than 3 becomes empty. In the `digits`/`card` format
    (`auto` picks it for `pci.pan`, SSN and phone columns) only digits are kept, so a card
    number in any layout becomes its last four digits (`1234`), as PCI DSS truncation does,
    and a value without digits becomes empty. Nulls stay null.
    """
    text = as_text(values, ctx.op, ctx.column)
    last, share = ctx.options["keep_last"], ctx.options["max_shown"]
    kind = _format(ctx)
    if kind in _COUNTED:

        def tail(block: Block) -> tuple[Bytes, Int32s]:
            is_digit, _rank, after, total = _digits(block, kind)
            _start, at_end = _kept(total, 0, last, share)
            return block.data[is_digit & (after < block.row_of_byte(at_end))], at_end

        return transform_rows(text, tail)
    empty = pc.if_else(pc.is_valid(text), pa.scalar("", text.type), pa.scalar(None, text.type))
    if last == 0:
        return empty
    out = pc.utf8_slice_codeunits(text, -last)
    counts, short = _short_rows(text, last, share)
    for allowed in short.tolist():
        part = pc.utf8_slice_codeunits(text, -allowed) if allowed else empty
        out = pc.if_else(pa.array(counts == allowed), part, out)
    return pc.if_else(pc.is_valid(text), out, pa.scalar(None, out.type))


_FORMAT = Option(
    "format",
    "choice",
    "auto",
    "plain, digits (card: the same), alphanumeric, email, or auto (from the column's "
    "classification)",
    choices=FORMATS,
)
_MAX_SHOWN = Option(
    "max_shown",
    "int",
    MAX_SHOWN,
    "most characters (digits) shown, in percent of the value's; never all",
    minimum=0,
    maximum=100,
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
        _MAX_SHOWN,
    ),
)

TRUNCATE = Operation(
    name="truncate",
    form="truncated",
    summary="keep only the last characters (card numbers: the last 4 digits)",
    needs_key=False,
    run=truncate,
    options=(
        Option("keep_last", "int", 4, "characters (digits) kept", minimum=0),
        _FORMAT,
        _MAX_SHOWN,
    ),
)
