"""References against an SQLite file, masking of classified values, warn vs error, facts, and
streamed input."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from lockgate.errors import DataError
from lockgate.model import facts
from lockgate.model.classification import with_tag
from lockgate.quality import QualityCheckFailed, enforce, run_checks
from lockgate.quality.checks import References, RowCount
from lockgate.quality.examples import MASK

from .helpers import NOW, SHOWN, URI, SqliteReader, make_sqlite, one, orders, run

# -- references ------------------------------------------------------------------------------


def test_references_against_an_sqlite_table_read_in_batches(tmp_path: Path) -> None:
    db = tmp_path / "crm.db"
    uri = make_sqlite(db, [(1, "Ann"), (2, "Bob"), (3, "Cy")])
    reader = SqliteReader(db)
    check = {"references": {"column": "customer_id", "dataset": uri, "to": "id"}}
    (result,) = run([check], sources={uri: reader})
    assert (result.passed, result.failing_rows) == (False, 2)  # 9 and 8; the null is ignored
    assert sorted(r["customer_id"] for r in result.examples) == [8, 9]
    assert result.message == f"2 row(s) with customer_id not found in {uri} (id)"
    assert reader.batches == 2 and not reader.closed  # read once; the caller's to close


def test_references_opened_by_a_function_are_closed(tmp_path: Path) -> None:
    db = tmp_path / "crm.db"
    uri = make_sqlite(db, [(i, f"c{i}") for i in range(1, 10)])
    opened: list[SqliteReader] = []

    def open_source(name: str) -> SqliteReader:
        assert name == uri
        opened.append(SqliteReader(db, batch_rows=4))
        return opened[-1]

    (result,) = run(
        [{"references": {"column": "customer_id", "dataset": uri, "to": "id"}}],
        sources=open_source,
    )
    assert result.passed and result.failing_rows == 0
    assert len(opened) == 1 and opened[0].closed


def test_references_over_a_column_set_and_an_arrow_table() -> None:
    data = pa.table({"a": [1, 1, 2, None, 3], "b": ["x", "y", "x", "x", None]})
    known = pa.table({"k1": [1, 2], "k2": ["x", "x"], "other": [0, 0]})
    check = References(columns=("a", "b"), dataset=known, to=("k1", "k2"))
    (result,) = run([check], data)
    assert (result.failing_rows, result.examples) == (1, [{"a": 1, "b": "y"}])
    assert "not found in the referenced data (k1, k2)" in result.message


def test_an_unreadable_or_wrong_reference_fails_its_check_only(tmp_path: Path) -> None:
    def refuse(name: str) -> Any:
        raise DataError(f"{name}: no such table customers; check the table name")

    bad_source, wrong_column, ok = run(
        [
            {"references": {"column": "customer_id", "dataset": "sqlite:///nowhere.db#c"}},
            {
                "references": {
                    "column": "customer_id",
                    "dataset": pa.table({"idd": [1]}),
                    "to": "id",
                }
            },
            {"row_count": {"min": 1}},
        ],
        sources=refuse,
    )
    assert not bad_source.passed
    assert bad_source.message == (
        "could not read sqlite:///nowhere.db#c: sqlite:///nowhere.db#c: no such table customers; "
        "check the table name"
    )
    assert wrong_column.message == (
        "column 'id' not found in the referenced data; did you mean 'idd'?"
    )
    assert ok.passed


# -- masking ---------------------------------------------------------------------------------


def test_examples_mask_raw_classified_columns_only() -> None:
    result = one({"not_null": "id"})
    (row,) = result.examples
    assert row["email"] == MASK  # pii.email: raw
    assert row["token"] == "tok_5"  # pii.email/tokenized: shown
    assert row["status"] == "new" and row["id"] is None


def test_nulls_stay_null_in_masked_columns() -> None:
    result = one({"not_null": "email"})
    assert [r["email"] for r in result.examples] == [None, None]


def test_declared_tags_mask_like_schema_tags() -> None:
    result = one({"not_null": "id"}, tags={"status": "pii.status"})
    assert result.examples[0]["status"] == MASK


def test_sql_examples_mask_derived_columns_of_classified_data() -> None:
    result = one({"sql": "SELECT upper(email) AS shout, id, token, EMAIL FROM data WHERE id = 1"})
    assert result.examples == [{"shout": MASK, "id": 1, "token": "tok_0", "email": MASK}]
    plain = pa.table({"email": ["a@b.c"]})
    (unclassified,) = run([{"sql": "SELECT upper(email) AS shout FROM data"}], plain)
    assert unclassified.examples == [{"shout": "A@B.C"}]


def test_messages_do_not_show_classified_values() -> None:
    schema = pa.schema([with_tag(pa.field("born", pa.timestamp("us", tz="UTC")), "phi.dob")])
    data = pa.table({"born": [dt.datetime(1980, 5, 17, tzinfo=dt.UTC)]}, schema=schema)
    (fresh,) = run([{"freshness": {"column": "born", "max_age": "1d"}}], data)
    assert "1980" not in fresh.message and MASK in fresh.message
    (cast,) = run([{"sql": "SELECT CAST(email AS INTEGER) FROM data"}])
    assert "example.com" not in cast.message and "'***'" in cast.message


# -- severity, enforce, facts ----------------------------------------------------------------


def test_enforce_raises_one_line_naming_the_failed_error_checks() -> None:
    results = run(
        [
            {"not_null": "email"},
            {"unique": "id"},
            {"accepted_values": {"column": "status", "values": ["new"]}, "severity": "warn"},
            {"row_count": {"min": 100}},
            {"not_null": "token"},
        ]
    )
    with pytest.raises(QualityCheckFailed) as caught:
        enforce(results)
    error = caught.value
    assert isinstance(error, DataError)
    assert str(error) == (
        f"3 data-quality check(s) failed on {SHOWN}: not_null(email) 2 row(s), "
        "unique(id) 2 row(s), row_count: 8 row(s); expected at least 100"
    )
    assert [r.name for r in error.failed] == ["not_null(email)", "unique(id)", "row_count"]
    assert len(error.results) == 5 and "s3cret" not in str(error)


def test_warn_failures_never_raise() -> None:
    results = run(
        [
            {"not_null": "email", "severity": "warn"},
            {"not_null": "token"},
            RowCount(min=100, severity="warn"),
        ]
    )
    warned = enforce(results)
    assert [r.name for r in warned] == ["not_null(email)", "row_count"]
    assert all(not r.blocking for r in results)


def test_each_result_is_reported_as_a_fact_inside_a_task() -> None:
    with facts.collect() as found:
        results = run([{"not_null": "email"}, {"row_count": {"min": 1}, "severity": "warn"}])
    assert [f["kind"] for f in found] == [facts.QUALITY_CHECKED] * 2
    assert [f["data"] for f in found] == [r.to_json() for r in results]
    first = found[0]["data"]
    assert first == {
        "dataset": SHOWN,
        "name": "not_null(email)",
        "check": "not_null",
        "severity": "error",
        "passed": False,
        "failing_rows": 2,
        "examples": first["examples"],
        "message": "2 row(s) with a null email",
    }
    assert json.loads(json.dumps(first)) == first
    assert all(row["email"] is None for row in first["examples"])


def test_outside_a_task_nothing_is_reported() -> None:
    assert run([{"row_count": {"min": 1}}])[0].passed
    with facts.collect() as found:
        pass
    assert found == []


# -- inputs ----------------------------------------------------------------------------------


def test_a_lockgate_reader_is_read_once_and_not_when_only_the_schema_is_checked(
    tmp_path: Path,
) -> None:
    db = tmp_path / "crm.db"
    make_sqlite(db, [(1, "Ann"), (2, "Bob"), (3, None)])
    reader = SqliteReader(db)
    results = run_checks(
        reader,
        [{"not_null": "name"}, {"unique": "id"}, {"row_count": {"min": 3, "max": 3}}],
        dataset="sqlite:///crm.db#customers",
    )
    assert [(r.passed, r.failing_rows) for r in results] == [(False, 1), (True, 0), (True, 0)]
    assert reader.batches == 2
    untouched = SqliteReader(db)
    (schema,) = run_checks(
        untouched, [{"schema": {"columns": {"id": "int64"}}}], dataset="sqlite:///crm.db#customers"
    )
    assert schema.passed and untouched.batches == 0


def test_a_streamed_reader_of_many_batches_counts_exactly() -> None:
    rows, size = 300_000, 10_000

    def batches() -> Any:
        for start in range(0, rows, size):
            ids = np.arange(start, start + size, dtype=np.int64)
            yield pa.RecordBatch.from_arrays(
                [pa.array(ids), pa.array(ids % 7 == 0).cast(pa.string())],
                names=["id", "flag"],
            )

    schema = pa.schema([("id", pa.int64()), ("flag", pa.string())])
    reader = pa.RecordBatchReader.from_batches(schema, batches())
    results = run_checks(
        reader,
        [
            {"unique": "id"},
            {"range": {"column": "id", "max": rows - 11}},
            {"accepted_values": {"column": "flag", "values": ["true"]}},
            {"row_count": {"min": rows, "max": rows}},
            {"sql": "SELECT * FROM data WHERE id % 1000 = 0"},
        ],
        dataset=URI,
        now=NOW,
    )
    assert [(r.passed, r.failing_rows) for r in results] == [
        (True, 0),
        (False, 10),
        (False, rows - len(range(0, rows, 7))),
        (True, 0),
        (False, rows // 1000),
    ]


def test_a_record_batch_and_an_arrow_stream_are_accepted() -> None:
    table = orders()
    (from_batch,) = run([{"not_null": "email"}], table.combine_chunks().to_batches()[0])
    assert from_batch.failing_rows == 2

    class Stream:
        def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
            return table.__arrow_c_stream__(requested_schema)

    (from_stream,) = run([{"not_null": "email"}], Stream())
    assert from_stream.failing_rows == 2


def test_other_inputs_are_refused() -> None:
    with pytest.raises(TypeError, match="expected an Arrow table or a reader"):
        run([{"row_count": {"min": 1}}], [1, 2, 3])


def test_bad_definitions_raise_before_any_data_is_read() -> None:
    from lockgate.quality import CheckDefinitionError

    with pytest.raises(CheckDefinitionError, match=r"checks\[1\]: unknown check 'uniq'"):
        run([{"not_null": "id"}, {"uniq": "id"}])
