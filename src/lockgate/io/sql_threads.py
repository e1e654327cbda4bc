"""Overlapping database I/O with the caller's work: a reader fetches the next batches while the
caller writes the last one (to Parquet, say), and a writer inserts a batch while the caller
reads the next one. The drivers release the GIL while they work, so two cores are used.

At most `depth` batches wait between the two threads: memory stays flat. The database handles
are only ever used by one thread at a time (the worker while it runs, the caller after
`close()`/`finish()` has joined it).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

DEPTH = 2
_DONE = object()
_POLL_S = 0.05


class Prefetch:
    """Iterates `source` in a worker thread, up to `depth` items ahead of the caller."""

    def __init__(self, source: Iterator[Any], depth: int = DEPTH) -> None:
        self._source = source
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lockgate-sql-read", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the caller, raised there
            self._put(_Failure(exc))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        """Stop the worker (it ends after the item it is fetching) and wait for it."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=_POLL_S)
        self._thread.join()


class Background:
    """Calls `fn(item)` for each item `put`, in a worker thread, in order; the first error is
    raised by the next `put` or by `finish`."""

    def __init__(self, fn: Callable[[Any], None], depth: int = DEPTH) -> None:
        self._fn = fn
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lockgate-sql-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is not None or self._stop.is_set():
                continue  # drain: the write failed or was abandoned
            try:
                self._fn(item)
            except BaseException as exc:
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: Any) -> None:
        self._raise()
        while True:
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                self._raise()
                if not self._thread.is_alive():
                    raise RuntimeError("the SQL writer thread ended") from None

    def finish(self) -> None:
        """Wait until every item is done; raise the first error."""
        self._queue.put(_DONE)
        self._thread.join()
        self._raise()

    def stop(self) -> None:
        """Skip what is still queued and wait for the item in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
