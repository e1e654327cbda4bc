"""Fixtures for the browser tests: a live lockgate server over a fresh project on a free
127.0.0.1 port, Debian's Chromium driven by Playwright, and the folder the screenshots go to.

The server is the real product: `lockgate up --port N` (UI, API and scheduler in one
process) in a subprocess, stopped with SIGTERM, which must end it cleanly.
Chromium is /usr/bin/chromium (`.ci/run` installs it; LOCKGATE_E2E_CHROMIUM names another);
`playwright install` is never used. Without it the tests skip, except with CI=true: they fail."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import IN_CI, _free_port

"""CI=true (as in tests/conftest.py): a missing browser fails the tests instead of skipping."""
CHROMIUM = Path(os.environ.get("LOCKGATE_E2E_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).parent / "screenshots"
ADMIN = "ada"
PASSWORD = "correct horse battery staple"
PIPELINE = "orders_daily"
WAIT_S = 30.0
"""How long to wait for the server to answer /healthz, or for it to stop."""

PIPELINE_YAML = """\
id: orders_daily
description: Stage the day's orders, let them settle, then report on them.
tags: [e2e, orders]
schedule: "@daily"
start_date: 2024-01-01
params:
  rows:
    type: integer
    default: 10
    minimum: 1
    maximum: 100000
    description: Most rows the report covers.
tasks:
  extract:
    description: Show the last order (its e-mail address must be redacted in the log view).
    shell: tail -n 1 data/orders.csv
  stage:
    description: Copy the orders into the staging area, the e-mail column classified.
    depends_on: extract
    copy:
      source: data/orders.csv
      target: out/orders_staged.csv
      tags: {customer_email: pii.email}
  settle:
    description: Give the staged files a moment (long enough to watch it run and tail its log).
    depends_on: extract
    shell: echo "settling rows={{ params.rows }}"; sleep 3; echo "settled"
  report:
    description: Report on the staged orders.
    depends_on: [stage, settle]
    shell: echo "report rows={{ params.rows }} done"
"""

ORDERS_CSV = """\
order_id,customer_email,amount,status
1001,ada.lovelace@example.com,19.90,paid
1002,grace.hopper@example.org,5.00,paid
1003,alan.turing@example.net,42.50,refunded
"""
LAST_EMAIL = "alan.turing@example.net"
"""What `extract` prints, which the log view must show redacted."""


def browser_unavailable(reason: str) -> None:
    """Fail in CI (the browser tests must run there); skip elsewhere, saying how to fix it."""
    if IN_CI:
        pytest.fail(f"the browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"{reason}; `.ci/run` installs it (apt-get install chromium)")


def _healthy(base_url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{base_url}/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Live:
    """A running server over a project: where it answers, and who may log in."""

    base_url: str
    root: Path
    user: str = ADMIN
    password: str = PASSWORD
    pipeline: str = PIPELINE
    log: Path | None = None
    stop: Callable[[], None] = field(default=lambda: None, repr=False)
    """Stop the server (SIGTERM) and check that it ended cleanly."""

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def server_log(self, whole: bool = False) -> str:
        """What the server printed (its last 4000 characters unless `whole`)."""
        if self.log is None or not self.log.exists():
            return ""
        text = self.log.read_text(errors="replace")
        return text if whole else text[-4000:]


def _make_project(root: Path) -> None:
    """A project folder: lockgate.toml, one YAML pipeline, its input CSV, an admin user."""
    (root / "lockgate.toml").write_text("[lockgate]\nexecutor = 'threads'\n")
    (root / "pipelines").mkdir()
    (root / "pipelines" / f"{PIPELINE}.yaml").write_text(PIPELINE_YAML)
    (root / "data").mkdir()
    (root / "data" / "orders.csv").write_text(ORDERS_CSV)

    from lockgate.auth.accounts import create_user
    from lockgate.config import Project
    from lockgate.execution import open_store

    create_user(open_store(Project.load(root)), ADMIN, "admin", actor="e2e", password=PASSWORD)


def _wait_scheduled_run(root: Path, live: Live) -> None:
    """Wait for the run the scheduler creates at start (the pipeline is `@daily`, catch-up
    off: the latest interval runs) to finish, so pages show a finished run before the test
    triggers its own."""
    from lockgate.config import Project
    from lockgate.execution import open_store

    store = open_store(Project.load(root))
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        runs = store.list_runs(pipeline_id=PIPELINE, limit=5)
        if runs and all(r["state"] in ("success", "failed") for r in runs):
            assert runs[0]["state"] == "success", f"the scheduled run failed:\n{live.server_log()}"
            return
        time.sleep(0.05)
    pytest.fail(f"the scheduled run did not finish in {WAIT_S:g}s\n{live.server_log()}")


def _start_subprocess(root: Path, port: int) -> Live:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    env["LOCKGATE_TESTING"] = "1"
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lockgate", "up", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    live = Live(f"http://127.0.0.1:{port}", root, log=log)

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                pytest.fail(f"`lockgate up` did not stop on SIGTERM\n{live.server_log()}")
        assert proc.returncode == 0, (
            f"`lockgate up` exited with {proc.returncode}\n{live.server_log()}"
        )
        assert "Traceback" not in live.server_log(whole=True), (
            f"`lockgate up` logged an error\n{live.server_log()}"
        )

    live.stop = stop
    deadline = time.monotonic() + WAIT_S
    while not _healthy(live.base_url):
        if proc.poll() is not None:
            pytest.fail(f"`lockgate up` exited with {proc.returncode}\n{live.server_log()}")
        if time.monotonic() > deadline:
            stop()
            pytest.fail(f"`lockgate up` did not answer in {WAIT_S:g}s\n{live.server_log()}")
        time.sleep(0.05)
    return live


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A lockgate server (UI, API and scheduler) over a fresh project, for the whole module."""
    root = tmp_path_factory.mktemp("e2e-project")
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("LOCKGATE_")]:
            mp.delenv(name)
        mp.setenv("LOCKGATE_TESTING", "1")
        mp.chdir(root)
        _make_project(root)
        server = _start_subprocess(root, _free_port())
        try:
            _wait_scheduled_run(root, server)
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module", autouse=True)
def _browser_present() -> None:
    """Playwright and Chromium are there (checked before a server is started for nothing)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        browser_unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        browser_unavailable(f"Chromium is not installed at {CHROMIUM}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, with a HOME of its own (no stray ~/.config/chromium)."""
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="lockgate-e2e-home-"))
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(
                executable_path=str(CHROMIUM),
                headless=True,
                env={**os.environ, "HOME": str(home)},
            )
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """tests/e2e/screenshots/, emptied at the start of each run (never committed)."""
    if SCREENSHOTS.exists():
        for old in SCREENSHOTS.glob("*.png"):
            old.unlink()
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
