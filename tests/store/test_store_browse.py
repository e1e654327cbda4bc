"""The server's pages of runs on SQLite and PostgreSQL: newest first, keyset cursors that
neither skip nor repeat a run (ties on created_at included), and filters on several
pipelines or states (merged index ranges on SQLite) giving what a plain filter gives."""

from __future__ import annotations

import random
from typing import Any

import pytest

from lockgate.privacy.keys import Keyring
from lockgate.store.store import Store

PIPES = ["a", "b", "c", "d", "e"]
STATES = ["success", "failed", "queued"]


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store(db_url, keys=Keyring.generate())
    rng = random.Random(7)
    rows = [
        (f"run-{i:04d}", rng.choice(PIPES), rng.choice(STATES), float(1000 + i // 3))
        for i in range(300)  # three runs per created_at: cursors must break ties by id
    ]
    with s.db.transaction() as cur:
        for row in rows:
            cur.execute(
                s.db.sql(
                    'INSERT INTO runs (id, pipeline_id, state, created_at, "trigger") '
                    "VALUES (?, ?, ?, ?, 'manual')"
                ),
                row,
            )
    yield s
    s.close()


def _walk(store: Store, page: int, **filters: Any) -> list[str]:
    out: list[str] = []
    before = None
    while True:
        rows = store.runs_page(before=before, limit=page, **filters)
        out += [r["id"] for r in rows]
        if len(rows) < page:
            return out
        before = (rows[-1]["created_at"], rows[-1]["id"])


def _expected(store: Store, pipelines: list[str] | None, states: list[str]) -> list[str]:
    rows = store.db.rows("SELECT id, pipeline_id, state, created_at FROM runs")
    chosen = [
        r
        for r in rows
        if (pipelines is None or r["pipeline_id"] in pipelines)
        and (not states or r["state"] in states)
    ]
    chosen.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
    return [r["id"] for r in chosen]


@pytest.mark.parametrize(
    ("pipelines", "states"),
    [
        (None, []),
        (["a"], []),
        (["a", "c", "e"], []),
        (None, ["failed", "queued"]),
        (["b", "d"], ["success"]),
        (PIPES, STATES),
    ],
)
def test_pages_walk_every_matching_run_once_newest_first(
    store: Store, pipelines: list[str] | None, states: list[str]
) -> None:
    expected = _expected(store, pipelines, states)
    assert expected
    for page in (1, 7, 50):
        assert _walk(store, page, pipelines=pipelines, states=states) == expected


def test_an_empty_list_of_pipelines_matches_nothing(store: Store) -> None:
    assert store.runs_page(pipelines=[]) == []
