"""The DuckDB SQL transform: inputs streamed in by name (also twice, for a self-join), tags
carried to output columns, bound parameters, DuckDB locked to its inputs, one-line errors,
and inputs from SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockgate.errors import DataError
from lockgate.io import tasks as io_tasks
from lockgate.io.copy import copy
from lockgate.io.dataset import Dataset
from lockgate.io.formats import write_table
from lockgate.io.sqltags import carried_tags
from lockgate.io.sqltransform import Transform, check_names
from lockgate.model.classification import tag_of, with_tag

ROWS = 5000


def _orders() -> pa.Table:
    schema = pa.schema(
        [
            pa.field("id", pa.int64()),
            with_tag(pa.field("email", pa.string()), "pii.email"),
            pa.field("customer", pa.string()),
            pa.field("amount", pa.float64()),
        ]
    )
    return pa.table(
        {
            "id": list(range(ROWS)),
            "email": [f"user{i}@example.org" for i in range(ROWS)],
            "customer": [f"C{i % 7}" for i in range(ROWS)],
            "amount": [float(i % 100) for i in range(ROWS)],
        },
        schema=schema,
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Dataset]:
    """orders.parquet (email tagged pii.email) and customers.csv (untagged CSV)."""
    write_table(tmp_path / "orders.parquet", _orders())
    lines = ["customer,name,email"] + [f"C{i},Name {i},c{i}@corp.example" for i in range(7)]
    (tmp_path / "customers.csv").write_text("\n".join(lines) + "\n")
    return {
        "orders": Dataset(str(tmp_path / "orders.parquet")),
        "customers": Dataset(str(tmp_path / "customers.csv"), tags={"name": "pii.name"}),
    }


def _run(query: str, inputs: dict[str, Dataset], **kwargs: object) -> tuple[pa.Table, Transform]:
    with Transform(query, inputs, batch_rows=1000, **kwargs) as t:  # type: ignore[arg-type]
        batches = list(t)
        assert t.schema is not None
        return pa.Table.from_batches(batches, schema=t.schema), t


def _tags(table: pa.Table) -> dict[str, str | None]:
    return {f.name: tag_of(f) for f in table.schema}


def test_inputs_stream_in_batches_and_a_self_join_reads_twice(files: dict[str, Dataset]):
    out, t = _run(
        "select a.id, b.id as next_id from orders a join orders b on b.id = a.id + 1",
        {"orders": files["orders"]},
    )
    assert out.num_rows == ROWS - 1
    assert t.rows == ROWS - 1
    [(name, _, schema, rows)] = t.read()
    assert name == "orders" and rows == ROWS and "email" in schema.names
    assert max(b.num_rows for b in out.to_batches()) <= 1000


def test_tags_follow_columns_by_provenance_and_by_name(files: dict[str, Dataset]):
    out, _ = _run(
        """
        select o.id, o.email as contact, c.email as customer_email, lower(o.email) as email,
               c.name, upper(c.name) as shout, amount * 2 as doubled
        from orders o join customers c on o.customer = c.customer
        where o.id < 10
        """,
        files,
        tags={"shout": "pii.name/upper", "doubled": "finance.amount"},
    )
    assert out.num_rows == 10
    assert _tags(out) == {
        "id": None,
        "contact": "pii.email",  # a plain column, renamed
        "customer_email": None,  # customers.email carries no tag
        "email": "pii.email",  # computed, but named like a tagged column
        "name": "pii.name",  # declared on the CSV input
        "shout": "pii.name/upper",  # declared on the output
        "doubled": "finance.amount",
    }
    star, _ = _run("select * from orders o where id < 3", files)
    assert _tags(star)["email"] == "pii.email"


@pytest.mark.parametrize(
    ("query", "expected"),
    [  # each of these once lost the tag of `email`
        ("select upper(email) as contact from orders", {"contact": "pii.email"}),
        ("select email || '' as contact from orders", {"contact": "pii.email"}),
        ("with x as (select email as e from orders) select e from x", {"e": "pii.email"}),
        ("select * from (select email as e from orders)", {"e": "pii.email"}),
        (
            "select id, s.e from orders, lateral (select orders.email as e) s",
            {"id": None, "e": "pii.email"},
        ),
        ("select (select max(email) from orders) as top", {"top": "pii.email"}),
        (
            "select email as e, upper(e) as shout from orders",
            {"e": "pii.email", "shout": "pii.email"},
        ),
        ("select list_transform([email], lambda x: upper(x)) as l from orders", {"l": "pii.email"}),
        ("select v from orders, unnest([email]) as u(v)", {"v": "pii.email"}),
        (
            "select case when email like '%.org' then 'org' else 'other' end as kind from orders",
            {"kind": "pii.email"},  # computed from the e-mail address: it may reveal it
        ),
        (
            "select id from orders where id < 0 union all select length(email) from orders",
            {"id": "pii.email"},  # a set operation's column: every part's tags
        ),
        (
            "with recursive r(n, e) as (select 1, ''::varchar union all "
            "select n + 1, e || (select min(email) from orders) from r where n < 3) "
            "select n, e from r",
            {"n": None, "e": "pii.email"},
        ),
        (
            "select * exclude (id) rename (email as contact) from orders",
            {"contact": "pii.email", "customer": None, "amount": None},
        ),
        (
            "select * exclude (id) replace (upper(email) as email, 0 as amount) from orders",
            {"email": "pii.email", "customer": None, "amount": None},
        ),
        ("select struct_pack(*) as row from orders", {"row": "pii.email"}),
        (  # counting passes no tag; every other aggregate keeps it
            "select count(email) as n, count(distinct email) as d, min(email) as m from orders",
            {"n": None, "d": None, "m": "pii.email"},
        ),
        (  # what cannot be traced takes the most sensitive tag of the inputs
            "select * from query_table('orders') limit 1",
            {
                "id": "pii.email",
                "email": "pii.email",
                "customer": "pii.email",
                "amount": "pii.email",
            },
        ),
    ],
)
def test_tags_follow_every_expression_through_ctes_and_subqueries(
    files: dict[str, Dataset], query: str, expected: dict[str, str | None]
):
    out, _ = _run(query, {"orders": files["orders"]})
    assert _tags(out) == expected


def test_the_most_sensitive_tag_wins(files: dict[str, Dataset]):
    orders = Dataset(files["orders"].uri, tags={"customer": "pii.name/tokenized"})
    customers = files["customers"]  # name: pii.name, raw
    out, _ = _run(
        """
        select coalesce(o.customer, o.email) as either, o.customer || '' as token,
               c.name || o.email as name_first, o.email || c.name as email_first,
               o.customer || c.customer as plain_and_token
        from orders o join customers c on o.customer = c.customer
        """,
        {"orders": orders, "customers": customers},
    )
    assert _tags(out) == {
        "either": "pii.email",  # raw beats transformed
        "token": "pii.name/tokenized",  # transformed beats none
        "name_first": "pii.name",  # two raw classes: the first in reading order
        "email_first": "pii.email",
        "plain_and_token": "pii.name/tokenized",
    }


def test_carried_tags_assume_the_worst_when_the_query_is_not_understood():
    a = pa.schema([with_tag(pa.field("email", pa.string()), "pii.email/tokenized")])
    b = pa.schema([with_tag(pa.field("EMAIL", pa.string()), "pii.email")])
    assert carried_tags({}, {"a": a, "b": b}, ["email", "other"]) == ["pii.email", "pii.email"]
    assert carried_tags({"type": "SOMETHING_NEW"}, {"a": a}, ["x"]) == ["pii.email/tokenized"]
    assert carried_tags({}, {"a": pa.schema([pa.field("x", pa.int64())])}, ["x"]) == [None]


def test_parameters_are_bound_values_never_sql(files: dict[str, Dataset]):
    out, _ = _run(
        "select id from orders where customer = $who and amount >= $low order by id",
        {"orders": files["orders"]},
        parameters={"who": "C1", "low": 98},
    )
    assert out.column("id").to_pylist() == [i for i in range(ROWS) if i % 7 == 1 and i % 100 >= 98]
    none, _ = _run(
        "select id from orders where customer = $who",
        {"orders": files["orders"]},
        parameters={"who": "C1' or '1'='1"},
    )
    assert none.num_rows == 0


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("select * from orders; select 1", "holds 2 statements; give exactly one SELECT"),
        ("create table x as select 1", "must be one read-only query"),
        ("copy (select 1) to 'out.csv'", "must be one read-only query"),
        ("attach 'other.db'", "must be one read-only query"),
        ("set enable_external_access = true", "must be one read-only query"),
        ("select * from read_csv('/etc/passwd')", "file system operations are disabled"),
        ("select * from '/etc/hostname'", "the query can read its inputs: orders"),
        ("select id from", "syntax error"),
        ("select * from ordrs", "the query can read its inputs: orders"),
        ("select nope from orders", "orders has id, email, customer, amount"),
        ("   ", "the query is empty"),
        ("select cast(email as int) from orders", "Could not convert string '***' to INT32"),
    ],
)
def test_queries_are_one_read_only_statement_over_the_inputs(
    files: dict[str, Dataset], query: str, expected: str
):
    with pytest.raises(DataError) as info:
        _run(query, {"orders": files["orders"]})
    text = str(info.value)
    assert text.startswith("sql: ") and "\n" not in text, text
    assert expected in text, text


def test_input_names_must_be_identifiers_distinct_in_any_case():
    assert check_names(["orders", "Customers_2"]) == ["orders", "Customers_2"]
    with pytest.raises(DataError, match="'my-orders' is not an identifier"):
        check_names(["my-orders"])
    with pytest.raises(DataError, match="differ only in case"):
        check_names(["orders", "ORDERS"])


def test_a_broken_input_is_reported_by_its_own_error(tmp_path: Path, files: dict[str, Dataset]):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n" + "3,4\n" * 100 + "5,6,7\n")
    with pytest.raises(DataError) as info:
        _run("select count(*) from bad", {"bad": Dataset(str(bad))})
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(DataError, match="no such file"):
        _run("select 1", {"gone": Dataset(str(tmp_path / "gone.csv"))})


def test_duckdb_settings_cannot_be_changed_by_the_query(files: dict[str, Dataset]):
    out, _ = _run(
        "select current_setting('enable_external_access') as ext, "
        "current_setting('lock_configuration') as locked",
        {"orders": files["orders"]},
    )
    assert out.to_pylist() == [{"ext": False, "locked": True}]


def test_sql_inputs_from_sqlite_and_postgresql_into_parquet(
    tmp_path: Path, files: dict[str, Dataset], sql_uri: Callable[[str], str], project: object
):
    orders = Dataset(sql_uri("orders"))
    copy(files["orders"], orders)
    lite = f"sqlite:///{tmp_path / 'crm.db'}"
    con = sqlite3.connect(tmp_path / "crm.db")
    con.execute("create table customers (customer text, country text)")
    con.executemany(
        "insert into customers values (?, ?)",
        [(f"C{i}", "DE" if i % 2 else "FR") for i in range(7)],
    )
    con.commit()
    con.close()
    doc = io_tasks.sql_task(
        """
        select c.country, count(*) as orders, sum(o.amount) as total, min(o.email) as email
        from orders o join customers c using (customer) group by 1 order by 1
        """,
        {  # a SQL table carries no tags: the input declares them
            "orders": {"uri": orders.uri, "tags": {"email": "pii.email"}},
            "customers": f"{lite}#customers",
        },
        target=str(tmp_path / "by_country.parquet"),
        tags={"total": "finance.revenue"},
    )
    assert doc["rows"] == 2
    out = pq.read_table(tmp_path / "by_country.parquet")
    assert out.column("country").to_pylist() == ["DE", "FR"]
    assert sum(out.column("orders").to_pylist()) == ROWS
    tags = _tags(out)
    assert tags["total"] == "finance.revenue" and tags["email"] == "pii.email"
