"""Shared fixtures: every test gets its own project folder and state; store tests also get a
throwaway PostgreSQL cluster (one per session, one fresh database per test)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.pgdatabases import fresh_pg_database

from lockgate.config import Project

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
"""CI=true (or any other truthy value): the PostgreSQL tests must run, never skip."""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A fresh project in a temporary folder, made the working folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOCKGATE_DB_URL", raising=False)
    monkeypatch.delenv("LOCKGATE_EXECUTOR", raising=False)
    (tmp_path / "pipelines").mkdir()
    return Project.load(tmp_path)


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKGATE_TESTING", "1")
    os.environ.pop("LOCKGATE_DB_URL", None)
    os.environ.pop("LOCKGATE_DASK_ADDRESS", None)  # `--dask-address` sets it in-process


# -- PostgreSQL ---------------------------------------------------------------------------------


def _unavailable(reason: str) -> None:
    """Fail in CI (a missing server must never silently skip the PostgreSQL tests); skip
    elsewhere, saying how to get it."""
    if IN_CI:
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    # only reached outside CI (CI=true failed above): a developer without the server skips
    pytest.skip(f"{reason}; `.ci/run` installs the PostgreSQL server (apt-get install postgresql)")


def _pg_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's versioned folders."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).resolve().parent == Path(pg_ctl).resolve().parent:
        return Path(initdb).resolve().parent

    def version(folder: str) -> tuple[int, ...]:
        name = Path(folder).parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if os.access(os.path.join(folder, "initdb"), os.X_OK) and os.access(
            os.path.join(folder, "pg_ctl"), os.X_OK
        ):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Cluster:
    """A throwaway PostgreSQL cluster in a temporary folder, trust auth, loopback only."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        # Not under pytest's tmp folder: that one is private to root (0700), and as root the
        # server runs as `postgres`, which must be able to reach its data folder.
        self.base = Path(tempfile.mkdtemp(prefix="lockgate-pg-"))
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log = self.base / "server.log"
        self.port = 0
        self.started = False

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *cmd] if self.as_root else cmd

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._cmd(*args),
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> None:
        self.sock.mkdir()
        if self.as_root:
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
        done = self._run(
            "initdb",
            "--no-sync",
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "-D",
            str(self.data),
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr or done.stdout}")
        last = ""
        for _ in range(5):  # the free port may be taken between probing and listening
            self.port = _free_port()
            opts = (
                f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sock}"
            )
            done = self._run(
                "pg_ctl",
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                opts,
                timeout=90,
            )
            if done.returncode == 0:
                self.started = True
                return
            last = done.stderr or done.stdout
            with contextlib.suppress(OSError):
                last += "\n" + self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"pg_ctl start failed: {last}")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if self.started:
            self._run("pg_ctl", "stop", "-m", "immediate", "-D", str(self.data))
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The admin URL of a throwaway PostgreSQL cluster started once per test session."""
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is not installed (pip install -e '.[dev]')")
    assert bindir is not None
    cluster = _Cluster(bindir)
    try:
        cluster.start()
    except Exception as exc:
        cluster.stop()
        pytest.fail(f"could not start a throwaway PostgreSQL cluster: {exc}", pytrace=False)
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL database of its own, dropped afterwards."""
    with fresh_pg_database(pg_server) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty metadata database: an SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta' / 'lockgate.db'}"
    return str(request.getfixturevalue("pg_url"))


# -- Dask ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Dask scheduler and two workers (w1, w2; w2 offers resource gpu=1) on 127.0.0.1,
    for the whole session. Tests that kill workers start a cluster of their own."""
    from tests.daskcluster import DaskCluster

    cluster = DaskCluster(tmp_path_factory.mktemp("dask"))
    try:
        cluster.add_worker("w1")
        cluster.add_worker("w2", resources="gpu=1")
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.stop()


AWS_REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server in server mode on 127.0.0.1 (a free port), for the whole session: its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake AWS credentials and the moto endpoint in the environment (for this test only);
    returns the endpoint URL."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_KMS", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return moto_server
