"""The web UI in a real browser (Debian's Chromium through Playwright) against a live server:
logging in, the pipelines list, a pipeline's graph, triggering a run with a param and
watching its tasks change state without a reload, the run page, task logs (live tail,
redaction), datasets and lineage, the dark theme, CSRF refusals and logging out.

The tests run in file order and share one server (see conftest.py); the run triggered by
`test_trigger_with_a_param_and_watch_it_live` is used by the tests after it. Every test saves
screenshots to tests/e2e/screenshots/ (not committed). Waits are on conditions (Playwright's
`expect` and `wait_for_*`), never on elapsed time."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import IN_CI, LAST_EMAIL, Live

try:
    from playwright.sync_api import BrowserContext, Page, StorageState, expect
except ImportError:  # in CI the browser tests must run: the import error fails them
    if IN_CI:
        raise
    pytest.skip(
        "the playwright package is not installed (pip install -e '.[dev]')",
        allow_module_level=True,
    )

VIEWPORT = {"width": 1440, "height": 900}
"""A laptop screen."""
WAIT_MS = 30_000
"""The longest any condition is waited for (a run takes about 3.5 s here)."""
ROWS = "4242"
"""The param value the test triggers with, looked for on the run page and in the logs."""
TASKS = ("extract", "stage", "settle", "report")
FLOW: dict[str, str] = {}
"""What earlier tests made for later ones: the triggered run's id."""

expect.set_options(timeout=WAIT_MS)

RECORDER = """(selector) => {
  // Record every change of the [data-state] of the elements `selector` matches, even when
  // the page swaps whole parts of itself for fresh copies; and leave a marker that a reload
  // would lose.
  window.__e2eMarker = "no reload";
  const seen = [];
  const snap = () => {
    const now = {};
    for (const el of document.querySelectorAll(selector)) {
      now[el.dataset.task || el.dataset.testid] = el.getAttribute("data-state");
    }
    const key = JSON.stringify(now);
    if (!seen.length || seen[seen.length - 1].key !== key) seen.push({key, states: now});
  };
  snap();
  new MutationObserver(snap).observe(document.body, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["data-state"],
  });
  window.__e2eSeen = seen;
}"""

ALL_SUCCEEDED_AFTER_A_CHANGE = """(names) => {
  const seen = window.__e2eSeen || [];
  const done = (s) => names.every((n) => s.states[n] === "success");
  const changed = seen.some((s) => !done(s));
  return changed && seen.length > 0 && done(seen[seen.length - 1]);
}"""


# -- helpers ------------------------------------------------------------------------------------
def shot(page: Page, folder: Path, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)


class Problems:
    """What goes wrong in the pages of a test: console errors, uncaught exceptions (a CSP
    violation shows up as a console error) and static files that failed to load. A page or
    API answering 4xx is not one of them: the tests ask for some of those."""

    STATIC = frozenset({"stylesheet", "script", "image", "font"})

    def __init__(self) -> None:
        self.items: list[str] = []

    def _console(self, msg: Any) -> None:
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.items.append(f"console error: {msg.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400 and response.request.resource_type in self.STATIC:
            self.items.append(f"{response.status} for {response.url}")

    def watch(self, page: Page) -> Page:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.items.append(f"page error: {exc}"))
        page.on("response", self._response)
        page.on(
            "requestfailed",
            lambda req: (
                self.items.append(f"{req.url} failed: {req.failure}")
                if req.resource_type in self.STATIC
                else None
            ),
        )
        return page


@pytest.fixture
def problems() -> Iterator[Problems]:
    found = Problems()
    yield found
    assert not found.items, "the pages logged errors:\n" + "\n".join(found.items)


def new_context(browser: Any, state: StorageState | None = None) -> BrowserContext:
    context: BrowserContext = browser.new_context(viewport=VIEWPORT, storage_state=state)
    context.set_default_timeout(WAIT_MS)
    return context


def log_in(page: Page, live: Live, password: str | None = None) -> None:
    """Fill and send the login form the page shows."""
    page.get_by_test_id("login-user").fill(live.user)
    page.get_by_test_id("login-password").fill(password or live.password)
    page.get_by_test_id("login-submit").click()


@pytest.fixture(scope="module")
def signed_in(live: Live, browser: Any) -> StorageState:
    """The cookies of a session started through the login form (shared by the tests)."""
    context = new_context(browser)
    try:
        page = context.new_page()
        page.goto(live.url("/login"))
        log_in(page, live)
        expect(page.get_by_test_id("pipelines-table")).to_be_visible()
        return context.storage_state()
    finally:
        context.close()


