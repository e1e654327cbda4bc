"""examples/finops end to end: a generated month of hourly AWS CUR-shaped billing lines with
injected idle instances and a fast-growing service goes through the real CLI (aggregate, idle,
growth, report, alert), with Slack replaced by a local HTTP server and nothing else replaced."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tests.cli.helpers import lockgate
from tests.examples.helpers import example_copy
from tests.notify.servers import http_server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "finops"
MAX_FALSE_IDLE = 1  # of 200 resources, at most one not injected idle is reported idle
MAX_FALSE_GROWING = 1  # of 15 account/service series, at most one not injected is growing


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example with freshly generated billing data (outputs under tmp_path)."""
    copy, said = example_copy(tmp_path, "finops", "make_billing.py", ("billing", "reports"))
    assert "148800 hourly lines, 3 accounts, 5 services, 4 idle instances" in said
    return copy


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)


def test_idle_and_growing_spend_found_reported_and_alerted_on_slack(project: Path) -> None:
    truth = json.loads((project / "billing" / "truth.json").read_text(encoding="utf-8"))
    with http_server() as slack:
        done = lockgate(
            project,
            "run",
            "finops_monthly",
            "--logical-date",
            "2024-03-31",
            env={"LOCKGATE_SECRET_SLACK_FINOPS_WEBHOOK": f"{slack.url}/services/T0/B0/x"},
        )
        assert done.code == 0, done
        for name in ("aggregate", "idle", "growth", "report", "alert"):
            assert f"ok              {name}" in done.out, done
        (request,) = slack.wait_for(1)
    assert request.path == "/services/T0/B0/x"
    text = request.json()["text"]

    out = project / "reports" / "2024-03-31"
    findings = json.loads((out / "findings.json").read_text(encoding="utf-8"))

    # every injected case is found, with few false positives
    found_idle = {f["resource_id"] for f in findings["idle"]}
    injected_idle = {i["resource_id"] for i in truth["idle"]}
    assert injected_idle <= found_idle, (injected_idle, found_idle)
    assert len(found_idle - injected_idle) <= MAX_FALSE_IDLE, found_idle - injected_idle
    found_growing = {(f["account"], f["service"]) for f in findings["growing"]}
    injected_growing = {(g["account"], g["service"]) for g in truth["growing"]}
    assert injected_growing <= found_growing, found_growing
    assert len(found_growing - injected_growing) <= MAX_FALSE_GROWING, found_growing

    # the report and its charts exist and parse
    for name in ("daily_cost.svg", "cost_by_account.svg", "cost_by_team.svg"):
        root = ET.parse(out / name).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg", name
        assert root.find("{http://www.w3.org/2000/svg}text") is not None, name
    page = (out / "report.html").read_text(encoding="utf-8")
    parser = _Html()
    parser.feed(page)
    assert {"html", "h1", "svg", "polyline", "rect", "li"} <= set(parser.tags)
    assert "<script" not in page
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for f in findings["idle"] + findings["growing"]:
        assert f["evidence"] in markdown and f["evidence"] in text, f

    # the alert reached Slack with the top findings, and its delivery is recorded
    assert text.startswith(":money_with_wings: *finops_monthly*: 4 idle resources ($"), text
    assert "1 fast-growing service\n- AWSLambda in 222222222222 grows " in text, text
    sent = lockgate(project, "notify", "list", "--json").json()["notifications"]
    assert [(n["event"], n["channel"], n["state"]) for n in sent] == [
        ("task_alert", "finops-slack", "sent")
    ], sent

    # the report and the chart are published on the run's page of the web UI (ctx.publish)
    from lockgate import api
    from lockgate.config import Project

    run_id = lockgate(project, "runs", "--limit", "1", "--json").json()["runs"][0]["id"]
    store = api.open_store(Project.load(project))
    published = [json.loads(row["data"]) for row in store.published(run_id)]
    assert [(Path(p["path"]).name, p["media_type"]) for p in published] == [
        ("report.html", "text/html"),
        ("report.md", "text/markdown"),
        ("daily_cost.svg", "image/svg+xml"),
    ], published
    assert f"run {run_id}" in text
