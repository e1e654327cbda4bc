"""Group commit: events are buffered and written in small batched transactions.

The engine publishes events at memory speed; a writer thread wakes on the first buffered
event, waits a few milliseconds for more, and writes them all in one transaction (DESIGN.md
decision 3). `flush()` blocks until everything published before it is committed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from lockgate.engine.events import Event
from lockgate.errors import StoreError

HEARTBEAT_S = 10.0


class EventWriter:
    """A bus subscriber that persists events with `write(batch)` in a background thread."""

    def __init__(
        self,
        write: Callable[[list[Event]], None],
        heartbeat: Callable[[], None] | None = None,
        interval: float = 0.004,
        max_batch: int = 5000,
    ) -> None:
        self._write = write
        self._heartbeat = heartbeat
        self._interval = interval
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._buf: list[Event] = []
        self._published = 0
        self._written = 0
        self._urgent = False
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="lockgate-writer", daemon=True)
        self._thread.start()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self._buf.append(event)
            self._published += 1
            if len(self._buf) == 1 or len(self._buf) >= self._max_batch:
                self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            beat = False
            with self._cond:
                if not self._buf and not self._closing:
                    beat = not self._cond.wait(timeout=HEARTBEAT_S)
                if not self._buf:
                    if self._closing:
                        return
                    if beat and self._heartbeat:
                        self._beat()  # an idle run still shows it is alive
                    continue
                # let a group of events gather, unless someone waits for them (flush)
                deadline = time.monotonic() + self._interval
                while not (self._urgent or self._closing or len(self._buf) >= self._max_batch):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(timeout=left)
                batch, self._buf = self._buf, []
                self._urgent = False
            self._persist(batch)
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()

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

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every event published so far is committed; raise if writing failed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._published
            self._urgent = True
            self._cond.notify_all()
            while self._written < target and self._error is None:
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
