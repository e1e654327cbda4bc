"""The web UI's pages: each renders for a role allowed to see it, sends anonymous visitors to
the login page and refuses other roles with the error page; forms need the session's CSRF
token and run the API's own code; nothing a task wrote reaches a page unescaped; no page has
inline script or style (the CSP forbids them). Also how pages name things: datasets relative
to the project (else cut from the left, whole in a title), times to the second, task kinds
as written, the audit log without page views unless asked for."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from lockgate import api
from lockgate.server import paths
from lockgate.server.deps import SESSION_COOKIE
from lockgate.server.web import governance as web_governance
from lockgate.server.web import render, svg
from lockgate.server.web import runs as web_runs
from lockgate.server.web.account import LOGIN_CSRF_COOKIE
from lockgate.server.web.pipelines import task_does

from .conftest import PASSWORD, Server

XSS = "<script>alert(1)</script>"
Reply = Any
"""A TestClient response (httpx's or httpx2's, by starlette version)."""
_addresses = itertools.count(1)

EXTRA_PIPELINES = {
    "shop.yaml": f"""\
description: "Sells things {XSS}"
tags: [shop]
params:
  count:
    type: integer
    default: 2
    minimum: 1
    description: How many to sell.
  region:
    type: string
    default: eu
    enum: [eu, us]
  note:
    type: string
tasks:
  sell:
    shell: "echo '{XSS}'; echo 'ask jane.doe@example.com'; echo sold"
  report:
    shell: "echo '{XSS}'"
    output_result: true
    depends_on: [sell]
""",
    "stage.yaml": """\
description: Copies the customers into the staging area.
tasks:
  stage:
    copy:
      source: data/customers.csv
      target: out/customers.parquet
      tags: {email: pii.email}
      checks:
        - not_null: [id]
        - unique: id
        - row_count: {min: 10}
          severity: warn
""",
}


class Browser:
    """A browser of one user: a cookie jar of its own, its own client address (so the login
    rate limit of other tests does not apply), redirects not followed."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.client = TestClient(
            server.app,
            client=(f"127.0.3.{next(_addresses) % 250 + 1}", 40000),
            follow_redirects=False,
        )

    def get(self, path: str, **kw: Any) -> Reply:
        headers = {"accept": "text/html", **kw.pop("headers", {})}
        return self.client.get(path, headers=headers, **kw)

    def post(self, path: str, data: dict[str, str] | None = None, **kw: Any) -> Reply:
        headers = {"accept": "text/html", **kw.pop("headers", {})}
        return self.client.post(path, data=data or {}, headers=headers, **kw)

    def log_in(self, user: str, password: str = PASSWORD, next_path: str = "/") -> Reply:
        page = self.get("/login")
        assert page.status_code == 200, page.text
        token = self.client.cookies.get(LOGIN_CSRF_COOKIE)
        assert token and f'value="{token}"' in page.text
        return self.post(
            "/login",
            {"user": user, "password": password, "csrf_token": token, "next": next_path},
        )

    @property
    def csrf(self) -> str:
        """The session's CSRF token, as the forms of a page carry it."""
        page = self.get("/account/password")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, page.text
        return found.group(1)


def browser(server: Server, user: str | None = None) -> Browser:
    found = Browser(server)
    if user is not None:
        response = found.log_in(user)
        assert response.status_code == 303, response.text
    return found


