"""Real `lockgate serve` / `lockgate up` processes for the tests: started in a project folder
on a port the OS picks on 127.0.0.1 (`--port 0`), found from the line they print when ready,
stopped with SIGTERM; plus the users and tokens they serve and a polling wait."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lockgate.auth import accounts
from lockgate.config import Project
from lockgate.execution import open_store

PASSWORD = "correct horse battery staple"
START_S = 30.0
"""Most a server may take to print its start line (a loaded CI machine)."""


def wait_until(
    condition: Callable[[], Any], timeout: float = 15.0, what: str = "the condition"
) -> Any:
    """Poll `condition` until it returns something truthy (returned); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what} (last: {value!r})")
        time.sleep(0.05)


def env() -> dict[str, str]:
    """The environment of a lockgate subprocess: no stray LOCKGATE_* settings."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    out.update(PYTHONDONTWRITEBYTECODE="1", TERM="dumb", NO_COLOR="1", COLUMNS="200")
    return out


def admin_token(project: Project, user: str = "admin", **kw: Any) -> str:
    """A user (made if missing, role admin) and a new API token of theirs."""
    store = open_store(project)
    if not any(u["name"] == user for u in store.users()):
        accounts.create_user(store, user, "admin", actor="test", password=PASSWORD)
    token: str = accounts.create_token(store, user, actor="test", **kw)
    return token


class Served:
    """A `lockgate ARGS` server process in `root`; its stdout and stderr in files."""

    def __init__(self, root: Path, *args: str) -> None:
        self.root = root
        self.args = args
        self.out_path = root / f"server-{os.getpid()}-{id(self)}.out"
        self.err_path = root / f"server-{os.getpid()}-{id(self)}.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lockgate", *args],
                cwd=root,
                env=env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        self.line = ""

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def __str__(self) -> str:
        return (
            f"lockgate {' '.join(self.args)} (exit {self.proc.poll()})\n--- stdout\n{self.out}"
            f"--- stderr\n{self.err}"
        )

    def ready(self) -> Served:
        """Wait for the start line ("lockgate serving URL ..."); fail with the output if the
        process ended first."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            for line in self.out.splitlines():
                if line.startswith("lockgate serving "):
                    self.line = line
                    return self
            if self.proc.poll() is not None:
                pytest.fail(f"the server ended before serving:\n{self}")
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"the server did not start within {START_S:g}s:\n{self}")

    @property
    def url(self) -> str:
        """The base URL from the start line, e.g. http://127.0.0.1:41234 (no trailing /)."""
        return self.line.split()[2].rstrip("/")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def metrics_url(self) -> str:
        found = [w for w in self.line.replace(";", " ").split() if w.endswith("/metrics")]
        assert found, self.line
        return found[0]

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the process and wait for it; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            pytest.fail(f"the server did not stop within {timeout:g}s:\n{self}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def listening(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp and tcp6 write them) of the sockets that
    listen on TCP `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.append(address)
    return found


LOOPBACK_V4 = "0100007F"
"""127.0.0.1 as /proc/net/tcp writes it (little-endian hex)."""
