"""Server fixtures: an app over a project with a few YAML pipelines, a user of every role (and
two users with pipeline grants), a token for each, expired/revoked/malformed tokens, and
helpers to call the API as a user (bearer token) or through a browser session (cookie + CSRF).

`server` is module-scoped (users are made once: argon2 costs ~60 ms a password); tests that
change accounts (lock-outs, disabling, password changes) use `fresh_server` (one per test) or
make users of their own with `server.add_user`."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lockgate.auth import accounts, tokens
from lockgate.auth.roles import PIPELINE_PERMISSIONS, ROLES
from lockgate.config import Project

Response = Any
"""What TestClient answers (an httpx2 or httpx response, whichever starlette uses)."""

PASSWORD = "correct horse battery staple"
"""Every fixture user's password (none of the user names is part of it)."""
ACTOR = "fixture"

ROLE_USERS = {
    "admin": "admin",
    "operator": "operator",
    "editor": "editor",
    "viewer": "viewer",
    "auditor": "auditor",
}
"""User name -> role: one user of every role, named after it."""
GRANTED_PIPELINE = "hello"
GRANTS = {
    "granted": ("viewer", GRANTED_PIPELINE, "operator"),
    "tagged": ("viewer", "tag:finance", "operator"),
}
"""User -> (role, grant target, granted role): viewers who may run some pipelines."""
USERS = {**ROLE_USERS, **{name: role for name, (role, _, _) in GRANTS.items()}}
MALFORMED_TOKEN = "lgt_not-a-token"

PIPELINES = {
    "hello.yaml": """\
description: Says hello.
tasks:
  greet:
    shell: "echo hello"
  after:
    shell: "echo done"
    depends_on: [greet]
""",
    "finance.yaml": """\
description: Closes the books.
tags: [finance]
tasks:
  close:
    shell: "echo closing"
""",
    "other.yaml": """\
description: Nobody was granted this one.
tags: [ops]
tasks:
  work:
    shell: "echo working"
""",
}
"""The pipelines folder: `hello` (granted to `granted`), `finance` (tag finance, granted to
`tagged`), `other` (no grant)."""

_clients = itertools.count(1)


