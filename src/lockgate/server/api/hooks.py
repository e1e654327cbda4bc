"""Inbound GitHub webhooks: `POST /api/v1/hooks/github` queues pipeline runs for pushes, pull
requests and releases, as `[webhooks.github]` in lockgate.toml routes them.

No API token: the `X-Hub-Signature-256` HMAC of the raw body, made with the shared secret, is
the authentication, checked (in constant time) before anything of the payload is read. A
delivery is accepted once (a replay is 409): its id, and the SHA-256 of its signed body (the id
header is not signed, so a captured body resent under a new id is caught by its content); the
delivery's row and its runs are written in one transaction. A wrong `[webhooks]` table never stops the server: this endpoint answers 503
and the server's log says why.

    [webhooks.github]
    secret = "github/webhook"        # the NAME of a lockgate secret, never the value

    [[webhooks.github.routes]]
    event = "push"                    # push | pull_request | release
    branches = ["main", "release/*"]  # push: the branch; pull_request: the base branch
    pipeline = "ci_checks"
    params = { sha = "sha", repo = "repository" }   # pipeline param = payload field
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from lockgate.errors import ConfigError, LockgateError, SecretError, did_you_mean
from lockgate.server.deps import server_state
from lockgate.server.errors import ApiError, responses

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.model.pipeline import Pipeline
    from lockgate.server.state import ServerState
    from lockgate.store.scheduling import NewRun

router = APIRouter(prefix="/api/v1", tags=["hooks"])
log = logging.getLogger("lockgate.server")

SOURCE = "github"
TRIGGER = "webhook"
"""`runs.trigger` of the runs a webhook queues."""
EVENTS = ("push", "pull_request", "release")
ACTIONS: Mapping[str, frozenset[str]] = {
    "pull_request": frozenset(
        {
            "assigned",
            "auto_merge_disabled",
            "auto_merge_enabled",
            "closed",
            "converted_to_draft",
            "demilestoned",
            "dequeued",
            "edited",
            "enqueued",
            "labeled",
            "locked",
            "milestoned",
            "opened",
            "ready_for_review",
            "reopened",
            "review_request_removed",
            "review_requested",
            "synchronize",
            "unassigned",
            "unlabeled",
            "unlocked",
        }
    ),
    "release": frozenset(
        {"created", "deleted", "edited", "prereleased", "published", "released", "unpublished"}
    ),
}
"""The actions GitHub sends with each event (a typo such as `synchronized` is caught)."""
DEFAULT_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "pull_request": ("opened", "synchronize", "reopened"),
    "release": ("published",),
}
COMMON_FIELDS = ("repository", "sender", "event", "delivery")
FIELDS: Mapping[str, tuple[str, ...]] = {
    "push": (*COMMON_FIELDS, "ref", "branch", "sha"),
    "pull_request": (*COMMON_FIELDS, "ref", "branch", "sha", "pr_number", "action"),
    "release": (*COMMON_FIELDS, "ref", "tag", "action"),
}
"""The payload fields a route may pass as params, per event."""
ALL_FIELDS = tuple(dict.fromkeys(f for fields in FIELDS.values() for f in fields))
_ROUTE_KEYS = ("event", "branches", "actions", "repositories", "forks", "pipeline", "params")
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}\Z")
_PIPELINE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}\Z")
_EVENT_HEADER = re.compile(r"[a-z_]{1,64}\Z")
_DELIVERY_HEADER = re.compile(r"[A-Za-z0-9-]{1,128}\Z")
_SIGNATURE = re.compile(r"sha256=([0-9a-f]{64})\Z")
SECRET_CACHE_S = 60.0
"""The webhook secret is read (and audited) at most once a minute, and a failed read (missing,
a backend down) is remembered as long: an unauthenticated request must not cost a
secrets-backend call (or an audit record) each, in an outage neither."""
LOG_EVERY_S = 60.0
"""A configuration problem is logged at most once a minute (a flood of deliveries to a
misconfigured server must not flood its log)."""


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One `[[webhooks.github.routes]]` table: which deliveries queue a run of `pipeline`."""

    number: int
    event: str
    pipeline: str
    branches: tuple[str, ...] | None = None
    actions: tuple[str, ...] = ()
    repositories: frozenset[str] | None = None
    """Lower-cased `owner/name`s (GitHub's names are case-insensitive)."""
    forks: bool = False
    """pull_request: also pull requests from forks (whose authors are outside the repo)."""
    params: Mapping[str, str] | None = None

    @property
    def name(self) -> str:
        return f"[[webhooks.github.routes]] #{self.number} (pipeline {self.pipeline!r})"


