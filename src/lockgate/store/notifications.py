"""The store's side of notifications: one row per (notice, channel) in `notifications`, from
`pending` to `sent` or `failed`, with its attempts, last error and subject (both redacted, one
line, by the caller). Plain SQL valid on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockgate.store.store import Store

STATES = ("pending", "sent", "failed")
COLUMNS = (
    "id, created_at, event, channel, kind, pipeline_id, run_id, task_id, state, attempts, "
    "last_error, sent_at, subject"
)
MAX_TEXT = 1000
"""Stored errors and subjects are cut there."""


@dataclass(frozen=True)
class NewNotification:
    """A notification about to be delivered."""

    event: str
    channel: str
    kind: str
    pipeline_id: str | None
    run_id: str | None
    task_id: str | None
    subject: str | None


def _cut(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def add(store: Store, items: Sequence[NewNotification]) -> list[int]:
    """Record `items` as pending, in one transaction; their ids, in order."""
    db = store.db
    now = time.time()
    ids: list[int] = []
    statement = db.sql(
        "INSERT INTO notifications (created_at, event, channel, kind, pipeline_id, run_id, "
        "task_id, state, attempts, subject) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?) "
        "RETURNING id"
    )
    with db.transaction() as cur:
        for item in items:
            cur.execute(
                statement,
                (
                    now,
                    item.event,
                    item.channel,
                    item.kind,
                    item.pipeline_id,
                    item.run_id,
                    item.task_id,
                    _cut(item.subject),
                ),
            )
            ids.append(int(cur.fetchone()[0]))
    return ids


def update(
    store: Store,
    notification_id: int,
    state: str,
    attempts: int,
    last_error: str | None = None,
) -> None:
    """Record an attempt's outcome: still `pending` (to be retried), `sent` or `failed`."""
    if state not in STATES:
        raise ValueError(f"not a notification state: {state!r}")
    store.db.execute(
        "UPDATE notifications SET state = ?, attempts = ?, last_error = ?, sent_at = ? "
        "WHERE id = ?",
        (
            state,
            attempts,
            _cut(last_error),
            time.time() if state == "sent" else None,
            notification_id,
        ),
    )


def recent(store: Store, run_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The latest notifications, newest first (of one run, when `run_id` is given)."""
    if run_id is not None:
        return store.db.rows(
            f"SELECT {COLUMNS} FROM notifications WHERE run_id = ? ORDER BY id DESC LIMIT ?",
            (run_id, limit),
        )
    return store.db.rows(
        f"SELECT {COLUMNS} FROM notifications ORDER BY created_at DESC, id DESC LIMIT ?",
        (limit,),
    )


def prune(store: Store, before: float) -> int:
    """Delete notifications created before `before` (epoch seconds); how many went."""
    return store.db.execute("DELETE FROM notifications WHERE created_at < ?", (before,))
