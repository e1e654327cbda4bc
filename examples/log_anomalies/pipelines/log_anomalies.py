"""Anomalies in a day of application logs: redact, parse, detect, report and alert on Slack.

redact (bearer tokens, passwords, e-mails, card numbers... out of logs/app.jsonl; IP addresses
are kept, the detection needs them) -> parse and enrich (user agents parsed with `ua-parser`,
paths normalised: numeric ids to {id}, uuids to {uuid}, query strings dropped) -> detect with
median/MAD robust z-scores in DuckDB (5xx share per 10-minute window; p95 latency per
normalised endpoint and window; distinct IPs per user and hour against every user-hour) ->
report (out/findings.json and out/findings.md) -> alert: when anything was found, the `alert`
task raises a lockgate alert (`ctx.alert`) with the evidence, which lockgate.toml's [notify]
rule on `task_alert` sends to Slack; the run succeeds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lockgate import pipeline, redact, task

PROJECT = Path(__file__).resolve().parents[1]
OUT = PROJECT / "out"

WINDOW_MIN = 10  # error rate and latency windows
Z_ALERT = 6.0  # a robust z-score at least this high is an anomaly
MIN_REQUESTS = 30  # a window with fewer requests is not judged on its error rate
MIN_ENDPOINT_REQUESTS = 8  # ... nor an endpoint's window on its p95 latency
MIN_USER_IPS = 5  # a user is not flagged with fewer distinct IPs in an hour than this
# floors for the robust scale (1.4826 * MAD), so that a quiet day does not make noise an alarm
RATE_FLOOR = 0.01  # one percentage point of 5xx share
LOG_LATENCY_FLOOR = 0.10  # about 10 % of p95 latency
IPS_FLOOR = 1.0  # one IP address

UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
NUMBER = re.compile(r"(?<=/)\d+(?=/|$)")


def normalise_path(path: str) -> str:
    """`/api/users/0b5e...-.../profile?x=1` -> `/api/users/{uuid}/profile`."""
    path = path.split("?", 1)[0]
    return NUMBER.sub("{id}", UUID.sub("{uuid}", path))


@task
def parse(redacted: dict, ctx) -> Any:
    """The redacted JSON lines as a table: one row per request, with the endpoint (method and
    normalised path) and the user agent's browser, OS and device (ua-parser)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from ua_parser import parse as parse_ua

    rows: dict[str, list] = {k: [] for k in ("ts", "ip", "user", "endpoint", "status")}
    rows.update(latency_ms=[], browser=[], os=[], device=[])
    agents: dict[str, tuple[str, str, str]] = {}
    with open(redacted["target"], encoding="utf-8") as lines:
        for line in lines:
            r = json.loads(line)
            ua = r.get("ua") or ""
            if ua not in agents:
                found = parse_ua(ua)
                agents[ua] = (
                    found.user_agent.family if found.user_agent else "Other",
                    found.os.family if found.os else "Other",
                    found.device.family if found.device else "Other",
                )
            browser, os_, device = agents[ua]
            rows["ts"].append(r["ts"])
            rows["ip"].append(r["ip"])
            rows["user"].append(r["user"])
            rows["endpoint"].append(f"{r['method']} {normalise_path(r['path'])}")
            rows["status"].append(int(r["status"]))
            rows["latency_ms"].append(float(r["latency_ms"]))
            rows["browser"].append(browser)
            rows["os"].append(os_)
            rows["device"].append(device)
    table = pa.table(rows)
    table = table.set_column(
        0, "ts", pc.cast(table["ts"], pa.timestamp("ms", tz="UTC"), safe=False)
    )
    ctx.log.info(
        "parsed %d requests: %d endpoints, %d user agents",
        table.num_rows,
        len(set(rows["endpoint"])),
        len(agents),
    )
    return table


