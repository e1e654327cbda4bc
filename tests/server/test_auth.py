"""Authentication: logins (lock-out, rate limit), session cookies and CSRF, one-time
passwords, logout and password changes ending sessions, and API tokens (scopes, expiry,
revocation, malformed, disabled users)."""

from __future__ import annotations

from typing import Any

from lockgate.server.deps import SESSION_COOKIE
from lockgate.server.state import ServerSettings

from .conftest import PASSWORD, Server


def _cookie_header(response: Any) -> str:
    found = [v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE)]
    assert len(found) == 1, response.headers
    text: str = found[0]
    return text


def test_login_sets_a_strict_http_only_cookie_and_returns_csrf(server: Server) -> None:
    session = server.session("viewer")
    body = session.login.json()
    assert body["user"] == "viewer" and body["via"] == "session"
    assert body["csrf_token"] and len(body["csrf_token"]) >= 32
    cookie = _cookie_header(session.login).lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain HTTP on loopback: a Secure cookie would not come back
    assert PASSWORD not in session.login.text
    me = session.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["via"] == "session"
    assert me.json()["csrf_token"] == session.csrf


def test_cookies_are_secure_under_tls(make_server: Any) -> None:
    server = make_server(ServerSettings(tls=True))
    session = server.session("viewer")
    assert "secure" in _cookie_header(session.login).lower()


def test_wrong_password_and_unknown_user_get_the_same_answer(server: Server) -> None:
    wrong = server.session("viewer", "not the password", check=False).login
    unknown = server.session("nobody-here", "not the password", check=False).login
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "unauthenticated"
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")


def test_five_failures_lock_the_account(server: Server) -> None:
    server.add_user("locky", "viewer", token=False)
    for _ in range(5):
        assert server.session("locky", "wrong password 123", check=False).login.status_code == 401
    refused = server.session("locky", check=False).login  # the right password, but locked
    assert refused.status_code == 401
    assert server.store.user("locky")["locked_until"] is not None
    other = server.session("viewer")  # other accounts are not affected
    assert other.login.status_code == 200


def test_a_client_may_try_ten_logins_a_minute(server: Server) -> None:
    session = server.session("nobody-at-all", "guess number 0", check=False)
    statuses = [session.login.status_code]
    for n in range(1, 11):
        response = session.client.post(
            "/api/v1/auth/login", json={"user": "nobody-at-all", "password": f"guess number {n}"}
        )
        statuses.append(response.status_code)
    assert statuses == [401] * 10 + [429]
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1
    # the limit is per client: another client logs in
    assert server.session("viewer").login.status_code == 200


def test_csrf_token_required_for_state_changes_with_a_cookie(server: Server) -> None:
    server.add_user("csrfy", "operator", token=False)
    session = server.session("csrfy")
    missing = session.post("/api/v1/pipelines/hello/runs", json={}, csrf=False)
    assert missing.status_code == 403 and missing.json()["error"]["code"] == "csrf_failed"
    wrong = session.post(
        "/api/v1/pipelines/hello/runs", json={}, csrf=False, headers={"X-CSRF-Token": "x" * 43}
    )
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "csrf_failed"
    assert session.get("/api/v1/runs").status_code == 200  # reads need no token
    ok = session.post("/api/v1/pipelines/hello/runs", json={})
    assert ok.status_code == 201, ok.text
    # a plain form post carries it as a field
    bad_form = session.post("/api/v1/auth/logout", csrf=False, data={"csrf_token": "nope"})
    assert bad_form.status_code == 403
    form = session.post("/api/v1/auth/logout", csrf=False, data={"csrf_token": session.csrf})
    assert form.status_code == 204
    assert session.get("/api/v1/me").status_code == 401