@pytest.fixture(scope="module")
def site(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The module's server with three more pipelines and finished runs of them: a run of
    `shop` (its output and result contain a script tag), of `stage` (a dataset with a
    classified column, lineage, a policy decision and quality results) and of `export` (a
    copy to a long path outside the project folder, under the key `outside`)."""
    root = server.project.root
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "customers.csv").write_text(
        "id,email\n" + "".join(f"{i},user{i}@example.org\n" for i in range(1, 7))
    )
    far = tmp_path_factory.mktemp("elsewhere") / "analytics" / "exports" / "quarterly"
    outside = str(far / "customers_exported_for_the_analysts.csv")
    pipelines = {
        **EXTRA_PIPELINES,
        "export.yaml": f"tasks:\n  export:\n    copy:\n      source: data/customers.csv\n"
        f"      target: {outside}\n",
    }
    for name, text in pipelines.items():
        (server.project.pipelines_dir / name).write_text(text)
    assert server.state.registry is not None
    server.state.registry.reload()
    runs = {}
    for pipeline in ("shop", "stage", "hello", "export"):
        run_id = server.trigger(pipeline, params={"note": "n"} if pipeline == "shop" else {})
        api.resume(run_id, project=server.project)
        runs[pipeline] = run_id
    assert server.store.get_run(runs["export"])["state"] == "success"
    yield {**runs, "outside": outside}


def page_urls(runs: dict[str, str]) -> list[str]:
    return [
        "/",
        "/pipelines/shop",
        "/runs",
        f"/runs/{runs['shop']}",
        f"/runs/{runs['shop']}/tasks/sell/attempts/1/log",
        "/datasets",
        f"/datasets/view?uri={quote('out/customers.parquet')}",
        "/policy",
        "/quality",
        "/audit",
        "/account/password",
    ]


# -- logging in and out -----------------------------------------------------------------------
def test_login_form_starts_a_session_and_goes_on(server: Server) -> None:
    b = Browser(server)
    page = b.get("/login")
    for testid in ("login-form", "login-user", "login-password", "login-submit"):
        assert f'data-testid="{testid}"' in page.text
    response = b.log_in("viewer", next_path="/runs")
    assert response.status_code == 303
    assert response.headers["location"] == "/runs"
    assert b.client.cookies.get(SESSION_COOKIE)
    home = b.get("/")
    assert home.status_code == 200
    assert 'data-testid="user"' in home.text and ">viewer<" in home.text
    assert b.get("/login").status_code == 303  # logged in already


def test_login_refuses_a_form_without_its_csrf_token(server: Server) -> None:
    b = Browser(server)
    b.get("/login")
    response = b.post("/login", {"user": "viewer", "password": PASSWORD, "next": "/"})
    assert response.status_code == 403
    assert 'data-testid="login-error"' in response.text
    assert not b.client.cookies.get(SESSION_COOKIE)
    other = Browser(server)  # a token from another browser's form does not match the cookie
    other.get("/login")
    forged = b.post(
        "/login",
        {"user": "viewer", "password": PASSWORD, "csrf_token": "x" * 43, "next": "/"},
    )
    assert forged.status_code == 403


def test_wrong_password_shows_the_apis_message(server: Server) -> None:
    response = Browser(server).log_in("viewer", "not the password")
    assert response.status_code == 401
    assert "login refused" in response.text.lower()


def test_next_never_leaves_the_site(server: Server) -> None:
    response = Browser(server).log_in("viewer", next_path="//evil.example/x")
    assert response.headers["location"] == "/"


def test_one_time_password_must_be_changed_first(fresh_server: Server) -> None:
    one_time = fresh_server.add_user("newbie", "viewer", password=None, token=False)
    assert one_time is not None
    b = Browser(fresh_server)
    response = b.log_in("newbie", one_time)
    assert response.headers["location"] == "/account/password"
    assert b.get("/").headers["location"] == "/account/password"
    form = b.get("/account/password")
    assert "Choose your password" in form.text
    assert 'data-testid="nav-pipelines"' not in form.text
    csrf = b.csrf
    mismatch = b.post(
        "/account/password",
        {"csrf_token": csrf, "current": one_time, "new": "a" * 14, "confirm": "b" * 14},
    )
    assert mismatch.status_code == 422 and "differ" in mismatch.text
    short = b.post(
        "/account/password",
        {"csrf_token": csrf, "current": one_time, "new": "short", "confirm": "short"},
    )
    assert short.status_code == 422 and "at least" in short.text
    done = b.post(
        "/account/password",
        {
            "csrf_token": csrf,
            "current": one_time,
            "new": "a brand new passphrase",
            "confirm": "a brand new passphrase",
        },
    )
    assert done.status_code == 303, done.text
    assert b.get("/").status_code == 200
    assert Browser(fresh_server).log_in("newbie", "a brand new passphrase").status_code == 303


def test_logout_needs_the_token_and_ends_the_session(server: Server) -> None:
    b = browser(server, "viewer")
    refused = b.post("/logout")
    assert refused.status_code == 403
    assert b.get("/").status_code == 200
    response = b.post("/logout", {"csrf_token": b.csrf})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    after = b.get("/runs")
    assert after.status_code == 303 and after.headers["location"].startswith("/login")


# -- every page -------------------------------------------------------------------------------
def test_anonymous_visitors_go_to_the_login_page(server: Server, site: dict[str, str]) -> None:
    b = Browser(server)
    for url in page_urls(site):
        response = b.get(url)
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/login"), url
    assert b.get("/runs?state=failed").headers["location"] == "/login?next=" + quote(
        "/runs?state=failed", safe=""
    )


def test_every_page_renders_for_an_admin(server: Server, site: dict[str, str]) -> None:
    b = browser(server, "admin")
    expect = {
        "/": ['data-pipeline="shop"', 'data-testid="recent-runs"', "pause-shop"],
        "/pipelines/shop": [
            'data-task="sell"',
            'data-state="success"',
            'data-testid="grid-cell"',
            'data-testid="param-count"',
            'data-testid="trigger-button"',
        ],
        "/runs": [site["shop"], site["stage"]],
        f"/runs/{site['shop']}": [
            'data-testid="gantt"',
            'data-testid="task-table"',
            'data-testid="result"',
        ],
        f"/runs/{site['shop']}/tasks/sell/attempts/1/log": ['data-testid="log-pane"', "sold"],
        "/datasets": ["customers.parquet", "pii.email"],
        f"/datasets/view?uri={quote('out/customers.parquet')}": [
            'data-testid="lineage-graph"',
            "customers.csv",
            "pii.email",
        ],
        "/policy": ['data-testid="decisions-table"', "customers.parquet"],
        "/quality": ["not_null", "unique", "row_count"],
        "/audit": ['data-testid="audit-table"', "run.trigger"],
        "/account/password": ['data-testid="password-form"'],
    }
    for url, wanted in expect.items():
        response = b.get(url)
        assert response.status_code == 200, (url, response.text[:2000])
        for text in wanted:
            assert text in response.text, (url, text)
    assert set(expect) == set(page_urls(site))


def test_failed_quality_checks_come_first(server: Server, site: dict[str, str]) -> None:
    b = browser(server, "viewer")
    text = b.get("/quality").text
    failed = text.split('data-testid="failed-table"', 1)[1].split("</table>", 1)[0]
    assert "row_count" in failed and "warning" in failed  # row_count >= 10 failed (warn)
    assert "not_null" not in failed
    rows = re.findall(r'data-testid="quality-row" data-status="(\w+)"', text)
    assert rows.count("failed") == 2 and rows.count("passed") == 2  # listed again in all
    only = b.get("/quality?status=passed").text
    assert 'data-status="failed"' not in only and 'data-status="passed"' in only


def test_runs_list_filters_and_pages(
    server: Server, site: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    b = browser(server, "viewer")
    only = b.get("/runs?pipeline=stage")
    assert site["stage"] in only.text and site["shop"] not in only.text
    assert b.get("/runs?state=cancelled").text.count('data-testid="run-row"') == 0
    monkeypatch.setattr(web_runs, "PAGE", 1)
    first = b.get("/runs")
    older = re.search(r'href="(/runs\?[^"]*cursor=[^"]+)"', first.text)
    assert older, first.text
    second = b.get(older.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    ids = re.findall(r'data-testid="run-row" data-run="([^"]+)"', first.text + second.text)
    assert len(ids) == 2 and ids[0] != ids[1]


def test_audit_chain_verifies_on_demand(server: Server, site: dict[str, str]) -> None:
    b = browser(server, "auditor")
    page = b.get("/audit")
    assert 'data-testid="chain-status"' in page.text
    checked = b.get("/audit?verify=1")
    assert 'data-testid="verification" data-ok="yes"' in checked.text


def test_navigation_shows_what_the_role_may_open(server: Server) -> None:
    viewer = browser(server, "viewer").get("/").text
    assert 'data-testid="nav-runs"' in viewer and 'data-testid="nav-audit"' not in viewer
    auditor = browser(server, "auditor").get("/").text
    assert 'data-testid="nav-audit"' in auditor
    assert 'data-testid="logout"' in auditor


# -- refusals and errors ----------------------------------------------------------------------
def test_forbidden_roles_get_the_error_page(server: Server, site: dict[str, str]) -> None:
    viewer = browser(server, "viewer")
    audit = viewer.get("/audit")
    assert audit.status_code == 403
    assert 'data-testid="error-page"' in audit.text and "audit permission" in audit.text
    assert viewer.get("/audit?verify=1").status_code == 403
    shop = viewer.get("/pipelines/shop").text
    assert 'data-testid="trigger-button"' not in shop and "pause-button" not in shop
    pause = viewer.post("/pipelines/shop/pause", {"csrf_token": viewer.csrf})
    assert pause.status_code == 403 and 'data-testid="error-page"' in pause.text
    cancel = viewer.post(f"/runs/{site['shop']}/cancel", {"csrf_token": viewer.csrf})
    assert cancel.status_code == 403
    granted = browser(server, "granted")  # operator on hello only
    assert 'data-testid="pause-button"' in granted.get("/pipelines/hello").text
    assert 'data-testid="pause-button"' not in granted.get("/pipelines/shop").text


def test_missing_things_get_a_404_page(server: Server) -> None:
    b = browser(server, "viewer")
    for url in ("/no/such/page", "/runs/no-such-run", "/pipelines/nope", "/runs/bad%20id"):
        response = b.get(url)
        assert response.status_code == 404, url
        assert 'data-testid="error-page"' in response.text, url
    assert b.get("/datasets/view?uri=nowhere.csv").status_code == 404
    api_404 = b.client.get("/api/v1/runs/nope")
    assert api_404.headers["content-type"].startswith("application/json")


def test_form_posts_without_the_csrf_token_are_refused(
    server: Server, site: dict[str, str]
) -> None:
    b = browser(server, "operator")
    for url in (
        "/pipelines/hello/pause",
        "/pipelines/shop/trigger",
        f"/runs/{site['hello']}/clear",
        "/logout",
    ):
        response = b.post(url, {"csrf_token": "wrong"})
        assert response.status_code == 403, url
        assert "CSRF" in response.text, url
        assert b.post(url).status_code == 403, url
    assert not server.store.pipeline_flags().get("hello", {}).get("paused")
    cross = b.post(
        "/pipelines/hello/pause",
        {"csrf_token": b.csrf},
        headers={"origin": "https://evil.example"},
    )
    assert cross.status_code == 403


def test_pause_form_with_the_token_pauses_and_unpauses(server: Server) -> None:
    b = browser(server, "operator")
    token = b.csrf
    response = b.post("/pipelines/hello/pause?back=list", {"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/?notice=paused"
    assert server.store.pipeline_flags()["hello"]["paused"]
    listed = b.get("/?notice=paused").text
    assert 'data-testid="notice"' in listed and 'data-testid="unpause-hello"' in listed
    again = b.post("/pipelines/hello/unpause", {"csrf_token": token})
    assert again.headers["location"] == "/pipelines/hello?notice=unpaused"
    assert not server.store.pipeline_flags()["hello"]["paused"]


def test_trigger_form_checks_params_and_queues_a_run(server: Server, site: dict[str, str]) -> None:
    b = browser(server, "operator")
    token = b.csrf
    bad = b.post(
        "/pipelines/shop/trigger",
        {"csrf_token": token, "param.count": "0", "param.region": "eu", "param.note": ""},
    )
    assert bad.status_code == 422
    assert 'data-testid="param-error-count"' in bad.text and "&gt;= 1" in bad.text
    assert 'data-testid="param-error-note"' in bad.text  # required
    assert 'value="0"' in bad.text  # what was typed is kept
    good = b.post(
        "/pipelines/shop/trigger",
        {"csrf_token": token, "param.count": "3", "param.region": "us", "param.note": "hi"},
    )
    assert good.status_code == 303, good.text
    run_id = good.headers["location"].rsplit("/", 1)[1]
    row = server.store.get_run(run_id)
    assert row is not None and row["state"] == "queued"
    assert '"count": 3' in row["params"] and '"region": "us"' in row["params"]
    page = b.get(f"/runs/{run_id}")
    assert 'data-live="on"' in page.text and 'data-testid="cancel-button"' in page.text
    assert 'id="task-sell" data-task="sell" data-state="pending"' in page.text  # not started yet
    cancelled = b.post(f"/runs/{run_id}/cancel", {"csrf_token": token})
    assert cancelled.status_code == 303
    assert server.store.get_run(run_id)["state"] == "cancelled"


def test_clear_form_queues_the_run_again(server: Server, site: dict[str, str]) -> None:
    b = browser(server, "admin")
    run_id = server.trigger("hello")
    api.resume(run_id, project=server.project)
    page = b.get(f"/runs/{run_id}").text
    assert 'data-testid="clear-greet"' in page
    response = b.post(
        f"/runs/{run_id}/clear", {"csrf_token": b.csrf, "task": "after", "downstream": "1"}
    )
    assert response.status_code == 303, response.text
    assert server.store.get_run(run_id)["state"] == "queued"


# -- what pages may contain -------------------------------------------------------------------
def test_text_written_by_tasks_and_pipelines_is_escaped(
    server: Server, site: dict[str, str]
) -> None:
    b = browser(server, "admin")
    for url in (
        "/",
        "/pipelines/shop",
        f"/runs/{site['shop']}",
        f"/runs/{site['shop']}/tasks/sell/attempts/1/log",
    ):
        text = b.get(url).text
        assert "<script>alert" not in text, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, url


def test_pii_in_logs_is_redacted(server: Server, site: dict[str, str]) -> None:
    text = browser(server, "viewer").get(f"/runs/{site['shop']}/tasks/sell/attempts/1/log").text
    assert "jane.doe@example.com" not in text
    assert "ask [EMAIL]" in text


class _Inline(HTMLParser):
    """Collects what the CSP would block: inline scripts, style attributes and elements,
    event handler attributes, javascript: URLs, and anything loaded from another origin."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {k.lower(): v or "" for k, v in attrs}
        if tag == "script" and not names.get("src"):
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style> element")
        for name, value in names.items():
            if name == "style":
                self.found.append(f"style= on <{tag}>")
            if name.startswith("on"):
                self.found.append(f"{name}= on <{tag}>")
            if name in ("src", "href", "action") and value.strip().lower().startswith(
                ("javascript:", "http:", "https:", "//")
            ):
                self.found.append(f"{name}={value} on <{tag}>")


def test_no_page_has_inline_script_or_style(server: Server, site: dict[str, str]) -> None:
    b = browser(server, "admin")
    anonymous = Browser(server)
    for url in [*page_urls(site), "/no/such/page", "/login"]:
        response = (anonymous if url == "/login" else b).get(url)
        assert response.headers["content-type"].startswith("text/html"), url
        assert "script-src 'self'" in response.headers["content-security-policy"], url
        parser = _Inline()
        parser.feed(response.text)
        assert parser.found == [], (url, parser.found)
    for name in ("app.css", "app.js", "theme.js", "favicon.svg"):
        assert b.get(f"/static/{name}").status_code == 200, name
    script = b.get("/static/app.js").text
    for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "document.write"):
        assert unsafe not in script, unsafe