# Robust z-score: (x - median) / max(1.4826 * MAD, floor), over every window of the day.
ERRORS = f"""
WITH w AS (
    SELECT time_bucket(INTERVAL '{WINDOW_MIN} minutes', ts) AS start, count(*) AS requests,
           avg(CASE WHEN status >= 500 THEN 1 ELSE 0 END) AS value
    FROM events GROUP BY 1 HAVING count(*) >= {MIN_REQUESTS}
), m AS (SELECT median(value) AS med FROM w),
s AS (SELECT greatest(1.4826 * median(abs(value - med)), {RATE_FLOOR}) AS scale FROM w, m)
SELECT 'error_rate' AS kind, NULL AS key, start, requests, value, med AS baseline,
       (value - med) / scale AS z
FROM w, m, s WHERE (value - med) / scale >= {Z_ALERT}
"""
LATENCY = f"""
WITH w AS (
    SELECT endpoint AS key, time_bucket(INTERVAL '{WINDOW_MIN} minutes', ts) AS start,
           count(*) AS requests, quantile_cont(latency_ms, 0.95) AS value
    FROM events GROUP BY 1, 2 HAVING count(*) >= {MIN_ENDPOINT_REQUESTS}
), m AS (SELECT key, median(ln(value)) AS med FROM w GROUP BY key),
s AS (
    SELECT key, greatest(1.4826 * median(abs(ln(value) - med)), {LOG_LATENCY_FLOOR}) AS scale
    FROM w JOIN m USING (key) GROUP BY key
)
SELECT 'latency' AS kind, key, start, requests, value, exp(med) AS baseline,
       (ln(value) - med) / scale AS z
FROM w JOIN m USING (key) JOIN s USING (key) WHERE (ln(value) - med) / scale >= {Z_ALERT}
"""
USER_IPS = f"""
WITH w AS (
    SELECT "user" AS key, time_bucket(INTERVAL '1 hour', ts) AS start, count(*) AS requests,
           count(DISTINCT ip) AS value
    FROM events GROUP BY 1, 2
), m AS (SELECT median(value) AS med FROM w),
s AS (SELECT greatest(1.4826 * median(abs(value - med)), {IPS_FLOOR}) AS scale FROM w, m)
SELECT 'user_ips' AS kind, key, start, requests, value, med AS baseline,
       (value - med) / scale AS z
FROM w, m, s WHERE (value - med) / scale >= {Z_ALERT} AND value >= {MIN_USER_IPS}
"""
CLIENTS = """
SELECT browser || ' on ' || os AS client, count(*) AS n FROM events
WHERE ts >= ? AND ts < ? AND (? IS NULL OR endpoint = ? OR "user" = ?)
GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3
"""


def _merge(rows: list[dict], minutes: dict[str, int]) -> list[dict]:
    """Adjacent anomalous windows of the same kind and key -> one finding."""
    from datetime import timedelta

    findings: list[dict] = []
    for row in sorted(rows, key=lambda r: (r["kind"], r["key"] or "", r["start"])):
        width = timedelta(minutes=minutes[row["kind"]])
        last = findings[-1] if findings else None
        same = last and (last["kind"], last["key"]) == (row["kind"], row["key"])
        if same and last["_end"] == row["start"]:
            last["_end"] = row["start"] + width
            last["windows"].append(row)
            continue
        findings.append({**row, "_end": row["start"] + width, "windows": [row]})
    return findings


def _evidence(f: dict) -> str:
    span = f"{f['start']:%H:%M}-{f['end']:%H:%M} UTC"
    if f["kind"] == "error_rate":
        return (
            f"5xx spike {span}: {f['value']:.0%} of {f['requests']} requests "
            f"(median {f['baseline']:.1%}, z={f['z']:.0f})"
        )
    if f["kind"] == "latency":
        return (
            f"slow {f['key']} {span}: p95 {f['value']:.0f} ms "
            f"(median {f['baseline']:.0f} ms, z={f['z']:.0f})"
        )
    return (
        f"user {f['key']} from {f['value']:.0f} IPs {span} "
        f"(median {f['baseline']:.0f} per user-hour, z={f['z']:.0f})"
    )


