"""Per-attempt log capture: stdout, stderr and `logging` of a task go to its own log file.

Streams are process-wide, so they are replaced once by routers that send each write to the
log of the task running in the current thread (or to the original stream elsewhere). Files
are opened on the first write, so a task that prints nothing costs no file.

Everything is redacted on its way to the file (secrets/redaction.py). Each stream (stdout,
stderr, logging) has its own line buffer over the attempt's file, so a line one stream left
unfinished is never spliced with another's; text is held until its line is complete (a secret
written in two pieces is still whole when it is checked) and written a batch of lines at a
time. A line longer than `MAX_PENDING` is written in pieces cut where no secret can be split.

What child processes write to descriptors 1 and 2 goes to spool files, never pipes: a writer
never waits for a reader (C code writing a lot while holding the GIL would otherwise wait
forever for a pump thread that needs the GIL).
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import sys
import tempfile
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
"""Characters of an unfinished line held back before a piece of it is written."""
OVERLAP = 1 << 12
"""Characters of an over-long line always kept back (at least the longest registered form),
so a secret whose end has not arrived yet is never written in part."""
BATCH_CHARS = 1 << 14
BATCH_SECONDS = 0.25
SPOOL_POLL_S = 0.05
ROTATE_BYTES = 64 << 20
"""A console spool this large is replaced by a new one (a long-running scheduler's)."""


def _redact(text: str) -> str:
    from lockgate.secrets.redaction import redact

    return redact(text)


def _safe_cut(text: str, at: int) -> int:
    from lockgate.secrets.redaction import REDACTOR

    return REDACTOR.safe_cut(text, at)


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
        """Write the complete lines held; of an over-long unfinished line, all but its last
        `OVERLAP` characters, cut outside any secret. The lock is held."""
        pending = self._pending
        cut = pending.rfind("\n") + 1
        if cut == 0:
            if len(pending) < MAX_PENDING:
                return
            from lockgate.secrets.redaction import REDACTOR

            cut = _safe_cut(pending, len(pending) - max(OVERLAP, REDACTOR.longest))
            if cut <= 0:
                return
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


class _LogFile:
    """An append-only text file opened on the first write, shared by a log's streams."""

    __slots__ = ("path", "_fh", "_lock")

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self._lock = threading.Lock()

    def append(self, text: str) -> None:
        with self._lock:
            if self._fh is None:
                assert self.path is not None
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
            self._fh.write(text)

    def flush(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


class LogSink(_LineSink):
    """One stream into an append-only, redacted log file. `stream()` gives another stream
    into the same file with a line buffer of its own (stdout and stderr of one attempt)."""

    __slots__ = ("path", "file", "_streams")

    def __init__(self, path: str | None, file: _LogFile | None = None) -> None:
        super().__init__()
        self.path = path
        self.file = file if file is not None else _LogFile(path)
        self._streams: dict[str, LogSink] = {}

    def stream(self, name: str | None = None) -> LogSink:
        """Another stream into the same file; by `name`, the same one each time (made on
        first use: most attempts write to one stream at most)."""
        if name is not None and name in self._streams:
            return self._streams[name]
        other = LogSink(self.path, self.file)
        self._streams[name or f"#{len(self._streams)}"] = other
        return other

    def write(self, text: str) -> int:
        return len(text) if self.path is None else super().write(text)

    def _out(self, text: str) -> None:
        self.file.append(text)

    def flush(self) -> None:
        super().flush()
        self.file.flush()

    def close(self) -> None:
        """Write out what every stream holds and close the file (a later write opens it
        again: a child process may outlive its attempt)."""
        for stream in (*self._streams.values(), self):
            with stream._lock:
                stream._drain()
        self.file.close()


class _StreamRouter(io.TextIOBase):
    """sys.stdout or sys.stderr: each write goes to the running attempt's stream of this
    thread; elsewhere to the original stream, redacted while child output is captured."""

    def __init__(self, original: Any, name: str) -> None:
        self.original = original
        self.name = name
        self.spool_fd: int | None = None
        """While `child_output` is active: the descriptor (1 or 2) that leads to its spool."""

    def _sink(self) -> LogSink | None:
        sink: LogSink | None = getattr(_local, "sink", None)
        return sink if sink is None or self.name == "sink" else sink.stream(self.name)

    def write(self, text: str) -> int:
        sink = self._sink()
        if sink is not None:
            return int(sink.write(text))
        if self.spool_fd is not None:  # a thread of a task, or lockgate itself: redacted
            self._to_original("write", _redact(text))
            return len(text)
        # outside runs (e.g. a notifier delivering after its run): values read here, at least
        from lockgate.secrets.redaction import REDACTOR

        self._to_original("write", REDACTOR.known(text))
        return len(text)

    def _to_original(self, method: str, *args: Any) -> None:
        """Call the original stream; if the console capture ended meanwhile (another thread
        closed the descriptor this stream wrote to), once more on the stream restored."""
        original = self.original
        try:
            getattr(original, method)(*args)
        except OSError as exc:
            if exc.errno != errno.EBADF or self.original is original:
                raise
            getattr(self.original, method)(*args)

    def flush(self) -> None:
        sink = self._sink()
        if sink is not None:
            sink.flush()
        else:
            self._to_original("flush")

    def isatty(self) -> bool:
        return self._sink() is None and bool(self.original.isatty())

    def fileno(self) -> int:
        # `subprocess.run(..., stdout=sys.stdout)` hands this descriptor to the child
        return self.spool_fd if self.spool_fd is not None else int(self.original.fileno())

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
                sink.stream("log").write(_FORMAT.format(record) + "\n")
            except Exception:
                self.handleError(record)


_handler = _RoutingHandler()


def install() -> None:
    """Route stdout, stderr and root logging through the per-thread sinks (idempotent)."""
    with _install_lock:
        if not isinstance(sys.stdout, _StreamRouter):
            sys.stdout = _StreamRouter(sys.stdout, "sink")
        if not isinstance(sys.stderr, _StreamRouter):
            sys.stderr = _StreamRouter(sys.stderr, "err")
        root = logging.getLogger()
        if _handler not in root.handlers:
            root.addHandler(_handler)


@contextmanager
def capture(path: str | None) -> Iterator[LogSink]:
    """Send this thread's output to the log file at `path` while the block runs: the sink
    yielded takes stdout (and what the caller writes), with streams of their own for stderr
    and logging."""
    sink = LogSink(path)
    previous = getattr(_local, "sink", None)
    _local.sink = sink
    try:
        yield sink
    finally:
        _local.sink = previous
        sink.close()


# -- what child processes write to descriptors 1 and 2 ---------------------------------------


def _spool_file() -> IO[bytes]:
    """An unlinked temporary file in append mode (every writer's write lands at its end)."""
    import fcntl

    spool = tempfile.TemporaryFile(prefix="lockgate-out-")  # noqa: SIM115
    flags = fcntl.fcntl(spool.fileno(), fcntl.F_GETFL)
    fcntl.fcntl(spool.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
    return spool


class _Spool:
    """Descriptor `fd` of this process points at an unlinked temporary file (so a writer never
    blocks); `read_new()` returns what was appended since the last call. `restore()` points
    `fd` back where it was."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved = os.dup(fd)
        import codecs

        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.reader, self.offset = _spool_file(), 0
        os.dup2(self.reader.fileno(), fd)

    def rotate(self) -> str:
        """Start a new spool file once this one is large (a child process still holding the
        old one writes where nobody reads); what was read last."""
        text = self.read_new()
        fresh = _spool_file()
        os.dup2(fresh.fileno(), self.fd)
        self.reader.close()
        self.reader, self.offset = fresh, 0
        return text

    def read_new(self) -> str:
        data = os.pread(self.reader.fileno(), 1 << 20, self.offset)
        chunks = []
        while data:
            self.offset += len(data)
            chunks.append(data)
            data = os.pread(self.reader.fileno(), 1 << 20, self.offset)
        return self.decoder.decode(b"".join(chunks)) if chunks else ""

    def restore(self) -> str:
        """Point `fd` back at what it was; what was appended since the last read (and the
        decoder's rest)."""
        os.dup2(self.saved, self.fd)
        rest = self.read_new() + self.decoder.decode(b"", final=True)
        os.close(self.saved)
        self.reader.close()
        return rest


@contextmanager
def capture_fds(path: str | None) -> Iterator[None]:
    """In a process that runs one attempt at a time (a worker of the processes executor):
    what is written to descriptors 1 and 2 while the block runs (child processes, C code)
    goes to the attempt's log, redacted, when the block ends."""
    if path is None:
        yield
        return
    _flush_std()
    spools = [_Spool(1), _Spool(2)]
    try:
        yield
    finally:
        _flush_std()
        sink = LogSink(path)
        for spool, stream in zip(spools, (sink, sink.stream()), strict=True):
            stream.write(spool.restore())
        sink.close()


class _ConsoleCapture:
    """While runs whose tasks are threads of this process are active, descriptors 1 and 2
    point at spools that a thread copies to the console every `SPOOL_POLL_S`, redacted. Which
    task a child process belongs to cannot be told when several run in threads, so it goes to
    no task's log. Python's own streams keep writing to the console directly (a duplicate of
    the original descriptor, redacted by the router), so terminals stay terminals."""

    def __init__(self) -> None:
        _flush_std()
        self.spools: list[_Spool] = []
        self.consoles: list[_ConsoleSink] = []
        self.routers: list[tuple[_StreamRouter, Any]] = []
        try:
            for fd in (1, 2):
                spool = _Spool(fd)
                self.spools.append(spool)
                self.consoles.append(_ConsoleSink(spool.saved))
        except OSError:
            self._restore()
            raise
        for router in (sys.stdout, sys.stderr):
            if not isinstance(router, _StreamRouter):
                continue
            number = _fileno(router.original)
            mine = next((s for s in self.spools if s.fd == number), None)
            if mine is None:
                continue
            direct = io.TextIOWrapper(
                io.FileIO(mine.saved, "w", closefd=False),
                encoding=getattr(router.original, "encoding", None) or "utf-8",
                errors="replace",
                line_buffering=True,
            )
            self.routers.append((router, router.original))
            router.original, router.spool_fd = direct, mine.fd
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._copy, daemon=True, name="lockgate-spool")
        self._thread.start()

    def _copy(self) -> None:
        while not self._stop.wait(SPOOL_POLL_S):
            self._pass()

    def _pass(self) -> None:
        for spool, console in zip(self.spools, self.consoles, strict=False):
            with contextlib.suppress(OSError, ValueError):
                text = spool.rotate() if spool.offset >= ROTATE_BYTES else spool.read_new()
                if text:
                    console.write(text)
                    console.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._pass()
        for router, original in self.routers:
            with contextlib.suppress(Exception):
                router.original.flush()
            router.original, router.spool_fd = original, None
        self._restore()

    def _restore(self) -> None:
        _flush_std()
        for spool, console in zip(self.spools, self.consoles, strict=False):
            rest = spool.restore()
            if rest:
                console.write(rest)
            console.close()
        self.spools = []


class _ConsoleSink(_LineSink):
    """Redacted lines to a file descriptor (the console)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = os.dup(fd)

    def _out(self, text: str) -> None:
        data = text.encode("utf-8", "replace")
        with contextlib.suppress(OSError):
            while data:
                data = data[os.write(self.fd, data) :]

    def close(self) -> None:
        with self._lock:
            self._drain()
            with contextlib.suppress(OSError):
                os.close(self.fd)


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


_fd_lock = threading.Lock()
_fd_users = 0
_fd_capture: _ConsoleCapture | None = None


@contextmanager
def child_output() -> Iterator[None]:
    """While the block runs (a run, in the process that runs its tasks in threads), what
    child processes write to the console, and what threads without an attempt print, reach
    it redacted (`_ConsoleCapture`). Nested and concurrent runs share one capture."""
    global _fd_users, _fd_capture
    with _fd_lock:
        if _fd_users == 0:
            try:
                _fd_capture = _ConsoleCapture()
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
