"""The notifier of one run: a bus subscriber that only queues the events its rules need (in the
engine's thread), and a thread of its own that turns them into notices (`watch.py`), renders a
message per rule and channel, records each in the store, and delivers them with retries.

One thread per notifier, not one per process: a channel that is down (a 10 s timeout, retries
with backoff) then only delays the notifications of its own run, `close()` is a bounded
`join`, and the thread lives no longer than the run (it starts with the first event its rules
need). SLA deadlines are kept in the same thread: it sleeps until the next delivery or deadline
is due, or an event arrives; a run that ends cancels its deadlines.

Never raises into the run; a failure is recorded (state `failed`, one-line redacted error) and,
outside tests, reported on stderr in one line.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lockgate.errors import describe
from lockgate.model import events as ev
from lockgate.model import facts
from lockgate.notify.config import Channel, NotifyConfig, Rule
from lockgate.notify.messages import Message, Notice, render
from lockgate.notify.sending import Sender, SendError
from lockgate.notify.watch import ATTEMPT_ENDS, RUN_ENDS, TASK_ENDS, Watch

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.model.events import Event
    from lockgate.model.pipeline import Pipeline
    from lockgate.store.store import Store

MAX_BACKOFF_S = 30.0
"""The longest wait between two attempts (before jitter; Retry-After has its own cap)."""


@dataclass
class Delivery:
    """One message to one channel, until it is sent or given up."""

    message: Message
    channel: Channel
    delivery_id: str
    row_id: int | None = None
    attempts: int = 0
    due: float = 0.0
    """When to try next (monotonic seconds)."""
    last_error: str | None = None
    state: str = "pending"


def backoff(base: float, attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): `base * 2^(attempt-1)`
    capped at `MAX_BACKOFF_S`, with jitter (between half and all of it); a server's
    Retry-After (already capped) when it gave one."""
    if retry_after is not None:
        return retry_after
    delay = min(MAX_BACKOFF_S, base * 2.0 ** (attempt - 1))
    return delay * (0.5 + random.random() / 2)


def warn(text: str) -> None:
    """One line on stderr, outside tests (LOCKGATE_TESTING)."""
    if os.environ.get("LOCKGATE_TESTING"):
        return
    from lockgate.secrets.redaction import redact

    with contextlib.suppress(OSError, ValueError):  # a closed stderr must not fail anything
        sys.stderr.write(f"lockgate: notify: {redact(text)}\n")


def needed_kinds(wanted: frozenset[str], has_deadlines: bool) -> frozenset[str]:
    """The engine events a notifier must see for the notices in `wanted`."""
    kinds: set[str] = set()
    if {"run_failed", "run_succeeded"} & wanted:
        kinds.add(ev.RUN_FINISHED)
    if "run_failed" in wanted:
        kinds.add(ev.TASK_FAILED)  # the first failed task and its error
    if "task_retrying" in wanted:
        kinds.add(ev.TASK_RETRYING)
    if "policy_violation" in wanted:
        kinds.add(facts.POLICY_VIOLATION)
    if "task_alert" in wanted:
        kinds.add(facts.TASK_ALERT)
    if "quality_failed" in wanted:
        kinds |= {facts.QUALITY_CHECKED, *ATTEMPT_ENDS, *RUN_ENDS}
    if has_deadlines:
        kinds |= {ev.RUN_STARTED, ev.TASK_STARTED, *TASK_ENDS, *RUN_ENDS}
    return frozenset(kinds)


class Recorder:
    """Records deliveries in the store (when there is one); a store that fails is reported
    once and deliveries go on without it."""

    def __init__(self, store: Store | None) -> None:
        self.store = store
        self._failed = False

    def new(self, made: list[Delivery]) -> None:
        if self.store is None:
            return
        from lockgate.store import notifications

        items = [
            notifications.NewNotification(
                d.message.notice.event,
                d.channel.name,
                d.channel.kind,
                d.message.notice.pipeline_id,
                d.message.notice.run_id,
                d.message.notice.task_id,
                d.message.subject,
            )
            for d in made
        ]
        try:
            ids = notifications.add(self.store, items)
        except Exception as exc:  # the store is away: deliver anyway
            self._failure(exc)
            return
        for delivery, row_id in zip(made, ids, strict=True):
            delivery.row_id = row_id

    def outcome(self, delivery: Delivery) -> None:
        if self.store is None or delivery.row_id is None:
            return
        from lockgate.store import notifications

        try:
            notifications.update(
                self.store, delivery.row_id, delivery.state, delivery.attempts, delivery.last_error
            )
        except Exception as exc:
            self._failure(exc)

    def _failure(self, exc: BaseException) -> None:
        if not self._failed:
            self._failed = True
            warn(f"cannot record notifications in the metadata database: {describe(exc)}")


