"""Each check, passing and failing, over real Arrow data in DuckDB: exact failing-row counts,
examples, and how nulls are treated."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest

from lockgate.quality.examples import MASK

from .helpers import NOW, SHOWN, one, orders, run


def test_not_null_counts_nulls_per_column() -> None:
    email, id_, status = run([{"not_null": ["email", "id"]}, {"not_null": "status"}])
    assert (email.name, email.passed, email.failing_rows) == ("not_null(email)", False, 2)
    assert email.message == "2 row(s) with a null email"
    assert [row["id"] for row in email.examples] == [3, 7]
    assert all(row["email"] is None for row in email.examples)
    assert (id_.failing_rows, status.failing_rows) == (1, 1)
    assert email.dataset == SHOWN and email.check == "not_null" and email.severity == "error"


def test_named_not_null_over_several_columns_counts_rows_with_any_null() -> None:
    result = one({"not_null": ["email", "id", "status"], "name": "complete"})
    assert (result.name, result.failing_rows) == ("complete", 4)
    assert result.message == "4 row(s) with a null email or id or status"


def test_not_null_passes() -> None:
    result = one({"not_null": ["token", "updated_at"], "name": "set"})
    assert result.passed and result.failing_rows == 0 and result.examples == []


def test_unique_fails_every_row_sharing_a_key_and_ignores_nulls() -> None:
    data = orders().append_column("more", pa.array([None, None, 1, 1, 2, 2, 2, 3], pa.int64()))
    by_id, by_more = run([{"unique": "id"}, {"unique": "more"}], data)
    assert (by_id.passed, by_id.failing_rows) == (False, 2)
    assert by_id.message == "2 row(s) share 1 duplicated id value(s)"
    assert [row["id"] for row in by_id.examples] == [3, 3]
    assert by_more.failing_rows == 5  # two rows of 1, three of 2; nulls are not duplicates
    assert by_more.message == "5 row(s) share 2 duplicated more value(s)"
    assert [row["more"] for row in by_more.examples] == [1, 1, 2, 2, 2]


def test_unique_over_a_column_set() -> None:
    data = pa.table(
        {
            "order_id": [1, 1, 1, 2, 2, None, None],
            "line": [1, 2, 2, 1, 1, 1, 1],
        }
    )
    (result,) = run([{"unique": [["order_id", "line"]]}], data)
    assert (result.name, result.failing_rows) == ("unique(order_id, line)", 4)
    assert [(r["order_id"], r["line"]) for r in result.examples] == [(1, 2), (1, 2), (2, 1), (2, 1)]
    (ok,) = run([{"unique": [["order_id", "line"]]}], data.slice(0, 2))
    assert ok.passed and ok.message == "0 row(s) share one order_id, line value"


def test_accepted_values_ignore_nulls() -> None:
    result = one({"accepted_values": {"column": "status", "values": ["new", "paid"]}})
    assert (result.passed, result.failing_rows) == (False, 2)  # lost, shipped; not the null
    assert sorted(r["status"] for r in result.examples) == ["lost", "shipped"]
    assert result.message == "2 row(s) with status not in ['new', 'paid']"
    ok = one(
        {"accepted_values": {"column": "status", "values": ["new", "paid", "lost", "shipped"]}}
    )
    assert ok.passed and ok.failing_rows == 0


def test_accepted_values_of_numbers_and_a_value_of_the_wrong_type() -> None:
    ok = one({"accepted_values": {"column": "customer_id", "values": [1, 2, 3, 8, 9]}})
    assert ok.passed
    bad = one({"accepted_values": {"column": "customer_id", "values": [1, 2, 3]}})
    assert bad.failing_rows == 2
    wrong, nulls, fresh = run(
        [
            {"accepted_values": {"column": "customer_id", "values": ["one"]}},
            {"not_null": "email"},
            {"freshness": {"column": "updated_at", "max_age": "6h"}},
        ]
    )
    assert not wrong.passed and wrong.failing_rows == 0
    assert wrong.message.startswith("could not run the check: ConversionException:")
    assert "\n" not in wrong.message
    # the shared scan failed because of it: the others still ran on their own
    assert (nulls.failing_rows, fresh.passed) == (2, True)


def test_range_is_inclusive_by_default_ignores_nulls_and_fails_nan() -> None:
    inclusive = one({"range": {"column": "amount", "min": 0, "max": 100}})
    # -1.0, 250.5 and NaN fail; 0.0 and 100.0 are on the bounds; the null is ignored
    assert (inclusive.failing_rows, inclusive.message) == (
        3,
        "3 row(s) with amount outside [0, 100]",
    )
    exclusive = one({"range": {"column": "amount", "min": 0, "max": 100, "inclusive": False}})
    assert exclusive.failing_rows == 5
    assert exclusive.message == "5 row(s) with amount outside (0, 100)"
    low = one({"range": {"column": "amount", "min": 0}})
    assert (low.failing_rows, low.message) == (2, "2 row(s) with amount outside >= 0")
    ok = one({"range": {"column": "id", "min": 1, "max": 8}})
    assert ok.passed


def test_range_over_timestamps_and_dates() -> None:
    since = dt.datetime(2026, 3, 10, 1, 0, tzinfo=dt.UTC)
    result = one({"range": {"column": "updated_at", "min": since}})
    assert result.failing_rows == 2  # 00:00 and 23:00 the day before
    days = pa.table({"day": pa.array([dt.date(2026, 1, d) for d in (1, 15, 31)])})
    (dated,) = run([{"range": {"column": "day", "max": dt.date(2026, 1, 15)}}], days)
    assert dated.failing_rows == 1 and dated.examples == [{"day": "2026-01-31"}]


def test_regex_is_a_full_match_and_ignores_nulls() -> None:
    result = one({"regex": {"column": "email", "pattern": r"[a-z]+@[a-z]+\.com"}})
    assert (result.failing_rows, result.examples) == (1, [result.examples[0]])
    assert result.examples[0]["id"] == 3 and result.examples[0]["email"] == MASK
    partial = one({"regex": {"column": "status", "pattern": "ne"}})
    assert partial.failing_rows == 7  # every non-null status: "new" contains "ne", no more
    anchored = one({"regex": {"column": "status", "pattern": "(?i)NEW|PAID|LOST|SHIPPED"}})
    assert anchored.passed


def test_regex_over_a_number_column_matches_its_text() -> None:
    result = one({"regex": {"column": "customer_id", "pattern": r"[0-3]"}})
    assert result.failing_rows == 2  # 8 and 9


def test_row_count_bounds() -> None:
    ok, few, many, between = run(
        [
            {"row_count": {"min": 1}},
            {"row_count": {"min": 9}},
            {"row_count": {"max": 7}},
            {"row_count": {"min": 8, "max": 8}},
        ]
    )
    assert ok.passed and between.passed
    assert (few.passed, few.message) == (False, "8 row(s); expected at least 9")
    assert (many.passed, many.message) == (False, "8 row(s); expected at most 7")
    assert few.failing_rows == 0 and few.examples == []
    empty = one({"row_count": {"min": 1}}, orders().slice(0, 0))
    assert (empty.passed, empty.message) == (False, "0 row(s); expected at least 1")


def test_freshness_relative_to_now() -> None:
    fresh = one({"freshness": {"column": "updated_at", "max_age": "6h"}})
    assert fresh.passed
    assert fresh.message == "newest updated_at is 2026-03-10T06:00:00+00:00 (6h old); max_age 6h"
    stale = one({"freshness": {"column": "updated_at", "max_age": "30m"}})
    assert not stale.passed and stale.failing_rows == 0
    later = one(
        {"freshness": {"column": "updated_at", "max_age": "1d"}}, now=NOW + dt.timedelta(days=2)
    )
    assert not later.passed and "(2d6h old); max_age 1d" in later.message


def test_freshness_defaults_to_the_current_time() -> None:
    recent = pa.table({"at": pa.array([dt.datetime.now(dt.UTC)], pa.timestamp("us", tz="UTC"))})
    (result,) = run([{"freshness": {"column": "at", "max_age": "1h"}}], recent, now=None)
    assert result.passed


def test_freshness_of_naive_timestamps_dates_and_iso_text() -> None:
    data = pa.table(
        {
            "naive": pa.array([dt.datetime(2026, 3, 10, 11, 0)], pa.timestamp("ns")),
            "day": pa.array([dt.date(2026, 3, 9)]),
            "text": ["2026-03-10T13:00:00+02:00"],
            "junk": ["not a date"],
            "number": [5],
        }
    )
    naive, day, text, junk, number = run(
        [
            {"freshness": {"column": "naive", "max_age": "1h"}},
            {"freshness": {"column": "day", "max_age": "1d"}},
            {"freshness": {"column": "text", "max_age": "2h"}},
            {"freshness": {"column": "junk", "max_age": "2h"}},
            {"freshness": {"column": "number", "max_age": "2h"}},
        ],
        data,
    )
    assert naive.passed and "2026-03-10T11:00:00+00:00 (1h old)" in naive.message
    assert not day.passed and "2026-03-09T00:00:00+00:00 (1d12h old)" in day.message
    assert text.passed and "2026-03-10T11:00:00+00:00" in text.message
    assert not junk.passed and junk.message == "no junk value to judge freshness by (max_age 2h)"
    assert not number.passed
    assert number.message == (
        "freshness needs a timestamp, date or ISO 8601 text column; number is int64"
    )


def test_schema_subset_exact_and_families() -> None:
    subset, exact, families, wrong = run(
        [
            {"schema": {"columns": {"id": "int64", "email": "string"}}},
            {"schema": {"columns": {"id": "int64", "email": "string"}, "exact": True}},
            {
                "schema": {
                    "columns": {
                        "id": "integer",
                        "amount": "float64",
                        "updated_at": "timestamp[us, tz=UTC]",
                        "status": None,
                    }
                }
            },
            {"schema": {"columns": {"id": "string", "gone": "int64"}}},
        ]
    )
    assert subset.passed and subset.message == "2 column(s) as expected"
    assert not exact.passed
    assert exact.message == ("unexpected column(s) token, status, amount, updated_at, customer_id")
    assert families.passed
    assert (wrong.passed, wrong.message) == (
        False,
        "id is int64, expected string; missing column 'gone'",
    )


def test_sql_returns_the_failing_rows() -> None:
    bad, ok = run(
        [
            {"sql": "SELECT id, status FROM data WHERE status = 'paid' AND amount >= 100"},
            {"sql": "SELECT * FROM data WHERE id > 100"},
        ]
    )
    assert (bad.passed, bad.failing_rows, bad.examples) == (
        False,
        1,
        [{"id": 3, "status": "paid"}],
    )
    assert bad.message == "the query returned 1 row(s)"
    assert ok.passed and ok.failing_rows == 0


def test_a_broken_query_fails_its_check_only() -> None:
    broken, fine = run([{"sql": "SELECT nope FROM data"}, {"not_null": "token"}])
    assert not broken.passed
    assert broken.message.startswith("could not run the check: BinderException:")
    assert "\n" not in broken.message
    assert fine.passed


ONE_SELECT = "the query must be one SELECT statement returning the failing rows"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT 1) AS x; DROP TABLE data; SELECT (1", "could not run the check: ParserException"),
        ("DELETE FROM data", ONE_SELECT),
        ("SELECT 1; DROP TABLE data", ONE_SELECT),
    ],
)
def test_custom_sql_is_one_select(query: str, message: str) -> None:
    result, after = run([{"sql": query}, {"sql": "SELECT * FROM data WHERE id IS NULL"}])
    assert not result.passed and result.message.startswith(message)
    assert after.failing_rows == 1  # runs after it: the data is still there


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM data WHERE amount < 0 -- negative",
        "SELECT * FROM data WHERE amount < 0;",
        "SELECT * FROM data WHERE amount < 0; -- negative\n",
        "-- refunds\nSELECT *\nFROM data\nWHERE amount < 0 /* not NaN */",
    ],
)
def test_custom_sql_may_end_in_a_comment_or_a_semicolon(query: str) -> None:
    result = one({"sql": query})
    assert (result.passed, result.failing_rows) == (False, 1), result.message
    assert result.examples[0]["amount"] == -1.0


def test_duckdb_spills_into_the_folder_given(tmp_path: Path) -> None:
    data = pa.table({"n": [1]})
    (result,) = run(
        [{"sql": "SELECT current_setting('temp_directory') AS t"}], data, temp_dir=tmp_path
    )
    spill = Path(result.examples[0]["t"])
    assert spill.parent == tmp_path and spill.name.startswith("lockgate-quality-")
    assert not spill.exists()  # removed with the session


def test_custom_sql_cannot_read_files() -> None:
    result = one({"sql": "SELECT * FROM read_csv('/etc/hostname')"})
    assert not result.passed
    assert "PermissionException" in result.message


def test_a_missing_column_fails_the_check_with_a_hint_and_the_others_run() -> None:
    missing, ok, ref = run(
        [
            {"not_null": "emial"},
            {"unique": "token"},
            {"references": {"column": "customer", "dataset": pa.table({"id": [1]})}},
        ]
    )
    assert (missing.passed, missing.failing_rows) == (False, 0)
    assert missing.message == f"column 'emial' not found in {SHOWN}; did you mean 'email'?"
    assert ok.passed
    assert ref.message.startswith("column 'customer' not found")
    assert "did you mean 'customer_id'?" in ref.message


def test_examples_are_capped_at_five_and_json() -> None:
    data = pa.table({"n": list(range(100)), "at": pa.array([dt.date(2026, 1, 1)] * 100)})
    (result,) = run([{"range": {"column": "n", "max": 10}}], data)
    assert result.failing_rows == 89 and len(result.examples) == 5
    assert json.loads(json.dumps(result.to_json())) == result.to_json()
    assert result.to_json()["examples"][0]["at"] == "2026-01-01"


@pytest.mark.parametrize("batch_rows", [1, 3, 1000])
def test_a_reader_gives_the_same_results_as_a_table(batch_rows: int) -> None:
    checks = [
        {"not_null": ["email", "id"]},
        {"unique": "id"},
        {"accepted_values": {"column": "status", "values": ["new", "paid"]}},
        {"range": {"column": "amount", "min": 0, "max": 100}},
        {"regex": {"column": "email", "pattern": r"[a-z]+@[a-z]+\.com"}},
        {"row_count": {"min": 1}},
        {"freshness": {"column": "updated_at", "max_age": "6h"}},
        {"schema": {"columns": {"id": "int64"}}},
        {"sql": "SELECT * FROM data WHERE amount < 0"},
    ]
    table = orders()
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(batch_rows))
    from_table = [r.to_json() for r in run(checks, table)]
    from_reader = [r.to_json() for r in run(checks, reader)]
    key = [(r["name"], r["passed"], r["failing_rows"], r["message"]) for r in from_table]
    assert [(r["name"], r["passed"], r["failing_rows"], r["message"]) for r in from_reader] == key
    assert [sorted(map(str, r["examples"])) for r in from_reader] == [
        sorted(map(str, r["examples"])) for r in from_table
    ]


def test_range_over_a_text_column_says_how_to_type_it() -> None:
    import pyarrow as pa

    from lockgate.quality import parse_checks, run_checks

    table = pa.table({"amount": ["120.50", "80"]})
    [result] = run_checks(
        table, parse_checks([{"range": {"column": "amount", "min": 0}}]), dataset="o.csv"
    )
    assert not result.passed
    assert "column 'amount' is text" in result.message
    assert "types: {amount: double}" in result.message
