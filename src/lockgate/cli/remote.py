"""`lockgate trigger --server URL`: queue a run on a lockgate server through its REST API and,
with `--wait`, follow it to its end, for CI jobs (GitHub Actions, GitLab CI, Jenkins).

Exit codes: 0 the run succeeded; 1 it failed, was cancelled or lost, or `--timeout` passed;
2 the request could not be made (usage, connection, TLS, token, permission, unknown pipeline,
invalid params, plain http:// to another machine without `--allow-insecure-http`), with one line
on stderr. The token is never printed, nor sent in clear over a network unless asked to. httpx
is imported here only, when a command talks to a server."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote, urlsplit

from lockgate.errors import LockgateError
from lockgate.network import plain_http_elsewhere

if TYPE_CHECKING:
    import httpx

TOKEN_VARIABLE = "LOCKGATE_TOKEN"
POLL_FIRST_S = 0.5
POLL_MAX_S = 5.0
POLL_GROWTH = 1.5
OUT_OF_TOUCH_S = 120.0
"""While waiting, a server that cannot be reached (or answers 502-504) is tried again for
this long before giving up: a restart or a proxy hiccup must not fail a CI job."""
CONNECT_S = 10.0
READ_S = 30.0
BAD_TOKEN = "the token is missing, expired or revoked: create one with `lockgate tokens create`"
ENDED = ("success", "failed", "cancelled", "lost")
SHOWN_TASK_STATES = ("running", "up_for_retry", "success", "failed", "skipped",
                     "upstream_failed", "cancelled", "lost")  # fmt: skip
"""Task states with a progress line (pending and queued are only waiting)."""
FAILED_TASK_STATES = ("failed", "lost")


class RemoteError(LockgateError):
    """The request could not be made or was refused (one line; exit code 2)."""


class _OutOfTouch(RemoteError):
    """The server could not be reached or answered 502-504: maybe only for a moment."""


def _reason(exc: BaseException) -> str:
    """An httpx/ssl error as a short phrase (`connection refused`, `certificate verify
    failed: self-signed certificate`)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"\[Errno -?\d+\]\s*", "", text)
    text = re.sub(r"\[SSL: [A-Z_]+\]\s*", "", text)
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", text)
    return text[:200]


