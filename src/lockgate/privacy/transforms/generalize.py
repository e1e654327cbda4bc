"""`generalize`: keep a coarser version of a value (a date's year, a ZIP code's first three
digits, an age's band), as HIPAA's Safe Harbor method does for dates, ZIP codes and ages."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import PrivacyError
from lockgate.privacy.transforms.dates import year_month
from lockgate.privacy.transforms.operation import Context, Operation
from lockgate.privacy.transforms.options import Option
from lockgate.privacy.transforms.strings import as_text

TARGETS = ("auto", "year", "month", "zip3", "age_band")
RESTRICTED_ZIP3 = frozenset(
    {"036", "059", "063", "102", "203", "556", "692", "790", "821"}
    | {"823", "830", "831", "878", "879", "884", "890", "893"}
)
"""ZIP3 areas of fewer than 20,000 people (HHS Safe Harbor guidance, 2000 census): they
become `000`."""


def _target(values: pa.Array, ctx: Context) -> str:
    chosen = str(ctx.options["to"])
    if chosen != "auto":
        return chosen
    kind = values.type
    if pa.types.is_temporal(kind):
        return "year"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "age_band"
    return "year"


def _dates(values: pa.Array, ctx: Context, month: bool) -> pa.Array:
    kind = values.type
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        if not ctx.options["as_text"]:
            return pc.floor_temporal(values, unit="month" if month else "year")
        year, month_number = pc.year(values), pc.month(values)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        year, month_number = year_month(values, dayfirst=ctx.options["dayfirst"])
    else:
        raise PrivacyError(
            f"{ctx.op}: column {ctx.column or '?'!r} of type {kind} holds no dates; "
            f"use option 'to' (one of {', '.join(TARGETS[1:])})"
        )
    text = pc.cast(year, pa.string())
    if not month:
        return text
    padded = pc.utf8_lpad(pc.cast(month_number, pa.string()), width=2, padding="0")
    return pc.binary_join_element_wise(text, padded, "-")


def _zip3(values: pa.Array, ctx: Context) -> pa.Array:
    if pa.types.is_integer(values.type):  # 2134 is ZIP 02134: its leading zero was lost
        text = pc.utf8_lpad(pc.cast(values, pa.string()), width=5, padding="0")
    else:
        text = as_text(values, ctx.op, ctx.column)
    letters = pc.utf8_upper(pc.replace_substring_regex(text, r"[^0-9A-Za-z]", ""))
    head = pc.utf8_slice_codeunits(letters, 0, 3)
    none = pa.scalar(None, head.type)
    head = pc.if_else(pc.greater_equal(pc.utf8_length(head), 3), head, none)
    if ctx.options["hipaa"]:
        hidden = pc.is_in(head, pa.array(sorted(RESTRICTED_ZIP3), head.type))
        head = pc.if_else(hidden, pa.scalar("000", head.type), head)
    return head


def _ages(values: pa.Array, ctx: Context) -> pa.Array:
    kind = values.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        ages = pc.cast(values, pa.float64())
    else:
        text = pc.utf8_trim_whitespace(as_text(values, ctx.op, ctx.column))
        number = pc.match_substring_regex(text, r"^\d+(\.\d+)?$")
        ages = pc.cast(pc.if_else(number, text, pa.scalar(None, text.type)), pa.float64())
    width, top = ctx.options["band"], ctx.options["top"]
    if top % width:
        raise PrivacyError(
            f"{ctx.op}: option 'top' ({top}) must be a multiple of option 'band' ({width})"
        )
    ages = pc.if_else(pc.greater_equal(ages, 0), ages, pa.scalar(None, pa.float64()))
    low = pc.multiply(pc.cast(pc.floor(pc.divide(ages, float(width))), pa.int64()), width)
    labels = pc.cast(low, pa.string())
    if width > 1:
        high = pc.cast(pc.add(low, width - 1), pa.string())
        labels = pc.binary_join_element_wise(labels, high, "-")
    if top:
        labels = pc.if_else(pc.greater_equal(low, top), f"{top}+", labels)
    return labels


def generalize(values: pa.Array, ctx: Context) -> pa.Array:
    """Keep only a coarse version of each value (option `to`):

    - `year` / `month`: a date's year or year and month. Date and timestamp columns keep their
      type, floored to the first day of the year or month (`as_text: true` gives `1984` /
      `1984-05` instead); text dates are read in ISO and the common layouts (`dayfirst: true`
      for `17/05/1984`) and give `1984` / `1984-05`; unreadable ones become null.
    - `zip3`: the first three digits of a ZIP code (`94107-1234` -> `941`), `000` for the ZIP3
      areas HIPAA says are too small (`hipaa: false` keeps them); other postal codes keep their
      first three letters and digits (`K1A 0B6` -> `K1A`). Integer ZIPs get their leading zero.
    - `age_band`: ages in bands of `band` years (default 10): `30-39`; ages of `top` (default
      90) and over are one group, `90+` (`top: 0` turns that off).
    - `auto` (default): `year` for dates, timestamps and text, `age_band` for numbers.

    Nulls stay null.
    """
    if pa.types.is_null(values.type):
        return values
    target = _target(values, ctx)
    if target in ("year", "month"):
        return _dates(values, ctx, month=target == "month")
    if target == "zip3":
        return _zip3(values, ctx)
    return _ages(values, ctx)


OPERATION = Operation(
    name="generalize",
    form="generalized",
    summary="keep a coarser value: date -> year or month, ZIP -> 3 digits, age -> band",
    needs_key=False,
    run=generalize,
    options=(
        Option("to", "choice", "auto", "year, month, zip3, age_band or auto", choices=TARGETS),
        Option("as_text", "bool", False, "dates: give '1984' rather than 1984-01-01"),
        Option("dayfirst", "bool", False, "text dates: read 05/06/1984 as 5 June"),
        Option("hipaa", "bool", True, "zip3: ZIP3 areas under 20,000 people become 000"),
        Option("band", "int", 10, "age_band: years per band", minimum=1),
        Option("top", "int", 90, "age_band: ages from this one on are one group", minimum=0),
    ),
)
