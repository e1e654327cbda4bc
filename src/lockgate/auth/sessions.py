"""Browser sessions: a random secret in an HttpOnly cookie, its SHA-256 in the store with the
session's form token (CSRF), an idle timeout and an absolute lifetime.

Bearer tokens (auth/tokens.py) are for programs; sessions are for people in a browser. A
session ends on logout, on a password change, when the user is disabled, after `IDLE_S`
without a request, or `LIFETIME_S` after login, whichever comes first."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lockgate.auth.accounts import Principal, principal_of

if TYPE_CHECKING:
    from lockgate.store.store import Store

IDLE_S = 2 * 3600
LIFETIME_S = 12 * 3600
TOUCH_S = 60
"""A session's last-seen time is written at most this often (not on every request)."""


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str
    key: str
    """The stored hash that names the session (to end it)."""


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start(store: Store, user: str, client: str | None = None) -> tuple[str, str]:
    """A new session for `user`: (the cookie's secret, the session's CSRF token)."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    store.add_session(_key(secret), user, csrf, time.time() + LIFETIME_S, client)
    return secret, csrf


def resolve(store: Store, secret: str, now: float | None = None) -> Session | None:
    """The session a cookie names, if it is still valid (and its user still enabled)."""
    if not secret or len(secret) > 128:
        return None
    moment = time.time() if now is None else now
    key = _key(secret)
    row = store.session(key)
    if row is None:
        return None
    if row["expires_at"] <= moment or row["last_seen_at"] + IDLE_S <= moment:
        store.end_session(key)
        return None
    user = store.user(row["user_name"])
    if user is None or user["disabled"]:
        store.end_session(key)
        return None
    if moment - row["last_seen_at"] >= TOUCH_S:
        store.touch_session(key, moment)
    return Session(principal_of(store, user), row["csrf"], key)


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
