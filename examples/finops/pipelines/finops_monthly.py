"""A month of cloud billing (AWS CUR CSV): costs, idle resources, fast-growing spend, report, alert.

aggregate (DuckDB over billing/cur-2024-03.csv: cost by account, service, team and day) ->
idle (instances billed in most hours while almost unused) and growth (Theil-Sen slope of each
account/service's daily cost, relative to its median) -> report (reports/<ds>/report.md,
report.html and SVG charts, published with `ctx.publish` for the run's page of the web UI) ->
alert (`ctx.alert` with the top findings, which lockgate.toml's `task_alert` rule sends to Slack).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from statistics import median

from lockgate import pipeline, task

PROJECT = Path(__file__).resolve().parents[1]
BILLING = PROJECT / "billing" / "cur-2024-03.csv"

IDLE_USAGE = 0.02  # an hour of an instance under 2 % busy is an idle hour ...
IDLE_SHARE = 0.9  # ... and an instance idle in 90 % of its billed hours is an idle resource
GROWTH_ALERT = 0.03  # Theil-Sen slope of the daily cost >= 3 % of its median a day
MIN_DAILY_COST = 1.0  # a series under $1 a day is not judged on its growth
INSTANCES = ("AmazonEC2", "AmazonRDS")

CUR = f"""
CREATE VIEW cur AS SELECT
    "lineItem/UsageAccountId"::VARCHAR AS account, "lineItem/ProductCode" AS service,
    "lineItem/ResourceId" AS resource_id, "resourceTags/user:team" AS team,
    "lineItem/UsageStartDate"::TIMESTAMP AS start, "lineItem/UsageAmount"::DOUBLE AS usage,
    "lineItem/UnblendedCost"::DOUBLE AS cost
