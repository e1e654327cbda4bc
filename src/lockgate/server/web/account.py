"""Logging in and out in the browser, and changing one's password: the same checks as the API
(rate limit, lock-out, password rules), with a double-submit CSRF token on the login form
(there is no session yet whose token could be used)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from lockgate.auth import accounts, passwords, sessions
from lockgate.auth.accounts import Principal
from lockgate.errors import ConfigError
from lockgate.server.api.session import end_session, log_in, set_session_cookie
from lockgate.server.deps import current_principal, principal, same_origin, server_state
from lockgate.server.errors import ApiError
from lockgate.server.web.errorpages import PageRoute, safe_next
from lockgate.server.web.render import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

LOGIN_CSRF_COOKIE = "lockgate_login_csrf"
LOGIN_CSRF_MAX_AGE = 3600


def form_text(form: FormData, name: str, limit: int = 1024) -> str:
    """A text field of a posted form ("" when missing or a file), cut at `limit`."""
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _login_page(
    request: Request, next_path: str, error: str | None = None, status: int = 200, user: str = ""
) -> Response:
    token = secrets.token_urlsafe(32)
    out = render(
        request,
        "login.html",
        {"login_csrf": token, "next": next_path, "error": error, "user": user},
        status=status,
    )
    state = server_state(request)
    out.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=LOGIN_CSRF_MAX_AGE,
        httponly=True,
        secure=state.settings.secure_cookies,
        samesite="strict",
        path="/login",
    )
    return out


@router.get("/login")
async def login_form(request: Request) -> Response:
    """The login page (a logged-in user goes on to where they were going)."""
    who = await current_principal(request)
    next_path = safe_next(request.query_params.get("next"))
    if who is not None and not who.must_change_password:
        return RedirectResponse(next_path, status_code=303)
    return _login_page(request, next_path)


@router.post("/login")
async def login_submit(request: Request) -> Response:
    """Check the form's CSRF token against its cookie, then log in as the API does."""
    form = await request.form()
    next_path = safe_next(form_text(form, "next"))
    user = form_text(form, "user", 128).strip()
    password = form_text(form, "password")
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    request.state.principal = None
    if not same_origin(request) or not sessions.csrf_matches(
        expected, form_text(form, "csrf_token")
    ):
        return _login_page(
            request,
            next_path,
            "The login form expired or came from another site: try again.",
            status=403,
            user=user,
        )
    if not user or not password:
        return _login_page(
            request, next_path, "Enter your user name and password.", status=422, user=user
        )
    state = server_state(request)
    try:
        who = await run_in_threadpool(log_in, state, request, user, password)
    except ApiError as exc:
        page = _login_page(request, next_path, exc.message, status=exc.status, user=user)
        if "Retry-After" in exc.headers:
            page.headers["Retry-After"] = exc.headers["Retry-After"]
        return page
    target = "/account/password" if who.must_change_password else next_path
    out = RedirectResponse(target, status_code=303)
    await run_in_threadpool(set_session_cookie, state, request, out, who)
    out.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return out


@router.post("/logout")
def logout(request: Request, who: Annotated[Principal, Depends(principal)]) -> Response:
    """End the browser session (the form carries the session's CSRF token)."""
    out = RedirectResponse("/login?notice=logged_out", status_code=303)
    end_session(server_state(request), request, out)
    return out


def _password_page(
    request: Request, who: Principal, error: str | None = None, status: int = 200
) -> Response:
    return render(
        request,
        "password.html",
        {
            "forced": who.must_change_password,
            "error": error,
            "via_token": bool(who.token_id),
            "min_length": passwords.MIN_LENGTH,
        },
        status=status,
    )


@router.get("/account/password")
def password_form(request: Request, who: Annotated[Principal, Depends(principal)]) -> Response:
    return _password_page(request, who)


@router.post("/account/password")
async def password_submit(
    request: Request, who: Annotated[Principal, Depends(principal)]
) -> Response:
    """Check the current password (rate limited, as a login), set the new one (every session
    of the user ends), and start a new session here."""
    if who.token_id is not None:
        raise ApiError(403, "log in with your password to change it (not with a token)")
    form = await request.form()
    current = form_text(form, "current")
    new = form_text(form, "new")
    if not current or not new:
        return _password_page(request, who, "Fill in your current and new password.", 422)
    if new != form_text(form, "confirm"):
        return _password_page(request, who, "The new password and its confirmation differ.", 422)
    if new == current:
        return _password_page(
            request, who, "Choose a password different from the current one.", 422
        )
    state = server_state(request)
    try:
        await run_in_threadpool(log_in, state, request, who.user, current)
    except ApiError as exc:
        message = "The current password is wrong." if exc.status == 401 else exc.message
        return _password_page(request, who, message, exc.status)
    try:
        await run_in_threadpool(accounts.set_password, state.store, who.user, new, actor=who.user)
    except ConfigError as exc:
        return _password_page(request, who, str(exc).splitlines()[0], 422)

    def restart() -> Response:
        row = state.store.user(who.user)
        out = RedirectResponse("/?notice=password", status_code=303)
        if row is not None:
            set_session_cookie(state, request, out, accounts.principal_of(state.store, row))
        return out

    return await run_in_threadpool(restart)
