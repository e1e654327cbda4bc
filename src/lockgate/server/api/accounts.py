"""Accounts: users (create with a one-time password, change role, disable, reset password),
their grants on pipelines, and API tokens (one's own; an admin's for anyone).

Passwords and tokens are shown once, when made; hashes never. Every change is audited by the
store with the acting user, in the change's own transaction."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from lockgate.auth import accounts, tokens
from lockgate.auth.accounts import Principal
from lockgate.auth.roles import ADMIN, PERMISSIONS, PIPELINE_PERMISSIONS, ROLES
from lockgate.server.api.common import (
    CursorQ,
    Limit,
    Page,
    cut_page,
    decode_cursor,
    iso,
)
from lockgate.server.deps import principal, require, server_state
from lockgate.server.errors import ApiError, responses
from lockgate.server.state import ServerState

router = APIRouter(prefix="/api/v1", tags=["accounts"])

State = Annotated[ServerState, Depends(server_state)]
Admin = Annotated[Principal, Depends(require(ADMIN))]
Caller = Annotated[Principal, Depends(principal)]

NAME_PATTERN = r"^[A-Za-z0-9._@-]{1,128}$"
TARGET_PATTERN = r"^(?:tag:[A-Za-z0-9_.:/@-]{1,150}|[A-Za-z_][A-Za-z0-9_.-]{0,127})$"
"""A grant's target: a pipeline id, or `tag:NAME` for every pipeline with that tag."""
UserName = Annotated[str, PathParam(pattern=NAME_PATTERN, description="A user name.")]
Target = Annotated[str, PathParam(pattern=TARGET_PATTERN, description="A pipeline id or tag:NAME.")]
TokenId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$", description="A token's id.")]
RoleName = Literal["admin", "operator", "editor", "viewer", "auditor"]
Permission = Literal["read", "run", "edit", "audit", "admin"]


class User(BaseModel):
    """A user as shown (never the password's hash)."""

    name: str
    role: str
    disabled: bool
    locked: bool
    """Locked out after too many wrong passwords (until `locked_until`)."""
    locked_until: str | None
    must_change_password: bool
    failed_logins: int
    created_at: str | None
    created_by: str
    updated_at: str | None


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    role: RoleName


class CreatedUser(BaseModel):
    user: User
    one_time_password: str
    """Shown once: hand it to the user, who must change it at their first login."""


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: RoleName | None = None
    disabled: bool | None = None
    """True: no more logins or token use, and their browser sessions end; false: enabled
    again (and unlocked)."""
    unlock: bool | None = None
    """True: clear a lock-out after wrong passwords."""


class PasswordReset(BaseModel):
    user: str
    one_time_password: str
    """Shown once; the user must change it at their next login (their sessions ended)."""


class Grant(BaseModel):
    target: str
    """A pipeline id, or tag:NAME (every pipeline with that tag)."""
    role: str
    created_at: str | None
    created_by: str


class GrantBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str = Field(pattern=TARGET_PATTERN)
    role: Literal["operator", "viewer"]
    """What the grant gives on those pipelines (other roles are project-wide)."""


class TokenInfo(BaseModel):
    """An API token as shown (never the token or its hash)."""

    id: str
    user: str
    label: str | None
    scopes: list[str]
    state: Literal["active", "expired", "revoked"]
    created_at: str | None
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(default=None, pattern=NAME_PATTERN)
    """Whose token (default: the caller's own; another user's needs the admin permission)."""
    scopes: list[Permission] | None = Field(default=None, max_length=len(PERMISSIONS))
    """Narrow the token to these permissions (default: all the user's permissions)."""
    days: float = Field(default=90, gt=0, le=accounts.MAX_TOKEN_DAYS)
    label: str | None = Field(default=None, max_length=128)


class NewToken(BaseModel):
    token: str
    """Shown once: only its hash is kept."""
    info: TokenInfo


# -- helpers ------------------------------------------------------------------------------------


def user_of(row: dict[str, Any], now: float | None = None) -> User:
    shown = accounts.describe_user(row)
    moment = time.time() if now is None else now
    locked_until = shown["locked_until"]
    return User(
        name=shown["name"],
        role=shown["role"],
        disabled=bool(shown["disabled"]),
        locked=bool(locked_until and locked_until > moment),
        locked_until=iso(locked_until) if locked_until and locked_until > moment else None,
        must_change_password=bool(shown["must_change_password"]),
        failed_logins=int(shown["failed_logins"]),
        created_at=iso(shown["created_at"]),
        created_by=shown["created_by"],
        updated_at=iso(shown["updated_at"]),
    )


def token_of(row: dict[str, Any], now: float | None = None) -> TokenInfo:
    moment = time.time() if now is None else now
    state: Literal["active", "expired", "revoked"] = (
        "revoked" if row["revoked_at"] else "expired" if row["expires_at"] <= moment else "active"
    )
    return TokenInfo(
        id=row["id"],
        user=row["user_name"],
        label=row["label"],
        scopes=list(row["scopes"]),
        state=state,
        created_at=iso(row["created_at"]),
        expires_at=iso(row["expires_at"]),
        last_used_at=iso(row["last_used_at"]),
        revoked_at=iso(row["revoked_at"]),
    )


