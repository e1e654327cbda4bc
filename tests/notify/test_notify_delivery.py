"""Delivery: retried with backoff on connection errors, 5xx and 429 (Retry-After honoured), not
on other 4xx; given up after `retries`; each notification recorded (pending -> sent | failed,
attempts, last error); a channel that fails never fails the run, and `close()` waits a bounded
time."""

from __future__ import annotations

import pytest

from lockgate import api, task
from lockgate.config import Project
from lockgate.model import events as ev
from lockgate.model.states import RunState
from lockgate.notify.delivery import MAX_BACKOFF_S, Notifier, backoff
from lockgate.notify.sending import MAX_RETRY_AFTER_S, retry_after
from lockgate.store import notifications
from lockgate.store.store import Store

from .helpers import configure, make_pipeline, notifier, publish, webhook_toml
from .servers import HttpServer, dead_url


def _failed_run(project: Project, store: Store | None = None) -> Notifier:
    found = notifier(project, store=store)
    publish(found, ev.TASK_FAILED, task_id="load", attempt=1, data={"error": "boom"})
    publish(found, ev.RUN_FINISHED, state="failed", data={"failed_tasks": ["load"]})
    found.close()
    return found


def test_retried_after_server_errors_then_sent_and_recorded(
    project: Project, hook: HttpServer
) -> None:
    hook.fail_first = 2
    configured = configure(project, webhook_toml(hook.url))
    store = api.open_store(configured)
    found = _failed_run(configured, store)
    [delivery] = found.deliveries
    assert (delivery.state, delivery.attempts) == ("sent", 3)
    assert len(hook.wait_for(3)) == 3
    [row] = notifications.recent(store)
    assert (row["state"], row["attempts"], row["last_error"]) == ("sent", 3, None)
    assert (row["event"], row["channel"], row["kind"]) == ("run_failed", "hook", "webhook")
    assert (row["pipeline_id"], row["task_id"]) == ("nightly", "load")
    assert row["subject"].startswith("lockgate: nightly failed")
    assert row["sent_at"] is not None


def test_too_many_requests_is_retried_after_the_servers_delay(
    project: Project, hook: HttpServer
) -> None:
    hook.fail_first, hook.fail_status, hook.retry_after = 1, 429, "0"
    found = _failed_run(configure(project, webhook_toml(hook.url)))
    [delivery] = found.deliveries
    assert (delivery.state, delivery.attempts) == ("sent", 2)


def test_given_up_after_the_retries_and_recorded_as_failed(
    project: Project, hook: HttpServer
) -> None:
    hook.fail_first = 100
    configured = configure(project, webhook_toml(hook.url))  # retries = 3
    store = api.open_store(configured)
    found = _failed_run(configured, store)
    [delivery] = found.deliveries
    assert (delivery.state, delivery.attempts) == ("failed", 4)
    assert len(hook.requests) == 4
    [row] = notifications.recent(store)
    assert (row["state"], row["attempts"]) == ("failed", 4)
    assert row["last_error"] == "HTTP 500: failed on purpose (after 4 attempts)"
    assert row["sent_at"] is None


@pytest.mark.parametrize("status", [400, 404, 410])
def test_other_client_errors_are_not_retried(
    project: Project, hook: HttpServer, status: int
) -> None:
    hook.status = status
    found = _failed_run(configure(project, webhook_toml(hook.url)))
    [delivery] = found.deliveries
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert str(delivery.last_error).startswith(f"HTTP {status}")
    assert len(hook.requests) == 1


def test_a_server_that_is_down_is_retried_then_given_up(project: Project) -> None:
    found = _failed_run(configure(project, webhook_toml(dead_url())))
    [delivery] = found.deliveries
    assert (delivery.state, delivery.attempts) == ("failed", 4)
    assert str(delivery.last_error).startswith("cannot connect: ConnectError")


