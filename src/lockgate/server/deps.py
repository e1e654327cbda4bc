"""Who is calling, and may they: FastAPI dependencies for authentication (bearer token or
browser session), CSRF on state-changing requests of a session, and permission checks
(global, or on one pipeline through grants)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from lockgate.auth import accounts, sessions
from lockgate.auth.accounts import AuthError, Principal
from lockgate.server.errors import ApiError

if TYPE_CHECKING:
    from lockgate.server.state import ServerState

SESSION_COOKIE = "lockgate_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PASSWORD_CHANGE_PATHS = frozenset(
    {"/api/v1/me", "/api/v1/me/password", "/api/v1/auth/logout", "/account/password", "/logout"}
)
"""What a user who logged in with a one-time password may reach before changing it."""


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.lockgate
    return state


def _bearer(state: ServerState, header: str) -> Principal:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(
            401,
            "the Authorization header must be `Bearer lgt_...` (an API token)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return accounts.authenticate(state.store, value.strip())
    except AuthError as exc:
        raise ApiError(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


async def _check_csrf(request: Request, expected: str) -> None:
    """A state-changing request made with a session cookie must carry the session's token, in
    the X-CSRF-Token header (scripts, htmx) or the csrf_token form field (plain forms)."""
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        kind = request.headers.get("content-type", "")
        if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            field = form.get(CSRF_FIELD)
            given = field if isinstance(field, str) else None
    if not sessions.csrf_matches(expected, given):
        raise ApiError(
            403,
            "missing or wrong CSRF token: reload the page and try again",
            "csrf_failed",
        )


def same_origin(request: Request) -> bool:
    """A browser's Origin header, when sent, names this server (a cross-site form post is
    refused even before its CSRF token is checked)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1].rstrip("/") == host


async def current_principal(request: Request) -> Principal | None:
    """The caller, or None when anonymous. A bearer token wins over a cookie; a session's
    state-changing request must pass the CSRF check."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    state = server_state(request)
    principal: Principal | None = None
    header = request.headers.get("authorization")
    if header is not None:
        principal = await run_in_threadpool(_bearer, state, header)
    else:
        secret = request.cookies.get(SESSION_COOKIE)
        if secret:
            found = await run_in_threadpool(sessions.resolve, state.store, secret)
            if found is not None:
                if request.method in UNSAFE_METHODS:
                    if not same_origin(request):
                        raise ApiError(403, "cross-site request refused", "csrf_failed")
                    await _check_csrf(request, found.csrf)
                request.state.session = found
                principal = found.principal
    request.state.principal = principal
    return principal


async def principal(request: Request) -> Principal:
    """The caller; 401 when anonymous, 403 until a one-time password has been changed."""
    found = await current_principal(request)
    if found is None:
        raise ApiError(
            401,
            "log in, or send an API token (Authorization: Bearer lgt_...); "
            "`lockgate tokens create` makes one",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if found.must_change_password and request.url.path not in PASSWORD_CHANGE_PATHS:
        raise ApiError(
            403,
            "change your one-time password first (POST /api/v1/me/password)",
            "password_change_required",
        )
    return found


def may_somewhere(who: Principal, permission: str) -> bool:
    """`who` has `permission` globally or on some pipeline (through a grant)."""
    if who.can(permission):
        return True
    # a grant's target (a pipeline id or `tag:NAME`) asked about as a pipeline matches itself
    return any(who.can(permission, target) for target, _ in who.grants)


def require(permission: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency: the caller, who must have `permission` (globally, or on at least one
    pipeline for read and run: the endpoint then checks or filters by pipeline)."""

    async def check(request: Request) -> Principal:
        who = await principal(request)
        if not may_somewhere(who, permission):
            raise ApiError(403, f"your role does not allow this ({permission} permission needed)")
        return who

    check.__name__ = f"require_{permission}"
    return check


def pipeline_tags(state: ServerState, pipeline_id: str) -> tuple[str, ...]:
    pipe = state.pipelines().get(pipeline_id)
    return tuple(pipe.tags) if pipe is not None else ()


def check_pipeline(state: ServerState, who: Principal, permission: str, pipeline_id: str) -> None:
    """403 unless `who` has `permission` on this pipeline."""
    if not who.can(permission, pipeline_id, pipeline_tags(state, pipeline_id)):
        raise ApiError(403, f"you have no {permission} permission on pipeline {pipeline_id!r}")


def readable_pipelines(
    state: ServerState, who: Principal, candidates: Iterable[str] | None = None
) -> set[str] | None:
    """The pipelines `who` may read: None when all of them (a global read permission), else
    the ids granted directly or through a tag (among `candidates`, default the known ones)."""
    from lockgate.auth.roles import READ

    if who.can(READ):
        return None
    pipes = state.pipelines()
    known = (
        set(candidates)
        if candidates is not None
        else set(pipes) | set(state.store.pipeline_flags())
    )
    return {
        pid for pid in known if who.can(READ, pid, tuple(pipes[pid].tags) if pid in pipes else ())
    }
