"""Compliance reports: evidence for GDPR, HIPAA, PCI DSS and SOC 2 from the store and the audit
chain (`lockgate report PACK`).

A report has the sections its pack lists under `evidence` (governance/packs/*.yaml):

- `datasets`: every dataset of the catalogue by zone, with its classified columns and their form;
- `decisions`: the gate's decisions in the period (counts; every refusal and waived write);
- `waivers`: waivers in force, and those created, revoked or expired in the period;
- `masking`: in zones below prod, how many classified columns are transformed, and which are raw;
- `subjects`: where tokens of each class are held (what an erasure request has to search);
- `changes`: pipeline versions first seen, and who recorded them;
- `access`: who did what (audit records by actor and action), runs by trigger and state;
- `secrets`: secret reads and connection changes (names, never values);
- `audit`: the audit chain's verification, its size and checkpoints.

The document is JSON data first; Markdown and HTML (Jinja2, autoescaped, no script) render it.
Everything read is bounded (pages of the audit chain are counted as they stream).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.governance.policy import split_tag

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.governance.gate import Governance
    from lockgate.store.store import Store

FORMATS = ("html", "json", "md")
LIST_CAP = 200
"""Items listed per section (counts cover everything)."""
_PAGE = 5000


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def build(
    project: Project,
    store: Store,
    pack_name: str,
    since: float | None = None,
    until: float | None = None,
) -> dict[str, Any]:
    """The report of `pack_name` over [since, until) as JSON data."""
    from lockgate.governance.gate import governance

    gov = governance(project)
    pack = gov.policy.pack(pack_name)
    end = until if until is not None else time.time()
    audit = _AuditScan(store, since, end)
    sections: dict[str, Any] = {}
    for name in pack.evidence:
        sections[name] = _SECTIONS[name](gov, store, since, end, audit)
    return {
        "report": pack.name,
        "title": pack.title,
        "description": pack.description,
        "project": str(project.root),
        "generated_at": _iso(time.time()),
        "since": _iso(since),
        "until": _iso(end),
        "rules": [
            {"id": r.id, "title": r.title, "reference": r.reference, "severity": r.severity}
            for r in pack.rules
        ],
        "sections": sections,
    }


class _AuditScan:
    """The audit records of the period, read once in pages and summarised for every section
    that needs them."""

    def __init__(self, store: Store, since: float | None, until: float) -> None:
        self._store, self._since, self._until = store, since, until
        self._done = False
        self.actions: Counter[tuple[str, str]] = Counter()
        self.events: Counter[str] = Counter()
        self.changes: list[dict[str, Any]] = []
        self.access: list[dict[str, Any]] = []
        self.secrets: list[dict[str, Any]] = []
        self.records = 0

    def _records(self) -> Iterator[Any]:
        after = 0
        while True:
            page = self._store.audit_records(
                since=self._since, until=self._until, after=after, limit=_PAGE
            )
            yield from page
            if len(page) < _PAGE:
                return
            after = page[-1].seq

    def scan(self) -> _AuditScan:
        if self._done:
            return self
        self._done = True
        for rec in self._records():
            self.records += 1
            if rec.action == "events":
                self._engine_events(rec)
                continue
            self.actions[(rec.actor, rec.action)] += 1
            item = {
                "seq": rec.seq,
                "ts": _iso(rec.ts),
                "actor": rec.actor,
                "action": rec.action,
                "target": rec.target,
            }
            if rec.action.startswith("pipeline."):
                _keep(self.changes, item)
            if rec.action.startswith(("secret.", "connection.")):
                _keep(self.secrets, item)
            _keep(self.access, item)
        return self

    def _engine_events(self, rec: Any) -> None:
        try:
            rows = json.loads(rec.detail or "[]")
        except ValueError:
            return
        for row in rows:
            if not isinstance(row, list) or len(row) < 7:
                continue
            kind = str(row[2])
            self.events[kind] += 1
            if kind == "SecretRead":
                try:
                    data = json.loads(row[6]) if row[6] else {}
                except ValueError:
                    data = {}
                _keep(
                    self.secrets,
                    {
                        "seq": rec.seq,
                        "ts": _iso(float(row[1])),
                        "actor": f"run {row[0]} task {row[3]}",
                        "action": "secret.read",
                        "target": data.get("name"),
                    },
                )


def _keep(items: list[dict[str, Any]], item: dict[str, Any]) -> None:
    if len(items) < LIST_CAP:
        items.append(item)


# -- sections -----------------------------------------------------------------------------------


def _zone_of(gov: Governance, name: str, decided: Mapping[str, str]) -> str:
    return decided.get(name) or gov.zones.place(name).zone


def _datasets(
    gov: Governance, store: Store, since: float | None, until: float, audit: _AuditScan
) -> dict[str, Any]:
    decided = store.latest_zones()
    items = []
    for row in store.catalogue_entries():
        classified = []
        for field in row["schema"] or ():
            cls, form = split_tag(field.get("tag"))
            if cls is not None:
                classified.append(f"{field['name']}: {cls} ({form or 'raw'})")
        zone = _zone_of(gov, row["uri"], decided)
        trust = gov.zones.zones[zone].trust if zone in gov.zones.zones else -1
        items.append(
            {
                "zone": zone,
                "dataset": row["uri"],
                "kind": row["kind"],
                "rows": row["rows"],
                "classified": classified,
                "updated_at": _iso(row["updated_at"]),
                "_trust": trust,
            }
        )
    items.sort(key=lambda i: (-i["_trust"], i["zone"], i["dataset"]))
    counts = Counter(i["zone"] for i in items)
    for item in items:
        del item["_trust"]
    return {"by_zone": dict(counts), "datasets": items[:LIST_CAP]}


def _decisions(
    gov: Governance, store: Store, since: float | None, until: float, audit: _AuditScan
) -> dict[str, Any]:
    rows = [d for d in store.policy_decisions(since=since, limit=100_000) if d["ts"] < until]
    counts = Counter(d["decision"] for d in rows)
    notable: list[dict[str, Any]] = []
    for d in rows:
        if d["decision"] == "allow" and not d["detail"].get("violations"):
            continue
        _keep(
            notable,
            {
                "ts": _iso(d["ts"]),
                "decision": d["decision"],
                "dataset": d["dataset"],
                "zone": d["zone"],
                "run_id": d["run_id"],
                "task_id": d["task_id"],
                "violations": [
                    {k: v.get(k) for k in ("rule", "column", "class", "form", "severity")}
                    for v in d["detail"].get("violations") or ()
                ],
                "waived": [
                    {k: v.get(k) for k in ("rule", "column", "class", "waiver")}
                    for v in d["detail"].get("waived") or ()
                ],
            },
        )
    rules = Counter(
        v.get("rule")
        for d in rows
        for v in (d["detail"].get("violations") or ())
        if v.get("severity") == "error"
    )
    return {
        "total": len(rows),
        "allow": counts.get("allow", 0),
        "deny": counts.get("deny", 0),
        "waived": counts.get("waived", 0),
        "refusals_by_rule": dict(rules.most_common()),
        "notable": notable,
    }


def _waivers(
    gov: Governance, store: Store, since: float | None, until: float, audit: _AuditScan
) -> dict[str, Any]:
    now = time.time()
    rows = store.waivers(limit=10_000)
    active, period = [], []
    for w in rows:
        item = {
            "id": w["id"],
            "rule": w["rule"],
            "dataset": w["dataset"],
            "columns": w["columns"],
            "zone": w["zone"],
            "owner": w["owner"],
            "reason": w["reason"],
            "created_by": w["created_by"],
            "created_at": _iso(w["created_at"]),
            "expires_at": _iso(w["expires_at"]),
            "revoked_at": _iso(w["revoked_at"]),
            "revoked_by": w["revoked_by"],
            "verified": w["verified"],
        }
        if not w["revoked_at"] and w["expires_at"] > now:
            active.append(item)
        touched = (w["created_at"], w["revoked_at"] or 0, w["expires_at"])
        if any((since or 0) <= t < until for t in touched):
            period.append(item)
    return {"active": active[:LIST_CAP], "in_period": period[:LIST_CAP]}


def _masking(
    gov: Governance, store: Store, since: float | None, until: float, audit: _AuditScan
) -> dict[str, Any]:
    decided = store.latest_zones()
    top = max(z.trust for z in gov.zones.zones.values())
    by_op: Counter[str] = Counter()
    classified = transformed = 0
    raw: list[dict[str, Any]] = []
    for row in store.catalogue_entries():
        zone = _zone_of(gov, row["uri"], decided)
        if zone not in gov.zones.zones or gov.zones.trust(zone) >= top:
            continue
        for field in row["schema"] or ():
            cls, form = split_tag(field.get("tag"))
            if cls is None:
                continue
            classified += 1
            if form is None:
                _keep(
                    raw,
                    {"dataset": row["uri"], "zone": zone, "column": field["name"], "class": cls},
                )
            else:
                transformed += 1
                by_op[form] += 1
    return {
        "classified_columns_below_prod": classified,
        "transformed": transformed,
        "coverage": round(transformed / classified, 4) if classified else None,
        "by_form": dict(by_op.most_common()),
        "raw_columns_below_prod": raw,
    }


def _subjects(
    gov: Governance, store: Store, since: float | None, until: float, audit: _AuditScan
) -> dict[str, Any]:
    holders: dict[str, list[dict[str, str]]] = {}
    for row in store.catalogue_entries():
        for field in row["schema"] or ():
            cls, form = split_tag(field.get("tag"))
            if cls is not None and form == "tokenized":
                holders.setdefault(cls, []).append({"dataset": row["uri"], "column": field["name"]})
    return {
        "tokenized_by_class": {c: v[:LIST_CAP] for c, v in sorted(holders.items())},
        "how": "lockgate lineage --subject ID --class CLASS finds the rows holding a person's "
        "token (and their raw value in more trusted zones) for access and erasure requests",
    }


def _changes(
    gov: Governance, store: Store, since: float | None, until: float, audit: _AuditScan
) -> dict[str, Any]:
    versions = [
        {
            "pipeline": v["pipeline_id"],
            "version": v["id"],
            "hash": v["hash"][:12],
            "file": v["file"],
            "first_seen": _iso(v["created_at"]),
        }
        for v in store.versions_created(since, until)
    ]
    return {"versions": versions[:LIST_CAP], "audited": audit.scan().changes}


def _access(
    gov: Governance, store: Store, since: float | None, until: float, audit: _AuditScan
) -> dict[str, Any]:
    scan = audit.scan()
    return {
        "by_actor_and_action": [
            {"actor": actor, "action": action, "count": n}
            for (actor, action), n in sorted(scan.actions.items())
        ][:LIST_CAP],
        "records": scan.access,
        "runs": store.run_counts(since, until),
        "engine_events": dict(sorted(scan.events.items())),
    }


def _secrets(
    gov: Governance, store: Store, since: float | None, until: float, audit: _AuditScan
) -> dict[str, Any]:
    return {"reads_and_changes": audit.scan().secrets}


def _audit(
    gov: Governance, store: Store, since: float | None, until: float, audit: _AuditScan
) -> dict[str, Any]:
    finding = store.audit_verify()
    checkpoints = store.audit_checkpoints()
    last = checkpoints[-1] if checkpoints else None
    return {
        "verified": finding.ok,
        "message": finding.message,
        "records": finding.records,
        "checkpoints": len(checkpoints),
        "last_checkpoint": (
            {"seq": last.seq, "ts": _iso(last.ts), "exported_to": last.exported_to}
            if last is not None
            else None
        ),
        "records_in_period": audit.scan().records,
    }


_SECTIONS = {
    "datasets": _datasets,
    "decisions": _decisions,
    "waivers": _waivers,
    "masking": _masking,
    "subjects": _subjects,
    "changes": _changes,
    "access": _access,
    "secrets": _secrets,
    "audit": _audit,
}
SECTIONS = tuple(_SECTIONS)
"""The evidence sections a pack may list."""


# -- writing ------------------------------------------------------------------------------------


def write_report(
    project: Project,
    store: Store,
    pack: str,
    *,
    since: float | None,
    until: float | None,
    fmt: str,
    out: Path | None,
    actor: str,
) -> tuple[dict[str, Any], str]:
    """Build and render a report, audit that it was made (by whom, for which period), and
    write it atomically to `out` when given; the document and its text."""
    from lockgate.errors import ConfigError

    if fmt not in FORMATS:
        raise ConfigError(f"report format {fmt!r}: use one of {', '.join(FORMATS)}")
    doc = build(project, store, pack, since, until)
    text = render(doc, fmt)
    store.audit(
        "report.generate",
        pack,
        {"since": doc["since"], "until": doc["until"], "format": fmt, "out": str(out or "-")},
        actor=actor,
    )
    if out is not None:
        _write_atomically(out, text)
    return doc, text


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def report_task(
    pack: str, output: str, since: str | None = "1d", format: str = "html"
) -> dict[str, Any]:
    """A pipeline task writing the `pack` report of the last `since` (a duration, e.g. 1d) to
    `output` (relative to the project folder): the seed's daily compliance job. Its result
    says whether the audit chain verified and how many writes the gate refused."""
    from lockgate.config import Project, parse_duration
    from lockgate.governance.audit import project_store
    from lockgate.store.audit import user_actor

    project = Project.load()
    start = time.time() - parse_duration(since) if since else None
    target = Path(output) if Path(output).is_absolute() else project.root / output
    store = project_store(project)
    try:
        who = f"pipeline {os.environ.get('LOCKGATE_PIPELINE', '?')} ({user_actor()})"
        doc, _ = write_report(
            project, store, pack, since=start, until=None, fmt=format, out=target, actor=who
        )
    finally:
        store.close()
    audit = doc["sections"].get("audit") or {}
    decisions = doc["sections"].get("decisions") or {}
    print(f"{doc['title']} report written to {output}")
    return {
        "report": pack,
        "output": output,
        "audit_verified": audit.get("verified"),
        "refused_writes": decisions.get("deny"),
    }


# -- rendering ----------------------------------------------------------------------------------


def render(doc: dict[str, Any], fmt: str) -> str:
    """The report as `json`, `md` or `html` text."""
    if fmt == "json":
        return json.dumps(doc, indent=2, default=str) + "\n"
    if fmt == "md":
        return _markdown(doc)
    return _html(doc)


def _markdown(doc: dict[str, Any]) -> str:
    lines = [f"# {doc['title']}: compliance report", ""]
    lines.append(
        f"Project `{doc['project']}`, period {doc['since'] or 'beginning'} to {doc['until']}, "
        f"generated {doc['generated_at']}."
    )
    lines += ["", doc["description"].strip(), ""]
    for name, section in doc["sections"].items():
        lines += [f"## {name.capitalize()}", ""]
        lines += _md_section(section)
        lines.append("")
    lines += ["## Rules", "", "| rule | severity | reference |", "|---|---|---|"]
    lines += [
        f"| {r['id']}: {r['title']} | {r['severity']} | {r['reference']} |" for r in doc["rules"]
    ]
    return "\n".join(lines) + "\n"


def _md_cell(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = ", ".join(value)
    elif isinstance(value, list | dict):
        value = json.dumps(value, default=str)
    text = str("" if value is None else value)
    # Markdown viewers render inline HTML: what a report shows is text, never markup
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\n", " ")


def _md_section(section: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in section.items():
        title = key.replace("_", " ")
        if isinstance(value, list) and value and isinstance(value[0], dict):
            cols = list(value[0])
            head = ["", f"**{title}**", ""] if out and out[-1] else [f"**{title}**", ""]
            out += [*head, "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            out += ["| " + " | ".join(_md_cell(v.get(c)) for c in cols) + " |" for v in value]
            out.append("")
        elif isinstance(value, list):
            out.append(f"- {title}: none" if not value else f"- {title}: {_md_cell(value)}")
        else:
            out.append(f"- {title}: {_md_cell(value)}")
    return out


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{{ doc.title }}: compliance report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } .bad { color: #a00; font-weight: bold; } .ok { color: #070; }
</style></head>
<body>
<h1>{{ doc.title }}: compliance report</h1>
<p id="period">Project <code>{{ doc.project }}</code>; period {{ doc.since or "beginning" }} to
{{ doc.until }}; generated {{ doc.generated_at }}.</p>
<p>{{ doc.description }}</p>
{% for name, section in doc.sections.items() %}
<section id="{{ name }}"><h2>{{ name | capitalize }}</h2>
{% for key, value in section.items() %}
{% if value is mapping and value and (value.values() | first) is mapping %}
<h3>{{ key | replace("_", " ") }}</h3>
{% for sub, items in value.items() %}<h4>{{ sub }}</h4>{{ table(items) }}{% endfor %}
{% elif value is sequence and value is not string and value and value[0] is mapping %}
<h3>{{ key | replace("_", " ") }}</h3>{{ table(value) }}
{% else %}
<p><b>{{ key | replace("_", " ") }}</b>:
{% if value is sameas true %}<span class="ok">yes</span>{% elif value is sameas false %}<span class="bad">no</span>{% else %}{{ cell(value) }}{% endif %}</p>
{% endif %}
{% endfor %}
</section>
{% endfor %}
<section id="rules"><h2>Rules</h2>{{ table(doc.rules) }}</section>
</body></html>
"""
_MACROS = """
{% macro cell(value) %}{% if value is mapping %}{% for k, v in value.items() %}{{ k }}: {{ cell(v) }}{% if not loop.last %}; {% endif %}{% endfor %}{% elif value is sequence and value is not string %}{% for v in value %}{{ cell(v) }}{% if not loop.last %}, {% endif %}{% endfor %}{% elif value is none %}-{% else %}{{ value }}{% endif %}{% endmacro %}
{% macro table(items) %}{% if not items %}<p>none</p>{% else %}<table><thead><tr>{% for c in items[0] %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>{% for item in items %}<tr>{% for c in items[0] %}<td>{{ cell(item[c]) }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>{% endif %}{% endmacro %}
"""


def _html(doc: dict[str, Any]) -> str:
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True)
    template = env.from_string(_MACROS + _TEMPLATE)
    return template.render(doc=doc)
