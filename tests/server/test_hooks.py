"""The GitHub webhook endpoint (`POST /api/v1/hooks/github`) through the real app: GitHub's
published signature test vector, wrong, missing and malformed signatures (401, audited without
the body), replays (409, one run), oversized bodies (413), push / pull_request / release routing
with params from the payload, ping, a missing secret and a wrong `[webhooks]` table (503, the
rest of the API still served, the failed read not repeated for every request), a captured body
resent under a new delivery id (409), and the configuration's one-line errors."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lockgate.auth import accounts
from lockgate.config import Project
from lockgate.errors import ConfigError
from lockgate.server.api import hooks
from lockgate.server.api.hooks import check_pipelines, github_config, signature
from lockgate.store import webhooks
from lockgate.store.scheduling import NewRun

SECRET = "webhook secret for the tests"
SECRET_VAR = "LOCKGATE_SECRET_GITHUB_WEBHOOK"
REPO = "acme/data"

PIPELINES = {
    "ci.yaml": """\
params:
  repository: ""
  ref: ""
  sha: ""
tasks:
  check:
    shell: "echo checking"
""",
    "pr_check.yaml": """\
params:
  pr:
    type: integer
    default: 0
  branch:
    type: string
    default: "none"
    pattern: "[a-z0-9/_-]+"
  sha: ""
tasks:
  check:
    shell: "echo checking the pull request"
""",
    "publish.yaml": """\
params:
  tag: ""
tasks:
  publish:
    shell: "echo publishing"
""",
}

CONFIG = """\
[secrets]
backends = ["env"]

[webhooks.github]
secret = "github/webhook"

[[webhooks.github.routes]]
event = "push"
branches = ["main", "release/*"]
repositories = ["Acme/Data"]
pipeline = "ci"
params = { repository = "repository", ref = "ref", sha = "sha" }

[[webhooks.github.routes]]
event = "pull_request"
branches = ["main"]
pipeline = "pr_check"
params = { pr = "pr_number", branch = "branch", sha = "sha" }

[[webhooks.github.routes]]
event = "release"
pipeline = "publish"
params = { tag = "tag" }
"""


class Hook:
    """An app over a project with `[webhooks.github]`, and helpers to deliver to it."""

    def __init__(self, project: Project, client: TestClient) -> None:
        self.project = project
        self.client = client

    @property
    def state(self) -> Any:
        return self.client.app.state.lockgate  # type: ignore[attr-defined]

    @property
    def store(self) -> Any:
        return self.state.store

    def deliver(
        self,
        event: str,
        payload: Any,
        *,
        delivery: str | None = None,
        secret: str = SECRET,
        signed: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "User-Agent": "GitHub-Hookshot/test",
        }
        if signed:
            sent["X-Hub-Signature-256"] = signature(secret, body)
        sent.update(headers or {})
        return self.client.post("/api/v1/hooks/github", content=body, headers=sent)

    def runs(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.store.db.rows(
            'SELECT id, pipeline_id, params, "trigger", state FROM runs ORDER BY created_at'
        )
        return rows

    def audit(self, action: str) -> list[Any]:
        self.state.audit.flush()
        return [r for r in self.store.audit_records(limit=10_000) if r.action == action]


def make_project(root: Path, config: str = CONFIG) -> Project:
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    for name, text in PIPELINES.items():
        (root / "pipelines" / name).write_text(text)
    (root / "lockgate.toml").write_text(config)
    return Project.load(root)


@pytest.fixture
def open_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A factory: `open_hook(config, secret=...)` starts an app over a new project."""
    from lockgate.server.app import create_app

    monkeypatch.delenv("LOCKGATE_DB_URL", raising=False)
    monkeypatch.delenv(SECRET_VAR, raising=False)
    hooks._secret_cache.clear()
    opened: list[TestClient] = []

    def open_(config: str = CONFIG, secret: str | None = SECRET, **settings: Any) -> Hook:
        from lockgate.server.state import ServerSettings

        if secret is not None:
            monkeypatch.setenv(SECRET_VAR, secret)
        else:
            monkeypatch.delenv(SECRET_VAR, raising=False)
        project = make_project(tmp_path / f"project{len(opened)}", config)
        client = TestClient(create_app(project, ServerSettings(**settings)))
        client.__enter__()
        opened.append(client)
        return Hook(project, client)

    yield open_
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def hook(open_hook: Any) -> Hook:
    hook: Hook = open_hook()
    return hook


