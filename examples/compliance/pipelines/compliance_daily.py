"""Daily compliance reporting: the audit log and run history of the run's period, the GDPR and
SOC 2 evidence reports (the same as `lockgate report gdpr|soc2`), and a check for anomalies
(failed logins, writes the policy gate refused, pipelines changed outside working hours) that
alerts the `compliance` Slack channel with the evidence.

period -> extract (audit log as JSONL, run history as JSON)
       -> gdpr, soc2 (HTML and Markdown, under reports/<ds>/)
       -> anomalies (reports/<ds>/anomalies.json) -> alert

The period is the run's data interval: a scheduled run covers its day; a manual run (whose
interval is the instant it was started) covers the 24 hours before its logical date. "Local"
working hours are those of the pipeline's time zone. When anomalies are found, `alert` fails
with the evidence in one line, the run ends `failed`, and the `run_failed` rule of lockgate.toml
sends it to Slack; the reports are written either way.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from lockgate import pipeline, task, template

TIMEZONE = "Europe/Berlin"
WORK_START, WORK_END = 8, 18  # working hours, local time, Monday to Friday
DAY = 86400.0


def _store():
    from lockgate import Project
    from lockgate.governance.audit import project_store

    project = Project.load()
    return project, project_store(project)


def _stamp(ts: float, tz: Any) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M %Z")


@task
def period(ctx) -> dict:
    """The period to report on: the data interval, or the day before a manual run."""
    end = ctx.data_interval_end.timestamp()
    start = ctx.data_interval_start.timestamp()
    if end - start < 1:  # a manual run: its interval is one instant
        start = end - DAY
    tz = ctx.data_interval_end.tzinfo
    return {"since": start, "until": end, "label": f"{_stamp(start, tz)} to {_stamp(end, tz)}"}


@task
def extract(span: dict, folder: str) -> dict:
    """The audit log (one JSON object per event, as `lockgate audit export` writes) and the run
    history of the period, for the auditors' file."""
    from lockgate.governance.audit import export_lines

    project, store = _store()
    try:
        out = project.root / folder
        out.mkdir(parents=True, exist_ok=True)
        lines = 0
        with open(out / "audit-log.jsonl", "w", encoding="utf-8") as handle:
            for line in export_lines(store, span["since"], span["until"]):
                handle.write(json.dumps(line, sort_keys=True, default=str) + "\n")
                lines += 1
        runs = [
            {k: r[k] for k in ("id", "pipeline_id", "state", "trigger", "created_at")}
            for r in store.runs_page(since=span["since"], until=span["until"], limit=1000)
        ]
        (out / "runs.json").write_text(json.dumps(runs, indent=2, default=str) + "\n")
    finally:
        store.close()
    states: dict[str, int] = {}
    for run in runs:
        states[run["state"]] = states.get(run["state"], 0) + 1
    return {"audit_lines": lines, "runs": len(runs), "runs_by_state": states}


@task
def report(span: dict, folder: str, pack: str, ctx) -> dict:
    """The `pack` evidence report of the period, as HTML and Markdown: `write_report`, the
    function behind `lockgate report PACK` (audited as report.generate); the HTML one is
    published on the run's page of the web UI."""
    from lockgate.governance.reports import write_report

    project, store = _store()
    try:
        for fmt in ("html", "md"):
            doc, _ = write_report(
                project,
                store,
                pack,
                since=span["since"],
                until=span["until"],
                fmt=fmt,
                out=project.root / folder / f"{pack}.{fmt}",
                actor="pipeline compliance_daily",
            )
    finally:
        store.close()
    ctx.publish(f"{folder}/{pack}.html", title=f"{pack.upper()} report, {span['label']}")
    sections = doc["sections"]
    return {
        "report": f"{folder}/{pack}.html",
        "audit_verified": (sections.get("audit") or {}).get("verified"),
        "refused_writes": (sections.get("decisions") or {}).get("deny"),
    }


def _working_hours(ts: float, tz: Any) -> bool:
    local = datetime.fromtimestamp(ts, tz)
    return local.weekday() < 5 and WORK_START <= local.hour < WORK_END


