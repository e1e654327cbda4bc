"""Which events become which notifications, published on an EventBus as the engine publishes
them: refused writes, failed data-quality checks (one notification per task attempt), retries,
SLA deadlines (a real run with a slow task), and nothing for what no rule asks for."""

from __future__ import annotations

import time
from typing import Any

from lockgate import api, pipeline, task
from lockgate.config import Project
from lockgate.engine.events import EventBus
from lockgate.model import events as ev
from lockgate.model import facts
from lockgate.model.states import RunState
from lockgate.store import notifications

from .helpers import configure, make_pipeline, notifier, publish, webhook_toml
from .servers import HttpServer

ALL = '["run_failed", "run_succeeded", "task_retrying", "policy_violation", "quality_failed"]'

VIOLATION: dict[str, Any] = {
    "dataset": "/srv/staging.db#customers",
    "zone": "staging",
    "decision": "deny",
    "source_zones": ["prod"],
    "columns": [{"name": "email", "tag": "pii.email"}],
    "violations": [
        {
            "rule": "gdpr.no-raw-pii-below-prod",
            "column": "email",
            "tag": "pii.email",
            "class": "pii",
            "form": "raw",
            "zone": "staging",
            "severity": "error",
            "message": "column email (pii.email, raw) may not be written to zone staging",
        }
    ],
}


def _check(name: str, passed: bool, rows: int = 0) -> dict[str, object]:
    return {
        "dataset": "/srv/out/orders.parquet",
        "name": name,
        "check": name.split("(")[0],
        "severity": "error",
        "passed": passed,
        "failing_rows": rows,
        "examples": [{"email": "ann@example.org"}],
        "message": f"{name}: {rows} row(s)",
    }


def test_a_refused_write_and_failed_checks_are_notified(project: Project, hook: HttpServer) -> None:
    found = notifier(configure(project, webhook_toml(hook.url, on=ALL)))
    bus = EventBus()
    bus.subscribe(found)
    publish(bus, ev.RUN_STARTED, state="running")
    publish(bus, facts.POLICY_VIOLATION, task_id="load", attempt=1, data=VIOLATION)
    publish(bus, facts.QUALITY_CHECKED, task_id="check", attempt=1, data=_check("unique(id)", True))
    publish(
        bus,
        facts.QUALITY_CHECKED,
        task_id="check",
        attempt=1,
        data=_check("not_null(email)", False, 3),
    )
    publish(
        bus,
        facts.QUALITY_CHECKED,
        task_id="check",
        attempt=1,
        data=_check("range(amount)", False, 2),
    )
    publish(bus, ev.TASK_SUCCEEDED, task_id="check", attempt=1, state="success")
    publish(bus, ev.RUN_FINISHED, state="success", data={"failed_tasks": [], "duration_s": 1.5})
    found.close()
    docs = [r.json() for r in hook.wait_for(3)]
    assert [d["event"] for d in docs] == ["policy_violation", "quality_failed", "run_succeeded"]
    violation, quality, done = docs
    assert violation["task_id"] == "load"
    assert violation["details"]["dataset"] == "/srv/staging.db#customers"
    assert violation["details"]["violations"][0]["rule"] == "gdpr.no-raw-pii-below-prod"
    assert violation["error"] == VIOLATION["violations"][0]["message"]
    assert (
        "the write to /srv/staging.db#customers (zone staging) was refused" in violation["subject"]
    )
    assert quality["task_id"] == "check" and quality["details"]["count"] == 2
    assert [c["name"] for c in quality["details"]["checks"]] == ["not_null(email)", "range(amount)"]
    assert "examples" not in quality["details"]["checks"][0]  # no data rows in notifications
    assert quality["subject"].startswith(
        "lockgate: 2 data-quality check(s) failed in nightly.check"
    )
    assert "- not_null(email) on /srv/out/orders.parquet: 3 row(s)" in quality["text"]
    assert done["details"]["duration"] == "1.5s"
    assert len(hook.requests) == 3


