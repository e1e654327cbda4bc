"""Compliance reports: built from the store and the audit chain after real runs (a refused
write, a masked copy, a waiver), rendered as JSON, Markdown and HTML (parsed here), and the
daily reporting pipeline of the examples, which calls `lockgate report`."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

import lockgate
from cli.helpers import lockgate as cli
from lockgate.api import open_store
from lockgate.authoring.discovery import load_file
from lockgate.config import Project
from lockgate.governance.reports import build, render

from .helpers import make_prod, provision

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def history(project: Project) -> Project:
    """A project where one run was refused at the gate, one masked and loaded staging, and a
    waiver was recorded."""
    project = make_prod(project)
    assert not lockgate.run(provision(project, masked=False), project=project).ok
    assert lockgate.run(provision(project, masked=True), project=project).ok
    open_store(project).add_waiver(
        rule="pci.*",
        dataset="sqlite:///staging.db#payments",
        columns=["card"],
        zone="staging",
        owner="payments-team",
        reason="certification test cards",
        expires_at=time.time() + 7 * 86400,
        actor="alice@laptop",
    )
    return project


class _Html(HTMLParser):
    """Sections (ids), headings and table cells of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.headings: list[str] = []
        self.cells: list[str] = []
        self.scripts = 0
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.sections.append(dict(attrs).get("id") or "")
        if tag == "script":
            self.scripts += 1
        if tag in ("h1", "h2", "h3", "td"):
            self._in = tag
            (self.cells if tag == "td" else self.headings).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "td":
            self.cells[-1] += data
        elif self._in:
            self.headings[-1] += data


def test_gdpr_report_holds_the_evidence(history: Project) -> None:
    doc = build(history, open_store(history), "gdpr")
    sections = doc["sections"]
    assert list(sections) == ["datasets", "decisions", "waivers", "masking", "subjects", "audit"]

    staging = [d for d in sections["datasets"]["datasets"] if d["zone"] == "staging"]
    assert [d["dataset"].rsplit("#", 1)[1] for d in staging] == ["customers"]
    assert staging[0]["classified"] == [
        "email: pii.email (tokenized)",
        "card: pci.pan (truncated)",
    ]
    decisions = sections["decisions"]
    assert decisions["deny"] == 1 and decisions["allow"] >= 3
    assert decisions["refusals_by_rule"] == {"gdpr.pseudonymise": 1, "pci.pan-outside-cde": 1}
    [refused] = [d for d in decisions["notable"] if d["decision"] == "deny"]
    assert {v["column"] for v in refused["violations"]} == {"email", "card"}

    [waiver] = sections["waivers"]["active"]
    assert (waiver["owner"], waiver["created_by"]) == ("payments-team", "alice@laptop")
    masking = sections["masking"]
    assert masking["coverage"] == 1.0 and masking["raw_columns_below_prod"] == []
    assert masking["by_form"] == {"tokenized": 1, "truncated": 1}
    holders = sections["subjects"]["tokenized_by_class"]["pii.email"]
    assert any(h["dataset"].endswith("staging.db#customers") for h in holders)
    audit = sections["audit"]
    assert audit["verified"] is True and audit["records"] >= 3


def test_soc2_report_shows_changes_access_and_a_broken_chain(history: Project) -> None:
    store = open_store(history)
    doc = build(history, store, "soc2")
    changes = doc["sections"]["changes"]
    assert [v["pipeline"] for v in changes["versions"]] == ["provision", "provision"]
    access = doc["sections"]["access"]
    actions = {(a["actor"], a["action"]) for a in access["by_actor_and_action"]}
    assert ("alice@laptop", "waiver.create") in actions
    assert {r["state"] for r in access["runs"]} == {"failed", "success"}
    assert access["engine_events"]["PolicyViolation"] == 1

    # someone edits the chain behind lockgate's back: the report says so
    with sqlite3.connect(history.root / ".lockgate" / "lockgate.db") as conn:
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    audit = build(history, store, "soc2")["sections"]["audit"]
    assert audit["verified"] is False and "2" in audit["message"]


@pytest.mark.parametrize("pack", ["gdpr", "hipaa", "pci", "soc2"])
def test_every_pack_renders_as_html_json_and_markdown(history: Project, pack: str) -> None:
    doc = build(history, open_store(history), pack)
    page = _Html()
    page.feed(render(doc, "html"))
    assert page.scripts == 0
    assert page.headings[0].endswith("compliance report")
    assert page.sections == [*doc["sections"], "rules"]
    assert any(cell.startswith(f"{pack}.") for cell in page.cells)  # the rules table
    assert json.loads(render(doc, "json"))["report"] == pack
    markdown = render(doc, "md")
    assert markdown.startswith(f"# {doc['title']}")
    assert all(f"## {s.capitalize()}" in markdown for s in doc["sections"])


def test_the_html_report_escapes_what_it_shows(history: Project) -> None:
    store = open_store(history)
    store.add_waiver(
        rule="gdpr.*",
        dataset="x.csv",
        columns=None,
        zone=None,
        owner="<script>alert(1)</script>",
        reason="<img src=x onerror=alert(1)>",
        expires_at=time.time() + 3600,
        actor="eve@host",
    )
    html = render(build(history, store, "gdpr"), "html")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_report_command_and_its_errors(history: Project) -> None:
    done = cli(history.root, "report", "pci", "--since", "1d", "--format", "md", "-o", "out/pci.md")
    assert done.code == 0, done
    assert "audit chain verified" in done.out
    assert (history.root / "out" / "pci.md").read_text().startswith("# PCI DSS")
    assert cli(history.root, "report", "soc2", "-o", "out/soc2.md").code == 0  # format: .md
    assert (history.root / "out" / "soc2.md").read_text().startswith("# SOC 2")
    shown = cli(history.root, "report", "gdpr", "--format", "json")
    assert json.loads(shown.out)["report"] == "gdpr"
    bad = cli(history.root, "report", "gdrp")
    assert bad.code == 2 and "did you mean 'gdpr'?" in bad.err, bad
    bad = cli(history.root, "report", "gdpr", "--format", "pdf")
    assert bad.code == 2 and "use one of html, json, md" in bad.err, bad
    bad = cli(history.root, "report", "gdpr", "--since", "yesterday")
    assert bad.code == 2 and "neither a date" in bad.err, bad
    generated = [
        r for r in open_store(history).audit_records(limit=10_000) if r.action == "report.generate"
    ]
    assert [r.target for r in generated] == ["pci", "soc2", "gdpr"]


def test_the_daily_compliance_pipeline_writes_the_reports(history: Project) -> None:
    example = REPO / "examples" / "yaml" / "compliance_reports.yaml"
    shutil.copy(example, history.root / "pipelines" / "compliance_reports.yaml")
    [pipe] = load_file(history.root / "pipelines" / "compliance_reports.yaml")
    assert pipe.schedule == "@daily"
    result = lockgate.run(pipe, project=history)
    assert result.ok, {t.id: t.error for t in result.tasks.values()}
    reports = sorted(p.name for p in (history.root / "reports").rglob("*.html"))
    assert len(reports) == 2 and reports[0].startswith("gdpr-") and reports[1].startswith("soc2-")
    page = _Html()
    page.feed(next((history.root / "reports").rglob("soc2-*.html")).read_text())
    assert "audit" in page.sections
