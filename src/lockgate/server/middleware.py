"""ASGI middleware: security headers on every response, a request body size limit, and a
record of every API call (and page view) in the audit chain with the acting user."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException

from lockgate.server.errors import body

if TYPE_CHECKING:
    from lockgate.server.state import ServerState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""No inline script or style anywhere: pages load their code and CSS from /static."""
NOT_AUDITED = ("/static/", "/healthz", "/metrics", "/favicon.ico")
log = logging.getLogger("lockgate.server")


def _headers(tls: bool) -> list[tuple[bytes, bytes]]:
    out = [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    ]
    if tls:
        out.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return out


class _TooLarge(HTTPException):
    """A body read past the limit. An HTTPException, because FastAPI turns any other
    exception raised while it reads a body into a 400; the app answers this one with 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class Guard:
    """Headers, size limit and request audit around the application."""

    def __init__(self, app: App, state: ServerState) -> None:
        self.app = app
        self.state = state
        self.extra = _headers(state.settings.tls)
        self.limit = state.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = False
        extra = self.extra

        async def send_guarded(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in extra if h[0] not in names
                ]
                if scope["path"].startswith("/api/") and b"cache-control" not in names:
                    message["headers"].append((b"cache-control", b"no-store"))
            await send(message)

        length = _content_length(scope)
        if length is not None and length > self.limit:
            await self._too_large(send_guarded)
            self._audit(scope, 413)
            return
        seen = 0

        async def receive_limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(self.limit)
            return message

        try:
            await self.app(scope, receive_limited, send_guarded)
        except _TooLarge:
            if not started:
                await self._too_large(send_guarded)
            status = 413
        except Exception:
            # an unhandled error: Starlette's outermost middleware would answer it without
            # these headers; answer here (nothing of the cause) and log it
            if started:
                raise
            log.exception("%s %s failed", scope["method"], scope["path"])
            await self._json(
                send_guarded, 500, "internal", "internal error; the server's log has the details"
            )
            status = 500
        finally:
            self._audit(scope, status)

    async def _too_large(self, send: Send) -> None:
        await self._json(
            send, 413, "too_large", f"the request body is larger than {self.limit} bytes"
        )

    async def _json(self, send: Send, status: int, code: str, message: str) -> None:
        text = json.dumps(body(code, message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(text)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": text})

    def _audit(self, scope: Scope, status: int) -> None:
        path: str = scope["path"]
        if path.startswith(NOT_AUDITED):
            return
        state = scope.get("state") or {}
        who = state.get("principal")
        client = scope.get("client")
        self.state.audit.put(
            who.user if who is not None else "anonymous",
            "api.call" if path.startswith("/api/") else "ui.request",
            path[:512],
            {
                "method": scope["method"],
                "status": status,
                "client": client[0] if client else None,
                "token": getattr(who, "token_id", None),
                "at": round(time.time(), 3),
            },
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
