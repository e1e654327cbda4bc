"""The accounts API: users (one-time passwords, roles, disabling, resets), grants and API
tokens; shown once, never a hash; every change audited once with the acting user."""

from __future__ import annotations

import hashlib
from typing import Any

from .conftest import PASSWORD, Server


def _audit(server: Server, action: str, target: str | None = None) -> list[Any]:
    """The records of `action` (on `target`), oldest first."""
    server.flush_audit()
    found: list[Any] = []
    after = 0
    while True:
        batch = server.store.audit_records(after=after, limit=1000)
        if not batch:
            return found
        found += [r for r in batch if r.action == action and target in (None, r.target)]
        after = batch[-1].seq


def _no_secrets(text: str) -> None:
    assert "$argon2" not in text
    assert '"hash"' not in text
    assert "password_hash" not in text


# -- users --------------------------------------------------------------------------------------


def test_users_list_is_paged_by_name_without_hashes(server: Server) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = server.call("admin", "GET", "/api/v1/users", params=params)
        assert response.status_code == 200, response.text
        _no_secrets(response.text)
        page = response.json()
        assert len(page["items"]) <= 2
        seen += [u["name"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert {"admin", "operator", "editor", "viewer", "auditor", "granted", "tagged"} <= set(seen)
    bad = server.call("admin", "GET", "/api/v1/users", params={"cursor": "nope"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"


def test_only_admins_manage_users(server: Server) -> None:
    for user in ("operator", "editor", "viewer", "auditor", "granted"):
        assert server.call(user, "GET", "/api/v1/users").status_code == 403
        made = server.call(user, "POST", "/api/v1/users", json={"name": "x1", "role": "admin"})
        assert made.status_code == 403
        assert made.json()["error"]["code"] == "forbidden"
    assert server.store.user("x1") is None


def test_create_user_shows_the_one_time_password_once(server: Server) -> None:
    response = server.call(
        "admin", "POST", "/api/v1/users", json={"name": "carol", "role": "editor"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    secret = body["one_time_password"]
    assert body["user"]["name"] == "carol" and body["user"]["role"] == "editor"
    assert body["user"]["must_change_password"] is True
    _no_secrets(response.text)
    shown = server.call("admin", "GET", "/api/v1/users/carol")
    assert shown.status_code == 200 and secret not in shown.text
    assert (
        server.call("admin", "GET", "/api/v1/users", params={"limit": 500}).text.count(secret) == 0
    )
    # the one-time password logs in, and must be changed before anything else
    session = server.session("carol", secret)
    assert session.login.json()["must_change_password"] is True
    # audited once, by the acting admin (the store's record; no second one from the API)
    records = _audit(server, "user.create", "carol")
    assert [(r.actor, r.target) for r in records] == [("admin", "carol")]


def test_create_user_refuses_duplicates_and_bad_input(server: Server) -> None:
    assert (
        server.call(
            "admin", "POST", "/api/v1/users", json={"name": "dup", "role": "viewer"}
        ).status_code
        == 201
    )
    again = server.call("admin", "POST", "/api/v1/users", json={"name": "dup", "role": "viewer"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    for body in (
        {"name": "bad name", "role": "viewer"},
        {"name": "x" * 129, "role": "viewer"},
        {"name": "ok", "role": "superuser"},
        {"name": "ok", "role": "viewer", "password": "chosen by admin"},
        {"role": "viewer"},
    ):
        response = server.call("admin", "POST", "/api/v1/users", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == "invalid"
    assert server.store.user("ok") is None


def test_change_role_and_unknown_user(server: Server) -> None:
    server.add_user("dave", "viewer")
    response = server.call("admin", "PATCH", "/api/v1/users/dave", json={"role": "operator"})
    assert response.status_code == 200 and response.json()["role"] == "operator"
    me = server.call("dave", "GET", "/api/v1/me").json()
    assert me["role"] == "operator"
    # the token made while dave was a viewer keeps its narrower scopes
    assert me["permissions"] == ["read"]
    assert [r.actor for r in _audit(server, "user.role", "dave")] == ["admin"]
    assert (
        server.call("admin", "PATCH", "/api/v1/users/nobody", json={"role": "viewer"}).status_code
        == 404
    )
    empty = server.call("admin", "PATCH", "/api/v1/users/dave", json={})
    assert empty.status_code == 422
    unknown = server.call("admin", "PATCH", "/api/v1/users/dave", json={"password_hash": "x"})
    assert unknown.status_code == 422


def test_disabling_ends_sessions_and_tokens_until_enabled(server: Server) -> None:
    server.add_user("erin", "operator")
    session = server.session("erin")
    assert session.get("/api/v1/me").status_code == 200
    assert server.call("erin", "GET", "/api/v1/me").status_code == 200
    response = server.call("admin", "PATCH", "/api/v1/users/erin", json={"disabled": True})
    assert response.status_code == 200 and response.json()["disabled"] is True
    assert (
        server.store.db.scalar("SELECT COUNT(*) FROM sessions WHERE user_name = ?", ("erin",)) == 0
    )
    assert session.get("/api/v1/me").status_code == 401
    assert server.call("erin", "GET", "/api/v1/me").status_code == 401
    assert server.session("erin", check=False).login.status_code == 401
    assert [r.actor for r in _audit(server, "user.disable", "erin")] == ["admin"]
    enabled = server.call("admin", "PATCH", "/api/v1/users/erin", json={"disabled": False})
    assert enabled.status_code == 200 and enabled.json()["disabled"] is False
    assert server.call("erin", "GET", "/api/v1/me").status_code == 200


def test_the_last_admin_cannot_be_demoted_or_disabled(fresh_server: Server) -> None:
    server = fresh_server
    for change in ({"role": "viewer"}, {"disabled": True}):
        response = server.call("admin", "PATCH", "/api/v1/users/admin", json=change)
        assert response.status_code == 409, response.text
        assert "last enabled admin" in response.json()["error"]["message"]
    assert server.store.user("admin")["role"] == "admin"
    server.add_user("second", "admin")
    response = server.call("second", "PATCH", "/api/v1/users/admin", json={"role": "viewer"})
    assert response.status_code == 200 and response.json()["role"] == "viewer"
    refused = server.call("second", "PATCH", "/api/v1/users/second", json={"disabled": True})
    assert refused.status_code == 409


def test_unlock_clears_a_lock_out(server: Server) -> None:
    server.add_user("frank", "viewer")
    for _ in range(5):
        assert server.session("frank", "wrong password here", check=False).login.status_code == 401
    assert server.session("frank", check=False).login.status_code == 401
    locked = server.call("admin", "GET", "/api/v1/users/frank").json()
    assert locked["locked"] is True and locked["locked_until"]
    response = server.call("admin", "PATCH", "/api/v1/users/frank", json={"unlock": True})
    assert response.status_code == 200 and response.json()["locked"] is False
    assert server.session("frank").login.status_code == 200
    assert [r.actor for r in _audit(server, "user.unlock", "frank")] == ["admin"]


def test_password_reset_gives_a_new_one_time_password(server: Server) -> None:
    server.add_user("gina", "viewer")
    old = server.session("gina")
    response = server.call("admin", "POST", "/api/v1/users/gina/password")
    assert response.status_code == 200, response.text
    secret = response.json()["one_time_password"]
    assert response.json()["user"] == "gina"
    assert old.get("/api/v1/me").status_code == 401  # sessions ended
    assert server.session("gina", check=False).login.status_code == 401  # old password gone
    fresh = server.session("gina", secret)
    assert fresh.login.json()["must_change_password"] is True
    assert fresh.get("/api/v1/runs").json()["error"]["code"] == "password_change_required"
    records = _audit(server, "user.password", "gina")
    assert [r.actor for r in records] == ["admin"]
    assert secret not in str(records) and "$argon2" not in str(records)
    assert server.call("admin", "POST", "/api/v1/users/nobody/password").status_code == 404


# -- grants -------------------------------------------------------------------------------------


def test_grants_set_list_and_revoke(server: Server) -> None:
    server.add_user("hank", "viewer", token=False)
    hank = server.token_for("hank", scopes=["read", "run"])
    assert (
        server.call(None, "POST", "/api/v1/pipelines/other/runs", token=hank, json={}).status_code
        == 403
    )
    put = server.call(
        "admin", "PUT", "/api/v1/users/hank/grants", json={"target": "other", "role": "operator"}
    )
    assert put.status_code == 200, put.text
    assert put.json()["target"] == "other" and put.json()["created_by"] == "admin"
    tagged = server.call(
        "admin",
        "PUT",
        "/api/v1/users/hank/grants",
        json={"target": "tag:finance", "role": "viewer"},
    )
    assert tagged.status_code == 200
    listed = server.call("admin", "GET", "/api/v1/users/hank/grants", params={"limit": 1})
    assert [g["target"] for g in listed.json()["items"]] == ["other"]
    rest = server.call(
        "admin",
        "GET",
        "/api/v1/users/hank/grants",
        params={"limit": 1, "cursor": listed.json()["next_cursor"]},
    )
    assert [g["target"] for g in rest.json()["items"]] == ["tag:finance"]
    assert rest.json()["next_cursor"] is None
    # the grant works at once, for the token made before it
    ran = server.call(None, "POST", "/api/v1/pipelines/other/runs", token=hank, json={})
    assert ran.status_code == 201, ran.text
    assert (
        server.call(None, "POST", "/api/v1/pipelines/finance/runs", token=hank, json={}).status_code
        == 403
    )
    deleted = server.call("admin", "DELETE", "/api/v1/users/hank/grants/other")
    assert deleted.status_code == 204
    assert server.call("admin", "DELETE", "/api/v1/users/hank/grants/other").status_code == 404
    assert (
        server.call(None, "POST", "/api/v1/pipelines/other/runs", token=hank, json={}).status_code
        == 403
    )
    assert (
        server.call("admin", "DELETE", "/api/v1/users/hank/grants/tag:finance").status_code == 204
    )
    assert [r.actor for r in _audit(server, "grant.set", "hank")] == ["admin", "admin"]
    assert [r.actor for r in _audit(server, "grant.revoke", "hank")] == ["admin", "admin"]


def test_grants_refuse_bad_input(server: Server) -> None:
    for body in (
        {"target": "hello", "role": "admin"},
        {"target": "hello", "role": "editor"},
        {"target": "../etc", "role": "viewer"},
        {"target": "tag:", "role": "viewer"},
        {"target": "hello"},
    ):
        response = server.call("admin", "PUT", "/api/v1/users/viewer/grants", json=body)
        assert response.status_code == 422, (body, response.text)
    missing = server.call(
        "admin", "PUT", "/api/v1/users/nobody/grants", json={"target": "hello", "role": "viewer"}
    )
    assert missing.status_code == 404
    assert server.call("admin", "GET", "/api/v1/users/nobody/grants").status_code == 404
    assert server.call("viewer", "GET", "/api/v1/users/viewer/grants").status_code == 403


# -- tokens -------------------------------------------------------------------------------------


def test_own_tokens_listed_never_the_token_or_its_hash(server: Server) -> None:
    server.add_user("ivy", "viewer")
    made = server.call("ivy", "POST", "/api/v1/tokens", json={"label": "laptop", "days": 7})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    info = made.json()["info"]
    assert info["user"] == "ivy" and info["scopes"] == ["read"] and info["state"] == "active"
    assert info["label"] == "laptop"
    listed = server.call("ivy", "GET", "/api/v1/tokens")
    assert listed.status_code == 200
    assert {t["user"] for t in listed.json()["items"]} == {"ivy"}
    assert info["id"] in [t["id"] for t in listed.json()["items"]]
    secret = token.rsplit("_", 1)[1]
    assert token not in listed.text and secret not in listed.text
    assert hashlib.sha256(secret.encode()).hexdigest() not in listed.text
    _no_secrets(listed.text)
    assert server.call(None, "GET", "/api/v1/me", token=token).json()["user"] == "ivy"
    # another user's tokens: admins only
    assert server.call("ivy", "GET", "/api/v1/tokens", params={"user": "admin"}).status_code == 403
    assert server.call("ivy", "GET", "/api/v1/tokens", params={"all": "true"}).status_code == 403
    theirs = server.call("admin", "GET", "/api/v1/tokens", params={"user": "ivy"})
    assert {t["user"] for t in theirs.json()["items"]} == {"ivy"}
    everyone = server.call("admin", "GET", "/api/v1/tokens", params={"all": "true", "limit": 500})
    assert {"ivy", "admin", "viewer"} <= {t["user"] for t in everyone.json()["items"]}
    states = {t["id"]: t["state"] for t in everyone.json()["items"]}
    assert "expired" in states.values() and "revoked" in states.values()


def test_token_pages_are_newest_first_without_repeats(server: Server) -> None:
    server.add_user("jack", "viewer")
    for n in range(4):
        assert (
            server.call("jack", "POST", "/api/v1/tokens", json={"label": f"t{n}"}).status_code
            == 201
        )
    ids: list[str] = []
    labels: list[str | None] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = server.call("jack", "GET", "/api/v1/tokens", params=params).json()
        ids += [t["id"] for t in page["items"]]
        labels += [t["label"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(ids) == 5 == len(set(ids))
    assert labels[:4] == ["t3", "t2", "t1", "t0"]


def test_token_scopes_stay_within_permissions(server: Server) -> None:
    server.add_user("kim", "viewer")
    wider = server.call("kim", "POST", "/api/v1/tokens", json={"scopes": ["read", "run"]})
    assert wider.status_code == 422
    assert "beyond your permissions" in wider.json()["error"]["message"]
    for body in ({"days": 0}, {"days": 367}, {"scopes": ["root"]}, {"label": "x" * 129}, {"x": 1}):
        assert server.call("kim", "POST", "/api/v1/tokens", json=body).status_code == 422, body
    # a grant adds its permissions; a token cannot make a wider one
    assert (
        server.call("granted", "POST", "/api/v1/tokens", json={"scopes": ["run"]}).status_code
        == 201
    )
    narrow = server.token_for("admin", scopes=["read"])
    refused = server.call(None, "POST", "/api/v1/tokens", token=narrow, json={"scopes": ["admin"]})
    assert refused.status_code == 422
    default = server.call(None, "POST", "/api/v1/tokens", token=narrow, json={})
    assert default.status_code == 201 and default.json()["info"]["scopes"] == ["read"]
    # a scoped token narrows what its user may do
    assert server.call(None, "GET", "/api/v1/users", token=narrow).status_code == 403
    assert server.call(None, "GET", "/api/v1/runs", token=narrow).status_code == 200


def test_admin_makes_and_revokes_tokens_for_others(server: Server) -> None:
    server.add_user("lee", "operator")
    made = server.call("admin", "POST", "/api/v1/tokens", json={"user": "lee", "scopes": ["read"]})
    assert made.status_code == 201
    token = made.json()["token"]
    assert server.call(None, "GET", "/api/v1/me", token=token).json()["user"] == "lee"
    beyond = server.call(
        "admin", "POST", "/api/v1/tokens", json={"user": "lee", "scopes": ["admin"]}
    )
    assert beyond.status_code == 422 and "lee's permissions" in beyond.json()["error"]["message"]
    assert server.call("lee", "POST", "/api/v1/tokens", json={"user": "admin"}).status_code == 403
    assert (
        server.call("admin", "POST", "/api/v1/tokens", json={"user": "nobody"}).status_code == 404
    )
    records = _audit(server, "token.create", made.json()["info"]["id"])
    assert [r.actor for r in records] == ["admin"]
    # revoke: not someone else's (unless admin), not twice
    token_id = made.json()["info"]["id"]
    assert server.call("viewer", "DELETE", f"/api/v1/tokens/{token_id}").status_code == 404
    assert server.call("admin", "DELETE", f"/api/v1/tokens/{token_id}").status_code == 204
    assert server.call(None, "GET", "/api/v1/me", token=token).status_code == 401
    assert server.call("admin", "DELETE", f"/api/v1/tokens/{token_id}").status_code == 404
    assert server.call("admin", "DELETE", "/api/v1/tokens/not-an-id").status_code == 422
    assert [r.actor for r in _audit(server, "token.revoke", token_id)] == ["admin"]


def test_users_revoke_their_own_tokens(server: Server) -> None:
    server.add_user("mia", "viewer")
    own = server.call("mia", "POST", "/api/v1/tokens", json={}).json()
    assert server.call("mia", "DELETE", f"/api/v1/tokens/{own['info']['id']}").status_code == 204
    assert server.call(None, "GET", "/api/v1/me", token=own["token"]).status_code == 401
    assert server.call("mia", "GET", "/api/v1/me").status_code == 200  # the other one still works


def test_session_users_manage_their_tokens_with_csrf(server: Server) -> None:
    server.add_user("ned", "auditor", token=False)
    session = server.session("ned")
    made = session.post("/api/v1/tokens", json={"label": "from the browser"})
    assert made.status_code == 201 and made.json()["info"]["scopes"] == ["audit", "read"]
    assert session.post("/api/v1/tokens", json={}, csrf=False).status_code == 403
    listed = session.get("/api/v1/tokens").json()["items"]
    assert [t["label"] for t in listed] == ["from the browser"]
    assert PASSWORD not in made.text
