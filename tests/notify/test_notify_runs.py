"""Notifications from real runs of pipeline files: a failed run reaches the webhook with its run
id, a secret a task raised is `***` in everything sent and recorded, failed data-quality checks
and a write the policy gate refused are notified; and the `lockgate notify` commands."""

from __future__ import annotations

import base64
import json
import sqlite3
import textwrap

import pytest
from tests.cli.helpers import lockgate

from lockgate import api
from lockgate.authoring.discovery import load_file
from lockgate.config import Project
from lockgate.model.pipeline import Pipeline
from lockgate.model.states import RunState
from lockgate.store import notifications

from .helpers import configure, webhook_toml
from .servers import HttpServer, dead_url

SECRET = "Tr0ub4dor-and-3-horses-battery"

FAILING = """
from lockgate import pipeline, task
from lockgate.secrets import get_secret


@task
def extract() -> str:
    return "rows"


@task
def load(rows: str) -> None:
    token = get_secret("api/token")
    encoded = __import__("base64").b64encode(token.encode()).decode()
    raise RuntimeError(f"the API refused token {token} (sent as {encoded})")


with pipeline("etl") as p:
    load(extract())
"""


def _pipeline(project: Project, name: str, text: str) -> Pipeline:
    file = project.root / "pipelines" / name
    file.write_text(textwrap.dedent(text), encoding="utf-8")
    [pipe] = load_file(file)
    return pipe


