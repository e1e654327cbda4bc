"""Logging in and out (browser sessions), who am I, and changing one's own password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lockgate.auth import accounts, sessions
from lockgate.auth.accounts import AuthError, Principal
from lockgate.auth.roles import ROLES
from lockgate.server.api.runs import State
from lockgate.server.deps import SESSION_COOKIE, principal
from lockgate.server.errors import ApiError, responses
from lockgate.server.state import ServerState

router = APIRouter(prefix="/api/v1", tags=["session"])


class LoginBody(BaseModel):
    user: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    user: str
    role: str
    permissions: list[str]
    grants: list[dict[str, str]]
    must_change_password: bool
    via: str
    """`session` (a browser) or `token`."""
    csrf_token: str | None = None
    """The session's token for state-changing requests (X-CSRF-Token header)."""


class PasswordBody(BaseModel):
    current: str = Field(min_length=1, max_length=1024)
    new: str = Field(min_length=1, max_length=1024)


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def log_in(state: ServerState, request: Request, user: str, password: str) -> Principal:
    """Check a login (rate limited per client, lock-out per account): the principal."""
    wait = state.logins.hit(client_of(request))
    if wait > 0:
        raise ApiError(
            429,
            f"too many login attempts; try again in {int(wait) + 1} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    try:
        return accounts.login(state.store, user, password)
    except AuthError as exc:
        raise ApiError(401, str(exc)) from None


def set_session_cookie(
    state: ServerState, request: Request, response: Response, who: Principal
) -> str:
    """Start a session for `who` and set its cookie; the session's CSRF token."""
    secret, csrf = sessions.start(state.store, who.user, client_of(request))
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=sessions.LIFETIME_S,
        httponly=True,
        secure=state.settings.secure_cookies,
        samesite="strict",
        path="/",
    )
    return csrf


def end_session(state: ServerState, request: Request, response: Response) -> None:
    found = getattr(request.state, "session", None)
    if found is not None:
        state.store.end_session(found.key)
        state.store.audit("auth.logout", found.principal.user, None, actor=found.principal.user)
    response.delete_cookie(SESSION_COOKIE, path="/", samesite="strict", httponly=True)


def me_of(request: Request, who: Principal) -> Me:
    from lockgate.auth.roles import permissions

    found = getattr(request.state, "session", None)
    return Me(
        user=who.user,
        role=who.role,
        permissions=sorted(permissions(who.role, scopes=who.scopes)),
        grants=[{"target": t, "role": r} for t, r in who.grants],
        must_change_password=who.must_change_password,
        via="token" if who.token_id else "session",
        csrf_token=found.csrf if found is not None else None,
    )


@router.post("/auth/login", response_model=Me, responses=responses(401, 422, 429))
async def login(body: LoginBody, request: Request, response: Response, state: State) -> Me:
    """Log in with a user name and password: sets the session cookie (HttpOnly, SameSite
    Strict; Secure under TLS) and returns the session's CSRF token. Five wrong passwords in a
    row lock the account for 15 minutes; a client may try 10 times a minute."""
    who = await run_in_threadpool(log_in, state, request, body.user, body.password)
    request.state.principal = who
    csrf = await run_in_threadpool(set_session_cookie, state, request, response, who)
    out = me_of(request, who)
    out.csrf_token = csrf
    out.via = "session"
    return out


@router.post("/auth/logout", status_code=204, responses=responses(401, 403))
def logout(
    request: Request,
    response: Response,
    state: State,
    who: Annotated[Principal, Depends(principal)],
) -> Response:
    """End this browser session (a token caller: nothing to end)."""
    out = Response(status_code=204)
    end_session(state, request, out)
    return out


@router.get("/me", response_model=Me, responses=responses(401))
def me(request: Request, who: Annotated[Principal, Depends(principal)]) -> Me:
    """The caller: user, role, permissions (narrowed by the token's scopes), grants."""
    return me_of(request, who)


@router.post("/me/password", status_code=204, responses=responses(401, 403, 422, 429))
def change_password(
    body: PasswordBody,
    request: Request,
    state: State,
    who: Annotated[Principal, Depends(principal)],
) -> Response:
    """Change one's own password (the current one is checked; every session ends)."""
    if who.token_id is not None:
        raise ApiError(403, "log in with your password to change it (not with a token)")
    log_in(state, request, who.user, body.current)
    accounts.set_password(state.store, who.user, body.new, actor=who.user)
    out = Response(status_code=204)
    out.delete_cookie(SESSION_COOKIE, path="/", samesite="strict", httponly=True)
    return out


@router.get("/roles", responses=responses(401))
def roles(who: Annotated[Principal, Depends(principal)]) -> dict[str, list[str]]:
    """The roles and the permissions each gives."""
    return {name: sorted(perms) for name, perms in ROLES.items()}
