"""The connections API: lockgate.toml's and the store's connections listed in pages, stored
ones created, replaced and removed by editors (audited once, with the acting user), checked
as `lockgate connections add` checks them, and no secret value in any answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.server.conftest import Server, build_server

PASSWORD = "pg-Secr3t-f00b4r!"
KEY_SECRET = "s3-very-secret-0a9b8c7d"
HEADER_SECRET = "hdr-secret-771f3e"
TOKEN_SECRET = "api-token-5d4c3b2a"
SECRETS = (PASSWORD, KEY_SECRET, HEADER_SECRET, TOKEN_SECRET)
TOML = """
[connections.lake]
url = "s3://lake/exports"
key_env = "LAKE_KEY"
secret_env = "LAKE_SECRET"
endpoint_url = "http://127.0.0.1:9000"

[connections.warehouse]
url = "postgresql://etl@db.internal:5432/dw"
password_env = "DW_PASSWORD"
"""
ANSWERS: list[str] = []
"""Every answer of this module's calls, searched for secrets at its end."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("connections")
    (root / "lockgate.toml").write_text(TOML)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LOCKGATE_DB_URL", raising=False)
        mp.setenv("LOCKGATE_TESTING", "1")
        yield from build_server(root)


def call(server: Server, user: str | None, method: str, path: str, **kw: Any) -> Any:
    response = server.call(user, method, path, **kw)
    ANSWERS.append(response.text)
    return response


def put(server: Server, name: str, body: dict[str, Any], user: str = "editor") -> Any:
    return call(server, user, "PUT", f"/api/v1/connections/{name}", json=body)


def listed(server: Server, user: str = "viewer", **params: Any) -> dict[str, Any]:
    response = call(server, user, "GET", "/api/v1/connections", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return {c["name"]: c for c in response.json()["items"]}


def test_lockgate_toml_connections_are_listed_without_secrets(server: Server) -> None:
    found = listed(server)
    lake = found["lake"]
    assert lake["source"] == "lockgate.toml" and lake["kind"] == "s3"
    assert lake["url"] == "s3://lake/exports"
    assert lake["secret_env"] == {"key": "LAKE_KEY", "secret": "LAKE_SECRET"}
    assert lake["secrets"] == ["key", "secret"] and lake["shadowed"] is False
    assert lake["options"] == {"endpoint_url": "http://127.0.0.1:9000"}


def test_create_replace_and_remove_a_stored_connection(server: Server) -> None:
    url = f"postgresql://etl:{PASSWORD}@db.example.net:5432/shop"
    created = put(server, "shop", {"url": url, "options": {"application_name": "lockgate"}})
    assert created.status_code == 201, created.text
    shop = created.json()
    assert shop["url"] == "postgresql://etl@db.example.net:5432/shop"  # moved to the secrets
    assert shop["secrets"] == ["password"] and shop["source"] == "store"
    assert listed(server)["shop"]["secrets"] == ["password"]
    row = server.store.db.rows("SELECT url, secret FROM connections WHERE name = 'shop'")[0]
    assert PASSWORD not in row["url"] and PASSWORD not in row["secret"]

    replaced = put(
        server,
        "shop",
        {"url": "postgresql://etl@db.example.net:5432/shop2", "secrets": {"password": PASSWORD}},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["url"].endswith("/shop2")
    assert replaced.json()["created_at"] == shop["created_at"]
    assert replaced.json()["options"] == {}  # PUT replaces the whole connection

    removed = call(server, "editor", "DELETE", "/api/v1/connections/shop")
    assert removed.status_code == 204 and removed.text == ""
    assert "shop" not in listed(server)
    assert call(server, "editor", "DELETE", "/api/v1/connections/shop").status_code == 404

    actions = [
        (r.action, r.actor, json.loads(r.detail or "{}"))
        for r in server.store.audit_records(limit=100_000)
        if r.target == "shop" and r.action.startswith("connection.")
    ]
    assert [(a, who) for a, who, _ in actions] == [
        ("connection.add", "editor"),
        ("connection.set", "editor"),
        ("connection.remove", "editor"),
    ]
    assert "secrets.password" in actions[1][2]["changed"]


def test_secret_fields_and_credential_headers_are_never_shown(server: Server) -> None:
    s3 = put(
        server,
        "bucket",
        {
            "url": "s3://raw/exports",
            "options": {"endpoint_url": f"http://minio:{KEY_SECRET}@127.0.0.1:9000"},
            "secrets": {"key": "AKIAEXAMPLE", "secret": KEY_SECRET},
        },
    )
    assert s3.status_code == 201, s3.text
    assert s3.json()["secrets"] == ["key", "secret"]
    assert s3.json()["options"]["endpoint_url"] == "http://minio:***@127.0.0.1:9000"
    http = put(
        server,
        "billing-api",
        {
            "url": "https://api.example.com/v1",
            "options": {"headers": {"Accept": "application/json", "X-Api-Key": HEADER_SECRET}},
            "secrets": {"token": TOKEN_SECRET},
        },
        user="admin",
    )
    assert http.status_code == 201, http.text
    shown = listed(server)["billing-api"]
    assert shown["options"]["headers"] == {"Accept": "application/json", "X-Api-Key": "***"}
    assert shown["secrets"] == ["token"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"url": "not a url"}, "is not a URL"),
        ({"url": "ftp://files.example.com/x"}, "unknown scheme"),
        ({"url": "postgresql://etl@db:5432/dw#orders"}, "names a table"),
        ({"url": "sqlite:///x.db", "secrets": {"password": "x"}}, "not a secret field"),
        ({"url": "postgresql://etl@db:5432/dw", "options": {"password": "x"}}, "is a secret"),
        ({"url": "https://api.example.com", "secrets": {"headers": "nope"}}, "JSON object"),
        ({"url": "postgresql://etl@db:5432/dw", "secrets": {"password": ""}}, "secrets.password"),
        ({"url": "sqlite:///x.db", "extra": 1}, "extra"),
        ({}, "url"),
        ({"url": "sqlite:///x\x00.db"}, "NUL"),
    ],
)
def test_invalid_connections_are_422(server: Server, body: dict[str, Any], words: str) -> None:
    response = put(server, "broken", body)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert words in message and "\n" not in message
    assert "broken" not in listed(server)


