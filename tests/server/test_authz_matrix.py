"""The authorization matrix: every API endpoint of the app × every role (and users with
pipeline grants) × no token, expired, revoked and malformed tokens gives the documented answer.

`EXPECTED` is the table (docs/api.md holds the same one; /metrics is in it too): a new endpoint fails
`test_every_api_route_is_in_the_table` until it is added to both, with the permission it needs
and its scope:

- `public`: no authentication; `user`: any authenticated caller (acting on their own things);
- `global`: the permission project-wide (the user's role);
- `anywhere`: the permission on at least one pipeline (a role, or a grant); the answer is
  filtered to the pipelines the caller may read;
- `pipeline`: the permission on the pipeline the path names (directly or through its run).

Every role reads every pipeline, so to prove that pipeline-scoped reads are checked the matrix
adds `outsider`, a user whose global role gives nothing (set by SQL: no role the CLI or API
gives does that) and who may read `hello` through a grant.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockgate.auth.roles import PIPELINE_PERMISSIONS, ROLES

from .conftest import GRANTS, USERS, Server

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"

PUBLIC, USER = "public", "user"
GLOBAL, ANYWHERE, PIPELINE = "global", "anywhere", "pipeline"
NONE = "-"

EXPECTED: dict[tuple[str, str], tuple[str, str]] = {
    # (method, path template): (permission, scope)
    ("GET", "/api/openapi.json"): (PUBLIC, NONE),
    ("POST", "/api/v1/auth/login"): (PUBLIC, NONE),
    ("POST", "/api/v1/auth/logout"): (USER, NONE),
    ("POST", "/api/v1/hooks/github"): (PUBLIC, NONE),  # authenticated by its HMAC
    ("GET", "/api/v1/me"): (USER, NONE),
    ("POST", "/api/v1/me/password"): (USER, NONE),
    ("GET", "/api/v1/roles"): (USER, NONE),
    ("GET", "/api/v1/tokens"): (USER, NONE),
    ("POST", "/api/v1/tokens"): (USER, NONE),
    ("DELETE", "/api/v1/tokens/{token_id}"): (USER, NONE),
    ("GET", "/api/v1/pipelines"): ("read", ANYWHERE),
    ("GET", "/api/v1/pipelines/{pipeline_id}"): ("read", PIPELINE),
    ("GET", "/api/v1/pipelines/{pipeline_id}/versions"): ("read", PIPELINE),
    ("GET", "/api/v1/pipelines/{pipeline_id}/grid"): ("read", PIPELINE),
    ("POST", "/api/v1/pipelines/{pipeline_id}/pause"): ("run", PIPELINE),
    ("POST", "/api/v1/pipelines/{pipeline_id}/unpause"): ("run", PIPELINE),
    ("POST", "/api/v1/pipelines/{pipeline_id}/runs"): ("run", PIPELINE),
    ("GET", "/api/v1/runs"): ("read", ANYWHERE),
    ("GET", "/api/v1/runs/{run_id}"): ("read", PIPELINE),
    ("POST", "/api/v1/runs/{run_id}/cancel"): ("run", PIPELINE),
    ("POST", "/api/v1/runs/{run_id}/clear"): ("run", PIPELINE),
    ("GET", "/api/v1/runs/{run_id}/events"): ("read", PIPELINE),
    ("GET", "/api/v1/runs/{run_id}/tasks/{task_id}/attempts"): ("read", PIPELINE),
    ("GET", "/api/v1/runs/{run_id}/tasks/{task_id}/attempts/{attempt}/log"): ("read", PIPELINE),
    ("GET", "/api/v1/runs/{run_id}/tasks/{task_id}/attempts/{attempt}/log/stream"): (
        "read",
        PIPELINE,
    ),
    ("GET", "/api/v1/runs/{run_id}/lineage"): ("read", PIPELINE),
    ("GET", "/api/v1/runs/{run_id}/quality"): ("read", PIPELINE),
    ("GET", "/api/v1/datasets"): ("read", ANYWHERE),
    ("GET", "/api/v1/datasets/detail"): ("read", ANYWHERE),
    ("GET", "/api/v1/datasets/lineage"): ("read", ANYWHERE),
    ("GET", "/api/v1/quality"): ("read", ANYWHERE),
    ("GET", "/api/v1/policy/decisions"): ("read", ANYWHERE),
    ("GET", "/api/v1/policy/waivers"): ("read", GLOBAL),
    ("POST", "/api/v1/policy/waivers"): ("edit", GLOBAL),
    ("DELETE", "/api/v1/policy/waivers/{waiver_id}"): ("edit", GLOBAL),
    ("GET", "/api/v1/connections"): ("read", GLOBAL),
    ("PUT", "/api/v1/connections/{name}"): ("edit", GLOBAL),
    ("DELETE", "/api/v1/connections/{name}"): ("edit", GLOBAL),
    ("GET", "/api/v1/audit"): ("audit", GLOBAL),
    ("GET", "/api/v1/audit/verify"): ("audit", GLOBAL),
    ("GET", "/api/v1/audit/checkpoints"): ("audit", GLOBAL),
    ("GET", "/api/v1/users"): ("admin", GLOBAL),
    ("POST", "/api/v1/users"): ("admin", GLOBAL),
    ("GET", "/api/v1/users/{name}"): ("admin", GLOBAL),
    ("PATCH", "/api/v1/users/{name}"): ("admin", GLOBAL),
    ("POST", "/api/v1/users/{name}/password"): ("admin", GLOBAL),
    ("GET", "/api/v1/users/{name}/grants"): ("admin", GLOBAL),
    ("PUT", "/api/v1/users/{name}/grants"): ("admin", GLOBAL),
    ("DELETE", "/api/v1/users/{name}/grants/{target}"): ("admin", GLOBAL),
    ("GET", "/metrics"): ("read", GLOBAL),
}

BODIES: dict[tuple[str, str], Any] = {
    # what each state-changing probe sends: invalid where the permission check comes first
    # (so an allowed caller gets 422 and nothing changes), valid where the pipeline is checked
    # in the endpoint itself
    ("POST", "/api/v1/auth/login"): {},
    ("POST", "/api/v1/me/password"): {},
    ("POST", "/api/v1/tokens"): {"days": 0},
    ("POST", "/api/v1/pipelines/{pipeline_id}/runs"): {},
    ("POST", "/api/v1/runs/{run_id}/clear"): {},
    ("POST", "/api/v1/policy/waivers"): {},
    ("PUT", "/api/v1/connections/{name}"): {},
    ("POST", "/api/v1/users"): {},
    ("PATCH", "/api/v1/users/{name}"): {},
    ("PUT", "/api/v1/users/{name}/grants"): {},
}
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/api/v1/datasets/detail"): {"uri": "data/none.csv"},
    ("GET", "/api/v1/datasets/lineage"): {"uri": "data/none.csv"},
}
PIPELINES = ("hello", "finance", "other")
OUTSIDER = "outsider"
MATRIX_USERS = {**USERS, OUTSIDER: "none"}
MATRIX_GRANTS = {
    **{name: (target, role) for name, (_, target, role) in GRANTS.items()},
    OUTSIDER: ("hello", "viewer"),
}
TAGS = {"finance": ("finance",), "other": ("ops",), "hello": ()}


def api_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route under /api/, and /metrics (HEAD left out: it answers as
    GET)."""
    from fastapi.routing import iter_route_contexts

    found = set()
    for route in iter_route_contexts(app.routes):
        path = getattr(route, "path", "")
        if path.startswith("/api/") or path == "/metrics":
            for method in getattr(route, "methods", None) or ():
                if method != "HEAD":
                    found.add((method, path))
    return found


