"""Column lineage in `DatasetWritten` facts: traced through SQL (CTEs, joins, set operations,
subqueries, aggregates and counts), per column for copies, with the operation for masks, and
capped so facts stay small."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lockgate.config import Project
from lockgate.io import tasks as io_tasks
from lockgate.io.copy import LINEAGE_COLUMNS, LINEAGE_INPUTS, capped_lineage, lineage_entry
from lockgate.io.dataset import Dataset
from lockgate.io.formats import write_table
from lockgate.io.sqltransform import Transform
from lockgate.model import facts
from lockgate.model.classification import with_tag
from lockgate.privacy import tasks as privacy_tasks
from lockgate.privacy.keys import ensure_key_file, keys_file_of


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Dataset]:
    orders = pa.table(
        {"id": [1, 2, 3], "email": ["a@x.org", "b@x.org", "a@x.org"], "amount": [1.0, 2.0, 3.0]},
        schema=pa.schema(
            [
                pa.field("id", pa.int64()),
                with_tag(pa.field("email", pa.string()), "pii.email"),
                pa.field("amount", pa.float64()),
            ]
        ),
    )
    people = pa.table({"id": [1, 2], "Name": ["Ann", "Bob"]})
    write_table(tmp_path / "orders.parquet", orders)
    write_table(tmp_path / "people.parquet", people)
    return {
        "orders": Dataset(str(tmp_path / "orders.parquet")),
        "people": Dataset(str(tmp_path / "people.parquet")),
    }


def _lineage(query: str, inputs: dict[str, Dataset]) -> dict[str, list[tuple[str, str, str]]]:
    with Transform(query, inputs) as result:
        for _ in result:
            pass
        columns = result.columns()
    return {
        out: [(Path(s["dataset"]).stem, s["field"], s["kind"]) for s in sources]
        for out, sources in columns.items()
    }


def test_sql_column_lineage_follows_the_query(inputs: dict[str, Dataset]) -> None:
    found = _lineage(
        """
        with spend as (select id, sum(amount) as total, count(email) as mails from orders group by id)
        select p.Name as who, s.total, s.mails, upper(p.Name) as loud, s.id
        from spend s join people p using (id)
        """,
        inputs,
    )
    assert found == {
        "who": [("people", "Name", "identity")],
        "total": [("orders", "amount", "aggregation")],
        "mails": [("orders", "email", "aggregation")],
        "loud": [("people", "Name", "transformation")],
        "id": [("orders", "id", "identity"), ("people", "id", "identity")],
    }
    union = _lineage(
        "select email as v from orders union all select Name from people "
        "union all select (select max(email) from orders)",
        inputs,
    )
    assert union == {
        "v": [
            ("orders", "email", "identity"),
            ("people", "Name", "identity"),
            ("orders", "email", "aggregation"),
        ]
    }
    assert _lineage("select count(*) as n, 42 as k from orders", inputs) == {"n": [], "k": []}


def test_counted_columns_keep_lineage_but_not_their_tag(inputs: dict[str, Dataset]) -> None:
    with Transform("select count(email) as mails, email from orders group by email", inputs) as t:
        assert t.schema is not None
        tags = {f.name: (f.metadata or {}).get(b"lockgate.classification") for f in t.schema}
        columns = t.columns()
    assert tags == {"mails": None, "email": b"pii.email"}
    assert columns["mails"][0]["kind"] == "aggregation"
    assert columns["email"][0] == lineage_entry(str(inputs["orders"].uri), "email", "identity")


def test_task_facts_carry_column_lineage(project: Project) -> None:
    ensure_key_file(keys_file_of(project))
    (project.root / "raw.csv").write_text("id,email\n1,a@x.org\n2,b@x.org\n")
    with facts.collect() as found:
        io_tasks.copy_task({"uri": "raw.csv", "tags": {"email": "pii.email"}}, "prod.parquet")
        privacy_tasks.mask_task(
            "prod.parquet", "staging.parquet", rules=[{"column": "email", "op": "tokenize"}]
        )
        io_tasks.sql_task(
            "select email, count(*) as n from s group by email",
            {"s": "staging.parquet"},
            target="report.parquet",
        )
    written = [f["data"] for f in found if f["kind"] == facts.DATASET_WRITTEN]
    assert [Path(w["uri"]).name for w in written] == [
        "prod.parquet",
        "staging.parquet",
        "report.parquet",
    ]
    root = str(project.root)
    copied, masked, report = (w["columns"] for w in written)
    assert copied == {
        "id": [lineage_entry(f"{root}/raw.csv", "id")],
        "email": [lineage_entry(f"{root}/raw.csv", "email")],
    }
    assert masked == {
        "id": [lineage_entry(f"{root}/prod.parquet", "id")],
        "email": [
            lineage_entry(f"{root}/prod.parquet", "email", "transformation", "tokenize", True)
        ],
    }
    assert report == {
        "email": [lineage_entry(f"{root}/staging.parquet", "email", "identity")],
        "n": [],
    }
    # the mask reports what it read and wrote, like the other data tasks
    mask_read = [f["data"] for f in found if f["kind"] == facts.DATASET_READ][1]
    assert mask_read["uri"] == f"{root}/prod.parquet" and mask_read["rows"] == 2
    assert written[1]["inputs"] == [f"{root}/prod.parquet"]
    assert {c["name"]: c["tag"] for c in written[1]["schema"]}["email"] == "pii.email/tokenized"


def test_column_lineage_is_capped() -> None:
    wide: dict[str, Any] = {
        f"c{i}": [lineage_entry("/d", f"f{j}") for j in range(LINEAGE_INPUTS + 5)]
        for i in range(LINEAGE_COLUMNS + 5)
    }
    capped = capped_lineage(wide)
    assert len(capped) == LINEAGE_COLUMNS
    assert all(len(sources) == LINEAGE_INPUTS for sources in capped.values())
