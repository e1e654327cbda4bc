"""The event bus: the engine publishes `Event`s (lockgate.model.events), subscribers consume."""

from __future__ import annotations

import threading
from collections.abc import Callable

from lockgate.model.events import (  # re-exported: the engine's vocabulary
    CALLBACK_FAILED,
    DATASET_UPDATED,
    FACTS,
    RUN_FINISHED,
    RUN_REQUEUED,
    RUN_STARTED,
    TASK_CANCELLED,
    TASK_FAILED,
    TASK_LOST,
    TASK_QUEUED,
    TASK_RETRYING,
    TASK_SKIPPED,
    TASK_STARTED,
    TASK_SUCCEEDED,
    TASK_UPSTREAM_FAILED,
    Event,
)

__all__ = [
    "CALLBACK_FAILED",
    "DATASET_UPDATED",
    "FACTS",
    "RUN_FINISHED",
    "RUN_REQUEUED",
    "RUN_STARTED",
    "TASK_CANCELLED",
    "TASK_FAILED",
    "TASK_LOST",
    "TASK_QUEUED",
    "TASK_RETRYING",
    "TASK_SKIPPED",
    "TASK_STARTED",
    "TASK_SUCCEEDED",
    "TASK_UPSTREAM_FAILED",
    "Event",
    "EventBus",
    "Subscriber",
]

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
