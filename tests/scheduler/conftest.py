"""Fixtures for the scheduler daemon's integration tests: a real project folder (lockgate.toml,
pipelines/ of YAML and Python files, SQLite state), real schedulers served in background
threads (or in a `lockgate scheduler` subprocess), and a polling wait with a deadline."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from lockgate import api
from lockgate.config import Project
from lockgate.execution import open_store
from lockgate.scheduler.daemon import Scheduler
from lockgate.store.store import Store

T = TypeVar("T")

LONG_AGO = "2024-01-01T00:00:00+00:00"
"""A start date far in the past (whole seconds, so `every Ns` intervals fall on whole seconds)."""


def wait_until(
    condition: Callable[[], T],
    timeout: float = 10.0,
    what: str = "the condition",
    details: Callable[[], str] | None = None,
) -> T:
    """Poll `condition` until it returns something truthy (returned); fail after `timeout`,
    with `details()` in the message if given (e.g. a subprocess's log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{details()}" if details is not None else ""
            pytest.fail(f"timed out after {timeout:g}s waiting for {what} (last: {value!r}){extra}")
        time.sleep(0.02)


def iso(timestamp: float) -> str:
    """A UTC timestamp as an ISO date-time with an offset (how start dates are written)."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def whole_seconds_ago(n: int) -> float:
    """The whole second `n` seconds before now."""
    return float(math.floor(time.time()) - n)


def echo(out: Path, *words: str) -> str:
    """A shell command that appends one line made of `words` (templates allowed) to `out`."""
    return f'echo "{" ".join(words)}" >> {out}'


class Served:
    """A scheduler started in this process and served in a background thread."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, name="test-scheduler", daemon=True)

    def _serve(self) -> None:
        try:
            self.scheduler.serve()
        except BaseException as exc:  # reported by the fixture's finalizer
            self.error = exc

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and not self.scheduler.wait_stopped(0)

    def stop(self, timeout: float = 20.0) -> None:
        self.scheduler.stop()
        assert self.scheduler.wait_stopped(timeout), "the scheduler did not stop in time"
        self.thread.join(timeout)
        assert not self.thread.is_alive()


class Lab:
    """A throwaway lockgate project with helpers to write pipelines, run schedulers and read
    the store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "lockgate.toml").write_text("[lockgate]\nexecutor = 'threads'\n")
        self.pipelines = root / "pipelines"
        self.pipelines.mkdir()
        self.project = Project.load(root)
        self.served: list[Served] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    # -- pipeline files -------------------------------------------------------------------------
    def write(self, name: str, text: str) -> Path:
        """Write a pipeline file atomically (a watcher never sees it half written)."""
        path = self.pipelines / name
        temp = self.pipelines / f".{name}.tmp"
        temp.write_text(textwrap.dedent(text))
        os.replace(temp, path)
        return path

    def write_yaml(self, pipeline_id: str, **spec: Any) -> Path:
        """A YAML pipeline `<id>.yaml` from keyword fields (tasks={...}, schedule=...)."""
        return self.write(f"{pipeline_id}.yaml", yaml.safe_dump({"id": pipeline_id, **spec}))

    def out(self, name: str) -> Path:
        """A file under the project for tasks to append to."""
        return self.root / name

    def lines(self, name: str) -> list[str]:
        path = self.root / name
        return path.read_text().splitlines() if path.exists() else []

    # -- schedulers -----------------------------------------------------------------------------
    def start(self, **options: Any) -> Served:
        """A new scheduler on this project, started and served in a background thread."""
        scheduler = Scheduler(Project.load(self.root), **options)
        scheduler.start()
        served = Served(scheduler)
        self.served.append(served)
        served.thread.start()
        return served

    def spawn(self) -> subprocess.Popen[bytes]:
        """`python -m lockgate scheduler` in the project folder, its output in a log file."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
        log = (self.root / f"scheduler-{len(self.processes)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "lockgate", "scheduler"],
            cwd=self.root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes.append(proc)
        return proc

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        """What a scheduler subprocess wrote (for failure messages)."""
        path = self.root / f"scheduler-{self.processes.index(proc)}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a scheduler subprocess (no chance to clean up) and reap it."""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    # -- the store ------------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        return open_store(self.project)

    def runs(self, pipeline_id: str) -> list[dict[str, Any]]:
        """The pipeline's runs, oldest logical date first."""
        rows = self.store.list_runs(pipeline_id=pipeline_id, limit=10_000)
        return sorted(rows, key=lambda r: (r["logical_date"] or 0, r["created_at"]))

    def finished(self, pipeline_id: str, state: str = "success") -> list[dict[str, Any]]:
        return [r for r in self.runs(pipeline_id) if r["state"] == state]

    def trigger(self, pipeline_id: str, **options: Any) -> str:
        return api.trigger(pipeline_id, project=self.project, **options)

    def wait_run(self, run_id: str, timeout: float = 10.0) -> dict[str, Any]:
        return api.wait_for_run(run_id, self.project, timeout=timeout, poll_s=0.02)

    def close(self) -> None:
        """Kill the subprocesses, stop every scheduler; fail if one of them had crashed."""
        errors: list[BaseException] = []
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for served in self.served:
            try:
                if not served.scheduler.wait_stopped(0):
                    served.stop()
            except BaseException as exc:  # stop the others all the same
                errors.append(exc)
            if served.error is not None:
                errors.append(served.error)
        if errors:
            raise AssertionError(f"a scheduler failed: {errors[0]!r}") from errors[0]


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    """A fresh project (the working folder); every scheduler it started is stopped after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOCKGATE_DB_URL", raising=False)
    monkeypatch.delenv("LOCKGATE_EXECUTOR", raising=False)
    found = Lab(tmp_path)
    try:
        yield found
    finally:
        found.close()