class Notifier:
    """The notifications of one run of `pipeline` (subscribe it to the run's bus, `close()` it
    when the run ends)."""

    def __init__(
        self,
        config: NotifyConfig,
        rules: tuple[Rule, ...],
        project: Project,
        pipeline: Pipeline,
        store: Store | None,
    ) -> None:
        self.config = config
        self.rules = rules
        self.project = project
        self.wanted = frozenset(e for r in rules for e in r.on)
        run_deadline, task_deadlines = config.deadlines(pipeline)
        self.watch = Watch(pipeline.id, self.wanted, config.run_url, run_deadline, task_deadlines)
        has_deadlines = bool(self.watch.run_deadline or self.watch.task_deadlines)
        self.kinds = needed_kinds(self.wanted, has_deadlines)
        self.deliveries: list[Delivery] = []
        """Every delivery made, in order (for tests and diagnostics)."""
        self._recorder = Recorder(store)
        self._always = frozenset(
            ([ev.TASK_FAILED] if "run_failed" in self.wanted else [])
            + ([ev.TASK_RETRYING] if "task_retrying" in self.wanted else [])
        )
        self._task_deadlines = frozenset(self.watch.task_deadlines)
        self._quality_open: set[tuple[str | None, int]] = set()
        self._cond = threading.Condition()
        self._inbox: list[Event] = []
        self._pending: list[Delivery] = []
        self._in_flight: Delivery | None = None
        self._closing = False
        self._abandoned = False
        self._thread: threading.Thread | None = None
        self._stopped = False
        """The thread ended on an unexpected error: later events are not queued."""
        self._sender = Sender(project)

    # -- in the engine's thread -------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        """Queue `event` if a rule needs it: a few set lookups, nothing else."""
        kind = event.kind
        if kind not in self.kinds or self._stopped:
            return
        if kind == facts.QUALITY_CHECKED:
            if not isinstance(event.data, dict) or event.data.get("passed") is not False:
                return
            self._quality_open.add((event.task_id, event.attempt))
        elif kind == ev.TASK_STARTED:
            if event.task_id not in self._task_deadlines:
                return
        elif kind in ATTEMPT_ENDS or kind in TASK_ENDS:
            needed = kind in self._always
            slot = (event.task_id, event.attempt)
            if slot in self._quality_open:  # flushes the attempt's failed checks
                self._quality_open.discard(slot)
                needed = True
            if kind in TASK_ENDS and event.task_id in self._task_deadlines:
                needed = True  # cancels its deadline
            if not needed:
                return
        elif kind in RUN_ENDS and self._thread is None:  # else: it ends open checks, deadlines
            ended = event.state if kind == ev.RUN_FINISHED else None
            if not (
                (ended == "success" and "run_succeeded" in self.wanted)
                or (ended in ("failed", "lost") and "run_failed" in self.wanted)
            ):
                return
        with self._cond:
            self._inbox.append(event)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lockgate-notify", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (waiting at most `close_wait_seconds`), then return; what is
        still undelivered then is recorded as failed. Never raises."""
        try:
            self._close(self.config.close_wait_seconds if timeout is None else timeout)
        except Exception as exc:  # pragma: no cover - a bug here must not fail the run
            warn(f"closing the notifier failed: {describe(exc)}")

    def _close(self, timeout: float) -> None:
        with self._cond:
            self._closing = True
            thread = self._thread
            self._cond.notify_all()
        if thread is None:
            return
        thread.join(timeout)
        if not thread.is_alive():
            return
        reason = (
            f"not delivered within close_wait_seconds ({self.config.close_wait_seconds:g}s) "
            "after the run ended"
        )
        with self._cond:
            self._abandoned = True
            unread, self._inbox = len(self._inbox), []
            left = [d for d in self._pending if d is not self._in_flight]
            self._pending = [d for d in self._pending if d is self._in_flight]
            for delivery in left:
                delivery.state = "failed"
                last = f"; last error: {delivery.last_error}" if delivery.last_error else ""
                delivery.last_error = reason + last
            self._cond.notify_all()
        for delivery in left:
            self._given_up(delivery)
        if unread:
            warn(
                f"{unread} event(s) of the run were not looked at within close_wait_seconds "
                f"({self.config.close_wait_seconds:g}s): their notifications, if any, are lost"
            )

    # -- in the notifier's thread -----------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # never into the run; the notices left are lost
            self._stopped = True
            warn(f"the notifier stopped: {describe(exc)}")
        finally:
            self._sender.close()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._abandoned:
                        return
                    if self._inbox:
                        break
                    now = time.monotonic()
                    due = self._next_due()
                    if due is not None and due <= now:
                        break
                    if self._closing and not self._pending:
                        return
                    self._cond.wait(None if due is None else due - now)
                events, self._inbox = self._inbox, []
            notices: list[Notice] = []
            for event in events:
                notices += self.watch.on_event(event)
            if not self._closing:
                notices += self.watch.missed(time.monotonic())
            if notices:
                self._prepare(notices)
            for delivery in self._due(time.monotonic()):
                self._attempt(delivery)

    def _next_due(self) -> float | None:
        """The next delivery or (while the run goes on) SLA deadline due (monotonic)."""
        times = [d.due for d in self._pending]
        if not self._closing:
            deadline = self.watch.next_due()
            if deadline is not None:
                times.append(deadline)
        return min(times, default=None)

    def _due(self, now: float) -> list[Delivery]:
        with self._cond:
            return [d for d in self._pending if d.due <= now]

    def _prepare(self, notices: list[Notice]) -> None:
        """A delivery per notice and channel (the first rule naming a channel for an event
        gives its template), recorded as pending."""
        made: list[Delivery] = []
        for notice in notices:
            redacted = notice.redacted()
            rendered: dict[int, Message] = {}
            seen: set[str] = set()
            for rule in self.rules:
                if notice.event not in rule.on:
                    continue
                for name in rule.channels:
                    if name in seen:
                        continue
                    seen.add(name)
                    message = rendered.get(rule.number)
                    if message is None:
                        message = rendered[rule.number] = render(redacted, rule.template)
                    made.append(
                        Delivery(message, self.config.channels[name], secrets.token_hex(16))
                    )
        if not made:
            return
        self._recorder.new(made)
        with self._cond:
            self.deliveries += made
            self._pending += made

    def _attempt(self, delivery: Delivery) -> None:
        with self._cond:
            if self._abandoned or delivery not in self._pending:
                return
            self._in_flight = delivery
        error: SendError | None = None
        try:
            self._sender.send(delivery.channel, delivery.message, delivery.delivery_id)
        except SendError as exc:
            error = exc
        except Exception as exc:  # a bug or an unexpected library error: not retried
            error = SendError(describe(exc), retry=False)
        with self._cond:  # the outcome, atomically with respect to close()
            self._in_flight = None
            delivery.attempts += 1
            final = True
            if error is None:
                delivery.state, delivery.last_error = "sent", None
            elif error.retry and delivery.attempts <= self.config.retries and not self._abandoned:
                final = False
                delivery.last_error = error.reason
                delay = backoff(self.config.backoff_seconds, delivery.attempts, error.retry_after)
                delivery.due = time.monotonic() + delay
            else:
                tries = f" (after {delivery.attempts} attempts)" if delivery.attempts > 1 else ""
                delivery.state, delivery.last_error = "failed", f"{error.reason}{tries}"
            if final:
                self._pending.remove(delivery)
        if delivery.state == "failed":
            self._given_up(delivery)
        else:
            self._recorder.outcome(delivery)

    def _given_up(self, delivery: Delivery) -> None:
        self._recorder.outcome(delivery)
        notice, channel = delivery.message.notice, delivery.channel
        warn(
            f"{notice.event} of run {notice.run_id} not delivered to channel {channel.name} "
            f"({channel.kind}): {delivery.last_error}; see `lockgate notify list`"
        )


def send_now(channel: Channel, message: Message, project: Project, store: Store | None) -> Delivery:
    """Deliver `message` to `channel` once, now (`lockgate notify test`), recorded like any
    other notification; the delivery says how it went."""
    delivery = Delivery(message, channel, secrets.token_hex(16))
    recorder = Recorder(store)
    recorder.new([delivery])
    sender = Sender(project)
    try:
        sender.send(channel, message, delivery.delivery_id)
        delivery.state = "sent"
    except SendError as exc:
        delivery.state, delivery.last_error = "failed", exc.reason
    except Exception as exc:
        delivery.state = "failed"
        delivery.last_error = SendError(describe(exc), retry=False).reason
    finally:
        sender.close()
    delivery.attempts = 1
    recorder.outcome(delivery)
    return delivery