def check_server(server: str) -> str:
    """`--server` as a base URL without a trailing slash; RemoteError unless http(s)."""
    parts = urlsplit(server.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(f"--server {server!r} is not a URL such as https://lockgate.example.com")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise RemoteError(
            "--server takes the server's base URL only (no user, query or fragment); "
            "the token goes in LOCKGATE_TOKEN"
        )
    return server.strip().rstrip("/")


def check_token(token: str | None) -> str:
    """The API token, checked for shape without ever showing it."""
    if not token:
        raise RemoteError(
            f"no API token: set {TOKEN_VARIABLE} (or --token); create one with "
            "`lockgate tokens create`"
        )
    token = token.strip()
    if not re.fullmatch(r"[\x21-\x7e]{1,512}", token):
        raise RemoteError(
            f"the token in {TOKEN_VARIABLE} or --token is not an API token (lgt_...): "
            "copy it again from `lockgate tokens create`"
        )
    return token


def check_transport(base: str, allow_insecure_http: bool) -> None:
    """RemoteError when the token would go over plain HTTP to another machine and
    `--allow-insecure-http` was not given: checked before any connection is made."""
    if plain_http_elsewhere(base) and not allow_insecure_http:
        raise RemoteError(
            f"--server {base} is plain http:// to another machine: the token would cross the "
            "network readable; use https://, or pass --allow-insecure-http to send the token "
            "in clear anyway"
        )


@dataclass
class Remote:
    """A lockgate server's REST API, called with an API token."""

    base: str
    client: httpx.Client

    @classmethod
    def open(cls, server: str, token: str, ca_cert: str | None = None) -> Remote:
        import ssl

        import httpx

        from lockgate import __version__

        base = check_server(server)
        verify: Any = True
        if ca_cert is not None:
            try:
                verify = ssl.create_default_context(cafile=ca_cert)
            except (OSError, ssl.SSLError) as exc:
                raise RemoteError(
                    f"--ca-cert {ca_cert}: {_reason(exc)}; give the PEM file of the CA that "
                    "signed the server's certificate"
                ) from None
        client = httpx.Client(
            base_url=base,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"lockgate/{__version__}",
            },
            verify=verify,
            timeout=httpx.Timeout(READ_S, connect=CONNECT_S),
            follow_redirects=False,
            trust_env=True,
        )
        return cls(base, client)

    @property
    def plain_http_elsewhere(self) -> bool:
        """The token would cross a network unencrypted."""
        return plain_http_elsewhere(self.base)

    def run_url(self, run_id: str) -> str:
        """The run's page in the web UI."""
        return f"{self.base}/runs/{quote(run_id, safe='')}"

    def close(self) -> None:
        self.client.close()

    # -- calls ----------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            response = self.client.request(method, path, **kw)
        except httpx.ConnectError as exc:
            reason, raw = _reason(exc), str(exc).lower()
            if "wrong version number" in raw or "record layer failure" in raw:
                raise RemoteError(
                    f"TLS failure talking to {self.base}: it does not answer in TLS; is the "
                    "server's address http://?"
                ) from None
            if "ssl" in raw or "certificate" in raw or "tls" in raw:
                raise RemoteError(
                    f"TLS failure talking to {self.base}: {reason}; for a private CA give "
                    "its certificate with --ca-cert FILE"
                ) from None
            raise _OutOfTouch(
                f"cannot connect to {self.base}: {reason}; check --server and that the "
                "lockgate server is running"
            ) from None
        except httpx.TimeoutException:
            raise _OutOfTouch(f"{self.base} did not answer in time; try again") from None
        except httpx.UnsupportedProtocol:
            raise RemoteError(f"--server {self.base!r} is not an http(s) URL") from None
        except httpx.HTTPError as exc:
            raise _OutOfTouch(f"talking to {self.base} failed: {_reason(exc)}") from None
        return response

    def _answer(self, response: httpx.Response, refused: str) -> Any:
        """The JSON of a 2xx answer; RemoteError saying what went wrong otherwise."""
        status = response.status_code
        error = _error_of(response)
        if 300 <= status < 400:
            where = response.headers.get("location", "elsewhere")
            raise RemoteError(f"{self.base} redirects to {where}: give that address as --server")
        if status == 401:
            raise RemoteError(BAD_TOKEN)
        if status == 403:
            code = error[0] if error else None
            detail = f" ({error[1]})" if error and code != "forbidden" else ""
            raise RemoteError(f"{refused}{detail}")
        if error is None:
            if status in (502, 503, 504):
                raise _OutOfTouch(f"{self.base} answered {status}; is the lockgate server up?")
            if status < 300:
                try:
                    return response.json()
                except ValueError:
                    pass
            raise RemoteError(
                f"{self.base} does not answer like a lockgate server ({status} for "
                f"{response.request.method} {response.request.url.path}); check --server"
            )
        if status >= 500:
            if status in (502, 503, 504):
                raise _OutOfTouch(f"{self.base} answered {status}: {error[1]}")
            raise RemoteError(f"the server failed ({status}): {error[1]}")
        if status == 404 and error[1].startswith("no such page or endpoint"):
            raise RemoteError(f"{self.base} serves no lockgate API: {error[1]}; check --server")
        raise RemoteError(error[1])

    def declared_params(self, pipeline: str) -> dict[str, Any] | None:
        """The pipeline's param declarations; None when the token may not read them."""
        response = self._call("GET", f"/api/v1/pipelines/{quote(pipeline, safe='')}")
        if response.status_code == 403:
            return None
        doc = self._answer(response, f"the token's user may not read {pipeline}")
        params = doc.get("params") if isinstance(doc, dict) else None
        return params if isinstance(params, dict) else {}

    def trigger(
        self, pipeline: str, params: Mapping[str, Any], logical_date: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"params": dict(params)}
        if logical_date is not None:
            body["logical_date"] = logical_date
        response = self._call(
            "POST", f"/api/v1/pipelines/{quote(pipeline, safe='')}/runs", json=body
        )
        doc = self._answer(response, f"the token's user may not run {pipeline}")
        if not isinstance(doc, dict) or not isinstance(doc.get("run_id"), str):
            raise RemoteError(f"{self.base} answered the trigger without a run id")
        return doc

    def run(self, run_id: str, pipeline: str) -> dict[str, Any]:
        response = self._call("GET", f"/api/v1/runs/{quote(run_id, safe='')}")
        doc = self._answer(
            response,
            f"the token's user may not read runs of {pipeline} (--wait needs the read scope)",
        )
        if not isinstance(doc, dict) or doc.get("state") is None:
            raise RemoteError(f"{self.base} answered run {run_id} without its state")
        return doc