@task
def detect(events: Any, ctx) -> dict:
    """Median/MAD robust z-scores per window in DuckDB; adjacent windows merged into one
    finding, each with its evidence and the top clients (parsed user agents) seen in it."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("events", events)
    rows = []
    for query in (ERRORS, LATENCY, USER_IPS):
        cursor = con.execute(query)
        names = [d[0] for d in cursor.description]
        rows += [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    found = []
    widths = {"error_rate": WINDOW_MIN, "latency": WINDOW_MIN, "user_ips": 60}
    for f in _merge(rows, widths):
        worst = max(f["windows"], key=lambda w: w["z"])
        finding = {
            "kind": f["kind"],
            "key": f["key"],
            "start": f["start"],
            "end": f["_end"],
            "requests": worst["requests"],
            "value": worst["value"],
            "baseline": worst["baseline"],
            "z": worst["z"],
            "windows": len(f["windows"]),
        }
        key = f["key"]
        finding["top_clients"] = [
            f"{client} ({n})"
            for client, n in con.execute(CLIENTS, [f["start"], f["_end"], key, key, key]).fetchall()
        ]
        finding["evidence"] = _evidence(finding)
        found.append(finding)
    found.sort(key=lambda f: -f["z"])
    (requests,) = con.execute("SELECT count(*) FROM events").fetchone()
    for f in found:
        ctx.log.info("anomaly: %s", f["evidence"])
        f["start"], f["end"] = f["start"].isoformat(), f["end"].isoformat()
        for k in ("value", "baseline", "z"):
            f[k] = round(float(f[k]), 4)
    return {"requests": requests, "z_alert": Z_ALERT, "findings": found}


@task
def report(result: dict, redacted: dict) -> dict:
    """out/findings.json and out/findings.md: every finding with its evidence."""
    OUT.mkdir(parents=True, exist_ok=True)
    doc = {**result, "redacted_log": redacted["target"], "redacted_spans": redacted["spans"]}
    (OUT / "findings.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Log anomalies",
        "",
        f"{result['requests']} requests; anomaly when the robust z-score (median/MAD) is at least "
        f"{result['z_alert']:g}. Redacted before analysis: "
        + ", ".join(f"{n} {k}" for k, n in sorted(redacted["spans"].items())),
        "",
        "| kind | what | start | end | z | top clients |",
        "|---|---|---|---|---|---|",
    ]
    for f in result["findings"]:
        lines.append(
            f"| {f['kind']} | {f['evidence']} | {f['start']} | {f['end']} | {f['z']:.1f} "
            f"| {', '.join(f['top_clients'])} |"
        )
    if not result["findings"]:
        lines.append("| - | no anomaly | | | | |")
    (OUT / "findings.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"findings": len(result["findings"]), "report": str(OUT / "findings.md")}


@task
def alert(result: dict, ctx) -> str:
    """Tell people what was found: an alert with one line of evidence per finding, which the
    `task_alert` rule of lockgate.toml sends to Slack (the run itself succeeds)."""
    found = result["findings"]
    if not found:
        return "no anomaly"
    title = f"{len(found)} anomal{'y' if len(found) == 1 else 'ies'} in the application logs"
    ctx.alert(title, "\n".join(f"- {f['evidence']}" for f in found))
    return title


with pipeline("log_anomalies", description=__doc__.splitlines()[0], tags=["logs"]) as p:
    clean = redact(
        "redact",
        input="logs/app.jsonl",
        output="out/app.redacted.jsonl",
        entities=["secrets", "email", "pan", "ssn", "iban"],  # the `logs` preset without `ip`
    )
    found = detect(parse(clean))
    written = report(found, clean)
    written >> alert(found)
