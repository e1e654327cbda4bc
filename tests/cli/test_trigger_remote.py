"""`lockgate trigger --server URL` against a real `lockgate up` on 127.0.0.1, run as CI runs it
(the console script, the token in LOCKGATE_TOKEN, a folder that is no project): exit codes 0 and
1 with progress lines, the failed tasks' (redacted) errors and the run's link; one-line exit-2
errors for a bad token, a token without the run scope, wrong URLs, refused connections, TLS
without the private CA, unknown pipelines and invalid params; plain http:// to another machine
refused before any request unless --allow-insecure-http; and the examples in examples/ci/,
whose command lines are run as written against the same server."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.cli.helpers import LOCKGATE, Done, one_line_error
from tests.conftest import _free_port
from tests.server.serving import Served, admin_token
from tests.server.test_serve import _self_signed

from lockgate.cli.remote import CONNECT_S
from lockgate.config import Project

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ci"
SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"

PIPELINES = {
    "ok.yaml": """\
params:
  rows:
    type: integer
    default: 1
    minimum: 1
tasks:
  load:
    shell: "echo loading"
  report:
    shell: "echo report"
    depends_on: [load]
""",
    "broken.py": """\
from lockgate import pipeline, task


@task
def load():
    raise ValueError("the warehouse refused us: password=hunter2hunter2 is wrong")


@task
def report(rows):
    return rows


@pipeline(id="broken")
def broken():
    report(load())
""",
    "slow.yaml": """\
tasks:
  nap:
    shell: "sleep 3"
""",
    "ci_checks.yaml": """\
params:
  sha: ""
  ref: ""
  repository: ""
tasks:
  check:
    shell: "echo checking"
""",
}


class Site:
    """The running server, its project and an admin's token."""

    def __init__(self, project: Project, served: Served, token: str) -> None:
        self.project = project
        self.served = served
        self.token = token

    @property
    def url(self) -> str:
        return self.served.url

    def api(self) -> httpx.Client:
        return self.served.client(self.token)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("remote")
    (root / "pipelines").mkdir()
    for name, text in PIPELINES.items():
        (root / "pipelines" / name).write_text(text)
    (root / "lockgate.toml").write_text("")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LOCKGATE_DB_URL", raising=False)
        project = Project.load(root)
        token = admin_token(project)
        served = Served(root, "up", "--port", "0").ready()
        try:
            yield Site(project, served, token)
        finally:
            served.stop()


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A CI job's working folder: no lockgate.toml anywhere up from it."""
    folder = tmp_path / "job"
    folder.mkdir()
    return folder