@pytest.fixture
def context(browser: Any, signed_in: StorageState) -> Iterator[BrowserContext]:
    """A browser context logged in as the admin."""
    made = new_context(browser, signed_in)
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext, problems: Problems) -> Page:
    return problems.watch(context.new_page())


def triggered_run() -> str:
    if "run" not in FLOW:
        pytest.fail("no triggered run: test_trigger_with_a_param_and_watch_it_live must pass first")
    return FLOW["run"]


def run_json(page: Page, live: Live, run_id: str) -> dict[str, Any]:
    response = page.request.get(live.url(f"/api/v1/runs/{run_id}"))
    assert response.status == 200, response.text()
    found: dict[str, Any] = response.json()
    return found


def wait_attempt_running(page: Page, live: Live, run_id: str, task: str) -> None:
    """Wait until `task`'s first attempt is running (asked of the API, as a script would)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    last: Any = None
    while time.monotonic() < deadline:
        detail = run_json(page, live, run_id)
        last = [a for a in detail["attempts"] if a["task"] == task]
        if last and last[0]["state"] == "running":
            return
        if last and last[0]["state"] not in ("queued", "running"):
            pytest.fail(f"{task} ended ({last[0]['state']}) before its log page was opened")
        page.wait_for_timeout(50)
    pytest.fail(f"{task} did not start running (last seen: {last!r})")


# -- the tests ----------------------------------------------------------------------------------
def test_log_in_refuses_a_wrong_password_then_lands_on_the_pipelines_list(
    live: Live, browser: Any, screenshots: Path, problems: Problems
) -> None:
    context = new_context(browser)
    try:
        page = problems.watch(context.new_page())
        page.goto(live.url("/"))
        expect(page).to_have_url(live.url("/login"))
        expect(page.get_by_role("heading", name="Log in to lockgate")).to_be_visible()
        shot(page, screenshots, "login")

        log_in(page, live, password="not the password")
        error = page.get_by_test_id("login-error")
        expect(error).to_be_visible()
        expect(error).not_to_be_empty()
        assert "not the password" not in page.content(), "the page echoed the wrong password"
        expect(page.get_by_test_id("login-password")).to_have_value("")
        expect(page.get_by_test_id("login-user")).to_have_value(live.user)
        shot(page, screenshots, "login-error")

        log_in(page, live)
        expect(page).to_have_url(live.url("/"))
        expect(page.get_by_role("heading", name="Pipelines", exact=True)).to_be_visible()
        expect(page.get_by_test_id("user")).to_contain_text(live.user)
        expect(page.get_by_test_id("user-role")).to_have_text("admin")
    finally:
        context.close()


def test_pipelines_list_shows_the_pipeline_schedule_and_last_runs(
    live: Live, page: Page, screenshots: Path
) -> None:
    page.goto(live.url("/"))
    row = page.locator(f"[data-testid=pipeline-row][data-pipeline={live.pipeline}]")
    expect(row).to_be_visible()
    expect(row.get_by_test_id("pipeline-link")).to_have_text(live.pipeline)
    expect(row).to_contain_text("@daily")
    expect(row).to_contain_text("Stage the day's orders")
    # the run the scheduler made at start, finished
    expect(row.locator("[data-testid=recent-runs] [data-state=success]")).to_have_count(1)
    expect(row.locator("time.ago")).to_be_visible()  # the next run
    expect(row.get_by_test_id(f"pause-{live.pipeline}")).to_be_visible()
    shot(page, screenshots, "pipelines")


def test_pipeline_page_shows_the_graph_grid_and_trigger_form(
    live: Live, page: Page, screenshots: Path
) -> None:
    page.goto(live.url("/"))
    page.get_by_test_id("pipeline-link").filter(has_text=live.pipeline).click()
    expect(page).to_have_url(live.url(f"/pipelines/{live.pipeline}"))
    expect(page.get_by_test_id("pipeline-id")).to_have_text(live.pipeline)
    graph = page.get_by_test_id("task-graph")
    expect(graph).to_be_visible()
    nodes = graph.get_by_test_id("task-node")
    expect(nodes).to_have_count(len(TASKS))
    for task in TASKS:
        expect(graph.locator(f"[data-task={task}]")).to_have_attribute("data-state", "success")
    expect(graph.locator("path.edge")).to_have_count(4)
    cells = page.get_by_test_id("run-grid").get_by_test_id("grid-cell")
    expect(cells).to_have_count(len(TASKS))
    expect(page.get_by_test_id("param-rows")).to_have_value("10")
    expect(page.get_by_test_id("trigger-button")).to_be_enabled()
    shot(page, screenshots, "pipeline")


def test_trigger_with_a_param_and_watch_it_live(
    live: Live,
    browser: Any,
    signed_in: StorageState,
    page: Page,
    screenshots: Path,
    problems: Problems,
) -> None:
    # a second window keeps the pipeline page open: its graph must follow the new run
    watcher_context = new_context(browser, signed_in)
    try:
        watcher = problems.watch(watcher_context.new_page())
        watcher.goto(live.url(f"/pipelines/{live.pipeline}"))
        expect(watcher.get_by_test_id("task-node")).to_have_count(len(TASKS))
        watcher.evaluate(RECORDER, "#task-graph [data-task]")

        page.goto(live.url(f"/pipelines/{live.pipeline}"))
        page.get_by_test_id("param-rows").fill(ROWS)
        page.get_by_test_id("trigger-button").click()
        expect(page).to_have_url(re.compile(re.escape(live.url("/runs/")) + r"[\w.-]+$"))
        run_id = page.get_by_test_id("run-id").inner_text().strip()
        assert page.url == live.url(f"/runs/{run_id}")
        page.evaluate(RECORDER, "[data-testid=run-state], [data-testid=task-row]")

        # the live tail: open settle's log while it runs; its last line arrives later
        wait_attempt_running(page, live, run_id, "settle")
        tail = problems.watch(page.context.new_page())
        tail.goto(live.url(f"/runs/{run_id}/tasks/settle/attempts/1/log"))
        expect(tail.locator("body")).to_have_attribute("data-complete", "no")
        pane = tail.get_by_test_id("log-pane")
        expect(pane).to_contain_text(f"settling rows={ROWS}")
        tail.evaluate("() => { window.__e2eMarker = 'no reload'; }")
        shot(tail, screenshots, "log-live")  # most likely still running: status "live"
        expect(pane).to_contain_text("settled")
        expect(tail.get_by_test_id("log-status")).to_have_text("complete")
        expect(tail.get_by_test_id("attempt-state")).to_have_attribute("data-state", "success")
        assert tail.evaluate("() => window.__e2eMarker") == "no reload"
        shot(tail, screenshots, "log-live-ended")
        tail.close()

        # the run page follows the run to its end without a reload
        expect(page.get_by_test_id("run-state")).to_have_attribute("data-state", "success")
        rows = page.get_by_test_id("task-row")
        expect(rows).to_have_count(len(TASKS))
        for task in TASKS:
            expect(page.locator(f"#task-{task}")).to_have_attribute("data-state", "success")
        seen = [
            h.get("run-state") for h in page.evaluate("() => window.__e2eSeen.map((s) => s.states)")
        ]
        assert seen[0] in ("queued", "running") and seen[-1] == "success", seen
        assert page.evaluate("() => window.__e2eMarker") == "no reload"
        shot(page, screenshots, "run")

        # ... and so does the pipeline page's graph: from the scheduled run's states (all
        # success) through the new run's (queued / running / none) back to success
        watcher.wait_for_function(ALL_SUCCEEDED_AFTER_A_CHANGE, arg=list(TASKS), timeout=WAIT_MS)
        history = watcher.evaluate("() => window.__e2eSeen.map((s) => s.states)")
        assert watcher.evaluate("() => window.__e2eMarker") == "no reload"
        report = [h.get("report") for h in history]
        assert report[0] == "success" and report[-1] == "success", history
        assert any(s not in ("success", None) for s in report), history
        expect(watcher.locator("#graph-caption a")).to_have_text(run_id)
        expect(watcher.get_by_test_id("grid-run")).to_have_count(2)
        shot(watcher, screenshots, "pipeline-after-run")
    finally:
        watcher_context.close()
    FLOW["run"] = run_id


def test_run_page_shows_the_timeline_params_and_tasks(
    live: Live, page: Page, screenshots: Path
) -> None:
    run_id = triggered_run()
    page.goto(live.url(f"/runs/{run_id}"))
    expect(page.get_by_test_id("run-state")).to_have_attribute("data-state", "success")
    expect(page.locator("body")).to_have_attribute("data-live", "off")
    gantt = page.get_by_test_id("gantt")
    expect(gantt).to_be_visible()
    expect(gantt.locator("rect.bar")).to_have_count(len(TASKS))
    expect(gantt.locator("rect.bar[data-task=settle]")).to_have_attribute("data-state", "success")
    params = page.get_by_test_id("params")
    expect(params).to_be_visible()
    assert json.loads(params.inner_text()) == {"rows": int(ROWS)}
    expect(page.get_by_test_id("task-table")).to_contain_text("settle")
    shot(page, screenshots, "run-finished")


def test_task_log_shows_the_printed_param_and_redacts_personal_data(
    live: Live, page: Page, screenshots: Path
) -> None:
    run_id = triggered_run()
    page.goto(live.url(f"/runs/{run_id}"))
    page.locator("#task-report").get_by_test_id("attempt-log").click()
    expect(page).to_have_url(live.url(f"/runs/{run_id}/tasks/report/attempts/1/log"))
    pane = page.get_by_test_id("log-pane")
    expect(pane).to_contain_text(f"report rows={ROWS} done")
    expect(page.get_by_test_id("log-status")).to_have_text("complete")
    shot(page, screenshots, "log")

    page.goto(live.url(f"/runs/{run_id}"))
    page.locator("#task-extract").get_by_test_id("attempt-log").click()
    pane = page.get_by_test_id("log-pane")
    expect(pane).to_contain_text("1003,")
    expect(pane).to_contain_text("refunded")
    assert LAST_EMAIL not in page.content(), "the log view showed an e-mail address unredacted"
    shot(page, screenshots, "log-redacted")


def test_datasets_page_and_the_lineage_graph(live: Live, page: Page, screenshots: Path) -> None:
    triggered_run()
    page.goto(live.url("/"))
    page.get_by_test_id("nav-datasets").click()
    expect(page).to_have_url(live.url("/datasets"))
    row = page.get_by_test_id("dataset-row").filter(has_text="orders_staged.csv")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("pii.email")
    shot(page, screenshots, "datasets")

    row.get_by_test_id("dataset-link").click()
    expect(page).to_have_url(re.compile(re.escape(live.url("/datasets/view?uri="))))
    expect(page.get_by_test_id("dataset-uri")).to_contain_text("orders_staged.csv")
    graph = page.get_by_test_id("lineage-graph")
    expect(graph).to_be_visible()
    expect(graph.get_by_test_id("dataset-node")).to_have_count(2)  # the CSV in, the copy out
    expect(graph.get_by_test_id("job-node")).to_have_count(1)  # orders_daily.stage
    expect(graph.get_by_test_id("job-node")).to_contain_text("stage")
    expect(graph.locator("path.edge")).to_have_count(2)
    expect(page.get_by_test_id("columns-table")).to_contain_text("customer_email")
    shot(page, screenshots, "lineage")


def test_other_pages_render(live: Live, page: Page, screenshots: Path) -> None:
    for path, name, heading in (
        ("/runs", "runs", "Runs"),
        ("/audit", "audit", "Audit"),
        ("/policy", "policy", "Policy"),
        ("/quality", "quality", "Quality"),
    ):
        page.goto(live.url(path))
        expect(page.get_by_test_id(f"nav-{name}")).to_have_attribute("aria-current", "page")
        expect(page.locator("h1").first).to_contain_text(re.compile(heading, re.I))
        shot(page, screenshots, name)


def test_dark_theme(live: Live, page: Page, screenshots: Path) -> None:
    run_id = triggered_run()
    page.goto(live.url(f"/pipelines/{live.pipeline}"))
    light = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    page.get_by_test_id("theme-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    dark = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert _luminance(dark) < 0.2 < _luminance(light), (light, dark)
    shot(page, screenshots, "pipeline-dark")
    # the choice is kept for the next pages
    for path, name in (("/", "pipelines-dark"), (f"/runs/{run_id}", "run-dark")):
        page.goto(live.url(path))
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        shot(page, screenshots, name)
    page.goto(live.url(f"/runs/{run_id}/tasks/report/attempts/1/log"))
    shot(page, screenshots, "log-dark")


def _luminance(css: str) -> float:
    """Relative luminance (0 black - 1 white) of an `rgb(...)`/`rgba(...)` colour."""
    parts = [float(x) for x in re.findall(r"[\d.]+", css)[:3]]
    assert len(parts) == 3, css
    r, g, b = (p / 255 for p in parts)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_state_changing_posts_without_the_csrf_token_are_refused(
    live: Live, page: Page, screenshots: Path
) -> None:
    triggered_run()
    page.goto(live.url(f"/pipelines/{live.pipeline}"))
    expect(page.get_by_test_id("pause-button")).to_be_visible()
    before = _runs_of(page, live)

    # the page's own trigger form, its token taken out: the browser shows the refusal
    page.locator("#trigger-form input[name=csrf_token]").evaluate("(el) => el.remove()")
    page.get_by_test_id("trigger-button").click()
    expect(page.get_by_role("heading", name="You may not open this")).to_be_visible()
    expect(page.locator("main")).to_contain_text("CSRF")
    shot(page, screenshots, "csrf-refused")

    # the browser context's own HTTP client: the session cookie, no token
    empty: dict[str, str | float | bool] = {}
    rows: dict[str, str | float | bool] = {"param.rows": "5"}
    for path, fields in (("pause", empty), ("trigger", rows)):
        response = page.request.post(live.url(f"/pipelines/{live.pipeline}/{path}"), form=fields)
        assert response.status == 403, response.text()
        assert "CSRF" in response.text()

    # scripts in the page (same origin, cookie sent): no token, a wrong one, the JSON API
    posts = page.evaluate(
        """async ({pipeline}) => {
          const form = (fields) => ({method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/x-www-form-urlencoded"},
            body: new URLSearchParams(fields).toString(), redirect: "manual"});
          const seen = async (response) =>
            [response.status, (await response.text()).includes("CSRF")];
          return {
            trigger: await seen(await fetch(`/pipelines/${pipeline}/trigger`,
              form({"param.rows": "6"}))),
            pause_wrong_token: await seen(await fetch(`/pipelines/${pipeline}/pause`,
              form({csrf_token: "not-the-token"}))),
            logout: await seen(await fetch("/logout", form({}))),
            api: await seen(await fetch(`/api/v1/pipelines/${pipeline}/runs`, {method: "POST",
              credentials: "same-origin", headers: {"Content-Type": "application/json"},
              body: JSON.stringify({params: {rows: 7}})})),
          };
        }""",
        {"pipeline": live.pipeline},
    )
    assert all(v == [403, True] for v in posts.values()), posts

    # nothing changed, and the session still works
    page.goto(live.url(f"/pipelines/{live.pipeline}"))
    expect(page.get_by_test_id("pause-button")).to_be_visible()
    expect(page.get_by_test_id("paused-badge")).to_have_count(0)
    assert _runs_of(page, live) == before

    # the same request with the page's token is accepted (so the 403s were the CSRF check)
    token = page.locator("#trigger-form input[name=csrf_token]").input_value()
    assert token
    kind = page.evaluate(
        """async ({pipeline, token}) => (await fetch(`/pipelines/${pipeline}/pause`, {
            method: "POST", credentials: "same-origin", redirect: "manual",
            headers: {"Content-Type": "application/x-www-form-urlencoded"},
            body: new URLSearchParams({csrf_token: token}).toString()})).type""",
        {"pipeline": live.pipeline, "token": token},
    )
    assert kind == "opaqueredirect"  # 303 back to the pipeline page
    page.reload()
    expect(page.get_by_test_id("paused-badge")).to_be_visible()
    page.get_by_test_id("unpause-button").click()
    expect(page.get_by_test_id("notice")).to_contain_text("unpaused")
    expect(page.get_by_test_id("paused-badge")).to_have_count(0)


def _runs_of(page: Page, live: Live) -> list[str]:
    response = page.request.get(live.url(f"/api/v1/runs?pipeline={live.pipeline}&limit=50"))
    assert response.status == 200, response.text()
    return [r["id"] for r in response.json()["items"]]


def test_log_out_ends_the_session(
    live: Live, browser: Any, screenshots: Path, problems: Problems
) -> None:
    context = new_context(browser)
    try:
        page = problems.watch(context.new_page())
        page.goto(live.url(f"/pipelines/{live.pipeline}"))
        expect(page).to_have_url(live.url(f"/login?next=%2Fpipelines%2F{live.pipeline}"))
        log_in(page, live)
        expect(page).to_have_url(live.url(f"/pipelines/{live.pipeline}"))
        cookies = context.storage_state()

        page.get_by_test_id("logout").click()
        expect(page).to_have_url(re.compile(re.escape(live.url("/login"))))
        expect(page.get_by_test_id("notice")).to_contain_text("logged out")
        expect(page.get_by_test_id("login-form")).to_be_visible()
        shot(page, screenshots, "logged-out")

        page.goto(live.url("/runs"))
        expect(page).to_have_url(live.url("/login?next=%2Fruns"))
        assert page.request.get(live.url("/api/v1/me")).status == 401
    finally:
        context.close()

    # the old session cookie, replayed, is refused too
    replay = new_context(browser, cookies)
    try:
        page = replay.new_page()
        page.goto(live.url("/"))
        expect(page).to_have_url(live.url("/login"))
        assert page.request.get(live.url("/api/v1/me")).status == 401
    finally:
        replay.close()
