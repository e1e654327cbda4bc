"""Shared data for the quality tests: a small orders table whose e-mail column is classified."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa

from lockgate.model.classification import with_tag
from lockgate.quality import CheckResult, run_checks

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
URI = "postgresql://app:s3cret@db.internal:5432/shop#orders"
SHOWN = "postgresql://app:***@db.internal:5432/shop#orders"

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64()),
        with_tag(pa.field("email", pa.string()), "pii.email"),
        with_tag(pa.field("token", pa.string()), "pii.email/tokenized"),
        pa.field("status", pa.string()),
        pa.field("amount", pa.float64()),
        pa.field("updated_at", pa.timestamp("us", tz="UTC")),
        pa.field("customer_id", pa.int64()),
    ]
)


def orders() -> pa.Table:
    """Eight rows with known defects: see each test for the ones it counts."""
    t = dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)
    rows: list[dict[str, Any]] = [
        {"id": 1, "email": "ann@example.com", "status": "new", "amount": 10.0, "cust": 1},
        {"id": 2, "email": "bob@example.com", "status": "paid", "amount": 0.0, "cust": 2},
        {"id": 3, "email": None, "status": "paid", "amount": 100.0, "cust": 1},
        {"id": 3, "email": "carl@example", "status": "lost", "amount": -1.0, "cust": 9},
        {"id": 5, "email": "dee@example.com", "status": None, "amount": None, "cust": None},
        {"id": None, "email": "eve@example.com", "status": "new", "amount": 250.5, "cust": 2},
        {"id": 7, "email": None, "status": "shipped", "amount": float("nan"), "cust": 8},
        {"id": 8, "email": "fay@example.com", "status": "new", "amount": 99.9, "cust": 3},
    ]
    return pa.table(
        {
            "id": [r["id"] for r in rows],
            "email": [r["email"] for r in rows],
            "token": [f"tok_{i}" for i in range(len(rows))],
            "status": [r["status"] for r in rows],
            "amount": [r["amount"] for r in rows],
            "updated_at": [t - dt.timedelta(hours=i) for i in range(len(rows))],
            "customer_id": [r["cust"] for r in rows],
        },
        schema=SCHEMA,
    )


def run(checks: list[Any], data: Any = None, **options: Any) -> list[CheckResult]:
    return run_checks(
        orders() if data is None else data,
        checks,
        dataset=URI,
        now=options.pop("now", NOW),
        **options,
    )


def one(check: Any, data: Any = None, **options: Any) -> CheckResult:
    (result,) = run([check], data, **options)
    return result


def make_sqlite(path: Path, rows: list[tuple[int, str | None]]) -> str:
    """An SQLite file with a `customers(id, name)` table; its dataset URI."""
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        con.executemany("INSERT INTO customers VALUES (?, ?)", rows)
    return f"sqlite:///{path}#customers"


class SqliteReader:
    """A reader of an SQLite table in small batches, as lockgate's Reader protocol has it."""

    schema = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])

    def __init__(self, path: Path, batch_rows: int = 2) -> None:
        self.con = sqlite3.connect(path)
        self.batch_rows = batch_rows
        self.closed = False
        self.batches = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        cursor = self.con.execute("SELECT id, name FROM customers ORDER BY id")
        while rows := cursor.fetchmany(self.batch_rows):
            self.batches += 1
            yield pa.RecordBatch.from_pylist(
                [{"id": r[0], "name": r[1]} for r in rows], schema=self.schema
            )

    def close(self) -> None:
        self.con.close()
        self.closed = True

    def __enter__(self) -> SqliteReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