@dataclass
class Server:
    """A running app (TestClient with its lifespan) and the accounts made for it."""

    project: Project
    app: Any
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)
    """User -> a valid API token (all permissions of the user's role)."""
    expired: str = ""
    """A token of `admin` whose expiry has passed."""
    revoked: str = ""
    """A token of `admin` that was revoked."""
    malformed: str = MALFORMED_TOKEN

    @property
    def state(self) -> Any:
        return self.app.state.lockgate

    @property
    def store(self) -> Any:
        return self.state.store

    def headers(self, user: str | None = None, token: str | None = None) -> dict[str, str]:
        """The Authorization header for `user`'s token (or `token`); none for anonymous."""
        secret = token if token is not None else (self.tokens[user] if user else None)
        return {"Authorization": f"Bearer {secret}"} if secret is not None else {}

    def call(
        self,
        user: str | None,
        method: str,
        path: str,
        *,
        token: str | None = None,
        **kw: Any,
    ) -> Response:
        """A request as `user` (their bearer token), or with `token`, or anonymous (None)."""
        headers = {**self.headers(user, token), **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def add_user(
        self,
        name: str,
        role: str,
        *,
        password: str | None = PASSWORD,
        grants: tuple[tuple[str, str], ...] = (),
        token: bool = True,
    ) -> str | None:
        """Make a user (with `grants`); their token is kept in `tokens` when `token` (scoped to
        the role's permissions and those the grants give). Returns the one-time password when
        `password` is None."""
        one_time = accounts.create_user(self.store, name, role, actor=ACTOR, password=password)
        for target, granted in grants:
            self.store.grant(name, target, granted, actor=ACTOR)
        if token:
            scopes = set(ROLES[role])
            for _, granted in grants:
                scopes |= ROLES[granted] & PIPELINE_PERMISSIONS
            self.tokens[name] = accounts.create_token(
                self.store, name, actor=ACTOR, scopes=sorted(scopes)
            )
        return one_time

    def token_for(self, user: str, **kw: Any) -> str:
        """A new token of `user` (create_token's keywords: scopes, days, label)."""
        return accounts.create_token(self.store, user, actor=ACTOR, **kw)

    def expire(self, token: str) -> None:
        """Set the token's expiry in the past, in the database."""
        parsed = tokens.parse(token)
        assert parsed is not None
        self.store.db.execute(
            "UPDATE api_tokens SET expires_at = ? WHERE id = ?", (time.time() - 60, parsed[0])
        )

    def session(self, user: str, password: str = PASSWORD, *, check: bool = True) -> Session:
        """A browser session of `user`: a client of its own (its own client address, so the
        login rate limit of other tests does not apply), logged in through the API."""
        return Session.log_in(self, user, password, check=check)

    def flush_audit(self) -> None:
        """Write the queued request audit records now."""
        self.state.audit.flush()

    def trigger(self, pipeline: str, user: str = "admin", **body: Any) -> str:
        """Queue a run of `pipeline` through the API; its id."""
        response = self.call(user, "POST", f"/api/v1/pipelines/{pipeline}/runs", json=body)
        assert response.status_code == 201, response.text
        run_id: str = response.json()["run_id"]
        return run_id


class Session:
    """A client holding a session cookie; sends X-CSRF-Token on state-changing requests."""

    def __init__(self, server: Server, client: TestClient) -> None:
        self.server = server
        self.client = client
        self.csrf: str | None = None
        self.login: Response = None

    @classmethod
    def log_in(cls, server: Server, user: str, password: str, *, check: bool = True) -> Session:
        client = TestClient(server.app, client=(f"127.0.1.{next(_clients) % 250 + 1}", 50000))
        found = cls(server, client)
        found.login = client.post("/api/v1/auth/login", json={"user": user, "password": password})
        if check:
            assert found.login.status_code == 200, found.login.text
        if found.login.status_code == 200:
            found.csrf = found.login.json()["csrf_token"]
        return found

    def request(self, method: str, path: str, *, csrf: bool = True, **kw: Any) -> Response:
        """A request with the cookie; the CSRF header added to unsafe methods when `csrf`."""
        headers = dict(kw.pop("headers", {}))
        if csrf and self.csrf and method.upper() in {"POST", "PUT", "PATCH", "DELETE"}:
            headers.setdefault("X-CSRF-Token", self.csrf)
        return self.client.request(method, path, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Response:
        return self.request("POST", path, **kw)

    @property
    def cookie(self) -> str | None:
        from lockgate.server.deps import SESSION_COOKIE

        value: str | None = self.client.cookies.get(SESSION_COOKIE)
        return value


def write_pipelines(root: Path) -> None:
    folder = root / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in PIPELINES.items():
        (folder / name).write_text(text)


def build_server(root: Path, settings: Any = None) -> Generator[Server, None, None]:
    """An app over a project in `root` (made if needed) with every fixture user and token."""
    from lockgate.server.app import create_app

    write_pipelines(root)
    project = Project.load(root)
    app = create_app(project, settings)
    with TestClient(app) as client:
        server = Server(project, app, client)
        for name, role in USERS.items():
            grants = (GRANTS[name][1:],) if name in GRANTS else ()
            server.add_user(name, role, grants=grants)
        server.expired = server.token_for("admin", label="expired")
        server.expire(server.expired)
        server.revoked = server.token_for("admin", label="revoked")
        parsed = tokens.parse(server.revoked)
        assert parsed is not None
        server.store.revoke_token(parsed[0], actor=ACTOR)
        yield server
    client.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An app shared by a module's tests (do not change the fixture users here)."""
    root = tmp_path_factory.mktemp("server")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LOCKGATE_DB_URL", raising=False)
        mp.delenv("LOCKGATE_EXECUTOR", raising=False)
        mp.setenv("LOCKGATE_TESTING", "1")
        os.environ.pop("LOCKGATE_DB_URL", None)
        yield from build_server(root)


@pytest.fixture
def fresh_server(project: Project) -> Iterator[Server]:
    """An app of its own for one test (over the `project` fixture's folder)."""
    yield from build_server(project.root)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    """A factory: `make_server(settings)` gives an app of its own with those ServerSettings
    (closed at the end of the test)."""
    made: list[Generator[Server, None, None]] = []

    def make(settings: Any = None) -> Server:
        gen = build_server(tmp_path / f"project{len(made)}", settings)
        made.append(gen)
        return next(gen)

    yield make
    for gen in made:
        gen.close()
