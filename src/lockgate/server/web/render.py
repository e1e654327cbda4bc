"""Rendering pages: the Jinja2 environment (autoescaped, templates from the package), the
context every page gets (who is looking, the navigation they may use, the session's CSRF
token) and the filters the templates share (times, durations, state names, dataset names)."""

from __future__ import annotations

import functools
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate import __version__
from lockgate.server.paths import dataset_name, project_roots

if TYPE_CHECKING:
    import jinja2
    from fastapi import Request
    from fastapi.responses import HTMLResponse

    from lockgate.auth.accounts import Principal

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

NOTICES = {
    "paused": "Pipeline paused: no new runs start until it is unpaused.",
    "unpaused": "Pipeline unpaused.",
    "cancelled": "Cancel requested: the run stops at its next checkpoint.",
    "cleared": "Tasks cleared: the run is queued again.",
    "password": "Password changed.",
    "logged_out": "You are logged out.",
    "verified": "Audit chain verified.",
}
"""Fixed messages a redirect may ask a page to show (`?notice=KEY`): nothing is reflected."""

RUN_STATES = ("queued", "running", "success", "failed", "cancelled", "lost")
ACTIVE_STATES = frozenset({"queued", "running", "pending", "up_for_retry"})


@functools.cache
def environment() -> jinja2.Environment:
    """The templates' environment (made once): autoescaping everywhere, strict undefined."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        iso=iso_text,
        duration=duration,
        state_label=state_label,
        pretty_json=pretty_json,
        short=short,
        sentence=sentence,
        number=number,
        dataset=jinja2.pass_context(_dataset_filter),
        dataset_full=jinja2.pass_context(_dataset_full_filter),
        cut_left=cut_left,
    )
    env.globals.update(version=__version__, RUN_STATES=RUN_STATES)
    return env


def _moment(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    try:
        found = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def when(value: Any) -> str:
    """A time as the page shows it before the script makes it local:
    `2026-11-24 03:14:05 UTC`."""
    found = _moment(value)
    return found.strftime("%Y-%m-%d %H:%M:%S UTC") if found else "—"


def iso_text(value: Any) -> str:
    """A time as ISO 8601 in UTC (the `datetime` of a <time> element)."""
    found = _moment(value)
    return found.isoformat() if found else ""


def duration(seconds: float | None) -> str:
    """`4 ms`, `1.42 s`, `12.3 s`, `3 m 04 s`, `2 h 05 m`, `3 d 4 h`."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    s = max(0.0, float(seconds))
    if s < 0.0005:
        return "< 1 ms"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 10:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} m {int(s % 60):02d} s"
    if s < 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} m"
    return f"{int(s // 86400)} d {int(s % 86400 // 3600)} h"


def state_label(state: str | None) -> str:
    return (state or "none").replace("_", " ")


def pretty_json(value: Any, limit: int = 4000) -> str:
    """JSON indented for a <pre>, cut at `limit` characters."""
    text = json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "\n… (cut: the API returns it whole)"


def sentence(text: Any) -> str:
    """A message as a sentence: its first letter capitalised."""
    value = "" if text is None else str(text)
    return value[:1].upper() + value[1:]


def short(text: Any, limit: int = 80) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def number(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


# -- dataset names ----------------------------------------------------------------------------
DATASET_CHARS = 60
"""Characters of a dataset name shown in a table cell by default (cut from the left)."""


def cut_left(text: Any, limit: int = DATASET_CHARS) -> str:
    """`text` cut from the left (the end of a path, its file name, is what tells paths apart):
    `…/exports/orders.csv`, at a `/` when one is near the cut."""
    value = "" if text is None else str(text)
    if len(value) <= limit:
        return value
    tail = value[len(value) - (limit - 1) :]
    slash = tail.find("/")
    if 0 <= slash <= (limit - 1) // 3 and slash < len(tail) - 1:
        tail = tail[slash:]
    return "…" + tail


def roots_of(request: Request | None) -> tuple[str, ...]:
    """The project folder's spellings for the server answering `request` (none without one)."""
    state = getattr(getattr(getattr(request, "app", None), "state", None), "lockgate", None)
    if state is None:
        return ()
    return project_roots(str(state.project.root))


def _dataset_filter(ctx: Any, uri: Any, limit: int = DATASET_CHARS) -> str:
    return cut_left(dataset_name(uri, roots_of(ctx.get("request"))), limit)


def _dataset_full_filter(ctx: Any, uri: Any) -> str:
    return dataset_name(uri, roots_of(ctx.get("request")))


def nav_for(who: Principal | None) -> list[tuple[str, str]]:
    """(path, label) of the sections `who` may open."""
    from lockgate.auth.roles import AUDIT, READ
    from lockgate.server.deps import may_somewhere

    if who is None or who.must_change_password:
        return []
    out: list[tuple[str, str]] = []
    if may_somewhere(who, READ):
        out += [
            ("/", "Pipelines"),
            ("/runs", "Runs"),
            ("/datasets", "Datasets"),
            ("/policy", "Policy"),
            ("/quality", "Quality"),
        ]
    if who.can(AUDIT):
        out.append(("/audit", "Audit"))
    return out


def section_of(path: str, nav: list[tuple[str, str]]) -> str | None:
    """The navigation entry a path belongs to (`/pipelines/x` is under Pipelines)."""
    if path.startswith("/pipelines/") or path == "/":
        return "/"
    best = None
    for href, _ in nav:
        if href != "/" and (path == href or path.startswith(href + "/")):
            best = href
    return best


def base_context(request: Request) -> dict[str, Any]:
    """What every page's layout needs: the user, their navigation, the CSRF token, a notice."""
    who: Principal | None = getattr(request.state, "principal", None)
    session = getattr(request.state, "session", None)
    nav = nav_for(who)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return {
        "request": request,
        "who": who,
        "nav": nav,
        "section": section_of(request.url.path, nav),
        "csrf": session.csrf if session is not None else "",
        "notice": notice,
    }


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The page `template` with the base context and `context`."""
    from fastapi.responses import HTMLResponse

    values = base_context(request)
    values.update(context or {})
    html = environment().get_template(template).render(values)
    out = HTMLResponse(html, status_code=status, headers=headers)
    out.headers["cache-control"] = "no-store"
    return out
