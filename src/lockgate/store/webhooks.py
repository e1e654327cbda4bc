"""The store's side of inbound webhooks: deliveries already accepted (a replay is refused) and
the runs a delivery queues, recorded in one transaction.

A delivery is a replay when its id, or the SHA-256 of its raw signed body, was accepted before:
the delivery id header is not signed, so a captured body resent under fresh ids must be caught
by its content. The delivery row and the runs commit together, and the row's two unique keys,
(source, delivery id) and (source, body digest), are the arbiter: of two concurrent requests
with the same id or body, the second's INSERT finds the first's row (on PostgreSQL it waits for
the first to commit, on SQLite `BEGIN IMMEDIATE` serializes them) and queues nothing."""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockgate.store.scheduling import NewRun
    from lockgate.store.store import Store

KEEP_S = 30 * 86400.0
"""Delivery ids and body digests are remembered this long; older rows are pruned."""
PRUNE_BATCH = 100
"""Old rows pruned by one accepted delivery, at most (a bounded DELETE on the hot path)."""


def body_digest(body: bytes) -> str:
    """The hex SHA-256 of a delivery's raw body, as recorded with it."""
    return hashlib.sha256(body).hexdigest()


def seen(store: Store, source: str, delivery_id: str, body_sha256: str | None = None) -> bool:
    """Whether this delivery id (or, given, this body digest) was accepted already: a quick
    look before the payload is read; `accept` is what decides."""
    where, args = "delivery_id = ?", [source, delivery_id]
    if body_sha256 is not None:
        where, args = "(delivery_id = ? OR body_sha256 = ?)", [*args, body_sha256]
    sql = f"SELECT 1 AS found FROM webhook_deliveries WHERE source = ? AND {where}"
    return bool(store.db.rows(sql, tuple(args)))


def accept(
    store: Store,
    source: str,
    delivery_id: str,
    event: str,
    runs: list[NewRun],
    *,
    body_sha256: str,
    actor: str,
    detail: dict[str, Any],
    now: float | None = None,
) -> list[str] | None:
    """Record a delivery (its id and its body's digest) and queue its runs in one transaction,
    with one `webhook.<source>` audit record and a `run.trigger` record per run (actor
    `actor`). Returns the ids of the runs queued, or None when the delivery id or the body was
    accepted before (nothing is written)."""
    moment = time.time() if now is None else now
    db = store.db
    with db.transaction() as cur:
        _prune(store, cur, moment - KEEP_S)
        # no conflict target: a clash on either unique key (the id, the body) does nothing
        cur.execute(
            db.sql(
                "INSERT INTO webhook_deliveries "
                "(source, delivery_id, event, received_at, runs, body_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
            ),
            (source, delivery_id, event, moment, "[]", body_sha256),
        )
        if cur.rowcount != 1:
            return None
        created = store.insert_runs(cur, runs)
        if created:
            cur.execute(
                db.sql(
                    "UPDATE webhook_deliveries SET runs = ? WHERE source = ? AND delivery_id = ?"
                ),
                (json.dumps(created), source, delivery_id),
            )
        by_id = {run.run_id: run for run in runs}
        for run_id in created:
            run = by_id[run_id]
            store.audit_in(
                cur,
                "run.trigger",
                run.pipeline_id,
                {
                    "params": sorted(run.params),
                    "logical_date": None,
                    "via": run.trigger,
                    "source": source,
                    "delivery": delivery_id,
                },
                actor=actor,
                run_id=run_id,
            )
        store.audit_in(
            cur,
            f"webhook.{source}",
            delivery_id,
            {**detail, "event": event, "runs": created},
            actor=actor,
        )
    return created


def _prune(store: Store, cur: Any, before: float) -> None:
    """Forget up to `PRUNE_BATCH` deliveries received before `before` (oldest first, through
    the received_at index), so one request never deletes an unbounded backlog."""
    cur.execute(
        store.db.sql(
            "DELETE FROM webhook_deliveries WHERE (source, delivery_id) IN ("
            "SELECT source, delivery_id FROM webhook_deliveries WHERE received_at < ? "
            "ORDER BY received_at LIMIT ?)"
        ),
        (before, PRUNE_BATCH),
    )


def deliveries(store: Store, source: str, limit: int = 100) -> list[dict[str, Any]]:
    """The latest accepted deliveries of `source`, newest first, with the runs they queued."""
    rows = store.db.rows(
        "SELECT source, delivery_id, event, received_at, runs FROM webhook_deliveries "
        "WHERE source = ? ORDER BY received_at DESC LIMIT ?",
        (source, limit),
    )
    for row in rows:
        row["runs"] = json.loads(row["runs"]) if row["runs"] else []
    return rows
