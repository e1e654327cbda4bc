"""The inline executor: runs each task in the engine's own thread, one at a time (debugging)."""

from __future__ import annotations

from lockgate.engine.executors.base import Executor
from lockgate.engine.work import WorkItem, run_python, run_shell


class InlineExecutor(Executor):
    """Runs tasks sequentially in the caller's thread; breakpoints and pdb work in task code.

    Shell tasks still honour their timeout; a Python task cannot be stopped from outside.
    """

    name = "inline"

    def __init__(self, concurrency: int = 1) -> None:
        super().__init__(1)

    def submit(self, item: WorkItem) -> None:
        assert self._report is not None
        if item.kind == "shell":
            outcome = run_shell(item)
        else:
            assert item.fn is not None
            outcome = run_python(item, item.fn)
        self._report(outcome)

    def cancel(self, key: tuple[str, int], reason: str) -> None:
        """Nothing runs concurrently with the engine here, so there is nothing to stop."""

    @property
    def inline(self) -> bool:
        return True
