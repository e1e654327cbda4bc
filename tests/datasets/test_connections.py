"""Named connections: lockgate.toml tables with *_env secrets, connections sealed in the store
(SQLite and PostgreSQL), `apply` for each kind, and one-line errors (unknown name, missing
variable, secrets that the project's keys cannot open)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import quote

import pyarrow as pa
import pytest
from tests.datasets.test_http import Api, Request, serving

from lockgate.config import Project
from lockgate.errors import ConfigError, DataError
from lockgate.io.connect import open_reader, resolved
from lockgate.io.connections import (
    apply,
    lookup,
    remove,
    save,
    secrets_of,
    stored_connections,
    toml_connections,
)
from lockgate.io.dataset import Dataset, display, parse
from lockgate.privacy.keys import Keyring, ensure_key_file, keys_file_of
from lockgate.store.dbapi import Database
from lockgate.store.store import Store

PASSWORD = "pg-pa55:w@rd/é"
TOKEN = "tok-7f3a9c1e"


@pytest.fixture
def proj(project: Project) -> Project:
    """The test's project with a key file, as `lockgate init` leaves it."""
    ensure_key_file(keys_file_of(project))
    return project


@pytest.fixture
def db(proj: Project) -> Iterator[Database]:
    store = Store(proj.db_url)
    try:
        yield store.db
    finally:
        store.close()


def with_toml(project: Project, text: str) -> Project:
    """`project` reloaded with a lockgate.toml holding `text`."""
    file = project.root / "lockgate.toml"
    file.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    loaded = Project.load(project.root)
    loaded.db_url = project.db_url
    return loaded


