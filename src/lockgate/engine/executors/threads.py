"""The threads executor (the default): a pool of worker threads in the engine's process."""

from __future__ import annotations

import threading
from queue import SimpleQueue

from lockgate.engine.executors.base import Executor
from lockgate.engine.work import ShellProcess, WorkItem, run_python


class ThreadExecutor(Executor):
    """Runs attempts on daemon threads. A shell attempt that is cancelled has its process group
    killed; a Python attempt cannot be stopped inside a thread, so it is abandoned (its result
    ignored) and a fresh thread takes its place so capacity is not lost."""

    name = "threads"

    def __init__(self, concurrency: int) -> None:
        super().__init__(concurrency)
        self._queue: SimpleQueue[WorkItem | None] = SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._shells: dict[tuple[str, int], ShellProcess] = {}
        self._running: set[tuple[str, int]] = set()
        self._abandoned: set[tuple[str, int]] = set()
        self._killers: list[threading.Thread] = []
        self._closed = False

    def submit(self, item: WorkItem) -> None:
        with self._lock:
            self._running.add(item.key)
            if item.kind == "shell":
                self._shells[item.key] = ShellProcess(item)
            if self._idle == 0:
                self._spawn()
            else:
                self._idle -= 1
        self._queue.put(item)

    def _spawn(self) -> None:
        self._threads += 1
        name = f"lockgate-worker-{self._threads}"
        threading.Thread(target=self._work, name=name, daemon=True).start()

    def _work(self) -> None:
        report = self._report
        assert report is not None
        while True:
            item = self._queue.get()
            if item is None:
                return
            key = item.key
            shell = self._shells.get(key)
            if shell is not None:
                outcome = shell.run()
            elif key in self._abandoned:
                outcome = None  # cancelled before it started
            else:
                assert item.fn is not None
                outcome = run_python(item, item.fn)
            with self._lock:
                self._running.discard(key)
                self._shells.pop(key, None)
                abandoned = key in self._abandoned
                self._abandoned.discard(key)
                if abandoned and shell is None:  # a replacement thread took this one's place
                    self._threads -= 1
                else:
                    self._idle += 1
            if abandoned and shell is None:
                return
            if outcome is not None:
                report(outcome)

    def cancel(self, key: tuple[str, int], reason: str) -> None:
        with self._lock:
            if key not in self._running:
                return
            shell = self._shells.get(key)
            if shell is None:
                self._abandoned.add(key)
                self._spawn()
                self._idle += 1
            else:
                killer = threading.Thread(target=shell.kill, args=(reason,), daemon=True)
                self._killers.append(killer)
        if shell is not None:
            killer.start()

    def shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            count = self._threads
            killers = list(self._killers)
        for killer in killers:
            killer.join()
        for _ in range(count):
            self._queue.put(None)
