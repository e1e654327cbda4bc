"""Per-attempt log capture: stdout, stderr and `logging` of a task go to its own log file.

Streams are process-wide, so they are replaced once by routers that send each write to the
log of the task running in the current thread (or to the original stream elsewhere). Files
are opened on the first write, so a task that prints nothing costs no file.

Everything is redacted on its way to the file (secrets/redaction.py): text is held until a
line is complete (a secret written in two pieces is still whole when it is checked), then
secret values read in this process and text shaped like a secret become `***`.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

_local = threading.local()
_install_lock = threading.Lock()
_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
MAX_PENDING = 1 << 16
"""Characters of an unfinished line held back; a longer line is redacted and written as is."""


class LogSink:
    """An append-only, redacted text log file, created on first write. Thread-safe (a task's
    threads and a shell task's output pump may write at once)."""

    __slots__ = ("path", "_fh", "_pending", "_lock")

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if not text or self.path is None:
            return len(text)
        with self._lock:
            pending = self._pending + text
            cut = pending.rfind("\n") + 1
            if cut == 0 and len(pending) < MAX_PENDING:
                self._pending = pending
                return len(text)
            if cut == 0:
                cut = len(pending)
            self._pending = pending[cut:]
            self._emit(pending[:cut])
        return len(text)

    def _emit(self, text: str) -> None:
        from lockgate.secrets.redaction import redact

        if self._fh is None:
            assert self.path is not None
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._fh.write(redact(text))

    def flush(self) -> None:
        """Write out complete lines (an unfinished one waits for its end or `close`)."""
        with self._lock:
            if self._fh is not None:
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._pending:
                self._emit(self._pending)
                self._pending = ""
            if self._fh is not None:
                self._fh.close()
                self._fh = None


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