def one_line(exc: pytest.ExceptionInfo[Exception]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# -- apply, per kind -----------------------------------------------------------------------------


def test_sqlite_connection_from_toml_is_relative_to_the_project(proj: Project) -> None:
    proj = with_toml(proj, '[connections.app]\nurl = "sqlite:///data/app.db"\n')
    out = apply(Dataset("orders", connection="app"), proj)
    assert out.uri == f"sqlite:///{proj.root}/data/app.db#orders"
    location = parse(out.uri)
    assert location.path == str(proj.root / "data" / "app.db") and location.table == "orders"
    by_option = apply(Dataset("", connection="app", options={"table": "items"}), proj)
    assert by_option.uri.endswith("#items") and "table" not in by_option.options
    query = apply(Dataset("", connection="app", query="select 1 as x"), proj)
    assert parse(query.uri).table is None and query.query == "select 1 as x"
    assert apply(Dataset("#orders", connection="app"), proj).uri == out.uri
    assert apply(out, proj) == out  # a full sqlite:////absolute URI under the connection


def test_postgresql_from_toml_gets_its_password_from_the_environment(
    proj: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = with_toml(
        proj,
        """
        [connections.warehouse]
        url = "postgresql://etl@db.internal:5432/dw"
        password_env = "PG_PASSWORD_TEST"
        sslmode = "require"
        """,
    )
    monkeypatch.setenv("PG_PASSWORD_TEST", PASSWORD)
    out = apply(Dataset("public.orders", connection="warehouse"), proj)
    parts = parse(out.uri)
    assert parts.kind == "postgresql" and parts.table == "public.orders"
    assert out.uri.startswith("postgresql://etl:") and "@db.internal:5432/dw#" in out.uri
    from urllib.parse import unquote, urlsplit

    assert unquote(urlsplit(out.uri).password or "") == PASSWORD
    assert PASSWORD not in display(out.uri) and out.options == {"sslmode": "require"}
    assert apply(out, proj) == out  # idempotent: resolving again changes nothing
    monkeypatch.delenv("PG_PASSWORD_TEST")
    with pytest.raises(DataError) as exc:
        apply(Dataset("orders", connection="warehouse"), proj)
    assert one_line(exc) == (
        "connection 'warehouse': environment variable PG_PASSWORD_TEST (password_env in "
        "lockgate.toml) is not set; export it before running"
    )


def test_s3_connection_from_the_store(proj: Project, db: Database) -> None:
    save(
        db,
        proj,
        "lake",
        "s3://bucket/exports",
        options={"endpoint_url": "http://127.0.0.1:9000", "region": "eu-west-1"},
        secrets={"key": "AKIAEXAMPLE", "secret": "s3-secret-value"},
    )
    out = apply(Dataset("daily/orders.parquet", connection="lake", options={"region": "x"}), proj)
    assert out.uri == "s3://bucket/exports/daily/orders.parquet"
    assert out.options == {
        "endpoint_url": "http://127.0.0.1:9000",
        "region": "x",  # the dataset's own option wins
        "key": "AKIAEXAMPLE",
        "secret": "s3-secret-value",
    }
    assert apply(out, proj) == out
    with pytest.raises(DataError) as exc:
        apply(Dataset("s3://other-bucket/x.parquet", connection="lake"), proj)
    assert "the URI is outside the connection (s3://bucket/exports)" in one_line(exc)


def test_http_connection_joins_paths_and_sends_its_token(proj: Project, db: Database) -> None:
    api = Api({})
    seen: list[str | None] = []

    def orders(r: Request) -> tuple[int, dict[str, str], object]:
        auth = r.headers.get("authorization")
        seen.append(auth)
        if auth != f"Bearer {TOKEN}":
            return 401, {}, {"error": "no"}
        return 200, {}, {"orders": [{"id": 1, "status": r.query["status"]}]}

    api.routes = {"/v1/orders": orders}
    with serving(api) as served:
        save(db, proj, "shop", served.url("/v1/"), secrets={"token": TOKEN})
        dataset = Dataset("orders?status=open", connection="shop")
        out = resolved(dataset)
        assert out.uri == served.url("/v1/orders?status=open")
        assert out.options["token"] == TOKEN and out.connection == "shop"
        with open_reader(dataset) as reader:
            table = pa.Table.from_batches(list(reader), schema=reader.schema)
        assert table.to_pylist() == [{"id": 1, "status": "open"}]
        save(db, proj, "shop", served.url("/v1"), secrets={"token": "stale"}, replace=True)
        with pytest.raises(DataError) as exc:
            open_reader(dataset)
        message = one_line(exc)
        assert message.endswith(
            "page 1: HTTP 401 Unauthorized; check the credentials of connection 'shop'"
        )
        assert "stale" not in message


def test_http_secret_headers_and_username_in_the_url(proj: Project, db: Database) -> None:
    save(
        db,
        proj,
        "api",
        "https://ann:pw-in-url@api.example.com/v1",
        options={"headers": {"Accept": "application/json"}},
        secrets={"headers": '{"X-Api-Key": "hk-1"}'},
    )
    conn = lookup(proj, "api")
    assert conn.url == "https://ann@api.example.com/v1" and "pw-in-url" not in str(conn)
    assert conn.secret_fields == ("headers", "password")
    out = apply(Dataset("", connection="api"), proj)
    assert out.uri == "https://api.example.com/v1"
    assert out.options["username"] == "ann" and out.options["password"] == "pw-in-url"
    assert out.options["headers"] == {"Accept": "application/json"}
    assert out.options["auth_headers"] == {"X-Api-Key": "hk-1"}  # to the API's origin only
    assert apply(out, proj) == out


# -- the store -------------------------------------------------------------------------------------


def test_store_round_trip_on_each_database(project: Project, db_url: str) -> None:
    project.db_url = db_url
    ensure_key_file(keys_file_of(project))
    store = Store(db_url)
    try:
        conn = save(
            store.db,
            project,
            "warehouse",
            f"postgresql://etl:{PASSWORD.replace('/', '%2F').replace('@', '%40')}@db:5432/dw",
        )
        assert conn.url == "postgresql://etl@db:5432/dw" and conn.secret_fields == ("password",)
        rows = store.db.rows("SELECT url, options, secret FROM connections")
        assert len(rows) == 1 and PASSWORD not in str(rows) and "pa55" not in str(rows)
        assert rows[0]["secret"].startswith("lgconn:v1:k1:password:")
        assert secrets_of(lookup(project, "warehouse", store.db), project) == {"password": PASSWORD}
        with pytest.raises(ConfigError) as exc:
            save(store.db, project, "warehouse", "sqlite:///x.db")
        assert "exists already" in one_line(exc) and "--replace" in str(exc.value)
        save(store.db, project, "warehouse", "sqlite:///x.db", replace=True)
        assert stored_connections(store.db)["warehouse"].kind == "sqlite"
        remove(store.db, project, "warehouse")
        assert stored_connections(store.db) == {}
        with pytest.raises(ConfigError) as exc:
            remove(store.db, project, "warehouse")
        assert "no connection 'warehouse' in the store" in one_line(exc)
    finally:
        store.close()


def test_secrets_survive_a_key_rotation(proj: Project, db: Database) -> None:
    save(db, proj, "wh", "postgresql://etl@db/dw", secrets={"password": PASSWORD})
    Keyring.for_project(proj).rotate()
    out = apply(Dataset("orders", connection="wh"), proj)
    assert out.uri.startswith("postgresql://etl:") and "#orders" in out.uri


def test_undecryptable_secrets_are_one_line(
    proj: Project, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(db, proj, "wh", "postgresql://etl@db/dw", secrets={"password": PASSWORD})
    keys = keys_file_of(proj)
    keys.unlink()
    ensure_key_file(keys)  # a new key file: same id k1, another key
    with pytest.raises(DataError) as exc:
        apply(Dataset("orders", connection="wh"), proj)
    message = one_line(exc)
    assert message.startswith(
        "connection 'wh': its stored secrets cannot be decrypted with the project's key 'k1'"
    )
    assert "lockgate connections add wh URL --secret FIELD --replace" in message
    monkeypatch.setenv("LOCKGATE_KEYS", "other:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk=")
    keys.unlink()
    with pytest.raises(DataError) as exc:
        apply(Dataset("orders", connection="wh"), proj)
    assert "sealed with key 'k1', which the project's keyring does not hold (it holds other)" in (
        one_line(exc)
    )
    db.execute("UPDATE connections SET secret = ?", ("lgconn:v1:other:password:AAAA",))
    with pytest.raises(DataError) as exc:
        apply(Dataset("orders", connection="wh"), proj)
    assert "cannot be decrypted" in one_line(exc)
    db.execute("UPDATE connections SET secret = ?", ("garbage",))
    with pytest.raises(DataError) as exc:
        apply(Dataset("orders", connection="wh"), proj)
    assert "its stored secrets are corrupt" in one_line(exc)


def test_secrets_need_the_project_keys(project: Project) -> None:
    store = Store(project.db_url)
    try:
        with pytest.raises(DataError) as exc:
            save(store.db, project, "wh", "postgresql://etl@db/dw", secrets={"password": "x"})
        assert "its secrets need the project's keys" in one_line(exc)
        assert "lockgate init" in str(exc.value)
        assert stored_connections(store.db) == {}  # nothing half-saved
    finally:
        store.close()


# -- lookup and errors -------------------------------------------------------------------------


def test_unknown_connection_lists_the_known_names(proj: Project, db: Database) -> None:
    proj = with_toml(proj, '[connections.app]\nurl = "sqlite:///app.db"\n')
    save(db, proj, "lake", "s3://bucket")
    with pytest.raises(DataError) as exc:
        apply(Dataset("orders", connection="warehous"), proj)
    assert one_line(exc) == "unknown connection 'warehous'; known connections: app, lake"
    with pytest.raises(DataError) as exc:
        apply(Dataset("orders", connection="lak"), proj)
    assert one_line(exc) == "unknown connection 'lak'; did you mean 'lake'?"


def test_unknown_connection_without_a_store_creates_no_database(project: Project) -> None:
    with pytest.raises(DataError) as exc:
        apply(Dataset("orders", connection="wh"), project)
    assert "unknown connection 'wh'; none is defined" in one_line(exc)
    assert not (project.root / ".lockgate" / "lockgate.db").exists()


def test_toml_is_read_first_and_refuses_plain_secrets(proj: Project, db: Database) -> None:
    save(db, proj, "wh", "sqlite:///stored.db")
    toml = with_toml(proj, '[connections.wh]\nurl = "sqlite:///from-toml.db"\n')
    assert apply(Dataset("t", connection="wh"), toml).uri.endswith("/from-toml.db#t")
    with pytest.raises(ConfigError) as exc:
        save(db, toml, "wh", "sqlite:///again.db", replace=True)
    assert "defined in lockgate.toml, which takes precedence" in one_line(exc)

    bad = [
        ('url = "postgresql://etl:hunter2@db/dw"', "holds a password in plain text"),
        ('url = "postgresql://etl@db/dw"\npassword = "hunter2"', "password must not be written"),
        ('url = "s3://b"\nsecret = "hunter2"', "secret_env"),
        ('url = "s3://b"\npassword_env = "X"', "password_env names no secret field"),
        ('url = "ftp://host/x"', "unknown scheme 'ftp'"),
        ('url = "postgresql://db/dw#orders"', "names a table"),
        ('url = "https://h"\nauth_headers = {X-Key = "hunter2"}', "--secret headers"),
    ]
    for body, expected in bad:
        project = with_toml(proj, f"[connections.bad]\n{body}\n")
        with pytest.raises(ConfigError) as exc:
            toml_connections(project)
        message = one_line(exc)
        assert expected in message and "[connections.bad]" in message
        assert "hunter2" not in message


def test_relative_parts_are_checked(proj: Project) -> None:
    proj = with_toml(
        proj,
        """
        [connections.app]
        url = "sqlite:///app.db"
        [connections.lake]
        url = "s3://bucket"
        """,
    )
    with pytest.raises(DataError) as exc:
        apply(Dataset("orders; drop table x", connection="app"), proj)
    assert "is not a table name" in one_line(exc) and "connection 'app'" in str(exc.value)
    with pytest.raises(DataError) as exc:
        apply(Dataset("", connection="app"), proj)
    assert "name a table (uri: orders) or give a query" in one_line(exc)
    with pytest.raises(DataError) as exc:
        apply(Dataset("/", connection="lake"), proj)
    assert "name the object under the connection" in one_line(exc)
    assert apply(Dataset("/a/b.csv", connection="lake"), proj).uri == "s3://bucket/a/b.csv"


# -- end to end through the SQL connector ------------------------------------------------------


def _read_all(dataset: Dataset) -> list[dict[str, object]]:
    with open_reader(dataset) as reader:
        return pa.Table.from_batches(list(reader), schema=reader.schema).to_pylist()


def test_reading_a_table_through_a_sqlite_connection(proj: Project) -> None:
    import sqlite3

    (proj.root / "data").mkdir()
    with sqlite3.connect(proj.root / "data" / "app.db") as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, amount REAL)")
        conn.executemany("INSERT INTO orders VALUES (?, ?)", [(1, 2.5), (2, 4.0)])
    conn.close()
    proj = with_toml(proj, '[connections.app]\nurl = "sqlite:///data/app.db"\n')
    assert Project.load().connections == proj.connections  # what apply() finds by itself
    assert _read_all(Dataset("orders", connection="app")) == [
        {"id": 1, "amount": 2.5},
        {"id": 2, "amount": 4.0},
    ]
    total = _read_all(
        Dataset("", connection="app", options={"query": "SELECT sum(amount) AS s FROM orders"})
    )
    assert total == [{"s": 6.5}]


@pytest.mark.postgres
def test_reading_a_table_through_a_stored_postgresql_connection(
    proj: Project, db: Database, pg_url: str
) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.orders (id integer, status text)")
        conn.execute("INSERT INTO public.orders VALUES (1, 'open'), (2, 'done')")
    save(db, proj, "warehouse", pg_url, secrets={"password": PASSWORD})
    rows = _read_all(Dataset("public.orders", connection="warehouse"))
    assert sorted(r["id"] for r in rows) == [1, 2]  # type: ignore[type-var]


def test_writing_and_reading_s3_through_a_connection_alone(
    proj: Project, db: Database, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from lockgate.io.connect import open_writer

    boto3.client("s3", endpoint_url=aws).create_bucket(Bucket="lake-conn")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name)  # the connection alone says where and who
    save(
        db,
        proj,
        "lake",
        "s3://lake-conn/exports",
        options={"endpoint_url": aws, "region": "us-east-1"},
        secrets={"key": "testing", "secret": "testing"},
    )
    table = pa.table({"id": [1, 2, 3]})
    target = Dataset("daily/orders.parquet", connection="lake")
    with open_writer(target, table.schema) as writer:
        writer.write(table)
    assert _read_all(target) == table.to_pylist()
    listed = boto3.client(
        "s3", endpoint_url=aws, aws_access_key_id="x", aws_secret_access_key="y"
    ).list_objects_v2(Bucket="lake-conn")
    assert [o["Key"] for o in listed["Contents"]] == ["exports/daily/orders.parquet"]


# -- credentials stay with the connection's own server -------------------------------------------


class _PasswordCatcher:
    """A TCP server on 127.0.0.1 that plays the start of the PostgreSQL protocol: it refuses
    TLS, asks for a cleartext password and records what it is sent (a stand-in for a server an
    attacker controls)."""

    def __init__(self) -> None:
        import socket
        import threading

        self.received: list[bytes] = []
        self.connections = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import socket
        import struct

        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    while True:  # SSLRequest / GSSENCRequest first: refuse them
                        size, code = struct.unpack("!ii", conn.recv(8, socket.MSG_WAITALL))
                        conn.recv(size - 8, socket.MSG_WAITALL)
                        if code in (80877103, 80877104):
                            conn.sendall(b"N")
                            continue
                        break
                    conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartext
                    kind = conn.recv(1, socket.MSG_WAITALL)
                    size = struct.unpack("!i", conn.recv(4, socket.MSG_WAITALL))[0]
                    self.received.append(kind + conn.recv(size - 4, socket.MSG_WAITALL))
                except (OSError, struct.error):
                    pass

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)


@pytest.fixture
def catcher() -> Iterator[_PasswordCatcher]:
    server = _PasswordCatcher()
    try:
        yield server
    finally:
        server.close()


def test_a_full_postgresql_uri_cannot_send_the_password_elsewhere(
    proj: Project, db: Database, catcher: _PasswordCatcher
) -> None:
    save(
        db,
        proj,
        "warehouse",
        "postgresql://etl@db.internal:5432/warehouse",
        secrets={"password": PASSWORD},
    )
    base = "postgresql://etl@db.internal:5432/warehouse"
    for query in (
        f"host=127.0.0.1&port={catcher.port}",
        f"hostaddr=127.0.0.1&port={catcher.port}",
        "sslmode=disable",
        "service=other",
        "user=postgres",
    ):
        dataset = Dataset(f"{base}?{query}#orders", connection="warehouse")
        with pytest.raises(DataError) as exc:
            open_reader(dataset)
        message = one_line(exc)
        assert "a full URI under a connection cannot carry query parameters" in message
        assert query.split("=")[0] in message and PASSWORD not in message
    assert catcher.connections == 0 and catcher.received == []
    with pytest.raises(DataError) as exc:  # another user than the connection's
        apply(
            Dataset(
                "postgresql://postgres@db.internal:5432/warehouse#orders", connection="warehouse"
            ),
            proj,
        )
    assert "the URI names user 'postgres'" in one_line(exc)


def test_the_password_catcher_does_catch_a_password(catcher: _PasswordCatcher) -> None:
    """The stand-in server works: a dataset without a connection that points at it (the user's
    own choice) does deliver its password, so the test above proves something."""
    uri = f"postgresql://etl:plain-pw@127.0.0.1:{catcher.port}/db?sslmode=disable#t"
    with pytest.raises(DataError) as exc:
        open_reader(Dataset(uri))
    assert "plain-pw" not in str(exc.value)
    assert catcher.connections == 1 and catcher.received == [b"pplain-pw\x00"]


def test_a_full_uri_keeps_the_connections_own_parameters(proj: Project, db: Database) -> None:
    base = "postgresql://etl@db.internal:5432/warehouse?sslmode=require&application_name=lg"
    save(db, proj, "warehouse", base, secrets={"password": PASSWORD})
    full = apply(
        Dataset(
            "postgresql://etl@db.internal:5432/warehouse#public.orders", connection="warehouse"
        ),
        proj,
    )
    relative = apply(Dataset("public.orders", connection="warehouse"), proj)
    assert full.uri == relative.uri
    assert "?sslmode=require&application_name=lg#public.orders" in full.uri
    assert apply(full, proj) == full  # the connection's own parameters are not "other" ones
    no_user = apply(
        Dataset("postgresql://db.internal:5432/warehouse#public.orders", connection="warehouse"),
        proj,
    )
    assert no_user.uri == relative.uri  # the connection's user, with its password
    stale = full.uri.replace(quote(PASSWORD, safe=""), "stale")
    assert apply(replace(full, uri=stale), proj).uri == full.uri  # the connection's password


def test_a_password_in_the_query_of_a_connection_url(proj: Project, db: Database) -> None:
    conn = save(db, proj, "wh", "postgresql://etl@db:5432/dw?sslmode=require&password=q-pw")
    assert conn.url == "postgresql://etl@db:5432/dw?sslmode=require"
    assert conn.secret_fields == ("password",)
    assert secrets_of(lookup(proj, "wh"), proj) == {"password": "q-pw"}
    rows = db.rows("SELECT url FROM connections")
    assert "q-pw" not in rows[0]["url"]
    with pytest.raises(ConfigError) as exc:
        save(db, proj, "wh2", "postgresql://etl:a@db/dw?password=b")
    assert "gives two passwords" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        save(db, proj, "wh3", "postgresql://etl@db/dw?sslpassword=kp")
    assert "sslpassword" in one_line(exc) and "kp" not in str(exc.value)
    toml = with_toml(proj, '[connections.t]\nurl = "postgresql://etl@db/dw?password=in-toml"\n')
    with pytest.raises(ConfigError) as exc:
        toml_connections(toml)
    assert "holds a password in plain text" in one_line(exc) and "in-toml" not in str(exc.value)


def test_an_s3_dataset_cannot_redirect_the_connections_credentials(
    proj: Project, db: Database
) -> None:
    save(
        db,
        proj,
        "lake",
        "s3://bucket/exports",
        options={"endpoint_url": "http://127.0.0.1:9000"},
        secrets={"key": "AKIAEXAMPLE", "secret": "s3-secret-value"},
    )
    evil = Dataset("x.parquet", connection="lake", options={"endpoint_url": "https://evil"})
    with pytest.raises(DataError) as exc:
        apply(evil, proj)
    message = one_line(exc)
    assert "option endpoint_url 'https://evil' would send the connection's credentials" in message
    assert "s3-secret-value" not in message
    same = Dataset(
        "x.parquet", connection="lake", options={"endpoint_url": "http://127.0.0.1:9000"}
    )
    assert apply(same, proj).options["endpoint_url"] == "http://127.0.0.1:9000"
    save(db, proj, "aws", "s3://bucket", secrets={"key": "AKIAEXAMPLE", "secret": "s"})
    with pytest.raises(DataError) as exc:  # a connection to AWS itself: no endpoint either
        apply(Dataset("x", connection="aws", options={"endpoint_url": "http://127.0.0.1:1"}), proj)
    assert "than its own (AWS S3)" in one_line(exc)


def test_http_secret_headers_never_follow_a_next_link_elsewhere(
    proj: Project, db: Database
) -> None:
    thief = Api({})
    thief.routes = {"/steal": lambda r: (200, {}, {"items": [{"id": 2}]})}
    with serving(thief) as other:
        home = Api({})
        home.routes = {
            "/v1/orders": lambda r: (
                200,
                {},
                {"items": [{"id": 1}], "next": other.url("/steal")},
            )
        }
        with serving(home) as api:
            save(
                db,
                proj,
                "shop",
                api.url("/v1"),
                options={"headers": {"Accept": "application/json"}},
                secrets={"headers": '{"X-Api-Key": "hk-secret-1", "X-Tenant": "t-7"}'},
            )
            dataset = Dataset("orders", connection="shop", options={"paginate": "next"})
            assert _read_all(dataset) == [{"id": 1}, {"id": 2}]
            mine = api.hits("/v1/orders")[0].headers
            assert mine["x-api-key"] == "hk-secret-1" and mine["x-tenant"] == "t-7"
            stolen = other.hits("/steal")[0].headers
            assert "x-api-key" not in stolen and "x-tenant" not in stolen
            assert stolen["accept"] == "application/json"
