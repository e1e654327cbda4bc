"""The processes executor: Python tasks run in a pool of worker processes (forkserver/spawn).

A worker loads the pipeline's file itself to find the task's function, so functions need not
be picklable; arguments are pickled and results come back as JSON text. A cancelled or timed-out
attempt has its worker's whole process group killed and the worker is replaced. Shell tasks are
already separate processes and run from threads, as in the threads executor.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from typing import Any

from lockgate.engine.executors.base import Executor
from lockgate.engine.executors.threads import ThreadExecutor
from lockgate.engine.work import FAILED, LOST, Outcome, WorkItem


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class _Worker:
    def __init__(self, ctx: Any, owner: ProcessExecutor) -> None:
        self.owner = owner
        parent, child = ctx.Pipe(duplex=True)
        self.conn: Connection = parent
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.item: WorkItem | None = None
        self.killed = False
        self.reader = threading.Thread(target=self._read, daemon=True, name="lockgate-proc-reader")
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                outcome = self.conn.recv()
            except (EOFError, OSError):
                self.owner._worker_died(self)
                return
            self.owner._worker_done(self, outcome)

    def kill(self) -> None:
        self.killed = True
        pid = self.process.pid
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()


class ProcessExecutor(Executor):
    name = "processes"

    def __init__(self, concurrency: int) -> None:
        super().__init__(concurrency)
        self._ctx = _context()
        self._lock = threading.Lock()
        self._idle: deque[_Worker] = deque()
        self._workers: set[_Worker] = set()
        self._by_key: dict[tuple[str, int], _Worker] = {}
        self._shells = ThreadExecutor(concurrency)

    def start(self, report: Any) -> None:
        super().start(report)
        self._shells.start(report)

    def submit(self, item: WorkItem) -> None:
        if item.kind == "shell":
            self._shells.submit(item)
            return
        try:
            payload = pickle.dumps(
                (item.pipeline_file, _strip(item)), protocol=pickle.HIGHEST_PROTOCOL
            )
            if item.pipeline_file is None:
                raise ValueError("the pipeline was not loaded from a file")
        except Exception as exc:
            assert self._report is not None
            self._report(
                Outcome(
                    item.task_id,
                    item.attempt,
                    FAILED,
                    None,
                    f"task {item.task_id!r} cannot run in the processes executor: {exc}; "
                    "define the pipeline at module level in a file and pass picklable arguments "
                    "(or use --executor threads)",
                    time.time(),
                    time.time(),
                )
            )
            return
        with self._lock:
            worker = self._idle.popleft() if self._idle else None
        if worker is None:
            worker = _Worker(self._ctx, self)
            with self._lock:
                self._workers.add(worker)
        worker.item = item
        with self._lock:
            self._by_key[item.key] = worker
        worker.conn.send_bytes(payload)

    def _worker_done(self, worker: _Worker, outcome: Outcome) -> None:
        with self._lock:
            if worker.item is not None:
                self._by_key.pop(worker.item.key, None)
            worker.item = None
            if not worker.killed:  # a worker cancelled just as it finished is dying: no reuse
                self._idle.append(worker)
        assert self._report is not None
        self._report(outcome)

    def _worker_died(self, worker: _Worker) -> None:
        worker.process.join(timeout=5)
        with self._lock:
            self._workers.discard(worker)
            if worker in self._idle:
                self._idle.remove(worker)
            item = worker.item
            if item is not None:
                self._by_key.pop(item.key, None)
        if item is not None and not worker.killed:
            code = worker.process.exitcode
            assert self._report is not None
            self._report(
                Outcome(
                    item.task_id,
                    item.attempt,
                    LOST,
                    None,
                    f"worker process died (exit code {code}) while running the task",
                    time.time(),
                    time.time(),
                )
            )

    def cancel(self, key: tuple[str, int], reason: str) -> None:
        self._shells.cancel(key, reason)
        with self._lock:
            worker = self._by_key.pop(key, None)
            if worker is not None:
                worker.killed = True
        if worker is not None:
            worker.kill()

    def shutdown(self) -> None:
        self._shells.shutdown()
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            if worker.item is None:
                with contextlib.suppress(OSError):
                    worker.conn.send_bytes(b"")
            else:
                worker.kill()
        for worker in workers:
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.kill()


def _strip(item: WorkItem) -> WorkItem:
    """The item without its function: the worker resolves it from the pipeline file."""
    from dataclasses import replace

    return replace(item, fn=None)


def _worker_main(conn: Connection) -> None:
    """Loop of a worker process: receive an item, run it, send the outcome back."""
    os.setpgrp()  # the engine kills the whole group on timeout or cancel
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's to handle
    from lockgate.authoring.discovery import load_file
    from lockgate.engine.logcapture import install
    from lockgate.engine.work import run_python

    install()
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not data:
            return
        file, item = pickle.loads(data)
        try:
            pipe_id = item.ctx.pipeline_id
            found = {p.id: p for p in load_file(file)}.get(pipe_id)
            task = found.tasks.get(item.task_id) if found is not None else None
            fn = task.fn if task is not None else None
            if fn is None:
                raise LookupError(
                    f"the file defines no pipeline {pipe_id!r} with this task at module level; "
                    "define the pipeline at module level of its file (or use --executor threads)"
                )
        except Exception as exc:
            outcome = Outcome(
                item.task_id,
                item.attempt,
                FAILED,
                None,
                f"worker could not load task {item.task_id!r} from {file}: {exc}",
                time.time(),
                time.time(),
            )
        else:
            outcome = run_python(item, fn)
        try:
            conn.send(outcome)
        except (OSError, EOFError):
            return
