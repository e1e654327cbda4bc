"""Accounts on SQLite and PostgreSQL: users with argon2id passwords and lock-out, API tokens
(shown once, stored hashed, scoped, expiring, revocable), roles and per-pipeline grants, the
`lockgate users`/`tokens` commands, and every change in the audit chain."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cli.helpers import lockgate, one_line_error
from lockgate.auth import accounts, roles, tokens
from lockgate.auth.accounts import AuthError
from lockgate.errors import ConfigError
from lockgate.privacy.keys import Keyring
from lockgate.store.store import Store


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store(db_url, keys=Keyring.generate())
    yield s
    s.close()


def test_a_user_logs_in_with_the_one_time_password_and_is_locked_out_after_failures(
    store: Store,
) -> None:
    secret = accounts.create_user(store, "alice", "operator", actor="root@host")
    assert secret is not None and len(secret) >= 20
    row = store.user("alice")
    assert row["password_hash"].startswith("$argon2id$") and secret not in row["password_hash"]
    assert row["must_change_password"] == 1
    me = accounts.login(store, "alice", secret)
    assert (me.user, me.role) == ("alice", "operator")

    now = time.time()
    for _ in range(accounts.MAX_FAILED_LOGINS):
        with pytest.raises(AuthError, match="login refused"):
            accounts.login(store, "alice", "not the password", now=now)
    with pytest.raises(AuthError):  # locked: even the right password is refused
        accounts.login(store, "alice", secret, now=now + 1)
    assert accounts.login(store, "alice", secret, now=now + accounts.LOCKOUT_S + 1).user == "alice"
    with pytest.raises(AuthError, match="login refused"):  # the same words for an unknown user
        accounts.login(store, "mallory", secret)
    typo = "Hunter2-typed-into-the-name-field"  # a password typed as the user name
    with pytest.raises(AuthError, match="login refused"):
        accounts.login(store, typo, "x")
    assert all(typo not in f"{r.target} {r.detail}" for r in store.audit_records(limit=100))

    accounts.set_password(store, "alice", "a long new passphrase", actor="alice")
    assert store.user("alice")["must_change_password"] == 0
    store.update_user("alice", actor="root", action="user.disable", disabled=1)
    with pytest.raises(AuthError):
        accounts.login(store, "alice", "a long new passphrase")
    actions = [r.action for r in store.audit_records(limit=100)]
    assert actions[:2] == ["user.create", "auth.login"]
    assert actions.count("auth.login_failed") >= accounts.MAX_FAILED_LOGINS
    assert actions[-2:] == ["user.disable", "auth.login_failed"] and "user.password" in actions
    assert all(secret not in (r.detail or "") for r in store.audit_records(limit=100))
    assert store.audit_verify().ok


def test_tokens_are_shown_once_stored_hashed_and_checked(store: Store) -> None:
    accounts.create_user(store, "ci", "operator", actor="root", password="a long passphrase!")
    token = accounts.create_token(store, "ci", actor="root", scopes=["read"], days=1, label="gh")
    [row] = store.tokens("ci")
    secret = tokens.parse(token)[1]  # type: ignore[index]  (the secret may contain "_")
    assert secret not in json.dumps(row) and row["hash"] != token
    me = accounts.authenticate(store, token)
    assert me.user == "ci" and me.scopes == ("read",) and me.token_id == row["id"]
    assert me.can(roles.READ, "any") and not me.can(roles.RUN, "any")  # narrowed by scope
    assert store.token(row["id"])["last_used_at"] is not None

    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (forged, "lgt_nope", "", token + "x"):
        with pytest.raises(AuthError, match="invalid or expired token"):
            accounts.authenticate(store, bad)
    with pytest.raises(AuthError):
        accounts.authenticate(store, token, now=time.time() + 2 * 86400)  # expired
    store.revoke_token(row["id"], actor="root")
    with pytest.raises(AuthError):
        accounts.authenticate(store, token)
    with pytest.raises(ConfigError, match="unknown scope 'wrtie'"):
        accounts.create_token(store, "ci", actor="root", scopes=["wrtie"])
    with pytest.raises(ConfigError, match="366 days"):
        accounts.create_token(store, "ci", actor="root", days=400)


def test_roles_and_grants_by_pipeline_and_tag(store: Store) -> None:
    accounts.create_user(store, "vera", "viewer", actor="root")
    store.grant("vera", "billing", "operator", actor="root")
    store.grant("vera", "tag:finance", "operator", actor="root")
    me = accounts.Principal("vera", "viewer", tuple(store.grants_of("vera")))
    assert me.can(roles.READ, "anything")
    assert me.can(roles.RUN, "billing") and me.can(roles.RUN, "ledger", ("finance",))
    assert not me.can(roles.RUN, "ledger") and not me.can(roles.RUN)
    assert not me.can(roles.AUDIT, "billing")  # a grant never gives project-wide powers
    assert roles.permissions("auditor") == {roles.READ, roles.AUDIT}
    assert roles.permissions("editor") == {roles.READ, roles.EDIT}
    assert roles.permissions("admin") == set(roles.PERMISSIONS)
    store.revoke_grant("vera", "billing", actor="root")
    assert store.grants_of("vera") == [("tag:finance", "operator")]


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("bob", "god", None, "unknown role 'god'"),
        ("bob smith", "viewer", None, "invalid user name"),
        ("bob", "viewer", "short", "at least 12 characters"),
        ("bob", "viewer", "my-name-is-bob-ok", "must not contain the user's name"),
    ],
)
def test_bad_accounts_are_refused(
    store: Store, name: str, role: str, password: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        accounts.create_user(store, name, role, actor="root", password=password)
    assert store.users() == []


def test_init_makes_the_first_admin_and_the_commands_never_show_secrets(tmp_path: Path) -> None:
    done = lockgate(tmp_path, "init")
    assert done.code == 0, done
    line = next(x for x in done.out.splitlines() if "one-time password" in x)
    secret = line.rsplit(" ", 1)[1]
    again = lockgate(tmp_path, "init")
    assert "one-time password" not in again.out  # only the first admin, once
    assert lockgate(tmp_path, "users", "add", "ops", "--role", "operator").code == 0
    made = lockgate(tmp_path, "tokens", "create", "--user", "ops", "--days", "7")
    token = made.out.strip().rsplit(" ", 1)[1]
    assert token.startswith("lgt_")
    listed = (
        lockgate(tmp_path, "users", "list", "--json").out
        + lockgate(tmp_path, "tokens", "list", "--json").out
    )
    assert secret not in listed and token not in listed and "argon2" not in listed
    exported = lockgate(tmp_path, "audit", "export").out
    assert secret not in exported and tokens.parse(token)[1] not in exported  # type: ignore[index]
    assert '"action": "token.create"' in exported and '"action": "user.create"' in exported
    assert "unknown role 'god'" in one_line_error(
        lockgate(tmp_path, "users", "add", "x", "--role", "god")
    )
    assert "give one of --pipeline ID or --tag NAME" in one_line_error(
        lockgate(tmp_path, "users", "grant", "ops", "--role", "operator")
    )
