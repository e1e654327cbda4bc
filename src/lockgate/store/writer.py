"""Group commit: events are buffered and written in small batched transactions.

The engine publishes events at memory speed; a writer thread wakes on the first buffered
event, waits a few milliseconds for more, and writes them all in one transaction (DESIGN.md
decision 3). `flush()` blocks until everything published before it is committed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable

from lockgate.errors import StoreError
from lockgate.model.events import Event

HEARTBEAT_S = 10.0


class EventWriter:
    """A bus subscriber that persists events with `write(batch)` in a background thread.

    Publishing is a deque append; the writer is woken only when it is idle, so a busy run
    costs the engine thread no lock per event.
    """

    def __init__(
        self,
        write: Callable[[list[Event]], None],
        heartbeat: Callable[[], None] | None = None,
        interval: float = 0.004,
    ) -> None:
        self._write = write
        self._heartbeat = heartbeat
        self._interval = interval
        self._cond = threading.Condition()
        self._buf: deque[Event] = deque()
        self._idle = False
        self._inflight = False
        self._urgent = False
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="lockgate-writer", daemon=True)
        self._thread.start()

    def __call__(self, event: Event) -> None:
        self._buf.append(event)
        if self._idle:
            with self._cond:
                self._cond.notify_all()

    def _loop(self) -> None:
        buf = self._buf
        cond = self._cond
        last_beat = time.monotonic()
        while True:
            if self._heartbeat and time.monotonic() - last_beat >= HEARTBEAT_S:
                self._beat()  # the run is alive, busy or idle
                last_beat = time.monotonic()
            with cond:
                self._idle = True
                beat = False
                while not buf and not self._closing and not beat:
                    beat = not cond.wait(timeout=HEARTBEAT_S)
                self._idle = False
                if not buf and self._closing:
                    return
                if buf:
                    # let a group of events gather, unless someone waits for them (flush)
                    deadline = time.monotonic() + self._interval
                    while not (self._urgent or self._closing):
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        cond.wait(timeout=left)
                    self._urgent = False
                    self._inflight = True
            if not self._inflight:
                continue  # woken to beat (handled at the top of the loop)
            batch = [buf.popleft() for _ in range(len(buf))]
            self._persist(batch)
            with cond:
                self._inflight = False
                cond.notify_all()

    def _beat(self) -> None:
        assert self._heartbeat is not None
        with contextlib.suppress(Exception):  # a missed heartbeat is retried at the next one
            self._heartbeat()

    def _persist(self, batch: list[Event]) -> None:
        # Retry a failing write a few times (a database restarting, a lock held too long);
        # once a batch was lost for good, later ones get a single try, so that closing a
        # writer whose database is gone does not wait seconds per remaining batch.
        delays = (0.05, 0.2, 1.0, 3.0) if self._error is None else ()
        for delay in (*delays, None):
            try:
                self._write(batch)
                return
            except Exception as exc:
                if delay is None:
                    self._error = exc
                    return
                time.sleep(delay)

    @property
    def failed(self) -> bool:
        """A batch could not be written: later flushes raise (use a new writer)."""
        return self._error is not None

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every event published so far is committed; raise if writing failed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._urgent = True
            self._cond.notify_all()
            while (self._buf or self._inflight) and self._error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreError("timed out waiting for the metadata database to commit events")
                self._cond.wait(timeout=left)
        if self._error is not None:
            err = self._error
            raise StoreError(
                f"could not write run state to the metadata database: {type(err).__name__}: {err}"
            )

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join(timeout=10)
