"""The issue's acceptance pipeline, with real servers on 127.0.0.1: read a table from
PostgreSQL, transform it with DuckDB SQL, check it, write Parquet to S3 (moto), then load it
back into SQLite; classification, lineage and quality results are recorded for the run. And
the bad inputs a user meets first, each a one-line error that names the dataset and writes
nothing."""

from __future__ import annotations

import sqlite3
import textwrap
from datetime import UTC, datetime

import psycopg
import pyarrow.parquet as pq
import pytest

import lockgate
from lockgate.api import open_store
from lockgate.authoring.discovery import load_file
from lockgate.config import Project
from lockgate.io.dataset import display
from lockgate.model.classification import tag_of

DAY = datetime(2024, 1, 31, tzinfo=UTC)

PIPELINE = """
id: pg_to_lake
tasks:
  extract:
    sql:
      query: |
        select id, lower(email) as email, country, amount
        from customers where amount >= $min_amount order by id
      inputs:
        customers: "{pg}#public.customers"
      parameters: {{min_amount: 10}}
      target: s3://lake/customers/{{{{ ds_nodash }}}}.parquet
      tags: {{country: none}}
      checks:
        - not_null: [id, email]
        - unique: id
        - accepted_values: {{column: country, values: [DE, FR, US]}}
        - row_count: {{min: 2}}
          severity: warn
  load:
    depends_on: extract
    copy:
      source: s3://lake/customers/{{{{ ds_nodash }}}}.parquet
      target: sqlite:///warehouse.db#customers
      mode: upsert
      keys: [id]
"""


@pytest.fixture
def shop(pg_url: str) -> str:
    """A PostgreSQL database with a customers table; its email column is PII."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE customers (id integer primary key, email text, country text, "
            "amount numeric(10, 2))"
        )
        conn.execute(
            "INSERT INTO customers VALUES (1, 'Ann@Example.org', 'DE', 120.50), "
            "(2, 'bob@example.net', 'FR', 80.00), (3, 'carl@example.com', 'US', 5.00), "
            "(4, 'dora@example.org', 'US', 240.00)"
        )
    return pg_url


def test_postgresql_to_s3_parquet_to_sqlite(project: Project, shop: str, aws: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=aws, region_name="us-east-1").create_bucket(Bucket="lake")
    file = project.root / "pipelines" / "pg_to_lake.yaml"
    file.parent.mkdir(exist_ok=True)
    file.write_text(textwrap.dedent(PIPELINE.format(pg=shop)), encoding="utf-8")
    [pipe] = load_file(file)
    # the source's email column is declared PII where the data lives (PostgreSQL cannot say)
    store = open_store(project)
    store.record_dataset(
        f"{shop}#public.customers", "postgresql", [{"name": "email", "tag": "pii.email"}], 4
    )

    result = lockgate.run(pipe, project=project, logical_date=DAY)
    assert result.ok, {t.id: t.error for t in result.tasks.values()}

    # S3 holds the transformed rows as Parquet, the email column still classified
    import s3fs

    lake = s3fs.S3FileSystem(skip_instance_cache=True)
    with lake.open("lake/customers/20240131.parquet", "rb") as fh:
        table = pq.read_table(fh)
    assert table.column("id").to_pylist() == [1, 2, 4]
    assert table.column("email").to_pylist()[0] == "ann@example.org"
    assert tag_of(table.schema.field("email")) == "pii.email"

    # SQLite holds them too; its tags are in the store's catalogue
    with sqlite3.connect(project.root / "warehouse.db") as conn:
        rows = conn.execute("SELECT id, email, country FROM customers ORDER BY id").fetchall()
    assert rows == [
        (1, "ann@example.org", "DE"),
        (2, "bob@example.net", "FR"),
        (4, "dora@example.org", "US"),
    ]
    target = f"sqlite:///{project.root / 'warehouse.db'}#customers"
    entry = store.dataset(target)
    assert entry is not None
    assert {f["name"]: f["tag"] for f in entry["schema"]}["email"] == "pii.email"

    # lineage: PostgreSQL -> S3 -> SQLite, for this run
    edges = {(e["input_uri"], e["output_uri"]) for e in store.lineage(result.run_id)}
    assert edges == {
        (display(f"{shop}#public.customers"), "s3://lake/customers/20240131.parquet"),
        ("s3://lake/customers/20240131.parquet", target),
    }
    checks = store.quality_results(result.run_id)
    assert [c["name"] for c in checks] == [
        "not_null(id)",
        "not_null(email)",
        "unique(id)",
        "accepted_values(country)",
        "row_count",
    ]
    assert all(c["passed"] for c in checks)


def test_a_failed_check_writes_nothing_and_stops_the_load(
    project: Project, shop: str, aws: str
) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws, region_name="us-east-1")
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="customers/20240131.parquet", Body=b"previous")
    with psycopg.connect(shop, autocommit=True) as conn:
        conn.execute("INSERT INTO customers VALUES (5, NULL, 'XX', 99)")
    file = project.root / "pg_to_lake.yaml"
    file.write_text(textwrap.dedent(PIPELINE.format(pg=shop)), encoding="utf-8")
    [pipe] = load_file(file)
    result = lockgate.run(pipe, project=project, logical_date=DAY)
    assert not result.ok
    error = result.tasks["extract"].error
    assert "data-quality check(s) failed" in error and "not_null(email) 1 row(s)" in error
    assert result.tasks["load"].state.value == "upstream_failed"
    body = s3.get_object(Bucket="lake", Key="customers/20240131.parquet")["Body"].read()
    assert body == b"previous"
    assert not (project.root / "warehouse.db").exists()
    failed = [c for c in open_store(project).quality_results(result.run_id) if not c["passed"]]
    assert {c["name"] for c in failed} == {"not_null(email)", "accepted_values(country)"}