def _load_user(state: ServerState, name: str) -> dict[str, Any]:
    row = state.store.user(name)
    if row is None:
        raise ApiError(404, f"no user {name!r}; GET /api/v1/users lists them")
    return row


def user_permissions(state: ServerState, name: str, role: str) -> set[str]:
    """What a user may do anywhere: their role's permissions and those their grants give."""
    allowed = set(ROLES.get(role, frozenset()))
    for _, granted in state.store.grants_of(name):
        allowed |= ROLES.get(granted, frozenset()) & PIPELINE_PERMISSIONS
    return allowed


def _keeps_an_admin(state: ServerState, row: dict[str, Any], change: UserChange) -> None:
    """409 when the change would leave no enabled admin (nobody could manage accounts)."""
    demoted = change.role is not None and change.role != "admin"
    disabled = change.disabled is True
    if row["role"] != "admin" or row["disabled"] or not (demoted or disabled):
        return
    if [name for name in state.store.enabled_admins() if name != row["name"]]:
        return
    raise ApiError(
        409,
        f"{row['name']!r} is the last enabled admin: make another admin first",
        "conflict",
    )


# -- users --------------------------------------------------------------------------------------


@router.get("/users", response_model=Page[User], responses=responses(401, 403, 422))
def list_users(state: State, who: Admin, cursor: CursorQ = None, limit: Limit = 50) -> Page[User]:
    """Users by name (never a password's hash)."""
    after = decode_cursor(cursor, (str,))
    rows = state.store.users_page(after[0] if after else None, limit + 1)
    rows, nxt = cut_page(rows, limit, "name")
    now = time.time()
    return Page[User](items=[user_of(r, now) for r in rows], next_cursor=nxt)


@router.post(
    "/users",
    status_code=201,
    response_model=CreatedUser,
    responses=responses(400, 401, 403, 409, 413, 422),
)
def create_user(body: NewUser, state: State, who: Admin) -> CreatedUser:
    """Add a user with a one-time password (shown once in the answer); they must change it at
    their first login."""
    if state.store.user(body.name) is not None:
        raise ApiError(409, f"user {body.name!r} exists already", "conflict")
    secret = accounts.create_user(state.store, body.name, body.role, actor=who.user)
    assert secret is not None  # no password given: a one-time one was made
    return CreatedUser(user=user_of(_load_user(state, body.name)), one_time_password=secret)


@router.get("/users/{name}", response_model=User, responses=responses(401, 403, 404, 422))
def show_user(name: UserName, state: State, who: Admin) -> User:
    """One user."""
    return user_of(_load_user(state, name))


@router.patch(
    "/users/{name}", response_model=User, responses=responses(400, 401, 403, 404, 409, 413, 422)
)
def change_user(name: UserName, body: UserChange, state: State, who: Admin) -> User:
    """Change a user's role, disable or enable them, or clear a lock-out. Disabling ends
    their browser sessions and stops their tokens working."""
    row = _load_user(state, name)
    changes: dict[str, Any] = {}
    actions: list[str] = []
    if body.role is not None and body.role != row["role"]:
        changes["role"] = body.role
        actions.append("user.role")
    if body.disabled is not None and bool(body.disabled) != bool(row["disabled"]):
        changes["disabled"] = 1 if body.disabled else 0
        actions.append("user.disable" if body.disabled else "user.enable")
        if not body.disabled:
            changes.update(failed_logins=0, locked_until=None)
    if body.unlock and "failed_logins" not in changes:
        changes.update(failed_logins=0, locked_until=None)
        actions.append("user.unlock")
    if body.role is None and body.disabled is None and body.unlock is None:
        raise ApiError(422, "give role, disabled or unlock to change")
    if changes:
        _keeps_an_admin(state, row, body)
        action = actions[0] if len(actions) == 1 else "user.update"
        state.store.update_user(name, actor=who.user, action=action, **changes)
        if changes.get("disabled"):
            state.store.end_sessions(user=name)
    return user_of(_load_user(state, name))


@router.post(
    "/users/{name}/password",
    response_model=PasswordReset,
    responses=responses(401, 403, 404, 422),
)
def reset_password(name: UserName, state: State, who: Admin) -> PasswordReset:
    """Reset a user's password to a new one-time password (shown once); their browser
    sessions end and they must change it at their next login. Their tokens stay valid."""
    _load_user(state, name)
    secret = accounts.reset_password(state.store, name, actor=who.user)
    return PasswordReset(user=name, one_time_password=secret)


# -- grants -------------------------------------------------------------------------------------


def grant_of(row: dict[str, Any]) -> Grant:
    return Grant(
        target=row["target"],
        role=row["role"],
        created_at=iso(row["created_at"]),
        created_by=row["created_by"],
    )