def push(branch: str = "main", repo: str = REPO, **extra: Any) -> dict[str, Any]:
    return {
        "ref": f"refs/heads/{branch}",
        "before": "0" * 40,
        "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "repository": {"full_name": repo},
        "sender": {"login": "octocat"},
        "deleted": False,
        **extra,
    }


def pull_request(
    action: str = "opened", head_repo: str = REPO, base: str = "main"
) -> dict[str, Any]:
    return {
        "action": action,
        "number": 42,
        "pull_request": {
            "number": 42,
            "head": {"ref": "fix/typo", "sha": "a" * 40, "repo": {"full_name": head_repo}},
            "base": {"ref": base, "sha": "b" * 40, "repo": {"full_name": REPO}},
        },
        "repository": {"full_name": REPO},
        "sender": {"login": "hubot"},
    }


# -- signatures ------------------------------------------------------------------------------


def test_the_signature_matches_githubs_published_test_vector(open_hook: Any) -> None:
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature("It's a Secret to Everybody", b"Hello, World!") == expected
    # through the endpoint: the vector passes the signature check, then the body (not JSON)
    # is refused as such: the payload is read only once the signature is good
    hook = open_hook(secret="It's a Secret to Everybody")
    sent = hook.deliver(
        "push", b"Hello, World!", signed=False, headers={"X-Hub-Signature-256": expected}
    )
    assert sent.status_code == 400, sent.text
    assert sent.json()["error"]["message"] == "the payload is not JSON"
    assert hook.audit("webhook.refused") == []


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "X-Hub-Signature-256 is missing"),
        ("sha1=" + "0" * 40, "is not sha256=<64 hex digits>"),
        ("sha256=zz", "is not sha256=<64 hex digits>"),
        ("wrong", "is not sha256=<64 hex digits>"),
        ("wrong secret", "does not match the body"),
    ],
)
def test_a_missing_malformed_or_wrong_signature_is_refused_and_audited_without_the_body(
    hook: Hook, header: str | None, reason: str
) -> None:
    body = push(secret_marker="body-text-never-audited")
    if header is None:
        sent = hook.deliver("push", body, signed=False)
    elif header == "wrong secret":
        sent = hook.deliver("push", body, secret="another secret")
    else:
        sent = hook.deliver("push", body, signed=False, headers={"X-Hub-Signature-256": header})
    assert sent.status_code == 401, sent.text
    assert sent.json()["error"]["code"] == "unauthenticated"
    assert reason in sent.json()["error"]["message"]
    assert hook.runs() == []
    refused = hook.audit("webhook.refused")
    assert len(refused) == 1
    assert refused[0].actor == "anonymous" and refused[0].target == "github"
    detail = json.loads(refused[0].detail)
    assert reason in detail["reason"] and detail["event"] == "push"
    assert "body-text-never-audited" not in refused[0].detail
    assert SECRET not in refused[0].detail
    # the request itself is in the request audit too
    calls = [r for r in hook.audit("api.call") if r.target == "/api/v1/hooks/github"]
    assert [json.loads(c.detail)["status"] for c in calls] == [401]


def test_no_token_session_csrf_or_origin_check_applies(hook: Hook) -> None:
    """A bearer token that is no token, a cookie and a foreign Origin change nothing: the
    signature alone decides."""
    sent = hook.deliver(
        "push",
        push(),
        headers={
            "Authorization": "Bearer lgt_not-a-token",
            "Cookie": "lockgate_session=forged",
            "Origin": "https://evil.example",
        },
    )
    assert sent.status_code == 202, sent.text
    assert len(sent.json()["runs"]) == 1


# -- deliveries ------------------------------------------------------------------------------