def test_close_waits_a_bounded_time_then_records_what_is_left_as_failed(
    project: Project, hook: HttpServer
) -> None:
    hook.fail_first = 100
    toml = webhook_toml(hook.url).replace("backoff_seconds = 0.01", "backoff_seconds = 30")
    toml = toml.replace("close_wait_seconds = 20", "close_wait_seconds = 0.5")
    configured = configure(project, toml)
    store = api.open_store(configured)
    found = _failed_run(configured, store)
    [delivery] = found.deliveries
    assert delivery.state == "failed"
    assert delivery.last_error == (
        "not delivered within close_wait_seconds (0.5s) after the run ended; last error: "
        "HTTP 500: failed on purpose"
    )
    [row] = notifications.recent(store)
    assert (row["state"], row["last_error"]) == ("failed", delivery.last_error)


def test_without_a_store_notifications_are_delivered_unrecorded(
    project: Project, hook: HttpServer
) -> None:
    found = _failed_run(configure(project, webhook_toml(hook.url)), store=None)
    [delivery] = found.deliveries
    assert (delivery.state, delivery.row_id) == ("sent", None)
    assert hook.wait_for(1)[0].json()["event"] == "run_failed"


@task
def fine() -> str:
    return "ok"


def test_a_missing_secret_is_a_recorded_failure_and_the_run_still_succeeds(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOCKGATE_SECRET_SLACK_OPS", raising=False)
    configured = configure(
        project,
        "[notify]\nretries = 3\nbackoff_seconds = 0.01\n"
        '[notify.channels.ops]\ntype = "slack"\nurl_secret = "slack/ops"\n'
        '[[notify.rules]]\non = ["run_succeeded"]\nchannels = ["ops"]\n',
    )
    from lockgate import pipeline

    with pipeline("nightly") as p:
        fine()
    result = api.run(p, project=configured)
    assert result.state is RunState.SUCCESS
    store = api.open_store(configured)
    [row] = notifications.recent(store, result.run_id)
    assert (row["event"], row["state"], row["attempts"]) == ("run_succeeded", "failed", 1)
    assert row["last_error"].startswith("secret 'slack/ops' not found; looked in: env")


def test_messages_and_records_are_redacted(
    project: Project, hook: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lockgate.secrets import get_secret

    monkeypatch.setenv("LOCKGATE_SECRET_DB_PASSWORD", "s3cr3t-Value-42xyz")
    configured = configure(project, webhook_toml(hook.url))
    value = get_secret("db/password", configured)  # read, so registered for redaction
    store = api.open_store(configured)
    found = notifier(configured, store=store)
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # shaped like a GitHub token
    publish(
        found,
        ev.TASK_FAILED,
        task_id="load",
        attempt=1,
        data={"error": f"login failed with {value} and {token}"},
    )
    publish(found, ev.RUN_FINISHED, state="failed", data={"failed_tasks": ["load"]})
    found.close()
    [request] = hook.wait_for(1)
    body = request.body.decode()
    assert value not in body and token not in body
    assert request.json()["error"] == "login failed with *** and ***"
    [row] = notifications.recent(store)
    assert value not in str(row) and token not in str(row)


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    assert 0.5 <= backoff(1.0, 1) <= 1.0
    assert 4.0 <= backoff(1.0, 4) <= 8.0
    assert MAX_BACKOFF_S / 2 <= backoff(1.0, 20) <= MAX_BACKOFF_S
    assert backoff(1.0, 3, retry_after=7.0) == 7.0
    assert retry_after("5") == 5.0
    assert retry_after("3600") == MAX_RETRY_AFTER_S
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after("soon") is None and retry_after(None) is None


def test_a_run_without_a_matching_rule_has_no_notifier(project: Project, hook: HttpServer) -> None:
    from lockgate.notify import subscriber_for

    configured = configure(project, webhook_toml(hook.url, rule='pipelines = ["hourly"]\n'))
    assert subscriber_for(configured, make_pipeline("nightly"), None) is None
    assert subscriber_for(configured, make_pipeline("hourly"), None) is not None
