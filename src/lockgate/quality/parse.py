"""Check definitions from plain mappings (YAML or Python), validated when the pipeline loads.

    {"not_null": ["id", "email"]}                      one check per column
    {"unique": "id"}  {"unique": ["id", "email"]}      one check per column
    {"unique": [["order_id", "line"]]}                 one check over a column set
    {"accepted_values": {"column": "status", "values": ["new", "paid"]}}
    {"range": {"column": "amount", "min": 0, "max": 100, "inclusive": true}}
    {"regex": {"column": "email", "pattern": "[^@]+@[^@]+"}}
    {"row_count": {"min": 1, "max": 1000000}}
    {"freshness": {"column": "updated_at", "max_age": "1d"}}
    {"references": {"column": "customer_id", "dataset": "sqlite:///x.db#customers", "to": "id"}}
    {"schema": {"columns": {"id": "int64", "email": "string"}, "exact": false}}
    {"sql": "SELECT * FROM data WHERE amount < 0"}

Any entry may add `severity: warn` (default `error`) and `name`. A named `not_null` over several
columns stays one check (rows with a null in any of them). Errors are one line naming the check
by its index: `checks[2]: unknown check 'not_nul'; did you mean 'not_null'?`. Nothing here
imports pyarrow or DuckDB.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lockgate.errors import DefinitionError, did_you_mean
from lockgate.model.durations import format_duration, parse_duration
from lockgate.quality.checks import (
    KINDS,
    SEVERITIES,
    AcceptedValues,
    Check,
    Freshness,
    NotNull,
    Range,
    References,
    Regex,
    RowCount,
    SchemaMatch,
    Sql,
    Unique,
)
from lockgate.quality.patterns import compile_pattern
from lockgate.quality.typenames import type_problem

OPTIONS = ("severity", "name")


class CheckDefinitionError(DefinitionError):
    """A check definition is invalid; `index` is its position in the list of checks."""

    def __init__(self, message: str, index: int | None = None) -> None:
        self.index = index
        super().__init__(message)


class _Problem(Exception):
    """What is wrong with one entry; `parse_checks` adds where it is."""


def parse_checks(items: object, *, where: str = "checks") -> list[Check]:
    """The checks defined by `items` (a list of mappings or `Check`s), validated; a
    `CheckDefinitionError` naming `where[index]` and the problem otherwise."""
    if items is None:
        return []
    if isinstance(items, Mapping | str | bytes) or not isinstance(items, Sequence):
        raise CheckDefinitionError(
            f"{where}: expected a list of checks such as [{{not_null: [id]}}, "
            f"{{unique: id}}], got {_short(items)}"
        )
    out: list[Check] = []
    explicit: dict[str, int] = {}
    for index, item in enumerate(items):
        kind = _kind_of(item)
        prefix = f"{where}[{index}]" + (f" ({kind})" if kind else "")
        try:
            found = parse_check(item)
        except _Problem as exc:
            raise CheckDefinitionError(f"{prefix}: {exc}", index) from None
        except ValueError as exc:
            raise CheckDefinitionError(f"{prefix}: {exc}", index) from None
        for check in found:
            named = isinstance(item, Check) or (isinstance(item, Mapping) and "name" in item)
            if named and check.name in explicit:
                raise CheckDefinitionError(
                    f"{prefix}: name {check.name!r} is already used by "
                    f"{where}[{explicit[check.name]}]; give each check its own name",
                    index,
                )
            out.append(check)
            if named:
                explicit[check.name] = index
    return _distinct_names(out)


def parse_check(item: object) -> list[Check]:
    """The check(s) of one entry: several for `not_null`/`unique` over several columns."""
    if isinstance(item, Check):
        return [item]
    if not isinstance(item, Mapping):
        raise _Problem(f"expected a mapping such as {{not_null: [id]}}, got {_short(item)}")
    unknown = [k for k in item if k not in KINDS and k not in OPTIONS]
    if unknown:
        raise _Problem(f"unknown check {unknown[0]!r}" + did_you_mean(unknown[0], KINDS))
    kinds = [k for k in item if k in KINDS]
    if not kinds:
        raise _Problem(f"no check given; use one of {', '.join(KINDS)}")
    if len(kinds) > 1:
        raise _Problem(
            f"one check per entry, found {' and '.join(kinds)}; split them into separate entries"
        )
    kind = kinds[0]
    severity = item.get("severity", "error")
    if severity not in SEVERITIES:
        raise _Problem(f"unknown severity {severity!r}" + did_you_mean(severity, SEVERITIES))
    name = item.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise _Problem(f"name must be non-empty text, got {name!r}")
    common: dict[str, Any] = {"severity": severity, "name": (name or "").strip()}
    return _BUILDERS[kind](item[kind], common)


def _kind_of(item: object) -> str | None:
    if isinstance(item, Check):
        return item.kind
    if isinstance(item, Mapping):
        kinds = [k for k in item if k in KINDS]
        return kinds[0] if len(kinds) == 1 else None
    return None


def _distinct_names(checks: list[Check]) -> list[Check]:
    """Derived names made unique: a second `range(amount)` becomes `range(amount) #2`."""
    import dataclasses

    seen: dict[str, int] = {}
    out: list[Check] = []
    for check in checks:
        count = seen.get(check.name, 0) + 1
        seen[check.name] = count
        out.append(
            check if count == 1 else dataclasses.replace(check, name=f"{check.name} #{count}")
        )
    return out


# -- arguments ---------------------------------------------------------------------------------


def _args(arg: object, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(arg, Mapping):
        raise _Problem(f"expected a mapping with {', '.join(required)}, got {_short(arg)}")
    for key in arg:
        if key not in allowed:
            raise _Problem(f"unknown argument {key!r}" + did_you_mean(key, allowed))
    missing = [k for k in required if arg.get(k) is None]
    if missing:
        raise _Problem(f"missing {missing[0]}: give {', '.join(required)}")
    return dict(arg)


def _column(value: object, what: str = "column") -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Problem(f"{what} must be a column name, got {_short(value)}")
    return value


def _columns(value: object, what: str = "columns") -> tuple[str, ...]:
    if isinstance(value, str):
        return (_column(value, what),)
    if isinstance(value, Sequence) and not isinstance(value, bytes) and value:
        return tuple(_column(v, what) for v in value)
    raise _Problem(f"{what} must be a column name or a list of them, got {_short(value)}")


def _column_arg(arg: Mapping[str, Any]) -> tuple[str, ...]:
    if "columns" in arg and "column" in arg:
        raise _Problem("give column or columns, not both")
    value = arg.get("columns", arg.get("column"))
    if value is None:
        raise _Problem("missing column: give column (or columns)")
    return _columns(value)


# -- one builder per kind ----------------------------------------------------------------------


def _not_null(arg: object, common: dict[str, Any]) -> list[Check]:
    if isinstance(arg, Mapping):
        _args(arg, ("column", "columns"), ())
        columns = _column_arg(arg)
    elif arg is None:
        raise _Problem("missing column: write not_null: [id, email]")
    else:
        columns = _columns(arg)
    if common["name"]:
        return [NotNull(columns=columns, **common)]
    return [NotNull(columns=(c,), **common) for c in columns]


def _unique(arg: object, common: dict[str, Any]) -> list[Check]:
    if isinstance(arg, Mapping):
        _args(arg, ("column", "columns"), ())
        keys = [_column_arg(arg)]
    elif isinstance(arg, str):
        keys = [(_column(arg),)]
    elif isinstance(arg, Sequence) and not isinstance(arg, bytes) and arg:
        keys = [(_column(k),) if isinstance(k, str) else _columns(k, "a key") for k in arg]
    else:
        raise _Problem(
            f"expected a column, a list of columns, or [[a, b]] for a column set, got {_short(arg)}"
        )
    if common["name"] and len(keys) > 1:
        raise _Problem(
            "a name applies to one check: give each column its own entry, or write "
            "[[a, b]] for one key over a column set"
        )
    return [Unique(columns=key, **common) for key in keys]


def _accepted_values(arg: object, common: dict[str, Any]) -> list[Check]:
    args = _args(arg, ("column", "values"), ("column", "values"))
    values = args["values"]
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Sequence) or not values:
        raise _Problem(f"values must be a non-empty list, got {_short(values)}")
    for value in values:
        if not _scalar(value):
            raise _Problem(f"values must be plain values (text, numbers, dates), got {value!r}")
    return [AcceptedValues(column=_column(args["column"]), values=tuple(values), **common)]


def _range(arg: object, common: dict[str, Any]) -> list[Check]:
    args = _args(arg, ("column", "min", "max", "inclusive"), ("column",))
    low, high = args.get("min"), args.get("max")
    if low is None and high is None:
        raise _Problem("give min and/or max: {column: amount, min: 0}")
    for key, bound in (("min", low), ("max", high)):
        if bound is not None and (isinstance(bound, bool) or not _scalar(bound)):
            raise _Problem(f"{key} must be a number, a date or text, got {bound!r}")
    if low is not None and high is not None:
        try:
            inverted = low > high
        except TypeError:
            raise _Problem(f"min {low!r} and max {high!r} are not comparable") from None
        if inverted:
            raise _Problem(f"min {low!r} is greater than max {high!r}")
    inclusive = args.get("inclusive", True)
    if not isinstance(inclusive, bool):
        raise _Problem(f"inclusive must be true or false, got {inclusive!r}")
    return [Range(column=_column(args["column"]), min=low, max=high, inclusive=inclusive, **common)]


def _regex(arg: object, common: dict[str, Any]) -> list[Check]:
    args = _args(arg, ("column", "pattern"), ("column", "pattern"))
    pattern = args["pattern"]
    if not isinstance(pattern, str) or not pattern:
        raise _Problem(f"pattern must be a regular expression, got {_short(pattern)}")
    problem = compile_pattern(pattern)
    if problem:
        raise _Problem(problem)
    return [Regex(column=_column(args["column"]), pattern=pattern, **common)]


def _row_count(arg: object, common: dict[str, Any]) -> list[Check]:
    args = _args(arg, ("min", "max"), ())
    low, high = args.get("min"), args.get("max")
    if low is None and high is None:
        raise _Problem("give min and/or max: {min: 1}")
    for key, bound in (("min", low), ("max", high)):
        if bound is not None and (
            isinstance(bound, bool) or not isinstance(bound, int) or bound < 0
        ):
            raise _Problem(f"{key} must be a whole number of rows (0 or more), got {bound!r}")
    if low is not None and high is not None and low > high:
        raise _Problem(f"min {low} is greater than max {high}")
    return [RowCount(min=low, max=high, **common)]


def _freshness(arg: object, common: dict[str, Any]) -> list[Check]:
    args = _args(arg, ("column", "max_age"), ("column", "max_age"))
    try:
        seconds = parse_duration(args["max_age"])
    except ValueError as exc:
        raise _Problem(f"bad max_age: {exc}") from None
    if seconds <= 0:
        raise _Problem(f"max_age must be longer than 0, got {args['max_age']!r}")
    text = args["max_age"] if isinstance(args["max_age"], str) else format_duration(seconds)
    return [Freshness(column=_column(args["column"]), max_age=seconds, max_age_text=text, **common)]


def _references(arg: object, common: dict[str, Any]) -> list[Check]:
    if not isinstance(arg, Mapping):
        raise _Problem(
            "expected {column: customer_id, dataset: sqlite:///app.db#customers, to: id}, "
            f"got {_short(arg)}"
        )
    args = _args(arg, ("column", "columns", "dataset", "to"), ("dataset",))
    columns = _column_arg(args)
    dataset = args["dataset"]
    if isinstance(dataset, str):
        if not dataset.strip():
            raise _Problem("dataset must be a dataset URI")
    elif not hasattr(dataset, "schema"):
        raise _Problem(
            f"dataset must be a dataset URI, an Arrow table or a reader, got {_short(dataset)}"
        )
    to = _columns(args["to"], "to") if args.get("to") is not None else columns
    if len(to) != len(columns):
        raise _Problem(f"to names {len(to)} column(s) for {len(columns)} column(s)")
    return [References(columns=columns, dataset=dataset, to=to, **common)]


def _schema(arg: object, common: dict[str, Any]) -> list[Check]:
    args = _args(arg, ("columns", "exact"), ("columns",))
    spec = args["columns"]
    columns: dict[str, str | None]
    if isinstance(spec, Mapping) and spec:
        columns = {}
        for name, type_name in spec.items():
            _column(name, "a column")
            if type_name is not None:
                problem = type_problem(type_name)
                if problem:
                    raise _Problem(f"column {name!r}: {problem}")
            columns[name] = type_name
    elif isinstance(spec, Sequence) and not isinstance(spec, str | bytes) and spec:
        columns = dict.fromkeys(_columns(spec))
    else:
        raise _Problem(
            f"columns must map names to types ({{id: int64, email: string}}), got {_short(spec)}"
        )
    exact = args.get("exact", False)
    if not isinstance(exact, bool):
        raise _Problem(f"exact must be true or false, got {exact!r}")
    return [SchemaMatch(columns=columns, exact=exact, **common)]


def _sql(arg: object, common: dict[str, Any]) -> list[Check]:
    query = _args(arg, ("query",), ("query",))["query"] if isinstance(arg, Mapping) else arg
    if not isinstance(query, str) or not query.strip().rstrip(";").strip():
        raise _Problem(
            "expected a query returning the failing rows: SELECT * FROM data WHERE amount < 0"
        )
    return [Sql(query=query.strip().rstrip(";").strip(), **common)]


_BUILDERS: dict[str, Callable[[object, dict[str, Any]], list[Check]]] = {
    "not_null": _not_null,
    "unique": _unique,
    "accepted_values": _accepted_values,
    "range": _range,
    "regex": _regex,
    "row_count": _row_count,
    "freshness": _freshness,
    "references": _references,
    "schema": _schema,
    "sql": _sql,
}


def _scalar(value: object) -> bool:
    return value is None or isinstance(
        value, str | int | float | bool | decimal.Decimal | dt.date | dt.datetime | dt.time
    )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
