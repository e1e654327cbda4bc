"""What runs on a Dask worker: one attempt of one task, its log captured there and sent back.

Imported on the workers by reference (`lockgate.engine.executors.dask_worker.run_item`), so the
workers need lockgate installed, at the coordinator's version (checked before anything else).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lockgate import __version__
from lockgate.engine.work import FAILED, Outcome, ShellProcess, WorkItem, crashed

LOG_LIMIT = 64 << 20
"""Most bytes of one attempt's log sent back; beyond it the middle is dropped (noted in it)."""

_running: dict[str, ShellProcess] = {}
_cancelled: dict[str, str] = {}
"""Shell attempts stopped before they started on this worker, and why."""
_logs = itertools.count(1)
_running_lock = threading.Lock()


@dataclass(slots=True)
class Returned:
    """What a worker sends back for an attempt: its outcome and its (redacted) log."""

    outcome: Outcome
    log: bytes = b""
    worker: str = ""

    @property
    def outcome_key(self) -> tuple[str, int]:
        return (self.outcome.task_id, self.outcome.attempt)


def version_of_worker() -> str:
    """This worker's lockgate version (the coordinator compares it with its own)."""
    return __version__


def run_items(version: str, shipments: list[tuple[str, int, bytes, str | None]]) -> list[Returned]:
    """Run attempts one after the other (a pack of quick ones, or just one): each shipment
    is `run_item`'s arguments after the version."""
    return [run_item(version, *shipment) for shipment in shipments]


def run_item(
    version: str, task_id: str, attempt: int, payload: bytes, upload: str | None
) -> Returned:
    """Run the attempt shipped in `payload` (executors/shipping.py); never raises for the
    task's own failure. `upload`: the name the pipeline file was uploaded under (Dask's
    upload), None when the workers have it at the same path."""
    worker = _worker_address()
    if version != __version__:  # checked before unpickling anything of the other version
        now = time.time()
        error = (
            f"Dask worker {worker} runs lockgate {__version__} but the coordinator runs "
            f"{version}: install lockgate {version} on the workers (the same image or "
            "virtualenv as the coordinator)"
        )
        return Returned(Outcome(task_id, attempt, FAILED, None, error, now, now, True), b"", worker)
    try:  # outside a try, Dask would log the failure with the task's arguments
        file, item = pickle.loads(payload)
    except Exception as exc:
        now = time.time()
        error = f"Dask worker {worker} could not read the attempt: {type(exc).__name__}: {exc}"
        return Returned(Outcome(task_id, attempt, FAILED, None, error, now, now), b"", worker)
    if item.timeout is not None:  # the coordinator's clock for its timeout starts now
        _tell_started(item)
    log_file = None
    if item.ctx.log_path is not None:  # written here (on the first write), then sent back
        log_file = os.path.join(_tmp_dir(), f"lockgate-{os.getpid()}-{next(_logs)}.log")
        item = replace(item, ctx=replace(item.ctx, log_path=log_file))
    try:
        outcome = _run(item, file, upload, worker)
    except BaseException as exc:  # never leave the coordinator without an answer
        outcome = crashed(item, exc)
    log = b""
    if log_file is not None:
        log = _read_log(log_file)
        with contextlib.suppress(OSError):
            os.unlink(log_file)
    return Returned(outcome, log, worker)


_setup_lock = threading.Lock()
_console: contextlib.ExitStack | None = None


def _set_up() -> None:
    """Once per worker process: route task output to attempts' logs, and send what task
    child processes write to the worker's console through redaction (for good: the worker
    runs attempts in several threads, so it cannot be told apart per attempt)."""
    global _console
    from lockgate.engine.logcapture import child_output, install

    with _setup_lock:
        if _console is None:
            install()
            _console = contextlib.ExitStack()
            _console.enter_context(child_output())


