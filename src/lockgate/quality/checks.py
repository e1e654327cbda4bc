"""The data-quality checks: what each one asserts about a table, as plain frozen values.

Built from mappings by `lockgate.quality.parse.parse_checks` (YAML, Python dicts) or directly
(`NotNull(columns=("email",))`). Semantics, shared by every check:

- `not_null` counts the rows where any of its columns is null. Every other column check
  ignores nulls (SQL's rule): `range`, `regex`, `accepted_values` and `references` never fail a
  null; `unique` ignores rows whose key has a null in it. Add `not_null` to forbid them.
- `unique` fails every row whose key is shared with another row (both rows of a pair count).
- `range` bounds are inclusive unless `inclusive: false`; a float NaN is out of any range.
- `regex` is Python `re` syntax matched against the whole value, as `re.fullmatch` does, on the
  value as text. It runs in DuckDB (RE2) so it stays vectorised: `\\d`, `\\w`, `\\s` and `\\b` are
  ASCII-only (as with `re.ASCII`), and the Python-only constructs (lookarounds,
  backreferences, conditionals, atomic groups, possessive repeats, `\\Z`, the `x`, `a`, `L`
  flags) are refused when the check is parsed.
- `freshness` reads the newest value of a timestamp, date or ISO 8601 text column; a timestamp
  without a zone, and a date (its midnight), are taken as UTC.
- `references` passes when every non-null key (all key columns set) exists in the other dataset.
- `schema` compares column names and types: `exact` also refuses extra columns.
- `sql` is a DuckDB query over the table `data` that returns the failing rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

SEVERITIES = ("error", "warn")
"""`error` fails the task (nothing is written); `warn` is recorded and the run goes on."""


@dataclass(frozen=True, kw_only=True)
class Check:
    """One assertion about a table; `name` defaults to the kind and its columns."""

    kind: ClassVar[str] = ""
    row_level: ClassVar[bool] = True
    """True when the check fails individual rows (it has failing rows and examples)."""

    name: str = ""
    severity: str = "error"

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.default_name())
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be error or warn, got {self.severity!r}")

    def default_name(self) -> str:
        cols = self.columns_used()
        return f"{self.kind}({', '.join(cols)})" if cols else self.kind

    def columns_used(self) -> tuple[str, ...]:
        """The data's columns the check reads: each must exist, or the check fails."""
        return ()


@dataclass(frozen=True, kw_only=True)
class NotNull(Check):
    kind: ClassVar[str] = "not_null"
    columns: tuple[str, ...]

    def columns_used(self) -> tuple[str, ...]:
        return self.columns


@dataclass(frozen=True, kw_only=True)
class Unique(Check):
    """The key made of `columns` (one column or a set) is unique."""

    kind: ClassVar[str] = "unique"
    columns: tuple[str, ...]

    def columns_used(self) -> tuple[str, ...]:
        return self.columns


@dataclass(frozen=True, kw_only=True)
class AcceptedValues(Check):
    kind: ClassVar[str] = "accepted_values"
    column: str
    values: tuple[Any, ...]

    def columns_used(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True, kw_only=True)
class Range(Check):
    """`min <= column <= max` (strict with `inclusive=False`); either bound may be omitted."""

    kind: ClassVar[str] = "range"
    column: str
    min: Any = None
    max: Any = None
    inclusive: bool = True

    def columns_used(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True, kw_only=True)
class Regex(Check):
    kind: ClassVar[str] = "regex"
    column: str
    pattern: str

    def columns_used(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True, kw_only=True)
class RowCount(Check):
    kind: ClassVar[str] = "row_count"
    row_level: ClassVar[bool] = False
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True, kw_only=True)
class Freshness(Check):
    """The newest `column` value is at most `max_age` seconds old (`max_age_text` as written)."""

    kind: ClassVar[str] = "freshness"
    row_level: ClassVar[bool] = False
    column: str
    max_age: float
    max_age_text: str = ""

    def columns_used(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True, kw_only=True)
class References(Check):
    """Every non-null key `columns` exists as `to` in `dataset`: a dataset URI (opened by the
    caller's `sources`, or by lockgate's connectors), a `pyarrow.Table` or a reader."""

    kind: ClassVar[str] = "references"
    columns: tuple[str, ...]
    dataset: Any
    to: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.to:
            object.__setattr__(self, "to", self.columns)
        super().__post_init__()

    def columns_used(self) -> tuple[str, ...]:
        return self.columns


@dataclass(frozen=True, kw_only=True)
class SchemaMatch(Check):
    """`columns` maps each expected column to a type (`int64`, `string`, `timestamp[us]`, a
    family such as `integer`, `float`, `timestamp`, or None for any type)."""

    kind: ClassVar[str] = "schema"
    row_level: ClassVar[bool] = False
    columns: Mapping[str, str | None] = field(default_factory=dict)
    exact: bool = False


@dataclass(frozen=True, kw_only=True)
class Sql(Check):
    """A DuckDB query over the table `data` returning the failing rows."""

    kind: ClassVar[str] = "sql"
    query: str

    def default_name(self) -> str:
        text = " ".join(self.query.split())
        return f"sql({text[:60]}{'...' if len(text) > 60 else ''})"


KINDS: dict[str, type[Check]] = {
    cls.kind: cls
    for cls in (
        NotNull,
        Unique,
        AcceptedValues,
        Range,
        Regex,
        RowCount,
        Freshness,
        References,
        SchemaMatch,
        Sql,
    )
}
"""Every check, by the key that names it in a definition."""