def test_a_retry_is_notified_and_a_cancelled_run_is_not(project: Project, hook: HttpServer) -> None:
    found = notifier(configure(project, webhook_toml(hook.url, on=ALL)))
    publish(
        found,
        ev.TASK_RETRYING,
        task_id="load",
        attempt=1,
        state="up_for_retry",
        data={"error": "ConnectionError: reset\nmore", "retry_in_s": 30.0},
    )
    publish(found, ev.RUN_FINISHED, state="cancelled", data={"failed_tasks": []})
    found.close()
    [request] = hook.wait_for(1)
    doc = request.json()
    assert doc["event"] == "task_retrying" and doc["error"] == "ConnectionError: reset"
    assert doc["subject"] == (
        "lockgate: nightly.load attempt 1 failed, retrying in 30s (run 20261124T031400-9f2c1a0b3e4d)"
    )
    assert len(hook.requests) == 1


def test_only_the_events_a_rule_asks_for_start_anything(project: Project, hook: HttpServer) -> None:
    found = notifier(configure(project, webhook_toml(hook.url, on='["run_failed"]')))
    publish(found, ev.RUN_STARTED, state="running")
    publish(found, ev.TASK_STARTED, task_id="load", attempt=1)
    publish(found, ev.TASK_SUCCEEDED, task_id="load", attempt=1)
    publish(found, facts.QUALITY_CHECKED, task_id="load", attempt=1, data=_check("x", False, 1))
    publish(found, ev.RUN_FINISHED, state="success", data={"failed_tasks": []})
    assert found._thread is None  # nothing was queued: no thread, nothing to wait for
    found.close()
    assert found.deliveries == [] and hook.requests == []


@task
def slow() -> str:
    time.sleep(1.5)
    return "done"


@task
def quick() -> str:
    return "done"


def test_a_task_past_its_sla_is_notified_once_and_one_in_time_is_not(
    project: Project, hook: HttpServer
) -> None:
    configured = configure(
        project,
        webhook_toml(hook.url, on='["sla_missed"]')
        + '\n[notify.sla]\n"sla.slow" = "0.3s"\n"sla.quick" = "30s"\n',
    )
    with pipeline("sla") as p:
        quick() >> slow()
    result = api.run(p, project=configured)
    assert result.state is RunState.SUCCESS
    [request] = hook.wait_for(1)
    doc = request.json()
    assert (doc["event"], doc["task_id"], doc["run_id"]) == ("sla_missed", "slow", result.run_id)
    assert doc["details"]["deadline"] == "0.3s" and doc["details"]["scope"] == "task"
    assert doc["subject"] == (
        f"lockgate: sla.slow missed its SLA: still running after 0.3s (run {result.run_id})"
    )
    [row] = notifications.recent(api.open_store(configured), result.run_id)
    assert (row["event"], row["state"]) == ("sla_missed", "sent")
    assert len(hook.requests) == 1  # once; `quick` finished in time


def test_a_run_past_its_sla_is_notified(project: Project, hook: HttpServer) -> None:
    configured = configure(
        project, webhook_toml(hook.url, on='["sla_missed"]') + '\n[notify.sla]\nsla = "0.3s"\n'
    )
    with pipeline("sla") as p:
        slow()
    result = api.run(p, project=configured)
    doc = hook.wait_for(1)[0].json()
    assert (doc["event"], doc["task_id"], doc["run_id"]) == ("sla_missed", None, result.run_id)
    assert doc["details"]["scope"] == "run"


def test_rules_choose_pipelines_by_id_or_tag_and_the_first_rule_per_channel_wins(
    project: Project, hook: HttpServer
) -> None:
    toml = (
        webhook_toml(hook.url, rule='pipelines = ["tag:pii"]\ntemplate = "PII {{ pipeline_id }}"\n')
        + '[[notify.rules]]\non = ["run_failed"]\nchannels = ["hook"]\ntemplate = "ALL"\n'
    )
    configured = configure(project, toml)
    for pipe in (make_pipeline("tagged", tags=["pii"]), make_pipeline("plain")):
        found = notifier(configured, pipe)
        publish(found, ev.RUN_FINISHED, state="failed", data={"failed_tasks": ["load"]})
        found.close()
    assert [r.json()["text"] for r in hook.wait_for(2)] == ["PII tagged", "ALL"]
