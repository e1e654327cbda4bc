"""The processes executor: Python tasks run in a pool of worker processes (forkserver/spawn).

A worker loads the pipeline's file itself to find the task's function, so functions need not
be picklable; arguments are pickled and results come back as JSON text. A cancelled or timed-out
attempt has its worker's whole process group killed and the worker is replaced. Shell tasks are
already separate processes and run from threads, as in the threads executor.
"""

from __future__ import annotations

import contextlib
import functools
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
from lockgate.engine.executors.shipping import shipped, unshippable
from lockgate.engine.executors.threads import ThreadExecutor
from lockgate.engine.work import FAILED, LOST, Outcome, WorkItem

_PRELOAD = ["lockgate.engine.executors.processes", "lockgate.authoring.discovery"]


@functools.cache
def _context() -> Any:
    """forkserver where available: workers fork from a server that has lockgate imported
    already (and lives as long as this process), so a new worker is ready in milliseconds."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


class _Worker:
    """One worker process and the thread that reads its outcomes."""

    def __init__(self, ctx: Any) -> None:
        parent, child = ctx.Pipe(duplex=True)
        self.conn: Connection = parent
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.owner: ProcessExecutor | None = None
        self.item: WorkItem | None = None
        self.killed = False
        self.reader = threading.Thread(target=self._read, daemon=True, name="lockgate-proc-reader")
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                outcome = self.conn.recv()
            except (EOFError, OSError):
                _POOL.forget(self)
                owner = self.owner
                if owner is not None:
                    owner._worker_died(self)
                return
            owner = self.owner
            if owner is not None:
                owner._worker_done(self, outcome)

    def kill(self) -> None:
        self.killed = True
        pid = self.process.pid
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()


class _ProcessPool:
    """Idle worker processes shared by every processes executor of this process, so that a
    process running many pipelines starts its workers (and loads pipeline files) once."""

    MAX_IDLE = 16

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: deque[_Worker] = deque()

    def acquire(self, owner: ProcessExecutor) -> _Worker:
        with self._lock:
            worker = None
            while self._idle and worker is None:
                candidate = self._idle.popleft()
                if candidate.process.is_alive():
                    worker = candidate
        if worker is None:
            worker = _Worker(_context())
        worker.owner = owner
        return worker

    def release(self, worker: _Worker) -> None:
        worker.owner = None
        worker.item = None
        with self._lock:
            if worker.killed:
                return
            if len(self._idle) < self.MAX_IDLE:
                self._idle.append(worker)
                return
        with contextlib.suppress(OSError):
            worker.conn.send_bytes(b"")  # asks the worker to exit

    def forget(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)


_POOL = _ProcessPool()


class ProcessExecutor(Executor):
    name = "processes"
    runs_tasks_here = False

    def __init__(self, concurrency: int) -> None:
        super().__init__(concurrency)
        self._lock = threading.Lock()
        self._busy: dict[tuple[str, int], _Worker] = {}
        self._shells = ThreadExecutor(concurrency)

    def start(self, report: Any) -> None:
        super().start(report)
        self._shells.start(report)

    def submit(self, item: WorkItem) -> None:
        if item.kind == "shell":
            self._shells.submit(item)
            return
        try:
            payload = shipped(item)
        except Exception as exc:
            assert self._report is not None
            self._report(unshippable(item, exc, self.name))
            return
        worker = _POOL.acquire(self)
        worker.item = item
        with self._lock:
            self._busy[item.key] = worker
        try:
            worker.conn.send_bytes(payload)
        except OSError:  # it died while idle
            worker.killed = True
            self._worker_died(worker)

    def _worker_done(self, worker: _Worker, outcome: Outcome) -> None:
        with self._lock:
            mine = self._busy.pop((outcome.task_id, outcome.attempt), None) is worker
        if not mine:  # cancelled meanwhile: the worker is being killed
            return
        _POOL.release(worker)
        assert self._report is not None
        self._report(outcome)

    def _worker_died(self, worker: _Worker) -> None:
        worker.process.join(timeout=5)
        item = worker.item
        with self._lock:
            mine = item is not None and self._busy.pop(item.key, None) is worker
        if mine and item is not None:
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
            worker = self._busy.pop(key, None)
        if worker is not None:
            worker.kill()

    def shutdown(self) -> None:
        """Idle workers stay in the shared pool; any still busy (abandoned) are killed."""
        self._shells.shutdown()
        with self._lock:
            busy, self._busy = list(self._busy.values()), {}
        for worker in busy:
            worker.kill()
        for worker in busy:
            worker.process.join(timeout=2)


def _worker_main(conn: Connection) -> None:
    """Loop of a worker process: receive an item, run it, send the outcome back."""
    os.setpgrp()  # the engine kills the whole group on timeout or cancel
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's to handle
    from lockgate.authoring.discovery import load_file
    from lockgate.engine.logcapture import capture_fds, install
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
            with capture_fds(item.ctx.log_path):
                outcome = run_python(item, fn)
        try:
            conn.send(outcome)
        except (OSError, EOFError):
            return