# -- how pages name and show things ----------------------------------------------------------
def _shown(text: str, title: str) -> list[str]:
    """The texts of the elements whose title is `title`."""
    return re.findall(rf'title="{re.escape(title)}"[^>]*>([^<]*)<', text)


def test_dataset_names_are_relative_or_cut_from_the_left(
    server: Server, site: dict[str, str]
) -> None:
    b = browser(server, "admin")
    outside = site["outside"]
    root = str(server.project.root)
    for url in ("/datasets", "/policy", f"/datasets/view?uri={quote(outside)}"):
        text = b.get(url).text
        assert _shown(text, "out/customers.parquet") or url.startswith("/datasets/view"), url
        cut = _shown(text, outside)  # the whole name in the title, its end in the text
        assert cut, url
        for shown in cut:
            assert shown.startswith("…") and shown.endswith("exported_for_the_analysts.csv")
            assert len(shown) < len(outside)
        assert f"{root}/out" not in text, url
    view = b.get(f"/datasets/view?uri={quote(outside)}").text
    labels = re.findall(r'class="node-text"[^>]*>([^<]*)<', view)
    assert "data/customers.csv" in labels  # inside the project: relative, whole
    assert any(x.startswith("…") and x.endswith(".csv") for x in labels), labels
    assert len(max(labels, key=len)) <= svg.LABEL_CHARS


