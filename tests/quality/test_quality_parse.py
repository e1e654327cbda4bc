"""Check definitions from mappings: the shapes accepted, and one-line errors naming the index."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from lockgate.errors import DefinitionError
from lockgate.quality import CheckDefinitionError, parse_checks
from lockgate.quality.checks import (
    AcceptedValues,
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


def test_every_documented_shape_parses() -> None:
    checks = parse_checks(
        [
            {"not_null": ["id", "email"]},
            {"unique": [["order_id", "line"]]},
            {"unique": "id"},
            {"accepted_values": {"column": "status", "values": ["new", "paid"]}},
            {"range": {"column": "amount", "min": 0}},
            {"regex": {"column": "email", "pattern": r"[^@]+@[^@]+"}},
            {"row_count": {"min": 1}},
            {"freshness": {"column": "updated_at", "max_age": "1d"}},
            {
                "references": {
                    "column": "customer_id",
                    "dataset": "sqlite:///x.db#customers",
                    "to": "id",
                }
            },
            {"schema": {"columns": {"id": "int64", "email": "string"}, "exact": False}},
            {"sql": "SELECT * FROM data WHERE amount < 0;", "severity": "warn"},
        ]
    )
    assert [type(c) for c in checks] == [
        NotNull,
        NotNull,
        Unique,
        Unique,
        AcceptedValues,
        Range,
        Regex,
        RowCount,
        Freshness,
        References,
        SchemaMatch,
        Sql,
    ]
    assert [c.name for c in checks] == [
        "not_null(id)",
        "not_null(email)",
        "unique(order_id, line)",
        "unique(id)",
        "accepted_values(status)",
        "range(amount)",
        "regex(email)",
        "row_count",
        "freshness(updated_at)",
        "references(customer_id)",
        "schema",
        "sql(SELECT * FROM data WHERE amount < 0)",
    ]
    assert all(c.severity == "error" for c in checks[:-1])
    assert checks[-1].severity == "warn"
    fresh = checks[8]
    assert isinstance(fresh, Freshness) and fresh.max_age == 86400 and fresh.max_age_text == "1d"
    ref = checks[9]
    assert isinstance(ref, References) and ref.columns == ("customer_id",) and ref.to == ("id",)
    sql = checks[-1]
    assert isinstance(sql, Sql) and sql.query == "SELECT * FROM data WHERE amount < 0"


def test_unique_forms_and_named_not_null() -> None:
    checks = parse_checks(
        [
            {"unique": ["id", "email"]},
            {"unique": {"columns": ["a", "b"]}},
            {"not_null": ["id", "email"], "name": "keys present"},
            {"not_null": {"column": "x"}},
            {"range": {"column": "amount", "max": 10}},
            {"range": {"column": "amount", "min": 0, "max": 10, "inclusive": False}},
        ]
    )
    assert [(type(c).__name__, c.name) for c in checks] == [
        ("Unique", "unique(id)"),
        ("Unique", "unique(email)"),
        ("Unique", "unique(a, b)"),
        ("NotNull", "keys present"),
        ("NotNull", "not_null(x)"),
        ("Range", "range(amount)"),
        ("Range", "range(amount) #2"),
    ]
    named = checks[3]
    assert isinstance(named, NotNull) and named.columns == ("id", "email")


def test_references_default_to_the_same_column_names_and_take_column_sets() -> None:
    (one, two) = parse_checks(
        [
            {"references": {"column": "customer_id", "dataset": "sqlite:///a.db#c"}},
            {"references": {"columns": ["a", "b"], "dataset": "x.parquet", "to": ["c", "d"]}},
        ]
    )
    assert isinstance(one, References) and one.to == ("customer_id",)
    assert isinstance(two, References) and two.columns == ("a", "b") and two.to == ("c", "d")


def test_schema_columns_may_be_a_list_of_names() -> None:
    (check,) = parse_checks([{"schema": {"columns": ["id", "email"], "exact": True}}])
    assert isinstance(check, SchemaMatch)
    assert dict(check.columns) == {"id": None, "email": None} and check.exact


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            [{"not_nul": ["id"]}],
            r"^checks\[0\]: unknown check 'not_nul'; did you mean 'not_null'\?$",
        ),
        (
            [{"unique": "id"}, {"accepted_values": {"values": ["a"]}}],
            r"^checks\[1\] \(accepted_values\): missing column: give column, values$",
        ),
        (
            [{"regex": {"column": "e", "pattern": "a("}}],
            r"^checks\[0\] \(regex\): bad regex 'a\(': missing \), unterminated subpattern",
        ),
        (
            [{"regex": {"column": "e", "pattern": "(?=a)a"}}],
            r"^checks\[0\] \(regex\): regex '\(\?=a\)a' uses a lookahead or lookbehind, which "
            r"the check engine \(RE2\) cannot run",
        ),
        (
            [{"regex": {"column": "e", "pattern": r"(a)\1"}}],
            r"uses a backreference",
        ),
        (
            [{"freshness": {"column": "t", "max_age": "1 fortnight"}}],
            r"^checks\[0\] \(freshness\): bad max_age: expected a duration such as 30s, 5m or "
            r"1h30m, got '1 fortnight'$",
        ),
        (
            [{"freshness": {"column": "t", "max_age": 0}}],
            r"max_age must be longer than 0",
        ),
        (
            [{"not_null": "id", "severity": "warning"}],
            r"^checks\[0\] \(not_null\): unknown severity 'warning'; did you mean 'warn'\?$",
        ),
        (
            [{"not_null": "id", "unique": "id"}],
            r"^checks\[0\]: one check per entry, found not_null and unique",
        ),
        (
            [{"range": {"column": "a", "mn": 0}}],
            r"^checks\[0\] \(range\): unknown argument 'mn'; did you mean 'min'\?$",
        ),
        ([{"range": {"column": "a"}}], r"give min and/or max"),
        ([{"range": {"column": "a", "min": 5, "max": 1}}], r"min 5 is greater than max 1"),
        ([{"range": {"column": "a", "min": True}}], r"min must be a number"),
        ([{"row_count": {"min": -1}}], r"min must be a whole number of rows"),
        ([{"row_count": 5}], r"expected a mapping with"),
        (
            [{"schema": {"columns": {"id": "intger"}}}],
            r"^checks\[0\] \(schema\): column 'id': unknown type 'intger'; did you mean "
            r"'integer'\?$",
        ),
        ([{"accepted_values": {"column": "s", "values": []}}], r"values must be a non-empty list"),
        ([{"accepted_values": {"column": "s", "values": "new"}}], r"values must be a non-empty"),
        ([{"not_null": []}], r"columns must be a column name or a list of them"),
        ([{"not_null": None}], r"missing column: write not_null: \[id, email\]"),
        ([{"unique": 3}], r"expected a column, a list of columns"),
        ([{"unique": ["a", "b"], "name": "k"}], r"a name applies to one check"),
        ([{"sql": "  ; "}], r"expected a query returning the failing rows"),
        ([{"references": {"column": "a"}}], r"missing dataset"),
        ([{"references": {"columns": ["a", "b"], "dataset": "x.csv", "to": "c"}}], r"to names 1"),
        (["not_null"], r"^checks\[0\]: expected a mapping such as \{not_null: \[id\]\}"),
        ([{"severity": "warn"}], r"^checks\[0\]: no check given; use one of not_null, unique"),
        ({"not_null": "id"}, r"^checks: expected a list of checks"),
        (
            [{"not_null": "a", "name": "x"}, {"unique": "a", "name": "x"}],
            r"^checks\[1\] \(unique\): name 'x' is already used by checks\[0\]",
        ),
    ],
)
def test_bad_definitions_are_one_line_errors_naming_the_check(items: Any, message: str) -> None:
    with pytest.raises(CheckDefinitionError, match=message) as caught:
        parse_checks(items)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, DefinitionError)


def test_the_error_carries_the_index_and_a_custom_location() -> None:
    with pytest.raises(CheckDefinitionError, match=r"^task check_orders: checks\[2\]") as caught:
        parse_checks(
            [{"not_null": "a"}, {"unique": "a"}, {"range": {}}],
            where="task check_orders: checks",
        )
    assert caught.value.index == 2


def test_none_is_no_checks() -> None:
    assert parse_checks(None) == []
    assert parse_checks([]) == []


def test_check_objects_pass_through() -> None:
    check = NotNull(columns=("id",), severity="warn")
    assert parse_checks([check]) == [check]
    assert check.name == "not_null(id)"


def test_parsing_imports_neither_pyarrow_nor_duckdb() -> None:
    code = (
        "import sys\n"
        "from lockgate.quality import parse_checks\n"
        "parse_checks([{'not_null': 'a'}, {'regex': {'column': 'a', 'pattern': 'x+'}},"
        " {'schema': {'columns': {'a': 'int64'}}}, {'freshness': {'column': 't',"
        " 'max_age': '6h'}}])\n"
        "print(sorted(m for m in ('pyarrow', 'duckdb', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
