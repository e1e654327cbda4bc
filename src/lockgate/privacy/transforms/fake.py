"""`fake`: consistent realistic substitutes (the same value and key always give the same fake)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import PrivacyError
from lockgate.model.classification import base_class
from lockgate.privacy.transforms.cmac import cmac_layout
from lockgate.privacy.transforms.fake_values import Pools, pools
from lockgate.privacy.transforms.operation import Context, Operation
from lockgate.privacy.transforms.options import KEY_OPTION, Option
from lockgate.privacy.transforms.strings import Bytes, as_text, layout

PURPOSE = "fake"
KINDS = (
    "auto",
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "address",
    "street_address",
    "city",
    "state",
    "postcode",
    "country",
    "company",
    "ip",
    "date_of_birth",
)
BY_CLASS = {
    "pii.name": "name",
    "pii.email": "email",
    "pii.phone": "phone",
    "pii.address": "address",
    "pii.ip": "ip",
    "pii.dob": "date_of_birth",
}
_FIRST_BIRTH = dt.date(1940, 1, 1)
_BIRTH_DAYS = (dt.date(2005, 12, 31) - _FIRST_BIRTH).days + 1


class _Picker:
    """Picks from value lists with the 16-bit words of each row's keyed tag (8 per row)."""

    def __init__(self, tags: Bytes, pool: Pools) -> None:
        self.words = tags.view(np.uint16).astype(np.int64)
        self.pool = pool

    def pick(self, values: pa.Array, word: int) -> pa.Array:
        return pc.take(values, pa.array(self.words[:, word] % len(values)))

    def number(self, word: int, low: int, count: int, width: int = 0) -> pa.Array:
        text = pc.cast(pa.array(low + self.words[:, word] % count), pa.string())
        return pc.utf8_lpad(text, width=width, padding="0") if width else text


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _street(p: _Picker) -> pa.Array:
    return _join(
        p.number(2, 1, 9999),
        " ",
        p.pick(p.pool.last_names, 1),
        " ",
        p.pick(p.pool.street_suffixes, 3),
    )


_BUILDERS: dict[str, Callable[[_Picker], pa.Array]] = {
    "first_name": lambda p: p.pick(p.pool.first_names, 0),
    "last_name": lambda p: p.pick(p.pool.last_names, 1),
    "name": lambda p: _join(p.pick(p.pool.first_names, 0), " ", p.pick(p.pool.last_names, 1)),
    "email": lambda p: _join(
        p.pick(p.pool.email_first, 0),
        ".",
        p.pick(p.pool.email_last, 1),
        p.number(2, 0, 100),
        "@",
        p.pick(p.pool.email_domains, 3),
    ),
    # 555-0100..0199: the North American numbers reserved for fiction
    "phone": lambda p: _join("(", p.number(2, 200, 800), ") 555-01", p.number(3, 0, 100, 2)),
    "street_address": _street,
    "city": lambda p: p.pick(p.pool.cities, 4),
    "state": lambda p: p.pick(p.pool.states, 5),
    "postcode": lambda p: p.number(6, 0, 100_000, 5),
    "address": lambda p: _join(
        _street(p),
        ", ",
        p.pick(p.pool.cities, 4),
        ", ",
        p.pick(p.pool.states, 5),
        " ",
        p.number(6, 0, 100_000, 5),
    ),
    "country": lambda p: p.pick(p.pool.countries, 7),
    "company": lambda p: _join(
        p.pick(p.pool.last_names, 1), " ", p.pick(p.pool.company_suffixes, 7)
    ),
    "ip": lambda p: _join(
        "10.", p.number(1, 0, 256), ".", p.number(2, 0, 256), ".", p.number(3, 1, 254)
    ),
}


def _kind(ctx: Context) -> str:
    kind = str(ctx.options["kind"])
    if kind != "auto":
        return kind
    found = BY_CLASS.get(base_class(ctx.classification) or "")
    if found is None:
        raise PrivacyError(
            f"{ctx.op}: column {ctx.column or '?'!r} has no classification to fake from; "
            f"set option 'kind' to one of {', '.join(KINDS[1:])}"
        )
    return found


def _birth_dates(p: _Picker) -> pa.Array:
    days = (p.words[:, 0] * 65536 + p.words[:, 1]) % _BIRTH_DAYS
    start = (_FIRST_BIRTH - dt.date(1970, 1, 1)).days
    return pa.array((start + days).astype(np.int32), pa.date32())


def fake(values: pa.Array, ctx: Context) -> pa.Array:
    """Replace each value with a realistic fake of its kind (option `kind`: name, first_name,
    last_name, email, phone, address, street_address, city, state, postcode, country,
    company, ip, date_of_birth; `auto`, the default, takes it from the column's
    classification). The same value with the same key always gets the same fake, in every
    column and table, so joins on faked columns still match (distinct values may share a
    fake). Values come from faker's lists for `locale` (default en_US), picked by the value's
    keyed CMAC: Faker is never called per row.

    Fake emails use the reserved example.com/net/org domains and fake phones the 555-01xx
    numbers reserved for fiction, so no fake reaches a real person; IPs are in 10.0.0.0/8.
    Dates of birth fall between 1940 and 2005 (a date column stays a date column). Rotating
    the key changes every fake (pin it with `key`). Nulls stay null, empty strings stay empty.
    """
    kind = _kind(ctx)
    text = as_text(values, ctx.op, ctx.column, binary_ok=True)
    _, key = ctx.key(PURPOSE)
    rows = layout(text)
    picker = _Picker(cmac_layout(key, rows), pools(str(ctx.options["locale"])))
    keep = pc.is_valid(text)
    if kind == "date_of_birth":
        dates = _birth_dates(picker)
        if pa.types.is_date(values.type) or pa.types.is_timestamp(values.type):
            return pc.if_else(keep, dates.cast(values.type), values)
        made = pc.cast(dates, pa.string())
    else:
        made = _BUILDERS[kind](picker)
    if pa.types.is_string(text.type) or pa.types.is_large_string(text.type):
        keep = pc.and_(keep, pa.array(rows.lens > 0))
        return pc.if_else(keep, made.cast(text.type), text)
    return pc.if_else(keep, made, pa.scalar(None, made.type))


OPERATION = Operation(
    name="fake",
    form="faked",
    summary="replace each value with a consistent realistic fake (same value -> same fake)",
    needs_key=True,
    run=fake,
    options=(
        KEY_OPTION,
        Option("kind", "choice", "auto", "what to fake: " + ", ".join(KINDS), choices=KINDS),
        Option("locale", "str", "en_US", "faker locale of the names, cities and streets"),
    ),
)