@task
def anomalies(span: dict, folder: str, gdpr: dict, soc2: dict, ctx) -> dict:
    """Failed logins (audit records `auth.login_failed`), writes the gate refused (policy
    decisions `deny`) and pipeline versions first seen outside working hours."""
    tz = ctx.data_interval_end.tzinfo
    since, until = span["since"], span["until"]
    project, store = _store()
    try:
        logins: list[dict] = []
        after = 0
        while True:
            page = store.audit_records(since=since, until=until, after=after, limit=1000)
            for rec in page:
                if rec.action == "auth.login_failed":
                    # a name nobody has may be a password typed in the wrong field: never shown
                    known = rec.actor != "anonymous"
                    logins.append(
                        {
                            "seq": rec.seq,
                            "at": _stamp(rec.ts, tz),
                            "user": rec.target if known else None,
                            "reason": "wrong password" if known else "unknown user",
                        }
                    )
            if len(page) < 1000:
                break
            after = page[-1].seq
        decisions = [
            d
            for d in store.policy_decisions(since=since, decision="deny", limit=10_000)
            if d["ts"] < until
        ]
        pipelines = {
            run_id: run["pipeline_id"]
            for run_id, run in store.get_runs(
                [d["run_id"] for d in decisions if d["run_id"]]
            ).items()
        }
        refused = [
            {
                "at": _stamp(d["ts"], tz),
                "run_id": d["run_id"],
                "task": f"{pipelines.get(d['run_id'], '?')}.{d['task_id']}",
                "dataset": d["dataset"],
                "zone": d["zone"],
                "rules": sorted(
                    {v.get("rule") for v in d["detail"].get("violations") or () if v.get("rule")}
                ),
                "columns": sorted(
                    {
                        v.get("column")
                        for v in d["detail"].get("violations") or ()
                        if v.get("column")
                    }
                ),
            }
            for d in decisions
        ]
        changes = [
            {
                "pipeline": v["pipeline_id"],
                "version": v["id"],
                "hash": v["hash"][:12],
                "at": _stamp(v["created_at"], tz),
            }
            for v in store.versions_created(since, until)
            if not _working_hours(v["created_at"], tz)
        ]
    finally:
        store.close()
    found = {
        "period": span["label"],
        "failed_logins": logins,
        "policy_violations": refused,
        "off_hours_changes": changes,
        "reports": [gdpr["report"], soc2["report"]],
    }
    out = project.root / folder / "anomalies.json"
    out.write_text(json.dumps(found, indent=2) + "\n")
    return found


def _evidence(found: dict, folder: str) -> str:
    """The anomalies, one line per kind, and where the full evidence is."""
    parts = []
    logins = found["failed_logins"]
    if logins:
        by_user: dict[str, int] = {}
        for item in logins:
            who = f"user {item['user']}" if item["user"] else "unknown user names"
            by_user[who] = by_user.get(who, 0) + 1
        detail = ", ".join(f"{n} for {who}" for who, n in sorted(by_user.items()))
        parts.append(f"{len(logins)} failed login(s) ({detail})")
    refused = found["policy_violations"]
    if refused:
        first = refused[0]
        parts.append(
            f"{len(refused)} policy violation(s) (first: {first['task']} writing to zone "
            f"{first['zone']}, {'/'.join(first['rules'][:2])} on {', '.join(first['columns'][:3])})"
        )
    changes = found["off_hours_changes"]
    if changes:
        listed = ", ".join(f"{c['pipeline']} v{c['version']} at {c['at']}" for c in changes[:3])
        parts.append(f"{len(changes)} pipeline change(s) outside working hours ({listed})")
    return "\n".join(f"- {part}" for part in parts) + f"\nEvidence: {folder}/anomalies.json"


@task
def alert(found: dict, folder: str, ctx) -> dict:
    """Raise an alert with the evidence when anything was found (the `task_alert` rule of
    lockgate.toml tells Slack); the run succeeds either way."""
    counts = {k: len(found[k]) for k in ("failed_logins", "policy_violations", "off_hours_changes")}
    if any(counts.values()):
        ctx.alert(f"compliance anomalies in {folder}", _evidence(found, folder))
    return counts


with pipeline(
    "compliance_daily",
    description=__doc__.splitlines()[0],
    schedule="@daily",
    timezone=TIMEZONE,
    start_date="2026-01-01",
    catchup=False,
    tags=["compliance"],
) as p:
    folder = template("reports/{{ ds }}")
    span = period()
    extract(span, folder)
    gdpr = report.override(id="gdpr")(span, folder, "gdpr")
    soc2 = report.override(id="soc2")(span, folder, "soc2")
    found = anomalies(span, folder, gdpr, soc2)
    alert(found, folder)
