"""Per-attempt log capture: stdout, stderr and `logging` of a task go to its own log file.

Streams are process-wide, so they are replaced once by routers that send each write to the
log of the task running in the current thread (or to the original stream elsewhere). Files
are opened on the first write, so a task that prints nothing costs no file.
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


class LogSink:
    """An append-only text log file, created on first write."""

    __slots__ = ("path", "_fh")

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def write(self, text: str) -> int:
        if not text or self.path is None:
            return len(text)
        if self._fh is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._fh.write(text)
        return len(text)

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
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