def _run(item: WorkItem, file: str | None, upload: str | None, worker: str) -> Outcome:
    from lockgate.engine.work import run_python

    if _console is None:
        _set_up()
    if item.kind == "shell":
        shell = ShellProcess(item)
        with _running_lock:
            reason = _cancelled.pop(_key(item), None)
            if reason is not None:  # stopped before it started here: it never runs
                shell.killed_reason = reason
            _running[_key(item)] = shell
        try:
            return shell.run()
        finally:
            with _running_lock:
                _running.pop(_key(item), None)
    try:
        fn = _task_function(item, file, upload)
    except Exception as exc:
        now = time.time()
        where = upload or file
        return Outcome(
            item.task_id,
            item.attempt,
            FAILED,
            None,
            f"Dask worker {worker} could not load task {item.task_id!r} from {where}: {exc}",
            now,
            now,
        )
    return run_python(item, fn)


def _task_function(item: WorkItem, file: str | None, upload: str | None):  # type: ignore[no-untyped-def]
    if upload is not None:
        path = Path(_local_directory()) / upload
        if not path.is_file():
            raise LookupError(
                f"the uploaded pipeline file {upload} is not in this worker's folder "
                f"{_local_directory()} (a worker that joined after the upload gets it from "
                "the scheduler's plugin: check the worker's log)"
            )
    elif file is None:
        raise LookupError("the pipeline was not loaded from a file: define it in a file")
    else:
        path = Path(file)
        if not path.is_file():
            raise LookupError(
                f"the pipeline file is not on this worker at {file}: install the same files on "
                "the workers (shared image or volume), or set [dask] upload = true in "
                "lockgate.toml to ship the file with the run"
            )
    pipe_id = item.ctx.pipeline_id
    found = _pipelines(path).get(pipe_id)
    task = found.tasks.get(item.task_id) if found is not None else None
    fn = task.fn if task is not None else None
    if fn is None:
        raise LookupError(
            f"the file defines no pipeline {pipe_id!r} with task {item.task_id!r} at module "
            "level; define the pipeline at module level of its file"
        )
    return fn


_loaded: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}


def _pipelines(path: Path) -> dict[str, Any]:
    """The pipelines of a file by id, loaded again only when the file changed."""
    from lockgate.authoring.discovery import load_file

    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    known = _loaded.get(path)
    if known is None or known[0] != stamp:
        known = (stamp, {p.id: p for p in load_file(path)})
        _loaded[path] = known
    return known[1]


def kill_shell(key: str, reason: str) -> bool:
    """Stop the shell attempt `key` if it runs on this worker (run there by `Client.run`, in
    the worker's event loop: the kill, with its grace period, goes on in a thread)."""
    with _running_lock:
        shell = _running.get(key)
        if shell is None:  # not started (yet): if it comes here, it must not run
            _cancelled[key] = reason
            while len(_cancelled) > 10_000:
                _cancelled.pop(next(iter(_cancelled)))
            return False
    threading.Thread(target=shell.kill, args=(reason,), daemon=True).start()
    return True


def started_topic(run_id: str) -> str:
    """The Dask event topic on which workers say that attempts of a run started."""
    return f"lockgate-started-{run_id}"


def _tell_started(item: WorkItem) -> None:
    with contextlib.suppress(ImportError, ValueError):
        from distributed import get_worker

        get_worker().log_event(started_topic(item.ctx.run_id), [item.task_id, item.attempt])


def attempt_key(run_id: str, task_id: str, attempt: int) -> str:
    """The name of an attempt on the cluster (its Dask key, and its shell's entry here)."""
    return f"lockgate-{task_id}-{attempt}-{run_id}"


def _key(item: WorkItem) -> str:
    return attempt_key(item.ctx.run_id, item.task_id, item.attempt)


def _read_log(path: str) -> bytes:
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            if size <= LOG_LIMIT:
                return fh.read()
            half = LOG_LIMIT // 2
            head = fh.read(half)
            fh.seek(size - half)
            tail = fh.read()
    except OSError:
        return b""
    note = (
        f"\n[lockgate: {size - 2 * half:,} bytes of this attempt's log dropped here: the Dask "
        f"executor sends back at most {LOG_LIMIT >> 20} MiB of log per attempt]\n"
    ).encode()
    return head + note + tail


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "(not a Dask worker)"


def _local_directory() -> str:
    from distributed import get_worker

    return str(get_worker().local_directory)


def _tmp_dir() -> str:
    try:
        return _local_directory()
    except (ImportError, ValueError):
        return tempfile.gettempdir()