def test_dataset_name_helpers() -> None:
    roots = paths.project_roots("/srv/proj")
    assert paths.dataset_name("/srv/proj/out/a.csv", roots) == "out/a.csv"
    assert paths.dataset_name("file:///srv/proj/out/a.csv", roots) == "out/a.csv"
    assert paths.dataset_name("sqlite:////srv/proj/shop.db#orders", roots) == (
        "sqlite:///shop.db#orders"
    )
    assert paths.dataset_name("/srv/project2/a.csv", roots) == "/srv/project2/a.csv"
    shown = paths.dataset_name("postgresql://etl:hunter2secret@db/shop#orders", roots)
    assert "hunter2secret" not in shown and shown.endswith("@db/shop#orders")
    assert render.cut_left("/a/very/long/folder/name/file.csv", 20) == "…/name/file.csv"
    assert render.cut_left("short.csv", 20) == "short.csv"
    assert len(render.cut_left("x" * 100, 30)) == 30
    assert paths.relative({"t": ["/srv/proj/out/a.csv", 3]}, roots) == {"t": ["out/a.csv", 3]}


def test_times_have_seconds_and_short_durations_milliseconds() -> None:
    assert render.when(0) == "1970-01-01 00:00:00 UTC"
    assert render.duration(0.004) == "4 ms"
    assert render.duration(0.0001) == "< 1 ms"
    assert render.duration(1.5) == "1.50 s"
    assert render.duration(185) == "3 m 05 s"
    script = (render.STATIC / "app.js").read_text()
    assert 'second: "2-digit"' in script.split("const shortDate", 1)[0].split("const stamp", 1)[1]


