"""examples/compliance end to end: seed_activity.py makes a day of activity (runs, one of them
refused by the policy gate, failed logins, a pipeline changed at 02:00), then
`lockgate run compliance_daily` through the real CLI writes the GDPR and SOC 2 reports, finds
exactly the seeded anomalies and alerts Slack, here a local HTTP server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from tests.cli.helpers import _env, lockgate
from tests.notify.servers import http_server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "compliance"
SECRET_ENV = "LOCKGATE_SECRET_SLACK_COMPLIANCE_WEBHOOK"  # the secret slack/compliance-webhook
MISTYPED_NAME = "Hunter2-Summer-Secret!"  # seed_activity.py types it into the user name field


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "compliance"
    skip = shutil.ignore_patterns("__pycache__", ".lockgate", "data", "work", "reports")
    shutil.copytree(EXAMPLE, project, ignore=skip)
    return project


def test_compliance_daily_reports_and_alerts_the_seeded_anomalies(tmp_path: Path) -> None:
    project = _project(tmp_path)
    seeded = subprocess.run(
        [sys.executable, "seed_activity.py"],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    assert "of load_staging: failed" in seeded.stdout, seeded.stdout
    assert "of nightly_export: success" in seeded.stdout, seeded.stdout

    with http_server() as slack:
        hook = f"{slack.url}/services/T000/B000/compliance-hook-credential"
        done = lockgate(project, "run", "compliance_daily", env={SECRET_ENV: hook})
        # anomalies raise an alert (that is what reaches Slack); the run succeeds
        assert done.code == 0, done
        (message,) = slack.wait_for(1)
        assert len(slack.requests) == 1, [r.body for r in slack.requests]

    # the delivery is recorded like any notification
    (sent,) = lockgate(project, "notify", "list", "--json").json()["notifications"]
    assert (sent["event"], sent["channel"], sent["state"]) == ("task_alert", "compliance", "sent")

    # the reports of the period, as `lockgate report gdpr|soc2` writes them
    (folder,) = (project / "reports").iterdir()
    day = folder.name
    for name in ("gdpr.html", "gdpr.md", "soc2.html", "soc2.md", "audit-log.jsonl", "runs.json"):
        assert (folder / name).is_file(), name
    gdpr = (folder / "gdpr.md").read_text()
    assert "GDPR" in gdpr and "gdpr.pseudonymise" in gdpr and "staging" in gdpr
    assert "Audit chain" in gdpr or "audit" in gdpr.lower()
    soc2 = (folder / "soc2.md").read_text()
    assert "SOC 2" in soc2
    assert "nightly_export" in soc2 and "auth.login_failed" in soc2
    assert "<html" in (folder / "soc2.html").read_text().lower()
    runs = json.loads((folder / "runs.json").read_text())
    assert {(r["pipeline_id"], r["state"]) for r in runs} >= {
        ("nightly_export", "success"),
        ("load_staging", "failed"),
    }
    audit_actions = {
        json.loads(line).get("action")
        for line in (folder / "audit-log.jsonl").read_text().splitlines()
    }
    assert "auth.login_failed" in audit_actions

    # both reports are published on the run's page of the web UI
    from lockgate import api
    from lockgate.config import Project

    run_id = lockgate(project, "runs", "--limit", "1", "--json").json()["runs"][0]["id"]
    store = api.open_store(Project.load(project))
    titles = [json.loads(row["data"])["title"] for row in store.published(run_id)]
    assert sorted(t.split(",")[0] for t in titles) == ["GDPR report", "SOC2 report"], titles

    # exactly the seeded anomalies
    found = json.loads((folder / "anomalies.json").read_text())
    assert [(x["user"], x["reason"]) for x in found["failed_logins"]] == [
        ("analyst", "wrong password"),
        ("analyst", "wrong password"),
        ("analyst", "wrong password"),
        (None, "unknown user"),
    ]
    (violation,) = found["policy_violations"]
    assert violation["task"] == "load_staging.load" and violation["zone"] == "staging"
    assert violation["rules"] == ["gdpr.pseudonymise"]
    assert violation["columns"] == ["email", "full_name"]
    (change,) = found["off_hours_changes"]
    assert change["pipeline"] == "nightly_export" and " 02:00 " in change["at"]

    # the Slack message carries that evidence, and no secret or personal data
    text = message.json()["text"]
    assert "compliance_daily found anomalies" in text, text
    assert "4 failed login(s) (1 for unknown user names, 3 for user analyst)" in text, text
    assert "1 policy violation(s) (first: load_staging.load writing to zone staging" in text, text
    assert "gdpr.pseudonymise on email, full_name" in text, text
    assert f"nightly_export v{change['version']} at {change['at']}" in text, text
    assert f"reports/{day}/anomalies.json" in text, text
    assert not text.rstrip().endswith("None"), text  # no base_url: no link line
    for leak in (MISTYPED_NAME, "compliance-hook-credential", slack.url, "@example.com"):
        assert leak not in text, (leak, text)
    names = {row[0] for row in _customer_names(project / "data" / "production.db")}
    assert not any(name in text for name in names), text


def _customer_names(path: Path) -> list[tuple[str]]:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT full_name FROM customers").fetchall()
    finally:
        db.close()


def test_a_quiet_day_sends_nothing(tmp_path: Path) -> None:
    """The day before the seeded activity: reports written, no anomaly, the run succeeds and
    Slack hears nothing."""
    project = _project(tmp_path)
    seeded = subprocess.run(
        [sys.executable, "seed_activity.py"], cwd=project, env=_env(), capture_output=True
    )
    assert seeded.returncode == 0, seeded.stderr
    day_before = (date.today() - timedelta(days=2)).isoformat()
    with http_server() as slack:
        done = lockgate(
            project,
            "run",
            "compliance_daily",
            "--logical-date",
            day_before,
            env={SECRET_ENV: f"{slack.url}/hook"},
        )
        assert done.code == 0, done
        assert slack.requests == []
    (folder,) = (project / "reports").iterdir()
    found = json.loads((folder / "anomalies.json").read_text())
    assert found["failed_logins"] == found["policy_violations"] == found["off_hours_changes"] == []
    assert (folder / "gdpr.html").is_file() and (folder / "soc2.md").is_file()