def test_a_failed_run_is_notified_with_its_run_id_and_no_secret(
    project: Project, hook: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCKGATE_SECRET_API_TOKEN", SECRET)
    configured = configure(
        project, webhook_toml(hook.url, extra='base_url = "http://127.0.0.1:8080"\n')
    )
    result = api.run(_pipeline(configured, "etl.py", FAILING), project=configured)
    assert result.state is RunState.FAILED
    [request] = hook.wait_for(1)
    doc = request.json()
    assert (doc["event"], doc["run_id"], doc["pipeline_id"]) == ("run_failed", result.run_id, "etl")
    assert doc["task_id"] == "load"
    assert doc["error"].endswith("the API refused token *** (sent as ***)")
    assert doc["url"] == f"http://127.0.0.1:8080/runs/{result.run_id}"
    encoded = base64.b64encode(SECRET.encode()).decode()
    for form in (SECRET, encoded):
        assert form not in request.body.decode()
    store = api.open_store(configured)
    [row] = notifications.recent(store, result.run_id)
    assert (row["event"], row["state"], row["task_id"]) == ("run_failed", "sent", "load")
    every = store.db.rows("SELECT * FROM notifications")
    assert SECRET not in json.dumps(every) and encoded not in json.dumps(every)


QUALITY = """
from lockgate import copy, pipeline

with pipeline("ingest") as p:
    copy(
        "orders",
        source="data/orders.csv",
        target="out/orders.parquet",
        checks=[{"regex": {"column": "email", "pattern": "[^@]+@[^@]+"}}, {"unique": "id"}],
    )
"""


def test_failed_quality_checks_in_a_run_are_notified(project: Project, hook: HttpServer) -> None:
    (project.root / "data").mkdir()
    (project.root / "data" / "orders.csv").write_text(
        "id,email\n1,a@example.org\n2,\n2,c@example.org\n"
    )
    configured = configure(project, webhook_toml(hook.url, on='["quality_failed", "run_failed"]'))
    result = api.run(_pipeline(configured, "ingest.py", QUALITY), project=configured)
    assert result.state is RunState.FAILED
    quality, failed = (r.json() for r in hook.wait_for(2))
    assert (quality["event"], quality["task_id"], quality["run_id"]) == (
        "quality_failed",
        "orders",
        result.run_id,
    )
    assert sorted(c["name"] for c in quality["details"]["checks"]) == [
        "regex(email)",
        "unique(id)",
    ]
    assert "a@example.org" not in json.dumps(quality)  # no example rows
    assert failed["event"] == "run_failed"


def test_a_write_the_policy_gate_refused_is_notified(project: Project, hook: HttpServer) -> None:
    from tests.governance.helpers import TOML, make_prod, provision

    make_prod(project)
    configured = configure(project, TOML + "\n" + webhook_toml(hook.url, on='["policy_violation"]'))
    result = api.run(provision(configured, masked=False), project=configured)  # type: ignore[arg-type]
    assert result.state is RunState.FAILED
    doc = hook.wait_for(1)[0].json()
    assert (doc["event"], doc["task_id"], doc["run_id"]) == (
        "policy_violation",
        "load",
        result.run_id,
    )
    assert doc["details"]["zone"] == "staging"
    assert doc["details"]["dataset"].endswith("staging.db#customers")
    assert {v["column"] for v in doc["details"]["violations"]} >= {"email"}
    with sqlite3.connect(project.root / ".lockgate" / "lockgate.db") as conn:
        [(state,)] = conn.execute("SELECT state FROM notifications").fetchall()
    assert state == "sent"


# -- the CLI ------------------------------------------------------------------------------------
RUNNABLE = """
from lockgate import pipeline, shell

with pipeline("hello") as p:
    shell("say", "echo hello")
"""


def test_the_notify_commands(project: Project, hook: HttpServer) -> None:
    root = project.root
    configure(
        project,
        webhook_toml(hook.url, on='["run_succeeded"]')
        + f'\n[notify.channels.down]\ntype = "webhook"\nurl = "{dead_url()}"\n'
        '\n[notify.channels.ops]\ntype = "slack"\nurl_secret = "slack/ops"\n',
    )
    listed = lockgate(root, "notify", "channels")
    assert listed.code == 0, listed
    assert "hook" in listed.out and "URL in secret 'slack/ops'" in listed.out
    doc = json.loads(lockgate(root, "notify", "channels", "--json").out)
    assert [c["name"] for c in doc["channels"]] == ["hook", "down", "ops"]
    assert doc["rules"][0]["on"] == ["run_succeeded"]

    sent = lockgate(root, "notify", "test", "hook")
    assert sent.code == 0, sent
    assert "sent a test message to channel hook (webhook)" in sent.out
    assert hook.wait_for(1)[0].json()["event"] == "test"

    down = lockgate(root, "notify", "test", "down")
    assert down.code == 1, down
    assert down.err.splitlines() == [
        "error: channel down (webhook): cannot connect: ConnectError: [Errno 111] Connection refused"
    ]
    missing = lockgate(root, "notify", "test", "ops")
    assert missing.code == 1 and len(missing.err.splitlines()) == 1
    assert "secret 'slack/ops' not found" in missing.err
    unknown = lockgate(root, "notify", "test", "hok")
    assert unknown.code == 2 and "did you mean 'hook'?" in unknown.err

    (root / "pipelines" / "hello.py").write_text(RUNNABLE, encoding="utf-8")
    ran = lockgate(root, "run", "hello", "--json")
    assert ran.code == 0, ran
    run_id = ran.json()["run_id"]
    assert hook.wait_for(2)[1].json()["run_id"] == run_id

    rows = json.loads(lockgate(root, "notify", "list", "--json").out)["notifications"]
    assert [(r["event"], r["channel"], r["state"]) for r in rows] == [
        ("run_succeeded", "hook", "sent"),
        ("test", "ops", "failed"),
        ("test", "down", "failed"),
        ("test", "hook", "sent"),
    ]
    only = json.loads(lockgate(root, "notify", "list", "--run", run_id[:20], "--json").out)
    assert [r["run_id"] for r in only["notifications"]] == [run_id]
    table = lockgate(root, "notify", "list", "--limit", "2")
    assert table.code == 0 and "run_succeeded" in table.out and "hook (webhook)" in table.out


def test_a_failing_channel_warns_in_one_line_and_never_fails_the_run(project: Project) -> None:
    root = project.root
    toml = webhook_toml(dead_url(), on='["run_succeeded"]').replace("retries = 3", "retries = 1")
    configure(project, toml)
    (root / "pipelines" / "hello.py").write_text(RUNNABLE, encoding="utf-8")
    ran = lockgate(root, "run", "hello", "--json")
    assert ran.code == 0, ran
    assert ran.json()["state"] == "success"
    warnings = [line for line in ran.err.splitlines() if line.startswith("lockgate: notify:")]
    assert len(warnings) == 1, ran
    assert "run_succeeded of run" in warnings[0] and "not delivered to channel hook" in warnings[0]
    assert "cannot connect" in warnings[0]


ALERTING = """
from lockgate import pipeline, task
from lockgate.secrets import get_secret


@task
def watch(ctx) -> int:
    token = get_secret("api/token")
    ctx.alert("3 anomalies in the app logs", f"- 5xx spike 13:40-13:50\\n- token {token} seen")
    return 3


with pipeline("watcher") as p:
    watch()
"""


def test_an_alert_a_task_raises_is_sent_and_the_run_goes_on(
    project: Project, hook: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCKGATE_SECRET_API_TOKEN", SECRET)
    configured = configure(project, webhook_toml(hook.url, on='["task_alert", "run_failed"]'))
    result = api.run(_pipeline(configured, "watcher.py", ALERTING), project=configured)
    assert result.state is RunState.SUCCESS and result.result("watch") == 3
    [request] = hook.wait_for(1)
    doc = request.json()
    assert (doc["event"], doc["task_id"], doc["run_id"]) == ("task_alert", "watch", result.run_id)
    assert doc["details"]["title"] == "3 anomalies in the app logs"
    assert doc["details"]["text"] == "- 5xx spike 13:40-13:50\n- token *** seen"
    assert SECRET not in request.body.decode()
    store = api.open_store(configured)
    events = store.db.rows("SELECT kind, data FROM events WHERE run_id = ?", (result.run_id,))
    assert "TaskAlert" in {e["kind"] for e in events}, "the alert is recorded with the run"
    assert SECRET not in json.dumps(events)


def test_an_alert_needs_a_title() -> None:
    from lockgate.engine.context import TaskContext

    ctx = TaskContext("r", "p", "t", 1)
    with pytest.raises(ValueError, match="an alert needs a title"):
        ctx.alert("  ")
    assert ctx.alert("outside a run") is False
