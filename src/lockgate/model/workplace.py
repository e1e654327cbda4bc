"""Where the running attempt belongs: its project's folder.

A task's code (the data tasks, the policy gate) finds its project with `Project.load()`. In a
run, that must be the run's project, not whatever the working folder of the process happens
to be (`lockgate.run(pipe, project=p)` called from elsewhere, a task that changes folder, a
worker process started in another place): the attempt sets it here for its duration, per
thread and task (a context variable), and `Project.load()` starts from it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_root: ContextVar[str | None] = ContextVar("lockgate_project_root", default=None)


def project_root() -> str | None:
    """The folder of the running attempt's project, or None outside an attempt."""
    return _root.get()


@contextlib.contextmanager
def inside(root: str | None) -> Iterator[None]:
    """Run the block as part of the project at `root` (nothing changes when None)."""
    if root is None:
        yield
        return
    token = _root.set(root)
    try:
        yield
    finally:
        _root.reset(token)
