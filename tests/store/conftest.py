"""Fixtures of the store tests: a project on each metadata DB, pipeline files, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lockgate.config import Project
from lockgate.store.store import Store

_SCRIPT = Path(sys.executable).with_name("lockgate")
LOCKGATE = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "lockgate"]


@pytest.fixture
def proj(project: Project, db_url: str) -> Project:
    """The test's project, with its metadata in `db_url` (SQLite file or PostgreSQL)."""
    project.db_url = db_url
    return project


@pytest.fixture
def open_store(db_url: str) -> Iterator[Callable[[], Store]]:
    """Opens Stores on `db_url` (as many as asked, sharing one audit key), all closed at the end
    of the test."""
    from lockgate.privacy.keys import Keyring

    keys = Keyring.generate()
    opened: list[Store] = []

    def make() -> Store:
        store = Store(db_url, keys=keys)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def write_pipeline() -> Callable[[Path, str], Path]:
    """Write a pipeline file (dedented); a rewrite always gets a newer mtime."""

    def write(path: Path, text: str) -> Path:
        existed = path.exists()
        before = path.stat().st_mtime_ns if existed else 0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        if existed and path.stat().st_mtime_ns <= before:
            # Linux stamps files with a coarse clock: two writes within a few ms can share
            # an mtime, which the pipeline loader uses to decide whether to re-read a file.
            os.utime(path, ns=(before + 1_000_000, before + 1_000_000))
        return path

    return write


class Cli:
    """The real `lockgate` command, as a subprocess with a clean environment."""

    @staticmethod
    def env(db_url: str | None = None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
        env.update(LOCKGATE_TESTING="1", TERM="dumb", PYTHONUNBUFFERED="1", **extra)
        if db_url is not None:
            env["LOCKGATE_DB_URL"] = db_url
        return env

    def __call__(
        self, *args: str, cwd: Path, db_url: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run `lockgate ARGS...` to its end: lockgate("runs", "--json", cwd=...)."""
        return subprocess.run(
            [*LOCKGATE, *args],
            cwd=cwd,
            env=self.env(db_url),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str, cwd: Path, db_url: str | None = None) -> subprocess.Popen[str]:
        """Start `lockgate ARGS...` in its own process group, output to pipes."""
        return subprocess.Popen(
            [*LOCKGATE, *args],
            cwd=cwd,
            env=self.env(db_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )


@pytest.fixture
def lockgate() -> Cli:
    return Cli()


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05
) -> object:
    """Poll until `predicate()` is truthy; fail the test saying what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def poll() -> Callable[..., object]:
    return wait_for