def test_push_to_a_matching_branch_queues_a_run_with_params_from_the_payload(hook: Hook) -> None:
    delivery = str(uuid.uuid4())
    sent = hook.deliver("push", push("release/2.0"), delivery=delivery)
    assert sent.status_code == 202, sent.text
    answer = sent.json()
    assert (answer["ok"], answer["event"], answer["delivery"]) == (True, "push", delivery)
    [queued] = answer["runs"]
    assert queued["pipeline"] == "ci"
    [run] = hook.runs()
    assert (run["id"], run["pipeline_id"], run["trigger"], run["state"]) == (
        queued["run_id"],
        "ci",
        "webhook",
        "queued",
    )
    assert json.loads(run["params"]) == {
        "repository": REPO,
        "ref": "refs/heads/release/2.0",
        "sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    }
    [trigger] = hook.audit("run.trigger")
    assert (trigger.actor, trigger.target, trigger.run_id) == ("github:octocat", "ci", run["id"])
    assert json.loads(trigger.detail)["via"] == "webhook"
    [record] = hook.audit("webhook.github")
    assert record.actor == "github:octocat" and record.target == delivery
    assert json.loads(record.detail)["runs"] == [run["id"]]
    # the request audit names the GitHub user too
    calls = [r for r in hook.audit("api.call") if r.target == "/api/v1/hooks/github"]
    assert [(c.actor, json.loads(c.detail)["status"]) for c in calls] == [("github:octocat", 202)]
    [row] = webhooks.deliveries(hook.store, "github")
    assert (row["delivery_id"], row["event"], row["runs"]) == (delivery, "push", [run["id"]])


@pytest.mark.parametrize(
    "payload",
    [
        push("feature/x"),
        push("main", repo="someone/else"),
        push("main", deleted=True),
        {**push(), "ref": "refs/tags/v1.0"},
    ],
    ids=["other-branch", "other-repository", "deleted-branch", "tag"],
)
def test_a_push_no_route_matches_is_accepted_with_no_run(hook: Hook, payload: Any) -> None:
    sent = hook.deliver("push", payload)
    assert sent.status_code == 202, sent.text
    assert sent.json()["runs"] == []
    assert hook.runs() == []
    assert len(webhooks.deliveries(hook.store, "github")) == 1


def test_pull_request_opened_queues_a_run_with_its_number(hook: Hook) -> None:
    sent = hook.deliver("pull_request", pull_request("opened"))
    assert sent.status_code == 202, sent.text
    [run] = hook.runs()
    assert run["pipeline_id"] == "pr_check"
    # the number was declared an integer: it arrives as one
    assert json.loads(run["params"]) == {"pr": 42, "branch": "fix/typo", "sha": "a" * 40}
    for payload in (
        pull_request("closed"),  # not a default action
        pull_request("opened", head_repo="stranger/data"),  # from a fork
        pull_request("opened", base="develop"),  # another base branch
    ):
        assert hook.deliver("pull_request", payload).json()["runs"] == []
    assert len(hook.runs()) == 1


def test_a_param_the_payload_breaks_is_422_and_the_delivery_can_come_again(hook: Hook) -> None:
    payload = pull_request("synchronize")
    payload["pull_request"]["head"]["ref"] = "Fix/Upper Case"
    delivery = str(uuid.uuid4())
    sent = hook.deliver("pull_request", payload, delivery=delivery)
    assert sent.status_code == 422, sent.text
    message = sent.json()["error"]["message"]
    assert "#2 (pipeline 'pr_check')" in message and "branch" in message
    assert hook.runs() == [] and webhooks.deliveries(hook.store, "github") == []
    payload["pull_request"]["head"]["ref"] = "fix/lower-case"
    assert hook.deliver("pull_request", payload, delivery=delivery).status_code == 202


def test_release_published_queues_a_run_with_its_tag(hook: Hook) -> None:
    payload = {
        "action": "published",
        "release": {"tag_name": "v1.2.0", "name": "1.2.0"},
        "repository": {"full_name": REPO},
        "sender": {"login": "octocat"},
    }
    sent = hook.deliver("release", payload)
    assert sent.status_code == 202, sent.text
    [run] = hook.runs()
    assert (run["pipeline_id"], json.loads(run["params"])) == ("publish", {"tag": "v1.2.0"})
    assert hook.deliver("release", {**payload, "action": "created"}).json()["runs"] == []


def test_ping_answers_with_githubs_zen(hook: Hook) -> None:
    payload = {"zen": "Keep it logically awesome.", "hook_id": 1, "sender": {"login": "octocat"}}
    sent = hook.deliver("ping", payload)
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"ok": True, "zen": "Keep it logically awesome."}
    assert hook.runs() == []


