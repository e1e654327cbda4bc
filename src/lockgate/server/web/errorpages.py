"""Errors as pages: anonymous visitors go to /login, a one-time password to /account/password,
anything else refused or missing gets the error page (never JSON) with the same status and
message the API gives."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from lockgate.errors import LockgateError
from lockgate.server.errors import CODES, ApiError, from_lockgate

TITLES = {
    400: "That request did not work",
    403: "You may not open this",
    404: "Nothing here",
    405: "Not allowed here",
    409: "Not now",
    413: "Too large",
    422: "Something is not right",
    429: "Slow down",
    500: "Something went wrong",
    503: "The database is unavailable",
}


def safe_next(target: str | None) -> str:
    """A local path to go back to after logging in (anything else: the home page)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target[:1000]


def login_redirect(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/login" if here in ("/", "/login") else f"/login?next={quote(here, safe='')}"
    return RedirectResponse(target, status_code=303)


def _who_for_page(request: Request) -> None:
    """Resolve the session for an error page reached before any route ran (a 404): the
    navigation then shows what the user may open."""
    if hasattr(request.state, "principal"):
        return
    from lockgate.auth import sessions
    from lockgate.server.deps import SESSION_COOKIE, server_state

    secret = request.cookies.get(SESSION_COOKIE)
    found = sessions.resolve(server_state(request).store, secret) if secret else None
    request.state.principal = found.principal if found is not None else None
    if found is not None:
        request.state.session = found


def error_page(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """The page for an error (app.state.error_page): 401 redirects to the login page."""
    from lockgate.server.web.render import render

    if status == 401:
        return login_redirect(request)
    if code == "password_change_required":
        return RedirectResponse("/account/password", status_code=303)
    try:
        _who_for_page(request)
    except Exception:  # the database is down: the page still renders, without a user
        request.state.principal = None
    kept = {k: v for k, v in (headers or {}).items() if k.lower() == "retry-after"}
    return render(
        request,
        "error.html",
        {
            "status": status,
            "code": code,
            "title": TITLES.get(status, "Something went wrong"),
            "message": message,
        },
        status=status,
        headers=kept or None,
    )


def _validation(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = [str(p) for p in first.get("loc", ())]
    if where[:1] == ["path"]:
        return 404, f"no such page: {where[-1]} is not a valid name here"
    name = ".".join(p for p in where if p not in ("body", "query")) or "request"
    return 422, f"{name}: {first.get('msg', 'invalid')}"


class PageRoute(APIRoute):
    """A route of the web UI: its errors (and its dependencies' errors, such as a missing
    login or CSRF token) are answered with pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            from starlette.concurrency import run_in_threadpool

            try:
                return await handler(request)
            except ApiError as exc:
                err: tuple[int, str, str, dict[str, str] | None] = (
                    exc.status,
                    exc.code,
                    exc.message,
                    exc.headers,
                )
            except LockgateError as exc:
                api = from_lockgate(exc)
                err = (api.status, api.code, api.message, api.headers)
            except RequestValidationError as exc:
                status, message = _validation(exc)
                err = (status, CODES[status], message, None)
            except HTTPException as exc:
                detail = exc.detail if isinstance(exc.detail, str) else ""
                err = (exc.status_code, CODES.get(exc.status_code, "error"), detail, None)
            return await run_in_threadpool(error_page, request, *err)

        return page_handler
