"""Security of the server as a whole: headers on every response (errors too), HSTS only under
TLS, the body size limit, ids that try to leave their folder, logs outside the logs folder,
500s without internals, and every API call in the audit chain with its caller."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

import lockgate
from lockgate.server.state import ServerSettings

from .conftest import Server

HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}
REFERRER = ("no-referrer", "same-origin")
"""Either: no URL of the server goes to another site."""


def _secure(response: Any, api: bool = True) -> None:
    for name, part in HEADERS.items():
        assert part in response.headers.get(name, ""), (name, response.headers)
    assert response.headers.get("referrer-policy") in REFERRER
    csp = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    if api:
        assert response.headers["cache-control"] == "no-store"


@pytest.fixture(scope="module")
def finished_run(server: Server) -> str:
    """A run of `hello` that ran (its attempts have logs)."""
    run_id = server.trigger("hello")
    result = lockgate.api.resume(run_id, project=server.project)
    assert result.state.value == "success", result
    return run_id


def test_security_headers_on_answers_and_errors(server: Server) -> None:
    responses = [
        server.call("viewer", "GET", "/api/v1/runs"),
        server.call(None, "GET", "/api/v1/runs"),  # 401
        server.call("viewer", "GET", "/api/v1/users"),  # 403
        server.call("viewer", "GET", "/api/v1/runs/no-such-run"),  # 404
        server.call("viewer", "GET", "/api/v1/nowhere"),  # 404 (no route)
        server.call("viewer", "GET", "/api/v1/runs", params={"limit": 0}),  # 422
        server.call("viewer", "DELETE", "/api/v1/runs"),  # 405
        server.call(None, "GET", "/api/openapi.json"),
    ]
    assert [r.status_code for r in responses] == [200, 401, 403, 404, 404, 422, 405, 200]
    for response in responses:
        _secure(response)
        assert "strict-transport-security" not in response.headers
    for response in responses[1:7]:
        error = response.json()["error"]
        assert set(error) >= {"code", "message"} and "\n" not in error["message"]
    health = server.client.get("/healthz")
    _secure(health, api=False)


def test_hsts_only_under_tls(make_server: Any) -> None:
    server = make_server(ServerSettings(tls=True))
    for response in (
        server.call("viewer", "GET", "/api/v1/me"),
        server.call(None, "GET", "/api/v1/me"),
    ):
        _secure(response)
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")


def test_bodies_over_the_limit_get_413_as_json(server: Server) -> None:
    limit = server.state.settings.max_body_bytes
    big = {"label": "x" * (limit + 10)}
    response = server.call("viewer", "POST", "/api/v1/tokens", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    _secure(response)
    assert server.call("viewer", "GET", "/api/v1/me").status_code == 200


def test_streamed_bodies_over_the_limit_get_413_as_json(server: Server) -> None:
    limit = server.state.settings.max_body_bytes

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    streamed = server.client.post(
        "/api/v1/auth/login",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "too_large"
    assert server.call("viewer", "GET", "/api/v1/me").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/runs/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/v1/runs/../../etc/passwd",
        "/api/v1/runs/%2e%2e/tasks/greet/attempts",
        "/api/v1/runs/{run}/tasks/..%2F..%2F..%2Fetc%2Fpasswd/attempts/1/log",
        "/api/v1/runs/{run}/tasks/greet/attempts/1%2F..%2F..%2Fpasswd/log",
        "/api/v1/runs/{run}/tasks/..%5C..%5Cpasswd/attempts/1/log",
        "/api/v1/runs/{run}/tasks/greet%00/attempts/1/log",
        "/api/v1/runs/{run}/tasks/greet/attempts/-1/log",
        "/api/v1/runs/{run}/tasks/nothere/attempts/1/log",
        "/api/v1/runs/{run}/tasks/greet/attempts/9/log",
        "/api/v1/pipelines/..%2F..%2Fetc",
        "/api/v1/users/..%2F..%2Fetc/grants",
    ],
)
def test_ids_that_try_to_leave_their_folder(server: Server, finished_run: str, path: str) -> None:
    response = server.call("admin", "GET", path.replace("{run}", finished_run))
    assert response.status_code in (404, 422), response.text
    assert "root:" not in response.text
    assert response.json()["error"]["code"] in ("not_found", "invalid")


def test_a_log_outside_the_logs_folder_is_refused(
    fresh_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = fresh_server
    run_id = server.trigger("hello")
    lockgate.api.resume(run_id, project=server.project)
    url = f"/api/v1/runs/{run_id}/tasks/greet/attempts/1/log"
    shown = server.call("viewer", "GET", url)
    assert shown.status_code == 200 and "hello" in shown.json()["text"]
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.log"
    outside.write_text("top secret\n")
    logs = server.project.logs_dir
    link = logs / "sneaky.log"
    os.symlink(outside, link)
    for target in (str(outside), str(logs / ".." / ".." / outside.name), str(link)):
        server.store.db.execute(
            "UPDATE task_attempts SET log_path = ? WHERE run_id = ? AND task_id = ?",
            (target, run_id, "greet"),
        )
        for suffix in ("", "/stream"):
            response = server.call("viewer", "GET", url + suffix)
            assert response.status_code == 403, (target, suffix, response.text)
            assert response.json()["error"]["code"] == "log_outside"
            assert "top secret" not in response.text


def test_a_500_tells_nothing_of_its_cause(fresh_server: Server) -> None:
    server = fresh_server
    token = server.tokens["viewer"]
    token_id = token.split("_")[1]
    server.store.db.execute("UPDATE api_tokens SET scopes = ? WHERE id = ?", ("{broken", token_id))
    client = TestClient(server.app, raise_server_exceptions=False)
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal", "message": "internal error; the server's log has the details"}
    }
    for leak in ("Traceback", "JSONDecode", 'File "', "scopes", "{broken", "line "):
        assert leak not in response.text
    _secure(response)


def test_every_api_call_lands_in_the_audit_chain(server: Server) -> None:
    marker = "audit-marker-7f3a"
    calls = [
        ("operator", "GET", f"/api/v1/pipelines/{marker}/versions", 404),
        ("viewer", "GET", f"/api/v1/pipelines/{marker}", 404),
        ("viewer", "POST", f"/api/v1/pipelines/{marker}/runs", 403),
        (None, "GET", f"/api/v1/runs/{marker}", 401),
        ("admin", "DELETE", f"/api/v1/users/{marker}/grants/x", 404),
    ]
    tokens = {}
    for user, method, path, status in calls:
        response = server.call(user, method, path, json={} if method == "POST" else None)
        assert response.status_code == status, (path, response.text)
        if user is not None:
            tokens[user] = server.tokens[user].split("_")[1]
    server.flush_audit()
    records = server.store.audit_records(after=max(0, server.store.audit_count() - 200), limit=500)
    seen = {
        (r.actor, r.target): r
        for r in records
        if r.action == "api.call" and r.target and marker in r.target
    }
    for user, method, path, status in calls:
        record = seen[(user or "anonymous", path)]
        detail = json.loads(record.detail)
        assert detail["method"] == method and detail["status"] == status
        assert detail["token"] == (tokens.get(user) if user else None)
    # the chain still verifies with them
    assert server.call("auditor", "GET", "/api/v1/audit/verify").json()["ok"] is True


def test_the_openapi_document_names_no_secret_fields(server: Server) -> None:
    doc = server.call(None, "GET", "/api/openapi.json").json()
    text = str(doc).lower()
    assert "password_hash" not in text and "token_hash" not in text
    for path, item in doc["paths"].items():
        assert path.startswith("/api/") or path == "/metrics", path
        for method, op in item.items():
            assert "responses" in op, (method, path)


def test_quoted_paths_cannot_reach_files(server: Server) -> None:
    for name in ("/etc/passwd", "../../lockgate.toml", "..\\..\\x"):
        response = server.call("admin", "GET", f"/api/v1/pipelines/{quote(name, safe='')}")
        assert response.status_code in (404, 422)
        assert "root:" not in response.text
