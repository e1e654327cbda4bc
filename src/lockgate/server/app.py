"""The ASGI application: API routers, web pages, error handlers and the guard middleware."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from lockgate import __version__
from lockgate.errors import LockgateError
from lockgate.server.errors import CODES, ApiError, body, from_lockgate, responses
from lockgate.server.middleware import Guard
from lockgate.server.state import ServerSettings, ServerState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from lockgate.config import Project
    from lockgate.scheduler.registry import Registry
    from lockgate.store.store import Store


DESCRIPTION = """The REST API of a lockgate project.

Authenticate with an API token (`Authorization: Bearer lgt_...`, made by `lockgate tokens
create`) or a browser session (`POST /api/v1/auth/login`; state-changing requests then need
the `X-CSRF-Token` header). Errors are `{"error": {"code": ..., "message": ...}}`. Lists are
pages: pass `next_cursor` back as `cursor`."""


def _error(request: Request, status: int, code: str, message: str, headers: Any = None) -> Any:
    wants_html = "text/html" in request.headers.get(
        "accept", ""
    ) and not request.url.path.startswith("/api/")
    if wants_html and hasattr(request.app.state, "error_page"):
        return request.app.state.error_page(request, status, code, message, headers)
    return JSONResponse(body(code, message), status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def create_app(
    project: Project,
    settings: ServerSettings | None = None,
    *,
    store: Store | None = None,
    registry: Registry | None = None,
) -> Any:
    """The application for `project` (its store opened when not given); wrapped in `Guard`."""
    from lockgate.execution import open_store
    from lockgate.server.api import routers

    state = ServerState(
        project,
        store or open_store(project),
        settings or ServerSettings(),
        registry=registry,
    )
    _check_webhooks(state)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title="lockgate",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # Swagger UI loads from a CDN with inline script: neither is allowed
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
        # any request may get these: a body that is not UTF-8 or JSON, one over the size limit
        responses=responses(400, 413),
    )
    app.state.lockgate = state
    for router in routers():
        app.include_router(router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Any:
        return _error(request, exc.status, exc.code, exc.message, exc.headers or None)

    @app.exception_handler(LockgateError)
    async def lockgate_error(request: Request, exc: LockgateError) -> Any:
        err = from_lockgate(exc)
        return _error(request, err.status, err.code, err.message, err.headers or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        return _error(request, 422, "invalid", _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Any:
        message = exc.detail if isinstance(exc.detail, str) else CODES.get(exc.status_code, "")
        if exc.status_code == 404:
            message = f"no such page or endpoint: {request.url.path[:200]}"
        return _error(
            request,
            exc.status_code,
            CODES.get(exc.status_code, "error"),
            message,
            getattr(exc, "headers", None),
        )

    # an unexpected exception is answered by `Guard` (a 500 with the security headers)
    if state.settings.serve_ui:
        from lockgate.server.web import install

        install(app)
    from lockgate.server import metrics

    metrics.install(app)
    app.add_middleware(Guard, state=state)
    return app


def _check_webhooks(state: Any) -> None:
    """Report a wrong `[webhooks]` table when the server starts (not only at the first
    delivery); the rest of the API serves anyway and the webhook answers 503."""
    import logging

    from lockgate.errors import ConfigError
    from lockgate.server.api import hooks

    try:
        found = hooks.github_config(state.project)
        if found is not None:
            hooks.check_pipelines(found, state.pipelines(), state.project)
    except ConfigError as exc:
        logging.getLogger("lockgate.server").error(
            "webhook github: %s (the endpoint answers 503 until it is fixed)", exc
        )
