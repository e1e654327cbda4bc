"""examples/log_anomalies end to end: a generated day of logs with three injected incidents goes
through the real CLI (redact, parse, detect, report, alert), with Slack replaced by a local HTTP
server and nothing else replaced."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from tests.cli.helpers import lockgate
from tests.examples.helpers import example_copy
from tests.notify.servers import http_server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "log_anomalies"
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
MAX_FALSE_ALARMS = 1


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example with a freshly generated log (its outputs and state under tmp_path)."""
    copy, said = example_copy(tmp_path, "log_anomalies", "make_logs.py", ("logs", "out"))
    assert "wrote logs/app.jsonl: 20000 lines on 2024-01-31, 3 injected incidents" in said
    return copy


def _overlaps(finding: dict, incident: dict) -> bool:
    start, end = (datetime.fromisoformat(finding[k]) for k in ("start", "end"))
    i_start, i_end = (datetime.fromisoformat(incident[k]) for k in ("start", "end"))
    return start < i_end and i_start < end


def _matches(finding: dict, incident: dict) -> bool:
    key = incident.get("endpoint") or incident.get("user")
    return (
        finding["kind"] == incident["kind"]
        and finding["key"] == key
        and _overlaps(finding, incident)
    )


def test_every_incident_is_found_redacted_and_alerted_on_slack(project: Path) -> None:
    raw = (project / "logs" / "app.jsonl").read_text(encoding="utf-8")
    truth = json.loads((project / "logs" / "app.truth.json").read_text(encoding="utf-8"))
    secrets = truth["sensitive"]["secrets"]
    emails = set(truth["sensitive"]["emails"]) | set(EMAIL.findall(raw))
    assert len(secrets) > 500 and len(emails) > 300
    assert all(s in raw for s in secrets) and all(e in raw for e in emails)

    with http_server() as slack:
        done = lockgate(
            project,
            "run",
            "log_anomalies",
            "--logical-date",
            "2024-01-31",
            env={"LOCKGATE_SECRET_SLACK_ANOMALIES_WEBHOOK": f"{slack.url}/services/T0/B0/x"},
        )
        # anomalies found: the alert task raises an alert with the evidence; the run succeeds
        assert done.code == 0, done
        for line in ("ok              redact", "ok              detect", "ok              alert"):
            assert line in done.out, done
        (request,) = slack.wait_for(1)
    assert request.path == "/services/T0/B0/x"
    text = request.json()["text"]

    # every injected incident is found, with few false alarms
    findings = json.loads((project / "out" / "findings.json").read_text(encoding="utf-8"))
    assert findings["requests"] == 20000
    found = findings["findings"]
    for incident in truth["incidents"]:
        assert any(_matches(f, incident) for f in found), (incident, found)
    false_alarms = [f for f in found if not any(_matches(f, i) for i in truth["incidents"])]
    assert len(false_alarms) <= MAX_FALSE_ALARMS, false_alarms

    # the Slack message carries the evidence of each incident
    assert text.startswith(
        ":rotating_light: *log_anomalies*: 3 anomalies in the application logs\n- "
    ), text
    for evidence in (
        "5xx spike 13:40-13:50 UTC: ",
        "slow GET /api/orders/{id} 15:10-15:30 UTC: p95 ",
        "user u0137 from ",
        "IPs 19:00-20:00 UTC",
    ):
        assert evidence in text, text
    for f in found:
        assert f["evidence"] in text, (f, text)
    markdown = (project / "out" / "findings.md").read_text(encoding="utf-8")
    assert all(f["evidence"] in markdown for f in found), markdown

    # no secret and no e-mail of the raw log in the redacted log, the report or the alert
    redacted = (project / "out" / "app.redacted.jsonl").read_text(encoding="utf-8")
    assert len(redacted.splitlines()) == 20000
    assert "Bearer ***" in redacted and '"ip":"' in redacted  # IPs kept for the detection
    assert not EMAIL.findall(redacted), EMAIL.findall(redacted)[:5]
    outputs = {"redacted log": redacted, "findings": json.dumps(findings), "md": markdown}
    outputs["slack"] = request.body.decode()
    for name, content in outputs.items():
        leaked = [s for s in secrets if s in content] + [e for e in emails if e in content]
        assert not leaked, (name, leaked[:5])

    # the delivery is recorded
    sent = lockgate(project, "notify", "list", "--json").json()["notifications"]
    assert [(n["event"], n["channel"], n["state"]) for n in sent] == [
        ("task_alert", "ops-slack", "sent")
    ], sent