def _env(token: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    env.update(COLUMNS="200", TERM="dumb", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    env["PATH"] = f"{Path(LOCKGATE).parent}{os.pathsep}{env.get('PATH', '')}"
    if token is not None:
        env["LOCKGATE_TOKEN"] = token
    env.update(extra)
    return env


def trigger(cwd: Path, token: str | None, *args: str, timeout: float = 60) -> Done:
    """`lockgate trigger ARGS` in `cwd`, the token in LOCKGATE_TOKEN."""
    proc = subprocess.run(
        [LOCKGATE, "trigger", *args],
        cwd=cwd,
        env=_env(token),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    done = Done(("trigger", *args), proc.returncode, proc.stdout, proc.stderr)
    if token:
        assert token not in done.out + done.err, "the token was printed"
    return done


def _queued(done: Done, site: Site, pipeline: str) -> str:
    """The run id from the first line, which must link to the run's page."""
    first = done.out.splitlines()[0]
    found = re.fullmatch(rf"queued run (\S+) of {pipeline}: (\S+)", first)
    assert found, done
    run_id, link = found.groups()
    assert link == f"{site.url}/runs/{run_id}"
    return run_id


def test_wait_exits_0_with_progress_lines_and_the_link(site: Site, elsewhere: Path) -> None:
    done = trigger(elsewhere, site.token, "ok", "--server", site.url, "--wait", "-p", "rows=3")
    assert done.code == 0, done
    run_id = _queued(done, site, "ok")
    lines = done.out.splitlines()
    progress = [line for line in lines if re.match(r"\d\d:\d\d:\d\d ", line)]
    shape = r"\d\d:\d\d:\d\d (load|report): (running|success \(\d+\.\ds\))"
    assert all(re.fullmatch(shape, line) for line in progress), done
    finished = [line.split(" ")[1] for line in progress if "success" in line]
    assert finished == ["load:", "report:"], done
    assert re.fullmatch(rf"run {run_id} of ok: success in \d+\.\d\ds", lines[-2]), done
    assert lines[-1] == f"{site.url}/runs/{run_id}"
    with site.api() as api:
        run = api.get(f"/api/v1/runs/{run_id}").json()
        assert (run["state"], run["params"]) == ("success", {"rows": 3})  # typed as declared
        page = api.get(f"/runs/{run_id}", follow_redirects=False)
        assert page.status_code in (200, 303), page.status_code  # the UI's run page (or login)


def test_wait_exits_1_and_shows_the_failed_tasks_with_their_redacted_errors(
    site: Site, elsewhere: Path
) -> None:
    done = trigger(elsewhere, site.token, "broken", "--server", site.url, "--wait")
    assert done.code == 1, done
    run_id = _queued(done, site, "broken")
    assert re.search(r"^\d\d:\d\d:\d\d load: failed \(\d+\.\ds\)$", done.out, re.M), done
    assert re.search(r"^\d\d:\d\d:\d\d report: upstream_failed$", done.out, re.M), done
    assert f"run {run_id} of broken: failed in " in done.out
    [after] = done.out.split("failed tasks:\n")[1:]
    assert (
        after.splitlines()[0]
        == "  load: ValueError: the warehouse refused us: password=*** is wrong"
    )
    assert "hunter2hunter2" not in done.out + done.err


def test_json_without_wait_and_a_timeout(site: Site, elsewhere: Path) -> None:
    queued = trigger(elsewhere, site.token, "ok", "--server", site.url, "--json")
    assert queued.code == 0, queued
    doc = queued.json()
    assert doc["state"] == "queued" and doc["url"] == f"{site.url}/runs/{doc['run_id']}"
    late = trigger(elsewhere, site.token, "slow", "--server", site.url, "--wait", "--timeout", "1s")
    assert late.code == 1, late
    assert "did not finish within 1s" in late.err and "it goes on" in late.err
    needs_wait = trigger(elsewhere, site.token, "ok", "--server", site.url, "--timeout", "1s")
    assert "--timeout needs --wait" in one_line_error(needs_wait)


def test_a_bad_or_missing_token_is_one_line(site: Site, elsewhere: Path) -> None:
    bad = trigger(elsewhere, "lgt_0123456789abcdef_nope", "ok", "--server", site.url, "--wait")
    assert one_line_error(bad) == (
        "error: the token is missing, expired or revoked: create one with `lockgate tokens create`"
    )
    missing = trigger(elsewhere, None, "ok", "--server", site.url)
    assert "no API token: set LOCKGATE_TOKEN" in one_line_error(missing)
    # --token works too (the variable is better: CI systems mask it)
    given = subprocess.run(
        [LOCKGATE, "trigger", "ok", "--server", site.url, "--token", site.token],
        cwd=elsewhere,
        env=_env(None),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert given.returncode == 0, given.stderr
    assert site.token not in given.stdout + given.stderr


def test_a_token_without_the_run_scope_may_not_run(site: Site, elsewhere: Path) -> None:
    reader = admin_token(site.project, scopes=["read"])
    done = trigger(elsewhere, reader, "ok", "--server", site.url)
    assert one_line_error(done) == "error: the token's user may not run ok"


def test_the_least_power_token_of_the_readme(site: Site, elsewhere: Path) -> None:
    """A viewer with operator on one pipeline, through a token scoped to run and read (as
    examples/ci/README.md makes it): runs and follows that pipeline, and no other."""
    from lockgate.auth import accounts
    from lockgate.execution import open_store

    store = open_store(site.project)
    accounts.create_user(store, "ci-github", "viewer", actor="test", password="x" * 32)
    store.grant("ci-github", "ci_checks", "operator", actor="test")
    token = accounts.create_token(
        store, "ci-github", actor="test", scopes=["run", "read"], label="github-actions"
    )
    done = trigger(elsewhere, token, "ci_checks", "--server", site.url, "--wait", "-p", "sha=1")
    assert done.code == 0, done
    other = trigger(elsewhere, token, "ok", "--server", site.url)
    assert one_line_error(other) == "error: the token's user may not run ok"


def test_wrong_urls_and_refused_connections_are_one_line(site: Site, elsewhere: Path) -> None:
    refused = trigger(elsewhere, site.token, "ok", "--server", f"http://127.0.0.1:{_free_port()}")
    assert "cannot connect to http://127.0.0.1:" in one_line_error(refused)
    assert "check --server" in refused.err
    not_url = trigger(elsewhere, site.token, "ok", "--server", "lockgate.example.com")
    assert "is not a URL" in one_line_error(not_url)
    prefix = trigger(elsewhere, site.token, "ok", "--server", f"{site.url}/lockgate")
    assert "serves no lockgate API" in one_line_error(prefix)
    https = trigger(elsewhere, site.token, "ok", "--server", site.url.replace("http:", "https:"))
    assert "does not answer in TLS; is the server's address http://?" in one_line_error(https)
    with _other_http_server() as other:
        stranger = trigger(elsewhere, site.token, "ok", "--server", other)
    assert "does not answer like a lockgate server" in one_line_error(stranger)


def test_unknown_pipelines_and_invalid_params_are_one_line(site: Site, elsewhere: Path) -> None:
    def error(*args: str) -> str:
        return one_line_error(trigger(elsewhere, site.token, *args, "--server", site.url))

    assert error("nope") == "error: no pipeline 'nope' in the pipelines folder"
    assert error("ok", "-p", "rows=0") == "error: pipeline 'ok': param 'rows' must be >= 1, got 0"
    assert error("ok", "-p", "rows=many") == (
        "error: pipeline 'ok': param 'rows': expected an integer, got 'many'"
    )
    assert "unknown param 'row'" in error("ok", "-p", "row=1")
    assert "must look like KEY=VALUE" in error("ok", "-p", "rows")


def test_tls_needs_the_private_ca(site: Site, elsewhere: Path, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    served = Served(
        site.project.root, "serve", "--port", "0", "--cert", str(cert), "--key", str(key)
    )
    served.ready()
    try:
        untrusted = trigger(elsewhere, site.token, "ok", "--server", served.url)
        line = one_line_error(untrusted)
        assert line.startswith(f"error: TLS failure talking to {served.url}: ")
        assert "certificate" in line and "--ca-cert" in line
        trusted = trigger(
            elsewhere, site.token, "ok", "--server", served.url, "--ca-cert", str(cert)
        )
        assert trusted.code == 0, trusted
        assert trusted.out.startswith("queued run ") and f"{served.url}/runs/" in trusted.out
        missing = trigger(
            elsewhere, site.token, "ok", "--server", served.url, "--ca-cert", "no.pem"
        )
        assert "--ca-cert no.pem" in one_line_error(missing)
    finally:
        served.stop()


def test_options_of_the_local_command_are_unchanged(site: Site, elsewhere: Path) -> None:
    done = trigger(elsewhere, site.token, "ok", "--token", site.token)
    assert one_line_error(done) == "error: --token and --ca-cert go with --server URL"
    insecure = trigger(elsewhere, site.token, "ok", "--allow-insecure-http")
    assert one_line_error(insecure) == "error: --allow-insecure-http goes with --server URL"


TOKEN = "lgt_0123456789abcdef0123456789abcdef"
ELSEWHERE = "http://192.0.2.1:9"
"""Plain HTTP to another machine (TEST-NET-1, where nothing answers)."""
REFUSED = (
    f"error: --server {ELSEWHERE} is plain http:// to another machine: the token would cross "
    "the network readable; use https://, or pass --allow-insecure-http to send the token in "
    "clear anyway"
)


def test_plain_http_to_another_machine_is_refused_before_any_connection(elsewhere: Path) -> None:
    """The token would cross the network readable: refused at once, exit 2, one line. Run
    with a timeout of CONNECT_S: a connection attempt to an address where nothing answers
    would take that long to fail (or fail with another message)."""
    done = trigger(elsewhere, TOKEN, "ok", "--server", ELSEWHERE, "--wait", timeout=CONNECT_S)
    assert one_line_error(done) == REFUSED
    assert done.out == ""


def test_allow_insecure_http_sends_the_token_in_clear_only_when_asked(elsewhere: Path) -> None:
    """Through a recording proxy on 127.0.0.1 (HTTP_PROXY: what would go to the other machine
    arrives there instead): without the flag nothing at all is sent; with it the request goes,
    after a warning."""
    with _recording_proxy() as proxy:
        env = _env(TOKEN, HTTP_PROXY=proxy.url, http_proxy=proxy.url, NO_PROXY="", no_proxy="")

        def run(*extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [LOCKGATE, "trigger", "ok", "--server", ELSEWHERE, *extra],
                cwd=elsewhere,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )

        refused = run()
        assert (refused.returncode, refused.stderr.strip()) == (2, REFUSED), refused
        assert proxy.requests == []  # not a byte: no request, not even through the proxy
        allowed = run("--allow-insecure-http")
        assert allowed.returncode == 0, allowed
        assert allowed.stdout == f"queued run r-1 of ok: {ELSEWHERE}/runs/r-1\n"
        assert allowed.stderr.startswith(f"warning: {ELSEWHERE} is plain HTTP: the token ")
        assert proxy.requests == [
            ("POST", f"{ELSEWHERE}/api/v1/pipelines/ok/runs", f"Bearer {TOKEN}")
        ]


class _NotLockgate(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = b"<html><body>Not Found</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


class _other_http_server:  # noqa: N801 (used as a context manager)
    """Another HTTP server on 127.0.0.1 (an address that is not lockgate's)."""

    def __enter__(self) -> str:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotLockgate)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class _Proxied(http.server.BaseHTTPRequestHandler):
    """Answers every POST as a lockgate server queuing run r-1, recording (method, the
    absolute URL of a proxied request, Authorization)."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.requests.append(  # type: ignore[attr-defined]
            ("POST", self.path, self.headers.get("Authorization"))
        )
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"run_id": "r-1", "pipeline": "ok"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _recording_proxy:  # noqa: N801 (used as a context manager)
    """An HTTP proxy on 127.0.0.1 that answers requests itself and records them."""

    def __enter__(self) -> _recording_proxy:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxied)
        self.requests: list[tuple[str, str, str | None]] = []
        self.server.requests = self.requests  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


# -- examples/ci -----------------------------------------------------------------------------


@functools.cache
def _help_options() -> frozenset[str]:
    done = subprocess.run(
        [LOCKGATE, "trigger", "--help"], env=_env(None), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return frozenset(re.findall(r"(?<![\w-])--[a-z][a-z-]*", done.stdout))


def _check_options(command: str) -> None:
    used = {w.split("=")[0] for w in shlex.split(command) if w.startswith("--")}
    assert used, command
    assert used <= _help_options(), sorted(used - _help_options())
    assert {"--server", "--wait", "--param"} <= used


def _run_example(command: str, cwd: Path, site: Site, **env: str) -> dict[str, Any]:
    """Run an example's command line with bash as the CI system would; the run it made."""
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=_env(site.token, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert site.token not in done.stdout + done.stderr
    run_id = done.stdout.split()[2]
    with site.api() as api:
        run: dict[str, Any] = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["state"] == "success", run
    return run


def test_the_github_actions_example(site: Site, elsewhere: Path) -> None:
    doc = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"push", "pull_request"}
    steps = [s for job in doc["jobs"].values() for s in job["steps"]]
    [step] = [s for s in steps if "lockgate trigger" in s.get("run", "")]
    assert step["env"]["LOCKGATE_TOKEN"] == "${{ secrets.LOCKGATE_TOKEN }}"
    assert "${{ secrets" not in step["run"]  # the token never goes on the command line
    expressions = {"${{ vars.LOCKGATE_URL }}": site.url, "${{ github.sha }}": SHA}
    command = step["run"]
    for expression, value in expressions.items():
        assert expression in command
        command = command.replace(expression, value)
    assert "${{" not in command, command
    _check_options(command)
    run = _run_example(
        command, elsewhere, site, GITHUB_REF="refs/heads/main", GITHUB_REPOSITORY="acme/data"
    )
    assert run["params"] == {"sha": SHA, "ref": "refs/heads/main", "repository": "acme/data"}
    assert any("pip install" in s.get("run", "") for s in steps)


def test_the_gitlab_ci_example(site: Site, elsewhere: Path) -> None:
    doc = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
    [job] = [j for j in doc.values() if isinstance(j, dict) and "script" in j]
    [command] = [c for c in job["script"] if "lockgate trigger" in c]
    assert "LOCKGATE_TOKEN" not in command
    _check_options(command)
    run = _run_example(
        command,
        elsewhere,
        site,
        LOCKGATE_URL=site.url,
        CI_COMMIT_SHA=SHA,
        CI_COMMIT_REF_NAME="main",
        CI_PROJECT_PATH="acme/data",
    )
    assert run["params"] == {"sha": SHA, "ref": "main", "repository": "acme/data"}


def test_the_jenkinsfile_example(site: Site, elsewhere: Path) -> None:
    text = (EXAMPLES / "Jenkinsfile").read_text()
    assert "withCredentials" in text and "variable: 'LOCKGATE_TOKEN'" in text
    assert text.count("{") == text.count("}")
    blocks = re.findall(r"sh '''(.*?)'''", text, re.S)
    [block] = [b for b in blocks if "lockgate trigger" in b]
    command = block.replace("\\\n", " ").strip()
    assert "$LOCKGATE_TOKEN" not in command
    _check_options(command)
    venv_bin = elsewhere / ".venv-lockgate" / "bin"  # where the install stage puts it
    venv_bin.mkdir(parents=True)
    (venv_bin / "lockgate").symlink_to(LOCKGATE)
    run = _run_example(
        command, elsewhere, site, LOCKGATE_URL=site.url, GIT_COMMIT=SHA, GIT_BRANCH="origin/main"
    )
    assert run["params"] == {"sha": SHA, "ref": "origin/main", "repository": ""}


def test_the_examples_readme_covers_both_ways() -> None:
    text = (EXAMPLES / "README.md").read_text()
    for needed in (
        "lockgate trigger",
        "/api/v1/hooks/github",
        "lockgate tokens create",
        "--scope run",
        "--scope read",
        "not on PyPI",
        "X-Hub-Signature-256",
    ):
        assert needed in text, needed


def test_progress_lines_come_in_the_order_things_happened() -> None:
    """The API lists tasks by id; a task that started and ended between two polls still gets
    its running line, and lines are printed by time, not by task id."""
    import io

    from lockgate.cli.remote import Progress

    out = io.StringIO()
    progress = Progress(out)
    progress.update(
        {
            "tasks": [
                {"id": "a_check", "state": "pending", "attempts": 0},
                {"id": "load", "state": "running", "attempts": 1,
                 "started_at": "2026-01-01T10:00:00+00:00"},
            ]
        }
    )  # fmt: skip
    progress.update(
        {
            "tasks": [
                {"id": "a_check", "state": "success", "attempts": 1, "duration_s": 1.0,
                 "started_at": "2026-01-01T10:00:05+00:00",
                 "ended_at": "2026-01-01T10:00:06+00:00"},
                {"id": "load", "state": "success", "attempts": 1, "duration_s": 4.0,
                 "started_at": "2026-01-01T10:00:00+00:00",
                 "ended_at": "2026-01-01T10:00:04+00:00"},
            ]
        }
    )  # fmt: skip
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "load: running",
        "load: success (4.0s)",
        "a_check: running",
        "a_check: success (1.0s)",
    ]
