"""The plain DDL that creates new databases (store/ddl.py) matches the SQLAlchemy schema."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from lockgate.store import ddl, schema


def compiled(dialect: object) -> tuple[str, ...]:
    """The DDL SQLAlchemy emits for `schema.metadata`, one normalized statement per item."""

    def norm(text: str) -> str:
        return re.sub(r"\s+", " ", text).replace("( ", "(").replace(" )", ")").strip()

    out = []
    for table in schema.metadata.sorted_tables:
        out.append(norm(str(CreateTable(table).compile(dialect=dialect))))
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            out.append(norm(str(CreateIndex(index).compile(dialect=dialect))))
    return tuple(out)


@pytest.mark.parametrize(
    ("expected", "dialect"),
    [(ddl.SQLITE, sqlite.dialect()), (ddl.POSTGRESQL, postgresql.dialect())],
    ids=["sqlite", "postgresql"],
)
def test_plain_ddl_is_what_sqlalchemy_would_emit(
    expected: tuple[str, ...], dialect: object
) -> None:
    # on a mismatch, paste the printed tuple into store/ddl.py
    assert expected == compiled(dialect), compiled(dialect)