def test_text_no_database_can_hold_is_422(server: Server) -> None:
    for body in (
        '{"url": "sqlite:///a.db", "options": {"region": "\\udfff"}}',
        '{"url": "sqlite:///a.db", "options": {"tags": ["ok", "nul\\u0000"]}}',
        '{"url": "sqlite:///a\\ud800.db"}',
    ):
        response = call(
            server,
            "editor",
            "PUT",
            "/api/v1/connections/odd",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, (body, response.text)
    assert "odd" not in listed(server)


def test_invalid_names_are_422(server: Server) -> None:
    for name in ("1st", "-x", "a" * 129, "b%20c"):
        response = put(server, name, {"url": "sqlite:///x.db"})
        assert response.status_code == 422, (name, response.text)


def test_lockgate_toml_connections_cannot_be_changed_here(server: Server) -> None:
    conflict = put(server, "lake", {"url": "s3://other/bucket"})
    assert conflict.status_code == 409 and "lockgate.toml" in conflict.json()["error"]["message"]
    gone = call(server, "editor", "DELETE", "/api/v1/connections/lake")
    assert gone.status_code == 409
    assert listed(server)["lake"]["url"] == "s3://lake/exports"


def test_a_stored_connection_hidden_by_lockgate_toml_is_flagged(server: Server) -> None:
    server.store.db.execute(  # as if stored before lockgate.toml defined the same name
        "INSERT INTO connections (name, kind, url, options, secret, created_at, updated_at) "
        "VALUES ('warehouse', 'sqlite', 'sqlite:///old.db', NULL, NULL, 0, 0)"
    )
    warehouse = listed(server)["warehouse"]
    assert warehouse["source"] == "lockgate.toml" and warehouse["shadowed"] is True
    assert warehouse["kind"] == "postgresql"
    server.store.db.execute("DELETE FROM connections WHERE name = 'warehouse'")


def test_pages_merge_lockgate_toml_and_the_store_by_name(server: Server) -> None:
    for name in ("alpha", "kappa", "zulu"):
        assert put(server, name, {"url": f"sqlite:///{name}.db"}).status_code == 201
    everything = list(listed(server))
    assert everything == sorted(everything) and {"alpha", "kappa", "lake", "zulu"} <= set(
        everything
    )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = call(server, "viewer", "GET", "/api/v1/connections", params=params)
        assert response.status_code == 200
        page = response.json()
        assert len(page["items"]) <= 2
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything
    for cursor in ("WzFd", "WyJcdTAwMDAiXQ=="):  # [1], and ["\u0000"]
        bad = call(server, "viewer", "GET", "/api/v1/connections", params={"cursor": cursor})
        assert bad.status_code == 422


@pytest.mark.parametrize("user", ["viewer", "operator", "auditor", "granted", "tagged"])
def test_only_editors_and_admins_change_connections(server: Server, user: str) -> None:
    assert put(server, "kept", {"url": "sqlite:///kept.db"}, user="admin").status_code in (200, 201)
    assert put(server, "kept", {"url": "sqlite:///other.db"}, user=user).status_code == 403
    assert call(server, user, "DELETE", "/api/v1/connections/kept").status_code == 403
    assert listed(server, user)["kept"]["url"] == "sqlite:///kept.db"


@pytest.mark.parametrize("token", ["none", "expired", "revoked", "malformed"])
def test_connections_need_a_valid_token(server: Server, token: str) -> None:
    secret = None if token == "none" else getattr(server, token)
    for method, path, body in (
        ("GET", "/api/v1/connections", None),
        ("PUT", "/api/v1/connections/anon", {"url": "sqlite:///a.db"}),
        ("DELETE", "/api/v1/connections/anon", None),
    ):
        response = call(server, None, method, path, token=secret, json=body)
        assert response.status_code == 401, (method, response.text)


def test_a_token_without_read_scope_cannot_list(server: Server) -> None:
    token = server.token_for("editor", scopes=["edit"])
    assert call(server, None, "GET", "/api/v1/connections", token=token).status_code == 403
    made = call(
        server,
        None,
        "PUT",
        "/api/v1/connections/scoped",
        token=token,
        json={"url": "sqlite:///s.db"},
    )
    assert made.status_code == 201


def test_a_session_needs_the_csrf_token(server: Server) -> None:
    session = server.session("editor")
    body = {"url": "sqlite:///session.db"}
    refused = session.request("PUT", "/api/v1/connections/via-session", json=body, csrf=False)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    made = session.request("PUT", "/api/v1/connections/via-session", json=body)
    assert made.status_code == 201, made.text
    removed = session.request("DELETE", "/api/v1/connections/via-session", csrf=False)
    assert removed.status_code == 403
    assert session.request("DELETE", "/api/v1/connections/via-session").status_code == 204


def test_no_answer_held_a_secret(server: Server) -> None:
    """Runs last: every answer of this module searched for every secret value given."""
    listed(server, "admin")
    call(server, "admin", "GET", "/api/v1/connections", params={"limit": 1})
    for text in ANSWERS:
        for secret in SECRETS:
            assert secret not in text
