"""Errors as JSON with a stable code and a one-line message.

Every error the API returns has the body `{"error": {"code": ..., "message": ...}}`; codes are
part of the API's contract (docs/api.md lists them). An unexpected exception is a 500 whose
message says nothing of its cause (that goes to the server's log)."""

from __future__ import annotations

import logging
from typing import Any

from lockgate.errors import ConfigError, LockgateError, NotFoundError, StoreError

log = logging.getLogger("lockgate.server")

CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    """An error to answer with: HTTP status, stable code, message (no secrets in it)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.headers = headers or {}


def body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def from_lockgate(exc: LockgateError) -> ApiError:
    """The API error for one of lockgate's own errors (their messages are written for users)."""
    from lockgate.auth.accounts import AuthError

    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, AuthError):
        return ApiError(401, message)
    if isinstance(exc, NotFoundError):
        return ApiError(404, message)
    if isinstance(exc, StoreError):
        log.error("metadata database error: %s", exc)
        return ApiError(503, "the metadata database is unavailable; try again", "unavailable")
    if isinstance(exc, ConfigError):
        return ApiError(422, message)
    return ApiError(400, message)


ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
"""The JSON Schema of every error body, for the OpenAPI document."""


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the error statuses an endpoint documents."""
    return {
        s: {
            "description": CODES.get(s, "error"),
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for s in statuses
    }
