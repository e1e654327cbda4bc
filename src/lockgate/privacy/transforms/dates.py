"""The year and month of dates written as text, for a whole column at once.

ISO dates (`1984-05-17`, with or without a time) go through Arrow's strptime; the rest through
a few RE2 patterns: `1984/05/17`, `19840517`, `17/05/1984` and `05/17/1984` (month first unless
`dayfirst`, or unless only one reading is a valid month), `May 17, 1984`, `17 May 1984`, `May
1984`, and finally any 4-digit year from 1800 to 2099 standing on its own. What none of them
reads is null.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_YMD = r"^\s*(?P<y>\d{4})[-/.](?P<m>\d{1,2})(?:[-/.]\d{1,2})?(?:\D|$)"
_COMPACT = r"^\s*(?P<y>\d{4})(?P<m>\d{2})\d{2}\s*$"
_DMY = r"^\s*(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<y>\d{4})(?:\D|$)"
_NAMED = (
    r"(?i)(?:^|[^a-z])(?P<mon>" + "|".join(_MONTHS) + r")[a-z]*\.?\s+"
    r"(?:\d{1,2}(?:st|nd|rd|th)?,?\s+)?(?P<y>\d{4})(?:\D|$)"
)
_YEAR = r"(?:^|\D)(?P<y>(?:18|19|20)\d{2})(?:\D|$)"


def _int(parts: pa.Array, name: str) -> pa.Array:
    return pc.cast(pc.struct_field(parts, name), pa.int32())


def _valid(year: pa.Array, month: pa.Array) -> tuple[pa.Array, pa.Array]:
    year_ok = pc.and_(pc.greater_equal(year, 1000), pc.less_equal(year, 2999))
    month_ok = pc.and_(pc.greater_equal(month, 1), pc.less_equal(month, 12))
    none = pa.scalar(None, pa.int32())
    year = pc.if_else(year_ok, year, none)
    return year, pc.if_else(pc.and_(month_ok, pc.is_valid(year)), month, none)


def _slow(text: pa.Array, dayfirst: bool) -> tuple[pa.Array, pa.Array]:
    """Year and month of text dates in every supported layout."""
    found_y: list[pa.Array] = []
    found_m: list[pa.Array] = []
    for pattern in (_YMD, _COMPACT):
        parts = pc.extract_regex(text, pattern)
        found_y.append(_int(parts, "y"))
        found_m.append(_int(parts, "m"))
    parts = pc.extract_regex(text, _DMY)
    a, b = _int(parts, "a"), _int(parts, "b")
    first, second = (b, a) if dayfirst else (a, b)
    # the preferred reading unless it is no month and the other one is
    use_second = pc.and_(pc.greater(first, 12), pc.less_equal(second, 12))
    found_y.append(_int(parts, "y"))
    found_m.append(pc.if_else(use_second, second, first))
    parts = pc.extract_regex(text, _NAMED)
    names = pc.utf8_lower(pc.struct_field(parts, "mon"))
    found_y.append(_int(parts, "y"))
    found_m.append(pc.cast(pc.add(pc.index_in(names, pa.array(_MONTHS)), 1), pa.int32()))
    year = pc.coalesce(*found_y, _int(pc.extract_regex(text, _YEAR), "y"))
    month = pc.coalesce(*found_m)
    return year, pc.if_else(pc.is_valid(year), month, pa.scalar(None, pa.int32()))


def year_month(text: pa.Array, *, dayfirst: bool = False) -> tuple[pa.Array, pa.Array]:
    """`(year, month)` int32 arrays for a string array of dates; null where unreadable (a
    month is null too where only the year could be read)."""
    stamp = pc.strptime(
        pc.utf8_slice_codeunits(text, 0, 10), format="%Y-%m-%d", unit="s", error_is_null=True
    )
    year, month = pc.cast(pc.year(stamp), pa.int32()), pc.cast(pc.month(stamp), pa.int32())
    missed = pc.and_(pc.is_null(stamp), pc.is_valid(text))
    if pc.any(missed).as_py():
        rest = pc.filter(text, missed)
        rest_year, rest_month = _slow(rest, dayfirst)
        year = pc.replace_with_mask(year, missed, rest_year)
        month = pc.replace_with_mask(month, missed, rest_month)
    return _valid(year, month)
