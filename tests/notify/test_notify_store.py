"""The `notifications` table on SQLite and PostgreSQL: rows added pending, attempts and outcomes
recorded, the latest read back (all or one run's), old ones pruned; and a notifier whose
deliveries are recorded in a PostgreSQL store."""

from __future__ import annotations

import time

import pytest

from lockgate.config import Project
from lockgate.model import events as ev
from lockgate.store import notifications
from lockgate.store.notifications import NewNotification
from lockgate.store.store import Store

from .helpers import configure, notifier, publish, webhook_toml
from .servers import HttpServer


def test_rows_go_from_pending_to_sent_or_failed(db_url: str) -> None:
    store = Store(db_url)
    try:
        first, second = notifications.add(
            store,
            [
                NewNotification("run_failed", "ops", "slack", "etl", "r-1", "load", "etl failed"),
                NewNotification("run_failed", "mail", "email", "etl", "r-1", "load", "x" * 5000),
            ],
        )
        [third] = notifications.add(
            store, [NewNotification("test", "ops", "slack", None, None, None, "test")]
        )
        pending = {r["id"]: r for r in notifications.recent(store)}
        assert pending[first]["state"] == "pending" and pending[first]["attempts"] == 0
        assert len(pending[second]["subject"]) == notifications.MAX_TEXT
        notifications.update(store, first, "pending", 1, "HTTP 503")
        notifications.update(store, first, "sent", 2)
        notifications.update(store, second, "failed", 6, "HTTP 500 (after 6 attempts)")
        rows = notifications.recent(store, "r-1")
        assert [r["id"] for r in rows] == [second, first]
        by_id = {r["id"]: r for r in rows}
        assert (by_id[first]["state"], by_id[first]["attempts"]) == ("sent", 2)
        assert by_id[first]["last_error"] is None and by_id[first]["sent_at"] is not None
        assert by_id[second]["state"] == "failed" and by_id[second]["sent_at"] is None
        assert [r["id"] for r in notifications.recent(store, limit=1)] == [third]
        assert notifications.prune(store, time.time() + 1) == 3
        assert notifications.recent(store) == []
    finally:
        store.close()


@pytest.mark.postgres
def test_a_notifier_records_its_deliveries(project: Project, hook: HttpServer, pg_url: str) -> None:
    store = Store(pg_url)
    try:
        found = notifier(configure(project, webhook_toml(hook.url)), store=store)
        publish(found, ev.RUN_FINISHED, state="failed", data={"failed_tasks": ["load"]})
        found.close()
        [row] = notifications.recent(store)
        assert (row["event"], row["state"], row["attempts"]) == ("run_failed", "sent", 1)
    finally:
        store.close()