def test_a_replayed_delivery_is_409_and_queues_one_run(hook: Hook) -> None:
    delivery = str(uuid.uuid4())
    first = hook.deliver("push", push(), delivery=delivery)
    again = hook.deliver("push", push(), delivery=delivery)
    assert first.status_code == 202, first.text
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "conflict"
    assert len(hook.runs()) == 1


def test_a_captured_body_resent_under_new_delivery_ids_is_409_and_queues_one_run(
    hook: Hook,
) -> None:
    """X-GitHub-Delivery is not signed: whoever saw one signed delivery could resend its body
    and signature with fresh ids. The body's digest, recorded with the delivery, catches it."""
    body = json.dumps(push()).encode()
    first = hook.deliver("push", body)
    assert first.status_code == 202, first.text
    for _ in range(3):
        again = hook.deliver("push", body)  # the same signature, a new delivery id each time
        assert again.status_code == 409, again.text
        assert again.json()["error"]["code"] == "conflict"
        assert "same signed body" in again.json()["error"]["message"]
    assert len(hook.runs()) == 1
    [row] = webhooks.deliveries(hook.store, "github")
    assert row["delivery_id"] == first.json()["delivery"]
    stored = hook.store.db.scalar("SELECT body_sha256 FROM webhook_deliveries")
    assert stored == hashlib.sha256(body).hexdigest()
    # another push (another body) is a new delivery
    other = hook.deliver("push", push(after="c" * 40))
    assert other.status_code == 202, other.text
    assert len(hook.runs()) == 2
    # a ping's body too is accepted once
    ping = json.dumps({"zen": "z", "hook_id": 1}).encode()
    assert hook.deliver("ping", ping).status_code == 200
    assert hook.deliver("ping", ping).status_code == 409


def test_a_refused_delivery_leaves_no_digest_so_it_can_be_redelivered(hook: Hook) -> None:
    """What failed is not recorded: GitHub's Redeliver (same body) then goes through."""
    body = json.dumps(push()).encode()
    delivery = str(uuid.uuid4())
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert hook.deliver("push", body, delivery=delivery, headers=form).status_code == 415
    assert hook.deliver("push", body, delivery=delivery, secret="wrong").status_code == 401
    assert webhooks.deliveries(hook.store, "github") == []
    assert hook.deliver("push", body, delivery=delivery).status_code == 202
    assert len(hook.runs()) == 1


@pytest.fixture
def store(db_url: str) -> Iterator[Any]:
    """A store on SQLite, then on PostgreSQL, with a pipeline row for `ci`."""
    from lockgate.privacy.keys import Keyring
    from lockgate.store.store import Store

    opened = Store(db_url, keys=Keyring.generate())
    opened.register_pipelines(["ci"])
    try:
        yield opened
    finally:
        opened.close()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("same", ["id", "body"])
def test_concurrent_replays_queue_once(store: Any, same: str) -> None:
    """Requests with one delivery id, or one body under different ids, past the quick look at
    the same moment: the row and the runs share a transaction, so only the first inserts
    either."""
    from lockgate.store.scheduling import SCHEDULER

    results: list[Any] = []
    barrier = threading.Barrier(4)

    def deliver(n: int) -> None:
        run = NewRun(f"run-{n}", "ci", None, {}, "webhook", (1.0, 1.0, 1.0), runner=SCHEDULER)
        delivery = "same-id" if same == "id" else f"id-{n}"
        digest = _digest("same body" if same == "body" else f"body {n}")
        barrier.wait()
        results.append(
            webhooks.accept(
                store, "github", delivery, "push", [run], body_sha256=digest, actor="t", detail={}
            )
        )

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [r for r in results if r is not None]
    assert len(results) == 4 and len(accepted) == 1 and len(accepted[0]) == 1
    assert store.db.scalar("SELECT COUNT(*) FROM runs") == 1
    [row] = webhooks.deliveries(store, "github")
    assert row["runs"] == accepted[0]