def _error_of(response: httpx.Response) -> tuple[str, str] | None:
    """(code, message) of a lockgate error body; None for anything else."""
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        doc = response.json()
    except ValueError:
        return None
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    message = " ".join(error["message"].split())[:500]
    return str(error.get("code", "error")), message


def typed_params(
    pipeline: str, given: Mapping[str, str], declared: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`--param` values (text) converted to the types the pipeline declares, as `lockgate
    run` does; the server checks them again. Undeclared ones are sent as they are (the server
    names them); without the declarations (no read permission) all are sent as text."""
    from lockgate.model.params import PARAM_TYPES, Param

    out: dict[str, Any] = {}
    for name, text in given.items():
        decl = (declared or {}).get(name)
        kind = decl.get("type") if isinstance(decl, dict) else None
        if kind not in PARAM_TYPES:
            out[name] = text
            continue
        nullable = isinstance(decl, dict) and "default" in decl and decl["default"] is None
        try:
            out[name] = Param(type=kind, nullable=nullable).parse(text)
        except ValueError as exc:
            raise RemoteError(f"pipeline {pipeline!r}: param {name!r}: {exc}") from None
    return out


# -- following a run ---------------------------------------------------------------------------


def _clock(iso: str | None) -> str:
    """An API time (ISO 8601) as local HH:MM:SS; now when there is none."""
    if iso:
        try:
            return datetime.fromisoformat(iso).astimezone().strftime("%H:%M:%S")
        except ValueError:
            pass
    return datetime.now().astimezone().strftime("%H:%M:%S")


def _seconds(value: Any) -> str:
    return f"{value:.1f}s" if isinstance(value, int | float) else "?"


def _stamp(value: Any) -> float:
    """A sort key for the API's times (ISO 8601 text or epoch seconds; unknown: last)."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    return float("inf")


def progress_line(task: Mapping[str, Any]) -> str:
    """`12:03:04 load: success (3.2s)` for a task of the API's run detail."""
    state = str(task.get("state"))
    attempts = task.get("attempts") or 0
    if state == "running":
        when, note = task.get("started_at"), f" (attempt {attempts})" if attempts > 1 else ""
    elif state == "up_for_retry":
        when, note = task.get("ended_at"), f" (attempt {attempts} failed)"
    else:
        when = task.get("ended_at") or task.get("started_at")
        took = task.get("duration_s")
        note = f" ({_seconds(took)})" if took is not None else ""
    return f"{_clock(when)} {task.get('id')}: {state}{note}"


@dataclass
class Progress:
    """Prints one line per task state change seen between two polls."""

    out: TextIO
    seen: dict[str, tuple[str, int]] = field(default_factory=dict)

    def update(self, run: Mapping[str, Any]) -> bool:
        """Print the changes in `run` (the API's run detail), in the order they happened (a
        task that started and ended between two polls gets its `running` line too); whether
        there were any."""
        changed = False
        lines: list[tuple[float, str]] = []
        for task in run.get("tasks") or ():
            if not isinstance(task, dict):
                continue
            key = (str(task.get("state")), int(task.get("attempts") or 0))
            before = self.seen.get(str(task.get("id")))
            if before == key:
                continue
            self.seen[str(task.get("id"))] = key
            changed = True
            if key[0] not in SHOWN_TASK_STATES:
                continue
            started = task.get("started_at")
            if key[0] != "running" and (before is None or before[0] != "running") and started:
                running = {**task, "state": "running"}
                lines.append((_stamp(started), progress_line(running)))
            when = task.get("ended_at") if key[0] != "running" else started
            lines.append((_stamp(when or started), progress_line(task)))
        for _, line in sorted(lines, key=lambda item: item[0]):
            self.out.write(line + "\n")
        if changed:
            self.out.flush()
        return changed


def follow(
    remote: Remote,
    run_id: str,
    pipeline: str,
    timeout: float | None,
    progress: Progress | None,
    err: TextIO,
) -> tuple[dict[str, Any], bool]:
    """Poll the run until it ends (every 0.5 s, growing to 5 s while nothing changes) or
    `timeout` passes: (the run's last detail, whether it ended)."""
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    delay = POLL_FIRST_S
    last: dict[str, Any] = {"id": run_id, "pipeline": pipeline, "state": "queued", "tasks": []}
    out_of_touch_since: float | None = None
    while True:
        try:
            last = remote.run(run_id, pipeline)
            if out_of_touch_since is not None:
                err.write(f"note: {remote.base} answers again\n")
            out_of_touch_since = None
            changed = progress.update(last) if progress is not None else False
        except _OutOfTouch as exc:
            now = time.monotonic()
            if out_of_touch_since is None:
                out_of_touch_since = now
                err.write(f"note: {exc}; trying again for {OUT_OF_TOUCH_S:g}s\n")
            elif now - out_of_touch_since >= OUT_OF_TOUCH_S:
                raise
            changed = False
        if last.get("state") in ENDED:
            return last, True
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return last, False
        delay = POLL_FIRST_S if changed else min(delay * POLL_GROWTH, POLL_MAX_S)
        wait = delay if deadline is None else min(delay, max(0.0, deadline - now))
        time.sleep(wait)


def summary(run: Mapping[str, Any]) -> str:
    """The end of a run: its state and time, then the failed tasks with their errors (as the
    API shows them: redacted)."""
    took = run.get("duration_s")
    lines = [
        f"run {run.get('id')} of {run.get('pipeline')}: {run.get('state')}"
        + (f" in {took:.2f}s" if isinstance(took, int | float) else "")
    ]
    failed = [
        t
        for t in run.get("tasks") or ()
        if isinstance(t, dict) and t.get("state") in FAILED_TASK_STATES
    ]
    if failed:
        lines.append("failed tasks:")
        for task in failed:
            error = str(task.get("error") or task.get("state"))
            first, *rest = error.splitlines() or [""]
            lines.append(f"  {task.get('id')}: {first}")
            lines.extend(f"    {line}" for line in rest)
    elif run.get("error") and run.get("state") != "success":
        lines.append(f"  error: {' '.join(str(run['error']).split())}")
    return "\n".join(lines)


def run_doc(run: Mapping[str, Any], url: str) -> dict[str, Any]:
    """What `--json` prints: the run as the API shows it, with its page's address."""
    keep = (
        "id", "pipeline", "state", "trigger", "logical_date", "created_at", "started_at",
        "ended_at", "duration_s", "error", "params",
    )  # fmt: skip
    doc = {"run_id": run.get("id"), **{k: run.get(k) for k in keep if k in run}, "url": url}
    if "tasks" in run:
        doc["tasks"] = [
            {k: t.get(k) for k in ("id", "state", "attempts", "duration_s", "error")}
            for t in run["tasks"]
            if isinstance(t, dict)
        ]
    return doc


def trigger(
    pipeline: str,
    *,
    server: str,
    token: str | None,
    ca_cert: str | None,
    params: Mapping[str, str],
    logical_date: str | None,
    wait: bool,
    timeout: float | None,
    timeout_text: str | None,
    json_out: bool,
    allow_insecure_http: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Queue a run of `pipeline` on `server` (and follow it with `wait`); the exit code.
    RemoteError for anything that keeps the run from being queued or followed, and, before
    anything is sent, for plain http:// to another machine unless `allow_insecure_http`."""
    out = out or sys.stdout
    err = err or sys.stderr
    check_transport(check_server(server), allow_insecure_http)
    remote = Remote.open(server, check_token(token), ca_cert)
    try:
        if remote.plain_http_elsewhere:  # allowed with --allow-insecure-http: said once more
            err.write(
                f"warning: {remote.base} is plain HTTP: the token crosses the network "
                "readable (--allow-insecure-http); use https://\n"
            )
        given: dict[str, Any] = dict(params)
        if params:
            given = typed_params(pipeline, params, remote.declared_params(pipeline))
        queued = remote.trigger(pipeline, given, logical_date)
        run_id, pipe_id = queued["run_id"], str(queued.get("pipeline") or pipeline)
        url = remote.run_url(run_id)
        if not json_out:
            out.write(f"queued run {run_id} of {pipe_id}: {url}\n")
            out.flush()
        if not wait:
            if json_out:
                doc = {"run_id": run_id, "pipeline": pipe_id, "state": "queued", "url": url}
                out.write(json.dumps(doc) + "\n")
            return 0
        progress = None if json_out else Progress(out)
        try:
            final, ended = follow(remote, run_id, pipe_id, timeout, progress, err)
        except KeyboardInterrupt:
            err.write(f"error: stopped waiting; run {run_id} goes on: {url}\n")
            return 130
        if json_out:
            out.write(json.dumps(run_doc(final, url)) + "\n")
        if not ended:
            err.write(
                f"run {run_id} did not finish within {timeout_text} (it is "
                f"{final.get('state')}; it goes on): {url}\n"
            )
            return 1
        if not json_out:
            out.write(summary(final) + "\n")
            out.write(f"{url}\n")
        return 0 if final.get("state") == "success" else 1
    finally:
        remote.close()
