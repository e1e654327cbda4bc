"""Helpers shared by the engine tests (imported relatively: `from .helpers import ...`)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lockgate import task
from lockgate.engine.events import Event, EventBus


@task
def ok() -> str:
    """A task that succeeds, returning "ok"."""
    return "ok"


@task
def boom() -> None:
    """A task that fails with RuntimeError("boom")."""
    raise RuntimeError("boom")


class Recorder:
    """Collects every event of a bus, in order (subscribers run in the engine's thread)."""

    def __init__(self, bus: EventBus | None = None) -> None:
        self.bus = bus or EventBus()
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self.bus.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def kinds(self, task_id: str | None = None) -> list[str]:
        return [e.kind for e in self.events if task_id is None or e.task_id == task_id]

    def of(self, kind: str, task_id: str | None = None) -> list[Event]:
        return [
            e for e in self.events if e.kind == kind and (task_id is None or e.task_id == task_id)
        ]

    def index(self, kind: str, task_id: str | None = None) -> int:
        for i, e in enumerate(self.events):
            if e.kind == kind and (task_id is None or e.task_id == task_id):
                return i
        raise AssertionError(f"no {kind} event for {task_id!r} in {self.kinds()}")


def pid_alive(pid: int) -> bool:
    """True while `pid` is a live process (a zombie waiting to be reaped counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def wait_pid_gone(pid: int, timeout: float = 10.0) -> bool:
    return wait_until(lambda: not pid_alive(pid), timeout)


def read_pid(path: Path, timeout: float = 10.0) -> int:
    """The pid a task wrote to `path` (waits for the file to be complete)."""
    assert wait_until(lambda: path.is_file() and path.read_text().strip().isdigit(), timeout), (
        f"{path} was never written"
    )
    return int(path.read_text().strip())
