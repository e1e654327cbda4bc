"""The event stream: every state change of a run is one `Event` (DESIGN.md decision 2)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RUN_STARTED = "RunStarted"
RUN_FINISHED = "RunFinished"
TASK_QUEUED = "TaskQueued"
TASK_STARTED = "TaskStarted"
TASK_SUCCEEDED = "TaskSucceeded"
TASK_FAILED = "TaskFailed"
TASK_RETRYING = "TaskRetrying"
TASK_SKIPPED = "TaskSkipped"
TASK_UPSTREAM_FAILED = "TaskUpstreamFailed"
TASK_CANCELLED = "TaskCancelled"
TASK_LOST = "TaskLost"
CALLBACK_FAILED = "CallbackFailed"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened. `state` is the new state of the run or task it names.

    `data` carries details: error text, retry delay, log path, the JSON text of a result
    (`result_json`), the executor's timings (`started_at`).
    """

    kind: str
    run_id: str
    ts: float
    task_id: str | None = None
    attempt: int = 0
    state: str | None = None
    data: dict[str, Any] | None = None


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out of events to subscribers (the store, the console, plugins).

    Subscribers run in the engine's thread and must be quick; slow work belongs in a
    subscriber's own thread (as the store's group-commit writer does). A subscriber that
    raises is reported once on stderr and then ignored, so it cannot break a run.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers = [*self._subscribers, fn]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not fn]

        return unsubscribe

    def publish(self, event: Event) -> None:
        for fn in self._subscribers:
            try:
                fn(event)
            except Exception as exc:  # a plugin must never break the run
                import sys

                print(
                    f"lockgate: event subscriber {getattr(fn, '__qualname__', fn)!r} failed and was "
                    f"removed: {type(exc).__name__}: {exc}",
                    file=sys.stderr,
                )
                with self._lock:
                    self._subscribers = [s for s in self._subscribers if s is not fn]