@dataclass(frozen=True)
class GitHubHooks:
    """The `[webhooks.github]` table, checked."""

    secret: str
    """The name of the lockgate secret holding the webhook's secret."""
    routes: tuple[Route, ...]


def github_config(project: Project) -> GitHubHooks | None:
    """The project's GitHub webhook settings; None when `[webhooks.github]` is absent.
    ConfigError (one line naming the file, the key and the fix) when they are wrong."""
    from lockgate.secrets import check_name

    where = str(project.config_file or "lockgate.toml")
    table = project.tables.get("webhooks", {})
    for key in sorted(set(table) - {SOURCE}):
        raise ConfigError(
            f"{where}: unknown table [webhooks.{key}]: inbound webhooks come from GitHub, "
            "set up under [webhooks.github]"
        )
    github = table.get(SOURCE)
    if github is None:
        return None
    if not isinstance(github, Mapping):
        raise ConfigError(f"{where}: webhooks.github must be a table: [webhooks.github]")
    for key in sorted(set(github) - {"secret", "routes"}):
        raise ConfigError(
            f"{where}: unknown setting {key!r} in [webhooks.github]"
            f"{did_you_mean(key, ['secret', 'routes'])}"
        )
    secret = github.get("secret")
    if secret is None:
        raise ConfigError(
            f'{where}: [webhooks.github] needs secret = "NAME": the name of the lockgate secret '
            "holding the webhook's secret (`lockgate secrets set NAME`)"
        )
    try:
        check_name(secret)
    except SecretError as exc:
        raise ConfigError(f"{where}: [webhooks.github] secret: {exc}") from None
    routes = github.get("routes", [])
    if not isinstance(routes, list) or not all(isinstance(r, Mapping) for r in routes):
        raise ConfigError(
            f"{where}: webhooks.github.routes must be tables: [[webhooks.github.routes]]"
        )
    return GitHubHooks(secret, tuple(_route(r, n, where) for n, r in enumerate(routes, 1)))


def _strings(
    value: Any, what: str, where: str, pattern: re.Pattern[str] | None = None
) -> list[str]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise ConfigError(f"{where}: {what} must be a non-empty list of strings")
    for item in value:
        if pattern is not None and not pattern.match(item):
            raise ConfigError(f"{where}: {what}: {item!r} is not of the form owner/name")
    return list(value)


def _route(table: Mapping[str, Any], number: int, where: str) -> Route:
    at = f"[[webhooks.github.routes]] #{number}"
    for key in sorted(set(table) - set(_ROUTE_KEYS)):
        raise ConfigError(
            f"{where}: unknown setting {key!r} in {at}{did_you_mean(key, _ROUTE_KEYS)}"
        )
    event = table.get("event")
    if event not in EVENTS:
        raise ConfigError(f"{where}: {at}: event must be one of {', '.join(EVENTS)}, got {event!r}")
    pipeline = table.get("pipeline")
    if not isinstance(pipeline, str) or not _PIPELINE.match(pipeline):
        raise ConfigError(f"{where}: {at}: pipeline must be a pipeline id, got {pipeline!r}")
    at = f"{at} (pipeline {pipeline!r})"
    branches = None
    if "branches" in table:
        if event == "release":
            raise ConfigError(
                f"{where}: {at}: branches filters push and pull_request events, not releases"
            )
        branches = tuple(_strings(table["branches"], f"{at}: branches", where))
    actions: tuple[str, ...] = ()
    if event == "push":
        if "actions" in table:
            raise ConfigError(f"{where}: {at}: push events have no actions; remove actions")
    else:
        chosen = table.get("actions", list(DEFAULT_ACTIONS[event]))
        actions = tuple(_strings(chosen, f"{at}: actions", where))
        for action in actions:
            if action not in ACTIONS[event]:
                raise ConfigError(
                    f"{where}: {at}: GitHub sends no {event} action {action!r}"
                    f"{did_you_mean(action, sorted(ACTIONS[event]))}"
                )
    repositories = None
    if "repositories" in table:
        names = _strings(table["repositories"], f"{at}: repositories", where, _REPOSITORY)
        repositories = frozenset(n.lower() for n in names)
    forks = table.get("forks", False)
    if not isinstance(forks, bool) or (forks and event != "pull_request"):
        raise ConfigError(f"{where}: {at}: forks is true or false, for pull_request routes")
    params = table.get("params", {})
    if not isinstance(params, Mapping):
        raise ConfigError(
            f'{where}: {at}: params must be a table of param = "field", e.g. {{ sha = "sha" }}'
        )
    for param, source in params.items():
        if source not in FIELDS[event]:
            offered = ", ".join(FIELDS[event])
            raise ConfigError(
                f"{where}: {at}: params.{param} = {source!r}: {event} deliveries offer {offered}"
            )
    return Route(
        number=number,
        event=event,
        pipeline=pipeline,
        branches=branches,
        actions=actions,
        repositories=repositories,
        forks=forks,
        params=dict(params),
    )