def test_old_deliveries_are_pruned_when_new_ones_come(store: Any) -> None:
    def accept(delivery: str, now: float | None = None) -> Any:
        digest = _digest(f"body of {delivery}")
        return webhooks.accept(
            store, "github", delivery, "push", [], body_sha256=digest, actor="t", detail={}, now=now
        )

    long_ago = time.time() - webhooks.KEEP_S - 60
    for n in range(3):
        accept(f"old-{n}", long_ago)
    accept("recent", time.time() - 86400)
    assert webhooks.seen(store, "github", "old-0")
    assert webhooks.seen(store, "github", "another-id", _digest("body of old-0"))
    assert not webhooks.seen(store, "github", "another-id", _digest("another body"))
    accept("new")
    assert [r["delivery_id"] for r in webhooks.deliveries(store, "github")] == ["new", "recent"]
    assert not webhooks.seen(store, "github", "another-id", _digest("body of old-0"))


# -- what is refused before routing ----------------------------------------------------------


def test_an_oversized_body_is_413_before_anything_is_read(open_hook: Any) -> None:
    hook = open_hook(max_body_bytes=4096)
    big = json.dumps({**push(), "padding": "x" * 5000}).encode()
    declared = hook.deliver("push", big)  # Content-Length says it all
    assert declared.status_code == 413, declared.text
    assert declared.json()["error"]["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    streamed = hook.client.post(
        "/api/v1/hooks/github",
        content=chunks(),
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": signature(SECRET, big),
        },
    )
    assert streamed.status_code == 413, streamed.text
    assert hook.runs() == [] and hook.audit("webhook.refused") == []
    assert webhooks.deliveries(hook.store, "github") == []


