"""The executor interface: run attempts somewhere and report how each one ended."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from lockgate.engine.work import Outcome, WorkItem

Report = Callable[[Outcome], None]


class Executor(ABC):
    """Runs `WorkItem`s and calls `report(outcome)` once per item, from any thread.

    The engine never submits more than `capacity` items at once, decides timeouts itself and
    calls `cancel(key)` to stop an attempt it has given up on (whose later outcome it ignores).
    """

    name: str = "executor"
    runs_tasks_here: bool = True
    """Python tasks run in this process's threads (their child processes share its console)."""
    reports_starts: bool = False
    """Attempts with a timeout may wait in a queue of the executor's own after `submit`: it
    reports `Started` when each really starts, and the timeout counts from then."""

    def __init__(self, concurrency: int) -> None:
        self.capacity = max(1, concurrency)
        self._report: Report | None = None

    def prepare(self) -> None:
        """Get ready before the run starts (e.g. connect to a cluster); raises ConfigError
        naming what is wrong. `start` calls it too."""

    def start(self, report: Report) -> None:
        self._report = report

    def report_all(self, outcomes: list[Outcome]) -> None:
        """Report outcomes learnt of together in one go (the engine then starts what they
        make ready together)."""
        if outcomes:
            assert self._report is not None
            self._report(outcomes)  # type: ignore[arg-type]

    @abstractmethod
    def submit(self, item: WorkItem) -> None:
        """Start `item`; must return quickly (except the inline executor, which runs it)."""

    @abstractmethod
    def cancel(self, key: tuple[str, int], reason: str) -> None:
        """Stop the attempt `key` as well as this executor can (best effort, non-blocking)."""

    def interrupt(self, reason: str) -> None:
        """The run is being cancelled (called from any thread, or a signal handler; must not
        block): stop work that holds up the engine's own thread. Only the inline executor
        runs any; the engine then calls `cancel` for each attempt as usual."""

    def shutdown(self) -> None:
        """Release workers; running attempts that were cancelled are left to die."""

    @property
    def inline(self) -> bool:
        """True when `submit` runs the item in the caller's thread."""
        return False