FROM read_csv('{BILLING.as_posix()}', header = true, all_varchar = true)
"""


def _rows(con, query: str, *args) -> list[dict]:
    cursor = con.execute(query, list(args))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def _connect():
    import duckdb

    con = duckdb.connect()
    con.execute(CUR)
    return con


@task
def aggregate(ctx) -> dict:
    """Cost by account, service, team and day (DuckDB over the CSV)."""
    con = _connect()
    out = {
        "lines": con.execute("SELECT count(*) FROM cur").fetchone()[0],
        "total": round(con.execute("SELECT sum(cost) FROM cur").fetchone()[0], 2),
    }
    for name, key in (("by_account", "account"), ("by_service", "service"), ("by_team", "team")):
        out[name] = {
            r["k"]: round(r["c"], 2)
            for r in _rows(
                con, f"SELECT {key} AS k, sum(cost) AS c FROM cur GROUP BY 1 ORDER BY 2 DESC"
            )
        }
    daily = _rows(
        con,
        "SELECT account, service, strftime(start::DATE, '%Y-%m-%d') AS day, sum(cost) AS cost "
        "FROM cur GROUP BY ALL ORDER BY account, service, day",
    )
    out["daily"] = [{**r, "cost": round(r["cost"], 4)} for r in daily]
    ctx.log.info(
        "%d lines, $%.2f over %d accounts", out["lines"], out["total"], len(out["by_account"])
    )
    return out


@task
def idle(ctx) -> list[dict]:
    """Instances billed (cost > 0) while under IDLE_USAGE busy in at least IDLE_SHARE of hours."""
    con = _connect()
    found = _rows(
        con,
        f"""
        SELECT account, service, resource_id, count(*) AS hours,
               avg(CASE WHEN usage < {IDLE_USAGE} THEN 1 ELSE 0 END) AS idle_share,
               sum(cost) AS cost
        FROM cur WHERE service IN {INSTANCES} AND cost > 0
        GROUP BY ALL HAVING avg(CASE WHEN usage < {IDLE_USAGE} THEN 1 ELSE 0 END) >= {IDLE_SHARE}
        ORDER BY cost DESC
        """,
    )
    for f in found:
        f["cost"], f["idle_share"] = round(f["cost"], 2), round(f["idle_share"], 3)
        f["evidence"] = (
            f"idle {f['service']} {f['resource_id']} ({f['account']}): ${f['cost']:.2f} "
            f"for {f['hours']} h, {f['idle_share']:.0%} of them under {IDLE_USAGE:.0%} busy"
        )
        ctx.log.info("%s", f["evidence"])
    return found


def theil_sen(ys: list[float]) -> float:
    """The median of the slopes between every pair of points (robust to a few outliers)."""
    return median((ys[j] - ys[i]) / (j - i) for i in range(len(ys)) for j in range(i + 1, len(ys)))


@task
def growth(costs: dict, ctx) -> list[dict]:
    """Account/service series whose daily cost grows: Theil-Sen slope / median >= GROWTH_ALERT."""
    series: dict[tuple[str, str], list[float]] = {}
    for r in costs["daily"]:
        series.setdefault((r["account"], r["service"]), []).append(r["cost"])
    found = []
    for (account, service), ys in sorted(series.items()):
        mid = median(ys)
        if mid < MIN_DAILY_COST:
            continue
        rel = theil_sen(ys) / mid
        if rel >= GROWTH_ALERT:
            week = sum(ys[-7:]) / sum(ys[-14:-7]) - 1
            found.append(
                {
                    "account": account,
                    "service": service,
                    "relative_slope": round(rel, 4),
                    "week_over_week": round(week, 4),
                    "first_day": round(ys[0], 2),
                    "last_day": round(ys[-1], 2),
                    "evidence": f"{service} in {account} grows {rel:.1%} of its median a day "
                    f"(from ${ys[0]:.2f} to ${ys[-1]:.2f} a day, last week {week:+.0%})",
                }
            )
            ctx.log.info("%s", found[-1]["evidence"])
    return sorted(found, key=lambda f: -f["relative_slope"])


def _line_chart(title: str, series: dict[str, list[float]], days: list[str]) -> str:
    """A small self-contained SVG line chart (no script, no external resource)."""
    w, h, pad = 720, 360, 50
    top = max(max(ys) for ys in series.values()) or 1.0
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">{html.escape(title)}</text>',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - 10}" y2="{h - pad}" stroke="#333"/>',
        f'<line x1="{pad}" y1="30" x2="{pad}" y2="{h - pad}" stroke="#333"/>',
        f'<text x="{pad - 4}" y="34" text-anchor="end">${top:,.0f}</text>',
        f'<text x="{pad - 4}" y="{h - pad}" text-anchor="end">$0</text>',
        f'<text x="{pad}" y="{h - pad + 16}">{days[0]}</text>',
        f'<text x="{w - 10}" y="{h - pad + 16}" text-anchor="end">{days[-1]}</text>',
    ]
    span_x, span_y = (w - 10 - pad) / max(len(days) - 1, 1), (h - pad - 30) / top
    for n, (name, ys) in enumerate(series.items()):
        colour = colours[n % len(colours)]
        points = " ".join(
            f"{pad + i * span_x:.1f},{h - pad - y * span_y:.1f}" for i, y in enumerate(ys)
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
        parts.append(
            f'<text x="{pad + 10}" y="{44 + 14 * n}" fill="{colour}">{html.escape(name)}</text>'
        )
    return "\n".join(parts + ["</svg>"]) + "\n"


def _bar_chart(title: str, values: dict[str, float]) -> str:
    w, bar = 720, 22
    h = 40 + bar * len(values) + 10
    top = max(values.values()) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">{html.escape(title)}</text>',
    ]
    for n, (name, v) in enumerate(values.items()):
        y = 30 + n * bar
        width = (w - 260) * v / top
        parts.append(f'<text x="150" y="{y + 15}" text-anchor="end">{html.escape(name)}</text>')
        parts.append(
            f'<rect x="160" y="{y + 3}" width="{width:.1f}" height="{bar - 6}" fill="#1f77b4"/>'
        )
        parts.append(f'<text x="{164 + width:.1f}" y="{y + 15}">${v:,.0f}</text>')
    return "\n".join(parts + ["</svg>"]) + "\n"


@task
def report(costs: dict, idle_found: list[dict], growing: list[dict], ctx) -> dict:
    """reports/<ds>/: report.md, report.html (charts inline) and the SVG charts, published."""
    ds = f"{ctx.logical_date:%Y-%m-%d}" if ctx.logical_date else "2024-03-31"
    out = PROJECT / "reports" / ds
    out.mkdir(parents=True, exist_ok=True)
    days = sorted({r["day"] for r in costs["daily"]})
    by_service: dict[str, list[float]] = {}
    for r in costs["daily"]:
        ys = by_service.setdefault(r["service"], [0.0] * len(days))
        ys[days.index(r["day"])] += r["cost"]
    charts = {
        "daily_cost.svg": _line_chart("Daily cost by service", by_service, days),
        "cost_by_account.svg": _bar_chart("Cost by account", costs["by_account"]),
        "cost_by_team.svg": _bar_chart("Cost by team", costs["by_team"]),
    }
    for name, svg in charts.items():
        (out / name).write_text(svg, encoding="utf-8")
    wasted = sum(f["cost"] for f in idle_found)
    md = [
        f"# FinOps report {days[0]} .. {days[-1]}",
        "",
        f"{costs['lines']} billing lines, total ${costs['total']:,.2f}. "
        f"{len(idle_found)} idle resources (${wasted:,.2f}), {len(growing)} fast-growing services.",
        "",
        "![daily cost](daily_cost.svg)",
        "",
        "## Cost by account",
        "",
        "| account | cost |",
        "|---|---|",
        *[f"| {k} | ${v:,.2f} |" for k, v in costs["by_account"].items()],
        "",
        "## Cost by service",
        "",
        "| service | cost |",
        "|---|---|",
        *[f"| {k} | ${v:,.2f} |" for k, v in costs["by_service"].items()],
        "",
        "## Idle resources",
        "",
        *[f"- {f['evidence']}" for f in idle_found],
        "",
        "## Fast-growing spend",
        "",
        *[f"- {f['evidence']}" for f in growing],
        "",
    ]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    esc = html.escape
    page = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>FinOps report {esc(ds)}</title></head><body>",
        f"<h1>FinOps report {esc(days[0])} .. {esc(days[-1])}</h1>",
        f"<p>{costs['lines']} billing lines, total ${costs['total']:,.2f}.</p>",
        *charts.values(),
        "<h2>Idle resources</h2><ul>",
        *[f"<li>{esc(f['evidence'])}</li>" for f in idle_found],
        "</ul><h2>Fast-growing spend</h2><ul>",
        *[f"<li>{esc(f['evidence'])}</li>" for f in growing],
        "</ul></body></html>",
    ]
    (out / "report.html").write_text("\n".join(page) + "\n", encoding="utf-8")
    ctx.publish(out / "report.html", f"FinOps report {ds}")
    ctx.publish(out / "report.md", f"FinOps report {ds} (Markdown)")
    ctx.publish(out / "daily_cost.svg", "Daily cost by service")
    findings = {"idle": idle_found, "growing": growing, "total": costs["total"]}
    (out / "findings.json").write_text(json.dumps(findings, indent=2) + "\n", encoding="utf-8")
    return {"folder": str(out), "idle": len(idle_found), "growing": len(growing)}


@task
def alert(idle_found: list[dict], growing: list[dict], ctx) -> str:
    """An alert with the top findings (the `task_alert` rule sends it to Slack)."""
    if not idle_found and not growing:
        return "nothing to report"
    wasted = sum(f["cost"] for f in idle_found)
    title = (
        f"{len(idle_found)} idle resources (${wasted:,.2f} this month), "
        f"{len(growing)} fast-growing service{'' if len(growing) == 1 else 's'}"
    )
    top = [f["evidence"] for f in growing[:5]] + [f["evidence"] for f in idle_found[:10]]
    ctx.alert(title, "\n".join(f"- {line}" for line in top))
    return title


with pipeline("finops_monthly", description=__doc__.splitlines()[0], tags=["finops"]) as p:
    costs = aggregate()
    idle_found = idle()
    growing = growth(costs)
    written = report(costs, idle_found, growing)
    written >> alert(idle_found, growing)
