"""Per-attempt log capture: stdout, stderr and `logging` of a task go to its own log file.

Streams are process-wide, so they are replaced once by routers that send each write to the
log of the task running in the current thread (or to the original stream elsewhere). Files
are opened on the first write, so a task that prints nothing costs no file.

Everything is redacted on its way to the file (secrets/redaction.py): text is held until a
line is complete (a secret written in two pieces is still whole when it is checked), then
secret values read in this process and text shaped like a secret become `***`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

_local = threading.local()
_install_lock = threading.Lock()
_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s - %(message)s")
"""The logger name is followed by " - ", not ":" (a task id such as `use_secret` followed by
": text" reads as a `key: value` pair to the secret redaction)."""
MAX_PENDING = 1 << 16
"""Characters of an unfinished line held back; a longer line is redacted and written as is."""
BATCH_CHARS = 1 << 14
BATCH_SECONDS = 0.25


class _LineSink:
    """Holds text until its lines are complete, then writes them redacted (`_out`), a batch
    of lines at a time (redaction costs per call): when `BATCH_CHARS` are waiting, when the
    oldest waited `BATCH_SECONDS`, on `flush` (also every `BATCH_SECONDS` by the flusher
    thread, for the live tail of a quiet task) and on `close`."""

    __slots__ = ("_pending", "_since", "_lock", "__weakref__")

    def __init__(self) -> None:
        self._pending = ""
        self._since = 0.0
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if not text:
            return 0
        with self._lock:
            if not self._pending:
                self._since = time.monotonic()
                _flusher.watch(self)
            self._pending += text
            if len(self._pending) >= BATCH_CHARS or time.monotonic() - self._since >= BATCH_SECONDS:
                self._emit_lines()
        return len(text)

    def _emit_lines(self) -> None:
        """Write the complete lines held (all of it past `MAX_PENDING`); the lock is held."""
        pending = self._pending
        cut = pending.rfind("\n") + 1
        if cut == 0 and len(pending) < MAX_PENDING:
            return
        if cut == 0:
            cut = len(pending)
        self._pending = pending[cut:]
        self._since = time.monotonic()
        self._out(_redact(pending[:cut]))

    def _out(self, text: str) -> None:
        raise TypeError("a sink writes somewhere")  # pragma: no cover - subclasses do

    def flush(self) -> None:
        """Write out complete lines (an unfinished one waits for its end or `close`)."""
        with self._lock:
            if self._pending:
                self._emit_lines()

    def _drain(self) -> None:
        if self._pending:
            self._out(_redact(self._pending))
            self._pending = ""


class _Flusher:
    """One thread per process that writes out the lines sinks have held for a while."""

    def __init__(self) -> None:
        self._sinks: weakref.WeakSet[_LineSink] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, sink: _LineSink) -> None:
        with self._lock:
            self._sinks.add(sink)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, daemon=True, name="lockgate-log-flusher"
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(BATCH_SECONDS)
            with self._lock:
                sinks = list(self._sinks)
                self._sinks.clear()
            for sink in sinks:
                with contextlib.suppress(Exception):
                    sink.flush()
                    if sink._pending:  # an unfinished line: look again later
                        self.watch(sink)


_flusher = _Flusher()


def _redact(text: str) -> str:
    from lockgate.secrets.redaction import redact

    return redact(text)


class LogSink(_LineSink):
    """An append-only, redacted text log file, created on first write. Thread-safe (a task's
    threads and a shell task's output pump may write at once)."""

    __slots__ = ("path", "_fh")

    def __init__(self, path: str | None) -> None:
        super().__init__()
        self.path = path
        self._fh: IO[str] | None = None

    def write(self, text: str) -> int:
        return len(text) if self.path is None else super().write(text)

    def _out(self, text: str) -> None:
        if self._fh is None:
            assert self.path is not None
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._fh.write(text)

    def flush(self) -> None:
        """Write out complete lines (an unfinished one waits for its end or `close`)."""
        with self._lock:
            if self._pending:
                self._emit_lines()
            if self._fh is not None:
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._drain()
            if self._fh is not None:
                self._fh.close()
                self._fh = None


class _FdSink(_LineSink):
    """Redacted lines to a file descriptor (the console a task's child process wrote to)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def _out(self, text: str) -> None:
        data = text.encode("utf-8", "replace")
        with contextlib.suppress(OSError):
            while data:
                data = data[os.write(self.fd, data) :]

    def close(self) -> None:
        with self._lock:
            self._drain()


class _StreamRouter(io.TextIOBase):
    def __init__(self, original: Any) -> None:
        self.original = original

    def write(self, text: str) -> int:
        sink = getattr(_local, "sink", None)
        if sink is not None:
            return int(sink.write(text))
        return int(self.original.write(text))

    def flush(self) -> None:
        sink = getattr(_local, "sink", None)
        if sink is not None:
            sink.flush()
        else:
            self.original.flush()

    def isatty(self) -> bool:
        return getattr(_local, "sink", None) is None and bool(self.original.isatty())

    def fileno(self) -> int:
        return int(self.original.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.original, "encoding", "utf-8"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _RoutingHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sink = getattr(_local, "sink", None)
        if sink is not None:
            try:
                sink.write(_FORMAT.format(record) + "\n")
            except Exception:
                self.handleError(record)


_handler = _RoutingHandler()


def install() -> None:
    """Route stdout, stderr and root logging through the per-thread sinks (idempotent)."""
    with _install_lock:
        if not isinstance(sys.stdout, _StreamRouter):
            sys.stdout = _StreamRouter(sys.stdout)
        if not isinstance(sys.stderr, _StreamRouter):
            sys.stderr = _StreamRouter(sys.stderr)
        root = logging.getLogger()
        if _handler not in root.handlers:
            root.addHandler(_handler)


@contextmanager
def capture(path: str | None) -> Iterator[LogSink]:
    """Send this thread's output to the log file at `path` while the block runs."""
    sink = LogSink(path)
    previous = getattr(_local, "sink", None)
    _local.sink = sink
    try:
        yield sink
    finally:
        _local.sink = previous
        sink.close()


# -- what child processes write to the console ----------------------------------------------

_fd_lock = threading.Lock()
_fd_users = 0
_fd_capture: _FdCapture | None = None


class _FdCapture:
    """File descriptors 1 and 2 of this process point at pipes read by pump threads: what a
    task's child process (or C code) writes there reaches the console redacted. Which task
    wrote it cannot be told when several run in threads, so it goes to no task's log (the
    processes executor's workers run one task each and send it to that task's log). Python's
    own streams keep writing to the console directly (a duplicate of the original
    descriptor), so they stay terminals for colours and progress."""

    def __init__(self) -> None:
        self.saved: dict[int, int] = {}
        self.pumps: list[threading.Thread] = []
        self.streams: list[tuple[_StreamRouter, Any]] = []
        try:
            self._start()
        except OSError:
            self.close()
            raise

    def _start(self) -> None:
        for fd in (1, 2):
            _flush_std()
            saved = os.dup(fd)
            read_end, write_end = os.pipe()
            os.dup2(write_end, fd)
            os.close(write_end)
            self.saved[fd] = saved
            pump = threading.Thread(
                target=self._pump, args=(read_end, saved), daemon=True, name="lockgate-fd-pump"
            )
            pump.start()
            self.pumps.append(pump)
        for router in (sys.stdout, sys.stderr):
            number = _fileno(router.original) if isinstance(router, _StreamRouter) else None
            if isinstance(router, _StreamRouter) and number is not None and number in self.saved:
                direct = io.TextIOWrapper(
                    io.FileIO(self.saved[number], "w", closefd=False),
                    encoding=getattr(router.original, "encoding", None) or "utf-8",
                    errors="replace",
                    line_buffering=True,
                )
                self.streams.append((router, router.original))
                router.original = direct

    def _pump(self, read_end: int, saved: int) -> None:
        """Until every write end is closed (a child process may outlive the capture): then
        it closes the console's descriptor it was given."""
        import codecs

        console = _FdSink(saved)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            with os.fdopen(read_end, "rb") as stream:
                while chunk := stream.read1(65536):
                    console.write(decoder.decode(chunk))
            console.write(decoder.decode(b"", final=True))
            console.close()
        finally:
            os.close(saved)

    def close(self) -> None:
        _flush_std()
        for router, original in self.streams:
            with contextlib.suppress(Exception):
                router.original.flush()
            router.original = original
        for fd, saved in self.saved.items():
            os.dup2(saved, fd)  # the pipe's last write end closes: the pump sees its end
        for pump in self.pumps:
            pump.join(2.0)  # a child left running may hold the pipe: do not wait on it


def _fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()


@contextmanager
def child_output() -> Iterator[None]:
    """While the block runs (a run, in the process that runs its tasks in threads), the
    console output of child processes goes through redaction (`_FdCapture`). Nested and
    concurrent runs share one capture."""
    global _fd_users, _fd_capture
    with _fd_lock:
        if _fd_users == 0:
            try:
                _fd_capture = _FdCapture()
            except OSError:  # no descriptors 1/2 to redirect (a daemon): nothing to capture
                _fd_capture = None
        _fd_users += 1
    try:
        yield
    finally:
        with _fd_lock:
            _fd_users -= 1
            if _fd_users == 0 and _fd_capture is not None:
                _fd_capture.close()
                _fd_capture = None