@router.get(
    "/users/{name}/grants", response_model=Page[Grant], responses=responses(401, 403, 404, 422)
)
def list_grants(
    name: UserName, state: State, who: Admin, cursor: CursorQ = None, limit: Limit = 50
) -> Page[Grant]:
    """A user's grants (roles on some pipelines, by id or tag), by target."""
    _load_user(state, name)
    after = decode_cursor(cursor, (str,))
    rows = state.store.grants_page(name, after[0] if after else None, limit + 1)
    rows, nxt = cut_page(rows, limit, "target")
    return Page[Grant](items=[grant_of(r) for r in rows], next_cursor=nxt)


@router.put(
    "/users/{name}/grants", response_model=Grant, responses=responses(400, 401, 403, 404, 413, 422)
)
def set_grant(name: UserName, body: GrantBody, state: State, who: Admin) -> Grant:
    """Give a user operator or viewer on one pipeline (`target`: its id) or on every pipeline
    with a tag (`tag:NAME`); replaces their grant on the same target."""
    _load_user(state, name)
    state.store.grant(name, body.target, body.role, actor=who.user)
    for row in state.store.grants_page(name, None, 1000):
        if row["target"] == body.target:
            return grant_of(row)
    raise ApiError(409, f"the grant on {body.target!r} changed meanwhile; try again", "conflict")


@router.delete(
    "/users/{name}/grants/{target}", status_code=204, responses=responses(401, 403, 404, 422)
)
def revoke_grant(name: UserName, target: Target, state: State, who: Admin) -> Response:
    """Take back a user's grant on `target`."""
    _load_user(state, name)
    state.store.revoke_grant(name, target, actor=who.user)
    return Response(status_code=204)


# -- tokens -------------------------------------------------------------------------------------


@router.get("/tokens", response_model=Page[TokenInfo], responses=responses(401, 403, 422))
def list_tokens(
    state: State,
    who: Caller,
    user: Annotated[
        str | None,
        Query(pattern=NAME_PATTERN, description="Whose tokens (another user's: admin only)."),
    ] = None,
    everyone: Annotated[
        bool, Query(alias="all", description="Everyone's tokens (admin only).")
    ] = False,
    cursor: CursorQ = None,
    limit: Limit = 50,
) -> Page[TokenInfo]:
    """API tokens, newest first: the caller's own by default (never a token or its hash)."""
    wanted: str | None = who.user if user is None else user
    if everyone:
        wanted = None
    if wanted != who.user and not who.can(ADMIN):
        raise ApiError(403, "only an admin may list other users' tokens")
    shape: tuple[Any, ...] = ((int, float), str)
    before = decode_cursor(cursor, shape)
    rows = state.store.tokens_page(
        wanted, (float(before[0]), str(before[1])) if before else None, limit + 1
    )
    rows, nxt = cut_page(rows, limit, "created_at", "id")
    now = time.time()
    return Page[TokenInfo](items=[token_of(r, now) for r in rows], next_cursor=nxt)


@router.post(
    "/tokens",
    status_code=201,
    response_model=NewToken,
    responses=responses(400, 401, 403, 404, 413, 422),
)
def create_token(body: TokenBody, state: State, who: Caller) -> NewToken:
    """Make an API token (shown once in the answer). Its scopes must be among the
    permissions of its user, and a token cannot make one wider than itself."""
    owner = body.user or who.user
    if owner != who.user and not who.can(ADMIN):
        raise ApiError(403, "only an admin may make tokens for other users")
    row = _load_user(state, owner)
    if row["disabled"]:
        raise ApiError(422, f"user {owner!r} is disabled; enable them first")
    allowed = user_permissions(state, owner, row["role"])
    if owner == who.user and who.scopes is not None:
        allowed &= set(who.scopes)
    scopes: list[str] = sorted(set(body.scopes)) if body.scopes else sorted(allowed)
    beyond = [s for s in scopes if s not in allowed]
    if beyond or not scopes:
        whose = "your" if owner == who.user else f"{owner}'s"
        raise ApiError(
            422,
            f"scopes {', '.join(beyond) or '(none)'} are beyond {whose} permissions "
            f"({', '.join(sorted(allowed)) or 'none'})",
        )
    token = accounts.create_token(
        state.store, owner, actor=who.user, scopes=scopes, days=body.days, label=body.label
    )
    parsed = tokens.parse(token)
    assert parsed is not None
    info = state.store.token(parsed[0])
    assert info is not None
    return NewToken(token=token, info=token_of(info))


@router.delete("/tokens/{token_id}", status_code=204, responses=responses(401, 403, 404, 422))
def revoke_token(token_id: TokenId, state: State, who: Caller) -> Response:
    """Revoke a token now: one's own, or anyone's for an admin."""
    row = state.store.token(token_id)
    if row is None or (row["user_name"] != who.user and not who.can(ADMIN)):
        raise ApiError(404, f"no token {token_id!r} of yours; GET /api/v1/tokens lists them")
    if row["revoked_at"]:
        raise ApiError(404, f"token {token_id!r} is revoked already")
    state.store.revoke_token(token_id, actor=who.user)
    return Response(status_code=204)
