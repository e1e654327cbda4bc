"""Files a task publishes (`ctx.publish`) are listed on the run's page and served as they were,
sandboxed and redacted; nothing outside the project, nothing changed since, nobody without read
access to the pipeline."""

from __future__ import annotations

import hashlib

import pytest

from lockgate import api
from lockgate.engine.context import TaskContext

from .conftest import Server
from .test_web_pages import browser

REPORTING = """
from pathlib import Path

from lockgate import pipeline, task

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script><rect width="10" height="10"/></svg>'


@task
def write(ctx) -> None:
    out = Path("reports")
    out.mkdir(exist_ok=True)
    (out / "summary.md").write_text("# Costs\\n\\n| team | cost |\\n|---|---|\\n| data | 12 |\\n\\n<script>alert(1)</script>\\n")
    (out / "chart.svg").write_text(SVG)
    ctx.publish("reports/summary.md", title="Monthly costs")
    ctx.publish("reports/chart.svg")


with pipeline("reporting") as p:
    write()
"""


@pytest.fixture
def published(fresh_server: Server) -> tuple[Server, str]:
    (fresh_server.project.pipelines_dir / "reporting.py").write_text(REPORTING)
    assert fresh_server.state.registry is not None
    fresh_server.state.registry.reload()
    run_id = fresh_server.trigger("reporting")
    api.resume(run_id, project=fresh_server.project)
    assert fresh_server.store.get_run(run_id)["state"] == "success"
    return fresh_server, run_id


def test_published_files_are_listed_and_served_sandboxed(published) -> None:
    server, run_id = published
    b = browser(server, "admin")
    page = b.get(f"/runs/{run_id}")
    assert page.status_code == 200 and 'data-testid="published"' in page.text
    assert "Monthly costs" in page.text and "chart.svg" in page.text
    rows = server.store.published(run_id)
    md, svg = (b.get(f"/runs/{run_id}/reports/{row['id']}") for row in rows)
    for reply in (md, svg):
        assert reply.status_code == 200
        assert "sandbox" in reply.headers["content-security-policy"]
        assert "script-src" not in reply.headers["content-security-policy"]
        assert reply.headers["x-content-type-options"] == "nosniff"
    assert md.headers["content-type"].startswith("text/html")
    assert "<h1>Costs</h1>" in md.text and "<table>" in md.text
    assert "<script>" not in md.text, "raw HTML in Markdown is not passed through"
    assert svg.headers["content-type"].startswith("image/svg+xml")


def test_a_changed_or_unknown_file_is_not_served(published) -> None:
    server, run_id = published
    b = browser(server, "admin")
    first = server.store.published(run_id)[0]["id"]
    assert b.get(f"/runs/{run_id}/reports/999999").status_code == 404
    (server.project.root / "reports" / "summary.md").write_text("# replaced later\n")
    changed = b.get(f"/runs/{run_id}/reports/{first}")
    assert changed.status_code == 409 and "changed since" in changed.text


def test_the_reports_follow_the_run_pages_access(published) -> None:
    server, run_id = published
    first = server.store.published(run_id)[0]["id"]
    for user in ("viewer", "auditor"):
        b = browser(server, user)
        page = b.get(f"/runs/{run_id}").status_code
        assert b.get(f"/runs/{run_id}/reports/{first}").status_code == page
    assert browser(server).get(f"/runs/{run_id}/reports/{first}").status_code in (303, 401)


def test_publishing_checks_the_file(tmp_path, monkeypatch) -> None:
    from lockgate.model import facts
    from lockgate.model.workplace import inside

    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.md").write_text("# ok\n")
    (tmp_path / "r.exe").write_text("x")
    ctx = TaskContext("r", "p", "t", 1)
    with inside(str(tmp_path)), facts.collect() as found:
        assert ctx.publish("r.md") is True
        with pytest.raises(ValueError, match="only files inside the project folder"):
            ctx.publish("../elsewhere.md")
        with pytest.raises(ValueError, match="publish a file of one of these kinds"):
            ctx.publish("r.exe")
        with pytest.raises(ValueError, match="no such file"):
            ctx.publish("missing.md")
    [fact] = found
    assert fact["data"]["sha256"] == hashlib.sha256(b"# ok\n").hexdigest()
    assert fact["data"]["media_type"] == "text/markdown"
