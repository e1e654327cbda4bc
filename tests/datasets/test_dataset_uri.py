"""`display` hides every password a dataset URI can carry (user info and credential query
parameters such as libpq's `?password=`), `parse` errors never show one, and database errors
redact a password given as a query parameter, down to a real PostgreSQL server."""

from __future__ import annotations

from urllib.parse import quote

import pyarrow as pa
import pytest
from tests.datasets.conftest import PG_PASSWORD

from lockgate.errors import DataError
from lockgate.io.connect import open_reader, open_writer
from lockgate.io.dataset import Dataset, display, parse, secret_param
from lockgate.io.sql_errors import message, password


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql://etl@db/wh?password=s3cret#t", "postgresql://etl@db/wh?password=***#t"),
        (
            "postgresql://etl:pw@db/wh?sslmode=require&PassWord=x&sslpassword=y&passfile=/p#t",
            "postgresql://etl:***@db/wh?sslmode=require&PassWord=***&sslpassword=***&passfile=***#t",
        ),
        (
            "https://api.example.com/v1/x?page=2&api_key=a&apikey=b&access_token=c&key=d&token=e",
            "https://api.example.com/v1/x?page=2&api_key=***&apikey=***&access_token=***&key=***"
            "&token=***",
        ),
        (
            "s3://b/k.csv?X-Amz-Signature=abc&X-Amz-Credential=AKIA&versionId=3",
            "s3://b/k.csv?X-Amz-Signature=***&X-Amz-Credential=***&versionId=3",
        ),
        (
            "https://h/x?client_secret=c&monkey=m&secret=s&refresh_token=r",
            "https://h/x?client_secret=***&monkey=m&secret=***&refresh_token=***",
        ),
        ("https://h/x?password=&q=1", "https://h/x?password=&q=1"),  # nothing to hide
        (
            "postgresql://etl@db:5432/wh?sslmode=require#t",
            "postgresql://etl@db:5432/wh?sslmode=require#t",
        ),
        ("sqlite:////abs/app.db?key=k#t", "sqlite:////abs/app.db?key=***#t"),
        ("file:///tmp/a.csv?token=t", "file:///tmp/a.csv?token=***"),
        ("data/orders.csv", "data/orders.csv"),
    ],
)
def test_display_hides_passwords_in_the_query_and_keeps_the_rest(uri: str, shown: str) -> None:
    assert display(uri) == shown
    assert str(Dataset(uri)) == shown


def test_secret_param_names_are_case_insensitive_and_exact_for_short_ones() -> None:
    for name in ("PASSWORD", "sslpassword", "Api-Key", "x-api-key", "KEY", "Token", "passfile"):
        assert secret_param(name), name
    for name in ("sslmode", "host", "port", "page", "keys", "monkey", "sslkey", "dbname"):
        assert not secret_param(name), name


def test_parse_errors_never_show_a_password() -> None:
    with pytest.raises(DataError) as exc:
        parse("file://ann:pw-in-file-uri@server/share/x.csv")
    assert "pw-in-file-uri" not in str(exc.value) and "ann:***@server" in str(exc.value)
    with pytest.raises(DataError) as exc:
        parse("ftp://u@h/x?password=pw-in-query")
    assert "pw-in-query" not in str(exc.value) and "password=***" in str(exc.value)


def test_sql_errors_find_and_redact_the_query_password() -> None:
    assert password("postgresql://u@h/db?sslmode=require&password=q%20pw#t") == "q pw"
    assert password("postgresql://u:in%2Finfo@h/db") == "in/info"
    assert password("postgresql://u@h/db") is None
    echoed = RuntimeError("invalid connection string \"host=h password='q pw-x' sslpassword=zz\"")
    text = message(echoed)
    assert "pw-x" not in text and "zz" not in text and "password=***" in text
    assert "in/info" not in message(RuntimeError("FATAL:  bad in%2Finfo here"), "in/info")


@pytest.mark.postgres
def test_a_password_given_as_a_query_parameter_never_shows(
    pg_password_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    port = pg_password_server.rsplit(":", 1)[1].split("/")[0]
    base = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    good = f"{base}?password={quote(PG_PASSWORD, safe='')}#query_pw"
    table = pa.table({"id": [1, 2]})
    with open_writer(Dataset(good), table.schema) as writer:
        writer.write(table)
        result = writer.commit()
    assert PG_PASSWORD not in result.target and quote(PG_PASSWORD, safe="") not in result.target
    assert result.target == f"{base}?password=***#query_pw"
    with open_reader(Dataset(good)) as reader:
        assert pa.Table.from_batches(list(reader)).num_rows == 2
    bad = f"{base}?password=wrong-query-pw#query_pw"
    with pytest.raises(DataError) as exc:
        open_reader(Dataset(bad))
    text = str(exc.value)
    assert "\n" not in text and "refused the credentials" in text
    assert "wrong-query-pw" not in text and "password=***" in text
    with pytest.raises(DataError) as exc:  # a failing query: the message names the dataset
        open_reader(Dataset(good.replace("#query_pw", "#no_such_table")))
    assert PG_PASSWORD not in str(exc.value) and "password=***" in str(exc.value)