def test_cross_origin_requests_with_a_cookie_are_refused(server: Server) -> None:
    server.add_user("origin", "operator", token=False)
    session = server.session("origin")
    evil = session.post("/api/v1/pipelines/hello/pause", headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and evil.json()["error"]["code"] == "csrf_failed"
    null = session.post("/api/v1/pipelines/hello/pause", headers={"Origin": "null"})
    assert null.status_code == 403
    same = session.post("/api/v1/pipelines/hello/pause", headers={"Origin": "http://testserver"})
    assert same.status_code == 200, same.text
    assert session.post("/api/v1/pipelines/hello/unpause").status_code == 200


def test_a_bearer_token_needs_no_csrf_token(server: Server) -> None:
    response = server.call("operator", "POST", "/api/v1/pipelines/hello/pause")
    assert response.status_code == 200
    assert server.call("operator", "POST", "/api/v1/pipelines/hello/unpause").status_code == 200


def test_a_one_time_password_must_be_changed_first(server: Server) -> None:
    made = server.call("admin", "POST", "/api/v1/users", json={"name": "newbie", "role": "viewer"})
    secret = made.json()["one_time_password"]
    session = server.session("newbie", secret)
    assert session.login.json()["must_change_password"] is True
    for path in ("/api/v1/runs", "/api/v1/pipelines", "/api/v1/tokens"):
        blocked = session.get(path)
        assert blocked.status_code == 403, path
        assert blocked.json()["error"]["code"] == "password_change_required"
    assert session.get("/api/v1/me").status_code == 200
    weak = session.post("/api/v1/me/password", json={"current": secret, "new": "short"})
    assert weak.status_code == 422
    changed = session.post(
        "/api/v1/me/password", json={"current": secret, "new": "a much better passphrase"}
    )
    assert changed.status_code == 204, changed.text
    assert session.get("/api/v1/me").status_code == 401  # the change ended the session
    again = server.session("newbie", "a much better passphrase")
    assert again.login.json()["must_change_password"] is False
    assert again.get("/api/v1/runs").status_code == 200


def test_password_change_checks_the_current_one_and_ends_every_session(server: Server) -> None:
    server.add_user("twice", "viewer", token=False)
    first, second = server.session("twice"), server.session("twice")
    wrong = first.post("/api/v1/me/password", json={"current": "wrong one!", "new": "x" * 20})
    assert wrong.status_code == 401
    assert first.get("/api/v1/me").status_code == 200
    done = first.post("/api/v1/me/password", json={"current": PASSWORD, "new": "another long one"})
    assert done.status_code == 204
    assert first.get("/api/v1/me").status_code == 401
    assert second.get("/api/v1/me").status_code == 401
    assert server.session("twice", "another long one").login.status_code == 200
    token_change = server.call(
        "viewer", "POST", "/api/v1/me/password", json={"current": PASSWORD, "new": "y" * 20}
    )
    assert token_change.status_code == 403


def test_logout_ends_the_session(server: Server) -> None:
    session = server.session("viewer")
    cookie = session.cookie
    assert cookie
    assert session.post("/api/v1/auth/logout").status_code == 204
    assert session.cookie is None
    replay = server.client.get("/api/v1/me", cookies={SESSION_COOKIE: cookie})
    assert replay.status_code == 401
    server.client.cookies.clear()


def test_bad_session_cookies_are_anonymous(server: Server) -> None:
    for value in ("", "forged", "x" * 500):
        response = server.client.get("/api/v1/me", cookies={SESSION_COOKIE: value})
        assert response.status_code == 401
        server.client.cookies.clear()


def test_token_scopes_narrow_permissions(server: Server) -> None:
    token = server.token_for("admin", scopes=["read"])
    me = server.call(None, "GET", "/api/v1/me", token=token).json()
    assert me["role"] == "admin" and me["permissions"] == ["read"] and me["via"] == "token"
    assert server.call(None, "GET", "/api/v1/runs", token=token).status_code == 200
    assert server.call(None, "GET", "/api/v1/users", token=token).status_code == 403
    assert server.call(None, "GET", "/api/v1/audit", token=token).status_code == 403
    trigger = server.call(None, "POST", "/api/v1/pipelines/hello/runs", token=token, json={})
    assert trigger.status_code == 403
    operator_only = server.token_for("operator", scopes=["run"])
    assert server.call(None, "GET", "/api/v1/runs", token=operator_only).status_code == 403


def test_expired_revoked_and_malformed_tokens_are_refused(server: Server) -> None:
    for token in (
        server.expired,
        server.revoked,
        server.malformed,
        server.tokens["admin"][:-1] + ("A" if server.tokens["admin"][-1] != "A" else "B"),
        "lgt_0123456789abcdef_" + "a" * 43,
    ):
        response = server.call(None, "GET", "/api/v1/me", token=token)
        assert response.status_code == 401, token
        assert response.json()["error"]["code"] == "unauthenticated"
        assert response.headers["www-authenticate"] == "Bearer"
    for header in ("Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer    ", server.tokens["admin"]):
        response = server.client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401, header
    assert server.call(None, "GET", "/api/v1/me").status_code == 401


def test_a_token_wins_over_a_cookie(server: Server) -> None:
    session = server.session("viewer")
    response = session.get("/api/v1/me", headers=server.headers("auditor"))
    assert response.json()["user"] == "auditor" and response.json()["via"] == "token"
    bad = session.get("/api/v1/me", headers={"Authorization": f"Bearer {server.expired}"})
    assert bad.status_code == 401


def test_disabled_users_are_refused_everywhere(server: Server) -> None:
    server.add_user("gone", "operator")
    session = server.session("gone")
    server.store.update_user("gone", actor="test", action="user.disable", disabled=1)
    assert server.call("gone", "GET", "/api/v1/me").status_code == 401
    assert session.get("/api/v1/me").status_code == 401
    assert server.session("gone", check=False).login.status_code == 401
