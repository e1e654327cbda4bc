"""The web UI: server-rendered pages (Jinja2 templates), their static files (CSS and plain
JavaScript, no inline code: the CSP allows scripts and styles from /static only) and the
error page. Pages use the API's own functions, so permissions, redaction and validation are
the same in both."""

from __future__ import annotations

from typing import Any


def install(app: Any) -> None:
    """Add the pages, /static and the error page to `app`."""
    from starlette.staticfiles import StaticFiles

    from lockgate.server.web import account, datasets, governance, pipelines, runs
    from lockgate.server.web.errorpages import error_page
    from lockgate.server.web.render import STATIC

    for module in (account, pipelines, runs, datasets, governance):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.state.error_page = error_page
