"""Retention of the audit chain: pruning cuts only at a checkpoint made before the cutoff, keeps
that checkpoint as the anchor, is itself recorded, and verification keeps working (and still
finds records deleted outside a prune). Cleaning old runs never touches the chain."""

from __future__ import annotations

import time

from lockgate.store.store import Store

from .audit_support import chain_store, row


def _age_checkpoints(store: Store, upto: int, seconds: float) -> None:
    """Make the checkpoints up to `upto` look `seconds` older (their signatures cover their
    time, so they are signed again, with the chain's key, as if made then)."""
    from lockgate.store.audit import _signing_key, checkpoint_message

    for cp in store.audit_checkpoints():
        if cp.seq <= upto:
            ts = cp.ts - seconds
            _, private = _signing_key(store.audit_keys(), cp.key_id)
            signature = private.sign(checkpoint_message(cp.seq, cp.hash, ts)).hex()
            store.db.execute(
                "UPDATE audit_checkpoints SET ts = ?, signature = ? WHERE seq = ?",
                (ts, signature, cp.seq),
            )


def test_prune_cuts_at_the_newest_checkpoint_before_the_cutoff(db_url: str) -> None:
    store = chain_store(db_url, records=35, every=10)
    try:
        assert [cp.seq for cp in store.audit_checkpoints()] == [10, 20, 30]
        _age_checkpoints(store, 20, 3600)
        anchor_hash = row(store, 20)["hash"]
        done = store.audit_prune(time.time() - 1800, actor="admin@host")
        assert (done.anchor, done.records, done.checkpoints) == (20, 20, 1)
        assert [cp.seq for cp in store.audit_checkpoints()] == [20, 30]  # the anchor stays
        first = store.audit_records(limit=1)[0]
        assert first.seq == 21 and first.prev_hash == anchor_hash
        last = store.chain.latest(1)[0]
        assert (last.seq, last.action, last.actor) == (36, "audit.prune", "admin@host")
        found = store.audit_verify()
        assert found.ok, found.message
        assert (found.first, found.last, found.records) == (21, 36, 16)
        # nothing older than a checkpoint before the cutoff: nothing more goes
        again = store.audit_prune(time.time() - 1800)
        assert (again.anchor, again.records) == (20, 0)
    finally:
        store.close()


def test_prune_without_a_checkpoint_before_the_cutoff_deletes_nothing(db_url: str) -> None:
    store = chain_store(db_url, records=15, every=10)
    try:
        done = store.audit_prune(time.time() - 60)  # the checkpoint at 10 is newer
        assert (done.anchor, done.records) == (None, 0)
        assert store.audit_count() == 15
    finally:
        store.close()


def test_records_deleted_after_a_prune_are_still_found(db_url: str) -> None:
    store = chain_store(db_url, records=35, every=10)
    try:
        _age_checkpoints(store, 20, 3600)
        store.audit_prune(time.time() - 1800)
        store.db.execute("DELETE FROM audit_log WHERE seq <= 25")  # more than the prune did
        found = store.audit_verify()
        assert (found.ok, found.seq, found.problem) == (False, 21, "missing")
        assert found.message == (
            "record(s) 21-25 are missing from the start of the chain (deleted outside "
            "`lockgate audit prune`)"
        )
    finally:
        store.close()


def test_a_chain_cut_without_prune_is_found(db_url: str) -> None:
    store = chain_store(db_url, records=25, every=10)
    try:
        store.db.execute("DELETE FROM audit_log WHERE seq <= 10")  # at a checkpoint, even
        found = store.audit_verify()
        assert (found.seq, found.problem) == (1, "missing")
        assert found.message.startswith("record(s) 1-10 are missing from the start")
    finally:
        store.close()


def test_a_deleted_anchor_is_found(db_url: str) -> None:
    store = chain_store(db_url, records=35, every=10)
    try:
        _age_checkpoints(store, 20, 3600)
        store.audit_prune(time.time() - 1800)
        store.db.execute("DELETE FROM audit_checkpoints WHERE seq = 20")
        found = store.audit_verify()
        assert (found.seq, found.problem) == (21, "checkpoint")
        assert "the checkpoint at record 20, which anchors the chain after pruning" in (
            found.message
        )
    finally:
        store.close()


def test_cleaning_old_runs_leaves_the_chain_alone(db_url: str) -> None:
    store = chain_store(db_url, records=5)
    try:
        store.create_run("20200101T000000-aaaaaa", "p", None, {}, "threads")
        store.db.execute("UPDATE runs SET state = 'success', created_at = 0")
        assert store.clean(60) == [("p", "20200101T000000-aaaaaa")]
        assert store.audit_count() == 6 and store.audit_verify().ok  # 5 + run.create
    finally:
        store.close()