def test_headers_content_type_and_json_are_checked_after_the_signature(hook: Hook) -> None:
    no_event = hook.deliver("push", push(), headers={"X-GitHub-Event": ""})
    assert no_event.status_code == 400
    assert "X-GitHub-Event" in no_event.json()["error"]["message"]
    no_delivery = hook.deliver("push", push(), headers={"X-GitHub-Delivery": "not a guid!"})
    assert no_delivery.status_code == 400
    form = hook.deliver(
        "push", push(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 415
    assert "application/json" in form.json()["error"]["message"]
    assert hook.deliver("push", b"{not json").status_code == 400
    assert hook.deliver("push", b"[1, 2]").json()["error"]["message"] == (
        "the payload is not a JSON object"
    )
    assert hook.runs() == []


# -- configuration ---------------------------------------------------------------------------


def test_without_a_webhooks_table_the_endpoint_is_404(open_hook: Any) -> None:
    hook = open_hook(config="")
    sent = hook.deliver("push", push())
    assert sent.status_code == 404
    assert "[webhooks.github]" in sent.json()["error"]["message"]


def _server_log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "lockgate.server"]


def test_a_missing_secret_is_503_and_one_log_line(
    open_hook: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hook = open_hook(secret=None)
    caplog.set_level(logging.INFO, "lockgate.server")
    for _ in range(3):
        sent = hook.deliver("push", push())
        assert sent.status_code == 503, sent.text
        assert sent.json()["error"]["code"] == "unavailable"
        assert (
            "github/webhook" not in sent.json()["error"]["message"]
        )  # the reason stays in the log
    lines = _server_log_lines(caplog)
    assert len(lines) == 1, lines  # once, not once per delivery
    [line] = lines
    assert "\n" not in line
    assert "secret 'github/webhook' not found" in line and SECRET_VAR in line


def test_a_secret_that_cannot_be_read_is_not_looked_up_again_for_every_request(
    open_hook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the webhook secret cannot be read (missing, its backend down), a flood of
    unsigned requests costs one backend lookup a minute, not one each: the failure is
    remembered as long as a value would be. The env backend reads the variable live, so a
    lookup after the variable is set would find it: the 503s below prove none happened."""
    hook = open_hook(secret=None)
    for _ in range(20):
        assert hook.deliver("push", push(), signed=False).status_code == 503
    monkeypatch.setenv(SECRET_VAR, SECRET)  # the secret is back ...
    for _ in range(5):  # ... but within the minute, nothing asks the backend again
        sent = hook.deliver("push", push())
        assert sent.status_code == 503, sent.text
    assert hook.runs() == [] and hook.audit("secret.read") == []
    hooks._secret_cache.clear()  # the minute is over: read once more, and found
    assert hook.deliver("push", push()).status_code == 202
    for _ in range(20):
        assert hook.deliver("push", push(), signed=False).status_code == 401
    assert len(hook.audit("secret.read")) == 1  # one read for all of those requests


def test_an_unknown_pipeline_in_a_route_is_a_config_error_and_the_api_still_serves(
    open_hook: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config = CONFIG.replace('pipeline = "publish"', 'pipeline = "publsh"')
    hook = open_hook(config=config)
    found = github_config(hook.project)
    assert found is not None
    with pytest.raises(ConfigError) as caught:
        check_pipelines(found, hook.state.pipelines(), hook.project)
    message = str(caught.value)
    assert message.count("\n") == 0
    assert "lockgate.toml" in message and "#3 (pipeline 'publsh')" in message
    assert "no pipeline 'publsh'" in message and "publish" in message  # did you mean
    caplog.set_level(logging.INFO, "lockgate.server")
    sent = hook.deliver("push", push())
    assert sent.status_code == 503
    assert any("no pipeline 'publsh'" in line for line in _server_log_lines(caplog))
    # the rest of the API is served as ever
    token = accounts.create_token(_admin(hook), "admin", actor="test")
    listed = hook.client.get("/api/v1/pipelines", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    assert {p["id"] for p in listed.json()["items"]} == {"ci", "pr_check", "publish"}


def _admin(hook: Hook) -> Any:
    accounts.create_user(hook.store, "admin", "admin", actor="test", password="a long password 1")
    return hook.store


ROUTE = '[webhooks.github]\nsecret = "github/webhook"\n[[webhooks.github.routes]]\n'


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("[webhooks.gitlab]\nsecret = 'x'\n", "unknown table [webhooks.gitlab]"),
        ("[webhooks.github]\nroutes = []\n", 'needs secret = "NAME"'),
        ("[webhooks.github]\nsecret = 'bad name!'\n", "invalid secret name"),
        ("[webhooks.github]\nsecret = 'x'\nsecrett = 'y'\n", "did you mean 'secret'"),
        (ROUTE + 'event = "issues"\npipeline = "ci"\n', "event must be one of push, pull_request"),
        (ROUTE + 'event = "push"\n', "pipeline must be a pipeline id"),
        (
            ROUTE + 'event = "pull_request"\npipeline = "ci"\nactions = ["synchronized"]\n',
            "no pull_request action 'synchronized'",
        ),
        (ROUTE + 'event = "push"\npipeline = "ci"\nactions = ["opened"]\n', "no actions"),
        (ROUTE + 'event = "release"\npipeline = "ci"\nbranches = ["main"]\n', "not releases"),
        (ROUTE + 'event = "push"\npipeline = "ci"\nbranches = "main"\n', "non-empty list"),
        (ROUTE + 'event = "push"\npipeline = "ci"\nrepositories = ["data"]\n', "owner/name"),
        (ROUTE + 'event = "push"\npipeline = "ci"\nforks = true\n', "forks is true or false"),
        (
            ROUTE + 'event = "push"\npipeline = "ci"\nparams = { pr = "pr_number" }\n',
            "push deliveries offer",
        ),
        (ROUTE + 'event = "push"\npipeline = "ci"\nbranch = ["main"]\n', "did you mean 'branches'"),
    ],
)
def test_configuration_errors_are_one_line(tmp_path: Path, config: str, expected: str) -> None:
    project = make_project(tmp_path, config)
    with pytest.raises(ConfigError) as caught:
        github_config(project)
    message = str(caught.value)
    assert expected in message, message
    assert "\n" not in message and message.startswith(str(tmp_path / "lockgate.toml"))


def test_a_param_the_pipeline_does_not_declare_is_a_config_error(tmp_path: Path) -> None:
    config = ROUTE + 'event = "push"\npipeline = "publish"\nparams = { sha = "sha" }\n'
    project = make_project(tmp_path, config)
    found = github_config(project)
    assert found is not None
    from lockgate.scheduler.registry import Registry

    registry = Registry(project.pipelines_dir)
    registry.reload()
    with pytest.raises(ConfigError, match=r"declares no param 'sha' \(declared: tag\)"):
        check_pipelines(found, registry.pipelines, project)


def test_the_secret_value_is_in_no_answer_or_record(hook: Hook) -> None:
    for sent in (
        hook.deliver("push", push()),
        hook.deliver("push", push(), secret="wrong"),
        hook.deliver("ping", {"zen": "z"}),
    ):
        assert SECRET not in sent.text
    hook.state.audit.flush()
    assert all(SECRET not in (r.detail or "") for r in hook.store.audit_records(limit=10_000))
