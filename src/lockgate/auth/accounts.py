"""What accounts do: create users (with a one-time password), change passwords, log in with
lock-out after repeated failures, make and check API tokens. The CLI (`lockgate users`,
`lockgate tokens`, `lockgate init`) and the server use these; the store keeps the rows and the
audit chain records every change with the acting user."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lockgate.auth import passwords, roles, tokens
from lockgate.errors import ConfigError, LockgateError

if TYPE_CHECKING:
    from lockgate.store.store import Store

MAX_FAILED_LOGINS = 5
LOCKOUT_S = 15 * 60
MAX_TOKEN_DAYS = 366
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")


class AuthError(LockgateError):
    """A login or token was refused; the message never says which part was wrong."""


@dataclass(frozen=True)
class Principal:
    """Who is acting, and what they may do (auth/roles.py)."""

    user: str
    role: str
    grants: tuple[tuple[str, str], ...] = ()
    scopes: tuple[str, ...] | None = None
    token_id: str | None = None
    must_change_password: bool = False
    """Logged in with a one-time password: only changing it is allowed until then."""

    def can(self, permission: str, pipeline: str | None = None, tags: tuple[str, ...] = ()) -> bool:
        allowed = roles.permissions(self.role, self.grants, pipeline, tags, self.scopes)
        return permission in allowed


def check_name(name: str) -> str:
    if not name or len(name) > 128 or not set(name.lower()) <= _NAME_CHARS:
        raise ConfigError(
            f"invalid user name {name!r}: use letters, digits and . _ - @ (at most 128)"
        )
    return name


def create_user(
    store: Store, name: str, role: str, *, actor: str, password: str | None = None
) -> str | None:
    """Add a user; returns the one-time password made for them when none was given (they
    must change it at their first login), else None."""
    check_name(name)
    roles.check_role(role)
    one_time = password is None
    secret = (
        passwords.one_time_password()
        if one_time
        else passwords.check_password(password or "", name)
    )
    store.add_user(name, role, passwords.hash_password(secret), actor=actor, one_time=one_time)
    return secret if one_time else None


def set_password(store: Store, name: str, password: str, *, actor: str) -> None:
    """Set a user's own password (checked against the rules); their browser sessions end."""
    _replace_password(store, name, passwords.check_password(password, name), actor, False)


def reset_password(store: Store, name: str, *, actor: str) -> str:
    """Give a user a new one-time password (returned, to hand over once): they must change it
    at their next login, and their browser sessions end. Their API tokens stay valid."""
    secret = passwords.one_time_password()
    _replace_password(store, name, secret, actor, True)
    return secret


def _replace_password(store: Store, name: str, secret: str, actor: str, one_time: bool) -> None:
    store.update_user(
        name,
        actor=actor,
        action="user.password",
        password_hash=passwords.hash_password(secret),
        must_change_password=1 if one_time else 0,
        failed_logins=0,
        locked_until=None,
    )
    store.end_sessions(user=name)  # a changed password logs every browser out


def login(store: Store, name: str, password: str, now: float | None = None) -> Principal:
    """The principal of a user whose password matches; AuthError otherwise (the same message
    for an unknown user, a wrong password, a disabled or locked account). After
    `MAX_FAILED_LOGINS` failures in a row the account is locked for `LOCKOUT_S`."""
    moment = time.time() if now is None else now
    refused = AuthError("login refused: wrong user name or password, or the account is locked")
    user = store.user(name)
    if user is None:
        passwords.verify_password(None, password)  # no timing hint that the user is unknown
        # the name typed may be a password typed in the wrong field: it is neither the actor
        # nor recorded (reports, exports and alerts would show it)
        store.audit("auth.login_failed", None, {"reason": "unknown user"}, actor="anonymous")
        raise refused
    if user["disabled"] or (user["locked_until"] or 0) > moment:
        passwords.verify_password(user["password_hash"], password)  # the same time as a try
        store.audit("auth.login_failed", name, {"reason": "disabled or locked"}, actor=name)
        raise refused
    if not passwords.verify_password(user["password_hash"], password):
        failed = int(user["failed_logins"]) + 1
        locked = moment + LOCKOUT_S if failed >= MAX_FAILED_LOGINS else None
        store.update_user(
            name,
            actor=name,
            action="auth.login_failed",
            failed_logins=0 if locked else failed,
            locked_until=locked,
        )
        raise refused
    store.update_user(name, actor=name, action="auth.login", failed_logins=0, locked_until=None)
    return principal_of(store, user)


def principal_of(store: Store, user: dict[str, Any]) -> Principal:
    """The principal of a user row (a session's or a login's)."""
    return Principal(
        user["name"],
        user["role"],
        tuple(store.grants_of(user["name"])),
        must_change_password=bool(user["must_change_password"]),
    )


def create_token(
    store: Store,
    user: str,
    *,
    actor: str,
    scopes: list[str] | None = None,
    days: float = 90,
    label: str | None = None,
) -> str:
    """A new API token for `user` (shown once: only its hash is kept)."""
    if not 0 < days <= MAX_TOKEN_DAYS:
        raise ConfigError(f"a token lasts from a moment to {MAX_TOKEN_DAYS} days")
    found = store.user(user)
    if found is None:
        raise ConfigError(f"no user {user!r}; `lockgate users list` shows them")
    granted = set(roles.ROLES[found["role"]])
    for _, role in store.grants_of(user):  # what grants give on their pipelines
        granted |= roles.ROLES.get(role, frozenset()) & roles.PIPELINE_PERMISSIONS
    chosen = roles.check_scopes(scopes) if scopes else sorted(granted)
    token, token_id, digest = tokens.new_token()
    store.add_token(token_id, user, digest, chosen, time.time() + days * 86400, label, actor=actor)
    return token


def authenticate(store: Store, token: str, now: float | None = None) -> Principal:
    """The principal a bearer token acts for; AuthError for a malformed, unknown, wrong,
    revoked or expired token, or a disabled user."""
    moment = time.time() if now is None else now
    refused = AuthError("invalid or expired token")
    parsed = tokens.parse(token)
    if parsed is None:
        raise refused
    token_id, secret = parsed
    row = store.token(token_id)
    if row is None or not tokens.matches(row["hash"], secret):
        raise refused
    if row["revoked_at"] or row["expires_at"] <= moment:
        raise refused
    user = store.user(row["user_name"])
    if user is None or user["disabled"]:
        raise refused
    store.token_used(token_id)
    return Principal(
        user["name"],
        user["role"],
        tuple(store.grants_of(user["name"])),
        tuple(row["scopes"]),
        token_id,
    )


def describe_user(row: dict[str, Any]) -> dict[str, Any]:
    """What may be shown of a user (never the hash)."""
    return {k: v for k, v in row.items() if k != "password_hash"}