def check_pipelines(
    hooks: GitHubHooks, pipelines: Mapping[str, Pipeline], project: Project
) -> None:
    """ConfigError unless every route names a pipeline of the folder that declares the params
    the route gives it."""
    where = str(project.config_file or "lockgate.toml")
    for route in hooks.routes:
        pipe = pipelines.get(route.pipeline)
        if pipe is None:
            raise ConfigError(
                f"{where}: {route.name}: no pipeline {route.pipeline!r} in the pipelines folder"
                f"{did_you_mean(route.pipeline, sorted(pipelines))}"
            )
        for param in route.params or {}:
            if param not in pipe.params:
                declared = ", ".join(sorted(pipe.params)) or "none"
                raise ConfigError(
                    f"{where}: {route.name}: the pipeline declares no param {param!r} "
                    f"(declared: {declared})"
                )


# -- signatures and payloads -----------------------------------------------------------------


def signature(secret: str | bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`: `sha256=<hex HMAC-SHA256>`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def signature_problem(secret: str, body: bytes, header: str | None) -> str | None:
    """Why `header` does not authenticate `body` (None when it does). Compared in constant
    time."""
    if header is None:
        return "X-Hub-Signature-256 is missing: set the webhook's secret on GitHub"
    given = header.strip().lower()
    if not _SIGNATURE.match(given):
        return "X-Hub-Signature-256 is not sha256=<64 hex digits>"
    if not hmac.compare_digest(given.encode(), signature(secret, body).encode()):
        return "X-Hub-Signature-256 does not match the body: the webhook's secret differs"
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _at(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc


def payload_fields(event: str, delivery: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a route may pass as params (None: not in this delivery).

    `ref` is the full git ref (`refs/heads/main`, `refs/pull/7/head`, `refs/tags/v1.2`);
    `branch` the branch pushed, or a pull request's head branch; `sha` the commit pushed, or
    the pull request's head commit."""
    out: dict[str, Any] = {
        "event": event,
        "delivery": delivery,
        "repository": _text(_at(payload, "repository", "full_name")),
        "sender": _text(_at(payload, "sender", "login")),
        "action": _text(payload.get("action")),
    }
    if event == "push":
        ref = _text(payload.get("ref"))
        out["ref"] = ref
        out["branch"] = ref[len("refs/heads/") :] if ref and ref.startswith("refs/heads/") else None
        out["sha"] = _text(payload.get("after"))
    elif event == "pull_request":
        number = payload.get("number", _at(payload, "pull_request", "number"))
        ok = isinstance(number, int) and not isinstance(number, bool)
        out["pr_number"] = number if ok else None
        out["ref"] = f"refs/pull/{number}/head" if ok else None
        out["branch"] = _text(_at(payload, "pull_request", "head", "ref"))
        out["sha"] = _text(_at(payload, "pull_request", "head", "sha"))
    elif event == "release":
        tag = _text(_at(payload, "release", "tag_name"))
        out["tag"] = tag
        out["ref"] = f"refs/tags/{tag}" if tag else None
    return out


def matches(
    route: Route, event: str, payload: Mapping[str, Any], fields: Mapping[str, Any]
) -> bool:
    """Whether a delivery (its payload and `payload_fields`) is one `route` queues a run for."""
    if route.event != event:
        return False
    repository = fields.get("repository")
    if route.repositories is not None and (
        repository is None or repository.lower() not in route.repositories
    ):
        return False
    if event == "push":
        if payload.get("deleted") is True or fields.get("branch") is None:
            return False  # a deleted branch, or a tag pushed (releases cover tags)
        branch = fields["branch"]
    else:
        if fields.get("action") not in route.actions:
            return False
        if event != "pull_request":
            return True
        head = _at(payload, "pull_request", "head", "repo", "full_name")
        if not route.forks and (
            not isinstance(head, str) or head.lower() != (repository or "").lower()
        ):
            return False
        branch = _text(_at(payload, "pull_request", "base", "ref"))
        if branch is None:
            return False
    return route.branches is None or any(fnmatch.fnmatchcase(branch, b) for b in route.branches)


# -- the endpoint ----------------------------------------------------------------------------


class QueuedRun(BaseModel):
    run_id: str
    pipeline: str


class Delivered(BaseModel):
    ok: bool
    event: str
    delivery: str
    runs: list[QueuedRun]
    """The runs queued (none when no route matched: the delivery still succeeded)."""


class Pong(BaseModel):
    ok: bool
    zen: str | None


@dataclass(frozen=True)
class _Failed:
    """A secret read that failed: its one-line reason (never a value)."""

    reason: str


_secret_cache: dict[tuple[str, str], tuple[float, str | _Failed]] = {}
"""(project root, secret name) -> (until, the value, or why reading it failed)."""
_logged: dict[str, float] = {}
_lock = threading.Lock()


def _log_once(message: str) -> None:
    now = time.monotonic()
    with _lock:
        if now - _logged.get(message, -LOG_EVERY_S) < LOG_EVERY_S:
            return
        _logged[message] = now
        if len(_logged) > 100:
            _logged.clear()
    log.error("webhook %s: %s", SOURCE, message)


def _secret(state: ServerState, name: str) -> str:
    from lockgate.secrets import get_secret

    key = (str(state.project.root), name)
    now = time.monotonic()
    with _lock:
        cached = _secret_cache.get(key)
    if cached is not None and cached[0] > now:
        found = cached[1]
        if isinstance(found, _Failed):
            raise SecretError(found.reason)
        return found
    try:
        value = get_secret(name, state.project)
    except LockgateError as exc:  # missing, a backend down, a wrong [secrets] table
        with _lock:
            _secret_cache[key] = (now + SECRET_CACHE_S, _Failed(str(exc)))
        raise
    with _lock:
        _secret_cache[key] = (now + SECRET_CACHE_S, value)
    return value


def _unavailable(message: str) -> ApiError:
    _log_once(message)
    return ApiError(
        503, "GitHub webhooks are not usable on this server now; its log says why", "unavailable"
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused (413) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    too_large = ApiError(413, f"the request body is larger than {limit} bytes", "too_large")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/hooks/github",
    status_code=202,
    response_model=None,
    responses={
        200: {"model": Pong, "description": "a ping: the webhook is set up"},
        202: {"model": Delivered, "description": "accepted; the runs queued (maybe none)"},
        **responses(400, 401, 404, 409, 413, 415, 422, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "parameters": [
            {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
            for name in ("X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery")
        ],
    },
)
async def github_hook(request: Request) -> JSONResponse:
    """A GitHub webhook delivery (content type application/json), authenticated by its
    `X-Hub-Signature-256` HMAC, not by a token. Queues a run for each matching route of
    `[webhooks.github]` in lockgate.toml; a delivery (its id, its body) is accepted once."""
    state = server_state(request)
    body = await _read_body(request, state.settings.max_body_bytes)
    status, answer = await run_in_threadpool(_deliver, state, request, body)
    return JSONResponse(answer, status_code=status)


def _act_as(request: Request, actor: str) -> None:
    """Name the GitHub user in the request audit (the `Guard` middleware reads the request's
    principal): a principal with no permission of any kind."""
    from lockgate.auth.accounts import Principal

    request.state.principal = Principal(user=actor, role="webhook", scopes=())


def _deliver(state: ServerState, request: Request, body: bytes) -> tuple[int, dict[str, Any]]:
    """(status, answer) for a delivery whose body was read."""
    from lockgate.store import webhooks

    try:
        hooks = github_config(state.project)
        if hooks is not None:
            check_pipelines(hooks, state.pipelines(), state.project)
    except ConfigError as exc:
        raise _unavailable(str(exc)) from None
    if hooks is None:
        raise ApiError(
            404,
            "GitHub webhooks are not set up on this server: add [webhooks.github] to "
            "lockgate.toml (docs/ci.md)",
        )
    try:
        secret = _secret(state, hooks.secret)
    except LockgateError as exc:  # missing, a backend down, a wrong [secrets] table
        raise _unavailable(f"[webhooks.github] secret: {exc}") from None
    headers = request.headers
    event = headers.get("x-github-event", "")
    delivery = headers.get("x-github-delivery", "")
    problem = signature_problem(secret, body, headers.get("x-hub-signature-256"))
    if problem is not None:
        client = request.client
        state.audit.put(
            "anonymous",
            "webhook.refused",
            SOURCE,
            {
                "reason": problem,
                "event": event[:64],
                "delivery": delivery[:128],
                "client": client.host if client else None,
                "bytes": len(body),
                "at": round(time.time(), 3),
            },
        )
        raise ApiError(401, problem)
    if not _EVENT_HEADER.match(event) or not _DELIVERY_HEADER.match(delivery):
        raise ApiError(
            400, "X-GitHub-Event and X-GitHub-Delivery must both be given, as GitHub does"
        )
    digest = webhooks.body_digest(body)
    if webhooks.seen(state.store, SOURCE, delivery, digest):
        raise _replayed(delivery)
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(
            415,
            "set the webhook's content type to application/json on GitHub",
            "unsupported_media_type",
        )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the payload is not JSON") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "the payload is not a JSON object")
    fields = payload_fields(event, delivery, payload)
    actor = f"{SOURCE}:{_login(fields.get('sender'))}"
    _act_as(request, actor)
    detail = {k: fields.get(k) for k in ("repository", "action", "ref", "sha", "pr_number", "tag")}
    if event == "ping":
        if (
            webhooks.accept(
                state.store,
                SOURCE,
                delivery,
                event,
                [],
                body_sha256=digest,
                actor=actor,
                detail=detail,
            )
            is None
        ):
            raise _replayed(delivery)
        zen = payload.get("zen")
        return 200, {"ok": True, "zen": zen if isinstance(zen, str) else None}
    runs = _runs_for(state, hooks, event, payload, fields)
    created = webhooks.accept(
        state.store, SOURCE, delivery, event, runs, body_sha256=digest, actor=actor, detail=detail
    )
    if created is None:
        raise _replayed(delivery)
    if created:
        from lockgate.scheduler.wakeup import wake_schedulers

        wake_schedulers(state.store)
    pipelines = {run.run_id: run.pipeline_id for run in runs}
    answer = Delivered(
        ok=True,
        event=event,
        delivery=delivery,
        runs=[QueuedRun(run_id=r, pipeline=pipelines[r]) for r in created],
    )
    return 202, answer.model_dump()


def _replayed(delivery: str) -> ApiError:
    return ApiError(
        409,
        f"delivery {delivery}, or one with the same signed body, was accepted before: a replay "
        "is refused",
    )


def _login(value: Any) -> str:
    """A GitHub login as an audit actor: its name characters only (`dependabot[bot]` kept)."""
    text = value if isinstance(value, str) else ""
    return re.sub(r"[^A-Za-z0-9_.\[\]-]", "", text)[:100] or "unknown"


def _runs_for(
    state: ServerState,
    hooks: GitHubHooks,
    event: str,
    payload: Mapping[str, Any],
    fields: Mapping[str, Any],
) -> list[NewRun]:
    """A queued run for each route the delivery matches, its params checked against the
    pipeline's declarations as a REST trigger's are (422 naming the route otherwise)."""
    from lockgate.api import queued_run
    from lockgate.execution import coerce_params

    pipelines = state.pipelines()
    runs: list[NewRun] = []
    for route in hooks.routes:
        if not matches(route, event, payload, fields):
            continue
        pipe = pipelines.get(route.pipeline)
        if pipe is None:  # gone since check_pipelines looked (the folder was reloaded)
            raise _unavailable(f"{route.name}: the pipeline is no longer in the folder")
        given = {
            param: str(fields[source])
            for param, source in (route.params or {}).items()
            if fields.get(source) is not None
        }
        try:
            params = coerce_params(pipe, given, from_text=True)
        except LockgateError as exc:
            from lockgate.secrets.redaction import redact

            raise ApiError(422, redact(f"{route.name}: {exc}")) from None
        runs.append(queued_run(state.store, pipe, params, TRIGGER, None))
    return runs