def test_run_page_shows_paths_relative_and_results_capped(
    server: Server, site: dict[str, str]
) -> None:
    text = browser(server, "admin").get(f"/runs/{site['stage']}").text
    assert 'data-testid="result"' in text and 'class="results capped"' in text
    assert "out/customers.parquet" in text
    for root in paths.project_roots(str(server.project.root)):
        assert root + "/" not in text


def test_tasks_show_their_kind_as_written(server: Server, site: dict[str, str]) -> None:
    text = browser(server, "viewer").get("/pipelines/stage").text
    assert re.findall(r'data-testid="task-kind">(\w+)<', text) == ["copy"]
    assert "python" not in text.split('data-testid="tasks-table"', 1)[1].split("</table>")[0]
    shop = browser(server, "viewer").get("/pipelines/shop").text
    assert re.findall(r'data-testid="task-kind">(\w+)<', shop) == ["shell", "shell"]
    assert task_does("python", "lockgate.governance.reports.report_task()") == ("report", "")
    assert task_does("python", "copy a.csv -> b.csv") == ("copy", "a.csv -> b.csv")
    assert task_does("python", "sql over a, b -> c") == ("sql", "over a, b -> c")
    assert task_does("python", "copy()") == ("python", "copy()")
    assert task_does("shell", "echo hi") == ("shell", "echo hi")


