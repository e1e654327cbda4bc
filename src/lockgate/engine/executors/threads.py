"""The threads executor (the default): worker threads in the engine's process.

Worker threads are shared by every threads executor of the process and outlive a run, so a
process that runs many pipelines (tests, the scheduler, a notebook) starts them once.
"""

from __future__ import annotations

import threading
from queue import SimpleQueue

from lockgate.engine.executors.base import Executor
from lockgate.engine.work import Outcome, ShellProcess, WorkItem, crashed, run_python


class _WorkerPool:
    """Daemon threads that run (executor, item) pairs; grows to the concurrency asked for."""

    def __init__(self) -> None:
        self._queue: SimpleQueue[tuple[ThreadExecutor, WorkItem]] = SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, executor: ThreadExecutor, item: WorkItem) -> None:
        with self._lock:
            if self._idle == 0:
                self._spawn()
            else:
                self._idle -= 1
        self._queue.put((executor, item))

    def replace_one(self) -> None:
        """Add a thread for one that is stuck in an abandoned attempt."""
        with self._lock:
            self._spawn()
            self._idle += 1

    def _spawn(self) -> None:
        self._threads += 1
        name = f"lockgate-worker-{self._threads}"
        threading.Thread(target=self._work, name=name, daemon=True).start()

    def _work(self) -> None:
        while True:
            executor, item = self._queue.get()
            abandoned = executor._execute(item)
            with self._lock:
                if abandoned:  # a replacement thread took this one's place
                    self._threads -= 1
                    return
                self._idle += 1


_POOL = _WorkerPool()


class ThreadExecutor(Executor):
    """Runs attempts on worker threads. A shell attempt that is cancelled has its process
    group killed; a Python attempt cannot be stopped inside a thread, so it is abandoned (its
    result ignored) and a fresh thread takes its place so capacity is not lost."""

    name = "threads"

    def __init__(self, concurrency: int) -> None:
        super().__init__(concurrency)
        self._lock = threading.Lock()
        self._shells: dict[tuple[str, int], ShellProcess] = {}
        self._running: set[tuple[str, int]] = set()
        self._abandoned: set[tuple[str, int]] = set()
        self._killers: list[threading.Thread] = []

    def submit(self, item: WorkItem) -> None:
        with self._lock:
            self._running.add(item.key)
            if item.kind == "shell":
                self._shells[item.key] = ShellProcess(item)
        _POOL.submit(self, item)

    def _execute(self, item: WorkItem) -> bool:
        """Run one item in the calling worker thread; True if the thread must now retire."""
        key = item.key
        shell = self._shells.get(key)
        try:
            if shell is not None:
                outcome: Outcome | None = shell.run()
            elif key in self._abandoned:
                outcome = None  # cancelled before it started
            else:
                assert item.fn is not None
                outcome = run_python(item, item.fn)
        except BaseException as exc:  # never leave the engine waiting for this attempt
            outcome = crashed(item, exc)
        with self._lock:
            self._running.discard(key)
            self._shells.pop(key, None)
            abandoned = key in self._abandoned
            self._abandoned.discard(key)
        if abandoned:
            return shell is None
        if outcome is not None:
            assert self._report is not None
            self._report(outcome)
        return False

    def cancel(self, key: tuple[str, int], reason: str) -> None:
        with self._lock:
            if key not in self._running:
                return
            shell = self._shells.get(key)
            if shell is None:
                self._abandoned.add(key)
            else:
                killer = threading.Thread(target=shell.kill, args=(reason,), daemon=True)
                self._killers.append(killer)
        if shell is None:
            _POOL.replace_one()
        else:
            killer.start()

    def shutdown(self) -> None:
        with self._lock:
            killers, self._killers = self._killers, []
        for killer in killers:
            killer.join()
