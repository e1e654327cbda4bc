"""Browser sessions on SQLite and PostgreSQL: only the hash of the cookie's secret is stored;
a session ends on logout, idle time, its lifetime, a password change or a disabled user."""

from __future__ import annotations

import time

import pytest

from lockgate.auth import accounts, sessions
from lockgate.privacy.keys import Keyring
from lockgate.store.store import Store


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store(db_url, keys=Keyring.generate())
    accounts.create_user(s, "bob", "viewer", actor="t", password="a long enough secret")
    yield s
    s.close()


def test_a_session_names_its_user_and_only_its_hash_is_stored(store: Store) -> None:
    secret, csrf = sessions.start(store, "bob", "127.0.0.1")
    found = sessions.resolve(store, secret)
    assert found is not None
    assert (found.principal.user, found.principal.role, found.csrf) == ("bob", "viewer", csrf)
    stored = store.db.rows("SELECT id, csrf FROM sessions")
    assert len(stored) == 1 and secret not in stored[0]["id"]
    assert sessions.resolve(store, secret + "x") is None
    assert sessions.resolve(store, "") is None
    assert sessions.csrf_matches(csrf, csrf)
    assert not sessions.csrf_matches(csrf, None) and not sessions.csrf_matches(csrf, csrf[:-1])


def test_sessions_end_when_idle_too_long_or_past_their_lifetime(store: Store) -> None:
    now = time.time()
    idle, _ = sessions.start(store, "bob")
    assert sessions.resolve(store, idle, now=now + sessions.IDLE_S - 5) is not None
    assert sessions.resolve(store, idle, now=now + sessions.IDLE_S * 2 + 10) is None
    old, _ = sessions.start(store, "bob")
    assert sessions.resolve(store, old, now=now + sessions.LIFETIME_S + 1) is None
    assert store.db.rows("SELECT id FROM sessions") == []  # ended sessions are deleted


def test_a_password_change_or_disabling_the_user_ends_the_sessions(store: Store) -> None:
    first, _ = sessions.start(store, "bob")
    accounts.set_password(store, "bob", "another long secret", actor="bob")
    assert sessions.resolve(store, first) is None
    second, _ = sessions.start(store, "bob")
    store.update_user("bob", actor="admin", action="user.disable", disabled=1)
    assert sessions.resolve(store, second) is None
