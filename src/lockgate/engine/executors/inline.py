"""The inline executor: runs each task in the engine's own thread, one at a time (debugging)."""

from __future__ import annotations

import threading

from lockgate.engine.executors.base import Executor
from lockgate.engine.work import (
    FAILED,
    SUCCESS,
    Outcome,
    ShellProcess,
    WorkItem,
    crashed,
    run_python,
    run_shell,
)


class InlineExecutor(Executor):
    """Runs tasks sequentially in the caller's thread; breakpoints and pdb work in task code.

    Shell tasks still honour their timeout; a Python task cannot be stopped from outside.
    """

    name = "inline"

    def __init__(self, concurrency: int = 1) -> None:
        super().__init__(1)
        self._shell: ShellProcess | None = None
        self._killers: list[threading.Thread] = []

    def submit(self, item: WorkItem) -> None:
        assert self._report is not None
        try:
            outcome = self._run(item)
        except Exception as exc:  # never leave the engine waiting for this attempt
            outcome = crashed(item, exc)
        self._report(outcome)

    def _run(self, item: WorkItem) -> Outcome:
        if item.kind == "shell":
            outcome = run_shell(item, self._register)
        else:
            assert item.fn is not None
            outcome = run_python(item, item.fn)
            took = outcome.ended_at - outcome.started_at
            if item.timeout is not None and took > item.timeout and outcome.state == SUCCESS:
                outcome.state = FAILED
                outcome.result_json = None
                outcome.error = (
                    f"timed out after {item.timeout:g}s (it ran {took:.1f}s: the inline executor "
                    "cannot stop a Python task, so it is failed when it ends)"
                )
        return outcome

    def _register(self, shell: ShellProcess | None) -> None:
        self._shell = shell

    def cancel(self, key: tuple[str, int], reason: str) -> None:
        """Nothing runs concurrently with the engine here, so there is nothing to stop."""

    def interrupt(self, reason: str) -> None:
        """Kill the running shell task (Ctrl-C would otherwise wait for it to finish)."""
        shell = self._shell
        if shell is not None:
            killer = threading.Thread(target=shell.kill, args=(reason,), daemon=True)
            self._killers.append(killer)
            killer.start()

    def shutdown(self) -> None:
        for killer in self._killers:
            killer.join()

    @property
    def inline(self) -> bool:
        return True