def test_small_graphs_are_drawn_larger_and_wide_ones_scroll() -> None:
    small = svg.task_graph([("a", 0, ()), ("b", 1, ("a",)), ("c", 1, ("a",))], {})
    assert small.fits and small.scale > 1
    assert small.shown_width <= svg.ROOM and small.shown_height <= svg.MAX_HEIGHT
    chain = svg.task_graph([(f"t{i}", i, (f"t{i - 1}",) if i else ()) for i in range(12)], {})
    assert not chain.fits and chain.scale == 1 and chain.shown_width == chain.width


def _audit_rows(text: str) -> list[tuple[int, str]]:
    found = re.findall(
        r'data-testid="audit-row" data-action="([^"]+)">\s*<td class="right muted">(\d+)<', text
    )
    return [(int(seq), action) for action, seq in found]


def test_audit_hides_page_views_and_api_calls_unless_asked(
    server: Server, site: dict[str, str]
) -> None:
    b = browser(server, "auditor")
    b.get("/runs")
    server.flush_audit()
    page = b.get("/audit").text
    actions = {a for _, a in _audit_rows(page)}
    assert actions and not actions & set(web_governance.NOISE), actions
    assert 'data-testid="hidden-note"' in page and 'data-testid="filter-noise"' in page
    assert '<details class="fold">' in page  # long details are folded
    every = {a for _, a in _audit_rows(b.get("/audit?noise=1").text)}
    assert "ui.request" in every
    asked = {a for _, a in _audit_rows(b.get("/audit?action=ui.").text)}
    assert asked == {"ui.request"}


def test_audit_pages_without_page_views_follow_each_other(
    server: Server, site: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    b = browser(server, "auditor")
    b.get("/datasets")
    server.flush_audit()
    wanted = [
        r["seq"]
        for r in server.call("auditor", "GET", "/api/v1/audit?limit=500").json()["items"]
        if r["action"] not in web_governance.NOISE
    ]
    monkeypatch.setattr(web_governance, "PAGE", 7)
    monkeypatch.setattr(web_governance, "SCAN_BATCH", 5)
    seen: list[int] = []
    url: str | None = "/audit"
    for _ in range(200):
        if url is None:
            break
        text = b.get(url).text
        rows = _audit_rows(text)
        assert not {a for _, a in rows} & set(web_governance.NOISE)
        seen += [seq for seq, _ in rows]
        older = re.search(r'href="(/audit\?[^"]*cursor=[^"]+)" data-testid="older"', text)
        url = older.group(1).replace("&amp;", "&") if older else None
    assert url is None
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    assert seen[: len(wanted)] == wanted[: len(seen)] and set(wanted) <= set(seen)