def allowed(user: str, permission: str, scope: str, pipeline: str | None) -> bool:
    """Whether the table says `user` may call an endpoint (on `pipeline`)."""
    if permission in (PUBLIC, USER):
        return True
    if permission in ROLES.get(MATRIX_USERS[user], frozenset()):
        return True
    if scope == GLOBAL or user not in MATRIX_GRANTS or permission not in PIPELINE_PERMISSIONS:
        return False
    target, role = MATRIX_GRANTS[user]
    if permission not in ROLES[role]:
        return False
    if scope == ANYWHERE:
        return True
    covered = {pipeline, *(f"tag:{t}" for t in TAGS.get(pipeline or "", ()))}
    return target in covered


@pytest.fixture(scope="module")
def runs(server: Server) -> dict[str, str]:
    """A queued run of each pipeline (never executed), and the outsider."""
    server.add_user(OUTSIDER, "viewer", grants=(("hello", "viewer"),))
    server.store.db.execute("UPDATE users SET role = ? WHERE name = ?", ("none", OUTSIDER))
    return {pid: server.trigger(pid) for pid in PIPELINES}


def _url(path: str, pipeline: str, runs: dict[str, str]) -> str:
    values = {
        "pipeline_id": pipeline,
        "run_id": runs[pipeline],
        "task_id": "greet",
        "attempt": "1",
        "name": "nobody",
        "target": "hello",
        "token_id": "0123456789abcdef",
        "waiver_id": "nowaiver",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _probe(
    server: Server,
    endpoint: tuple[str, str],
    runs: dict[str, str],
    pipeline: str = "hello",
    **kw: Any,
) -> Any:
    method, path = endpoint
    extra: dict[str, Any] = {}
    if endpoint in BODIES:
        extra["json"] = BODIES[endpoint]
    if endpoint in QUERIES:
        extra["params"] = QUERIES[endpoint]
    return server.call(kw.pop("user", None), method, _url(path, pipeline, runs), **extra, **kw)


def _endpoints() -> Iterator[Any]:
    for endpoint in sorted(EXPECTED, key=lambda e: (e[1], e[0])):
        yield pytest.param(endpoint, id=f"{endpoint[0]} {endpoint[1]}")


def test_every_api_route_is_in_the_table(server: Server) -> None:
    actual = api_routes(server.app)
    missing = sorted(actual - set(EXPECTED))
    stale = sorted(set(EXPECTED) - actual)
    assert not missing, f"add these endpoints to EXPECTED and docs/api.md: {missing}"
    assert not stale, f"these endpoints are gone: remove them from EXPECTED: {stale}"


def test_the_docs_hold_the_same_table() -> None:
    rows = set()
    for line in DOC.read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            rows.add(((cells[0], cells[1]), (cells[2], cells[3])))
    assert rows == set(EXPECTED.items()), sorted(rows ^ set(EXPECTED.items()))


@pytest.mark.parametrize("endpoint", list(_endpoints()))
def test_matrix(server: Server, runs: dict[str, str], endpoint: tuple[str, str]) -> None:
    permission, scope = EXPECTED[endpoint]
    pipelines = PIPELINES if scope == PIPELINE else ("hello",)
    problems = []
    for pipeline in pipelines:
        for user in MATRIX_USERS:
            response = _probe(server, endpoint, runs, pipeline, user=user)
            status = response.status_code
            expected = allowed(user, permission, scope, pipeline)
            wrong = (
                status in (401, 403) or status >= 500
                if expected
                else status != 403 or response.json()["error"]["code"] != "forbidden"
            )
            if wrong:
                problems.append(
                    f"{user} on {pipeline}: {status} (expected "
                    f"{'allowed' if expected else '403'}) {response.text[:160]}"
                )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("endpoint", list(_endpoints()))
def test_without_a_valid_token(
    server: Server, runs: dict[str, str], endpoint: tuple[str, str]
) -> None:
    permission, _ = EXPECTED[endpoint]
    tokens = {
        "anonymous": None,
        "expired": server.expired,
        "revoked": server.revoked,
        "malformed": server.malformed,
    }
    for what, token in tokens.items():
        response = _probe(server, endpoint, runs, token=token)
        if permission == PUBLIC:
            assert response.status_code not in (401, 403), (what, response.text)
            assert response.status_code < 500
            continue
        assert response.status_code == 401, (what, response.status_code, response.text[:200])
        assert response.json()["error"]["code"] == "unauthenticated"
        assert response.headers.get("www-authenticate") == "Bearer"


@pytest.mark.parametrize(
    "endpoint",
    [e for e in _endpoints() if e.values[0][0] != "GET" and EXPECTED[e.values[0]][0] != PUBLIC],
)
def test_a_cookie_without_csrf_token_changes_nothing(
    server: Server, runs: dict[str, str], endpoint: tuple[str, str], admin_session: Any
) -> None:
    method, path = endpoint
    url = _url(path, "hello", runs)
    extra = {"json": BODIES[endpoint]} if endpoint in BODIES else {}
    response = admin_session.request(method, url, csrf=False, **extra)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "csrf_failed"


@pytest.fixture(scope="module")
def admin_session(server: Server) -> Any:
    return server.session("admin")
