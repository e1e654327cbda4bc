"""`/metrics`: names and values after real runs (a success, a failure, a write the policy gate
refused), queue depth, HTTP requests by status; 401 without credentials, 403 without the
project-wide read permission; the unauthenticated metrics port of `lockgate up`, loopback only,
with the scheduler's latency."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from tests.governance.helpers import make_prod, provision

import lockgate
from lockgate import api
from lockgate.auth import accounts
from lockgate.authoring.discovery import load_file
from lockgate.config import Project
from lockgate.server import metrics
from lockgate.server.app import create_app

from .serving import LOOPBACK_V4, Served, admin_token, listening, wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition: (name, sorted labels) -> value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def site(project: Project) -> Iterator[tuple[Project, TestClient, str]]:
    """A project with a prod database and a staging zone (the gate refuses raw PII there),
    pipelines `ok` and `bad`; an app with /metrics and an admin token."""
    prod = make_prod(project)
    folder = prod.root / "pipelines"
    (folder / "ok.yaml").write_text('tasks:\n  fine:\n    shell: "true"\n')
    (folder / "bad.yaml").write_text('tasks:\n  broken:\n    shell: "exit 3"\n')
    app = create_app(prod)
    metrics.install(app)  # as create_app does; calling it again changes nothing
    token = admin_token(prod)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield prod, client, token


def _scrape(client: TestClient, **kw: Any) -> Samples:
    response = client.get("/metrics", **kw)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def test_metrics_count_runs_tasks_and_policy_violations(
    site: tuple[Project, TestClient, str],
) -> None:
    prod, client, _ = site
    pipes = {
        p.id: p for f in ("ok.yaml", "bad.yaml") for p in load_file(prod.root / "pipelines" / f)
    }
    assert lockgate.run(pipes["ok"], project=prod).ok
    assert not lockgate.run(pipes["bad"], project=prod).ok
    refused = lockgate.run(provision(prod, masked=False), project=prod)
    assert refused.tasks["load"].state == "failed"
    queued = api.trigger("ok", project=prod)  # no scheduler: it waits in the queue

    def counted() -> Samples | None:
        samples = _scrape(client)
        done = value(samples, "lockgate_runs_finished_total", pipeline="provision", state="failed")
        return samples if done else None

    samples = wait_until(counted, what="the three runs in the metrics")
    finished = {
        (dict(labels)["pipeline"], dict(labels)["state"]): v
        for (name, labels), v in samples.items()
        if name == "lockgate_runs_finished_total"
    }
    assert finished == {("ok", "success"): 1, ("bad", "failed"): 1, ("provision", "failed"): 1}
    # attempts: fine (success), broken (failed), extract (success), load (failed)
    assert value(samples, "lockgate_task_duration_seconds_count", state="success") == 2
    assert value(samples, "lockgate_task_duration_seconds_count", state="failed") == 2
    assert value(samples, "lockgate_task_duration_seconds_bucket", state="success", le="+Inf") == 2
    assert value(samples, "lockgate_policy_violations_total", zone="staging") == 1
    assert value(samples, "lockgate_policy_decisions_total", decision="deny") == 1
    assert value(samples, "lockgate_policy_decisions_total", decision="allow") == 1
    # now: the triggered run waits in the queue; nothing runs
    assert value(samples, "lockgate_queue_depth") == 1
    assert value(samples, "lockgate_runs", pipeline="ok", state="queued") == 1
    assert not [k for k in samples if k[0] == "lockgate_tasks"]
    assert value(samples, "lockgate_scheduler_latency_seconds_count") == 0  # no scheduled run
    # HTTP requests by status, the metrics requests themselves included
    assert (value(samples, "lockgate_http_requests_total", method="GET", status="200") or 0) >= 1
    api.open_store(prod).request_cancel(queued, "test")


def test_metrics_need_credentials_and_the_project_wide_read_permission(
    site: tuple[Project, TestClient, str],
) -> None:
    prod, client, _ = site
    anonymous = client.get("/metrics", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    del client.headers["Authorization"]
    assert client.get("/metrics").status_code == 401
    store = api.open_store(prod)
    run_only = accounts.create_token(store, "admin", actor="test", scopes=["run"])
    refused = client.get("/metrics", headers={"Authorization": f"Bearer {run_only}"})
    assert refused.status_code == 403
    assert "read permission" in refused.json()["error"]["message"]
    # every role has the project-wide read permission: a viewer may scrape
    accounts.create_user(store, "vic", "viewer", actor="test", password="a long enough secret")
    viewer = accounts.create_token(store, "vic", actor="test")
    assert client.get("/metrics", headers={"Authorization": f"Bearer {viewer}"}).status_code == 200
    # requests refused are counted by status
    samples = parse(client.get("/metrics", headers={"Authorization": f"Bearer {viewer}"}).text)
    for status in ("401", "403"):
        assert (
            value(samples, "lockgate_http_requests_total", method="GET", status=status) or 0
        ) >= 1


TICK = """\
id: tick
schedule: every 1s
start_date: "2024-01-01T00:00:00+00:00"
tasks:
  t:
    shell: "true"
"""


def test_the_metrics_port_serves_without_credentials_on_loopback_only(project: Project) -> None:
    (project.root / "pipelines" / "tick.yaml").write_text(TICK)
    token = admin_token(project)
    server = Served(project.root, "up", "--port", "0", "--metrics-port", "0").ready()
    try:
        url = server.metrics_url
        assert url.startswith("http://127.0.0.1:")
        port = int(url.split(":")[2].split("/")[0])
        assert listening(port) == [LOOPBACK_V4]
        with httpx.Client(timeout=10) as client:

            def scheduled() -> Samples | None:
                samples = parse(client.get(url).text)
                ran = value(
                    samples, "lockgate_runs_finished_total", pipeline="tick", state="success"
                )
                late = value(samples, "lockgate_scheduler_latency_seconds_count")
                return samples if ran and late else None

            samples = wait_until(scheduled, what="scheduled runs in the metrics")
            assert (value(samples, "lockgate_scheduler_latency_seconds_count") or 0) >= 1
            assert client.get(url.replace("/metrics", "/api/v1/runs")).status_code == 404
            assert client.post(url).status_code == 405
        with server.client() as main:
            assert main.get("/metrics").status_code == 401  # the main port wants a token
        with server.client(token) as main:
            assert "lockgate_queue_depth" in main.get("/metrics").text
    finally:
        code = server.stop(signal.SIGTERM)
    assert code == 0, server
