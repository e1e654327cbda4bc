"""Tampering with the audit chain by direct SQL, on SQLite and PostgreSQL: `verify` names the
first bad record and what is wrong with it (edited, deleted, swapped, inserted, forged without
the key, a dropped tail, also with the head rolled back: caught by an exported checkpoint)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lockgate.governance.audit import export_checkpoints, load_exported
from lockgate.privacy.keys import Keyring
from lockgate.store.audit import GENESIS
from lockgate.store.store import Store

from .audit_support import KEY, chain_store, rehash, row, set_row


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A chain of 30 records."""
    opened = chain_store(db_url)
    try:
        yield opened
    finally:
        opened.close()


def one_line(message: str) -> str:
    assert "\n" not in message
    return message


def test_an_untouched_chain_verifies_and_so_does_an_empty_one(db_url: str) -> None:
    store = chain_store(db_url, records=0)
    try:
        empty = store.audit_verify()
        assert empty.ok and empty.records == 0 and empty.message == "audit chain OK: empty"
        for i in range(12):
            store.audit("x", str(i))
        found = store.audit_verify()
        assert found.ok, found.message
        assert (found.records, found.first, found.last) == (12, 1, 12)
        assert row(store, 1)["prev_hash"] == GENESIS
    finally:
        store.close()


def test_an_edited_field_is_found(store: Store) -> None:
    set_row(store, 7, target="someone-else")
    found = store.audit_verify()
    assert not found.ok and (found.seq, found.problem) == (7, "edited")
    assert one_line(found.message) == "record 7 was edited: its fields do not match its hash"
    assert found.records == 6 and found.last == 6


def test_an_edited_detail_or_time_is_found(store: Store) -> None:
    set_row(store, 12, detail='{"i":12,"note":"changed"}')
    assert (store.audit_verify().seq, store.audit_verify().problem) == (12, "edited")
    set_row(store, 12, detail=row(store, 11)["detail"].replace("11", "12"))
    set_row(store, 3, ts=row(store, 3)["ts"] + 1)
    found = store.audit_verify()
    assert (found.seq, found.problem) == (3, "edited")


def test_a_deleted_record_is_found(store: Store) -> None:
    store.db.execute("DELETE FROM audit_log WHERE seq = 7")
    found = store.audit_verify()
    assert (found.ok, found.seq, found.problem) == (False, 7, "missing")
    assert one_line(found.message) == (
        "record(s) 7 are missing: the chain jumps from record 6 to 8 (deleted records)"
    )
    store.db.execute("DELETE FROM audit_log WHERE seq IN (8, 9)")
    assert "record(s) 7-9 are missing" in store.audit_verify().message


def test_two_swapped_records_are_found(store: Store) -> None:
    a, b = row(store, 7), row(store, 8)
    set_row(store, 7, **{k: v for k, v in b.items() if k != "seq"})
    set_row(store, 8, **{k: v for k, v in a.items() if k != "seq"})
    found = store.audit_verify()
    assert (found.seq, found.problem) == (7, "reordered")
    assert one_line(found.message) == (
        "record 7 does not follow record 6: its prev_hash differs from that record's hash "
        "(inserted or reordered records)"
    )


def test_an_inserted_record_is_found(store: Store) -> None:
    # make room at 7 (two steps: a primary key is unique at every row of an UPDATE), then
    # insert a copy of record 20 there
    store.db.execute("UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 7")
    store.db.execute("UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1000")
    copy = row(store, 21)  # the old record 20
    marks = ", ".join("?" * 11)
    columns = ", ".join(copy)
    store.db.execute(
        f"INSERT INTO audit_log ({columns}) VALUES ({marks})", (7, *list(copy.values())[1:])
    )
    found = store.audit_verify()
    assert (found.seq, found.problem) == (7, "reordered")


def test_a_record_appended_past_the_head_is_found(store: Store) -> None:
    copy = row(store, 5)
    marks = ", ".join("?" * 11)
    store.db.execute(
        f"INSERT INTO audit_log ({', '.join(copy)}) VALUES ({marks})",
        (31, *list(copy.values())[1:]),
    )
    found = store.audit_verify()
    assert (found.seq, found.problem) == (31, "reordered")


def test_a_record_rehashed_without_the_key_is_forged(store: Store) -> None:
    """Someone who can write the database but not read the key file edits record 7 and
    recomputes every hash after it, so that the links hold: the MACs give it away."""
    prev = row(store, 6)["hash"]
    for seq in range(7, 31):
        values = row(store, seq)
        if seq == 7:
            values["target"] = "nobody"
        digest = rehash(values, seq, prev)
        set_row(store, seq, target=values["target"], prev_hash=prev, hash=digest)
        prev = digest
    store.db.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))
    found = store.audit_verify()
    assert (found.seq, found.problem) == (7, "forged")
    assert one_line(found.message) == (
        "record 7 is forged: its hash matches its fields but its MAC does not (re-hashed "
        "without the audit key)"
    )


def test_a_dropped_tail_is_found_by_the_head(store: Store) -> None:
    store.db.execute("DELETE FROM audit_log WHERE seq > 25")
    found = store.audit_verify()
    assert (found.seq, found.problem) == (26, "truncated")
    assert one_line(found.message) == (
        "the chain ends at record 25 but its head is record 30: records 26-30 were deleted "
        "(truncated)"
    )


def test_a_head_rewritten_without_the_key_is_found(store: Store) -> None:
    store.db.execute("DELETE FROM audit_log WHERE seq > 25")
    last = row(store, 25)
    store.db.execute(
        "UPDATE audit_head SET seq = 25, hash = ?, mac = ? WHERE id = 1", (last["hash"], "0" * 64)
    )
    found = store.audit_verify()
    assert (found.seq, found.problem) == (26, "head")
    assert "has a wrong MAC" in found.message


def test_a_dropped_tail_with_the_head_rolled_back_is_caught_by_an_exported_checkpoint(
    db_url: str, tmp_path: Path
) -> None:
    """The head row of an earlier moment (a valid MAC) put back after deleting what came
    since, and the checkpoints of the database deleted too: only a checkpoint exported out of
    the database's reach shows the truncation."""
    store = chain_store(db_url, records=25)
    try:
        old_head = store.audit_head()
        assert old_head is not None
        for i in range(26, 31):
            store.audit("test.action", f"target-{i}")
        cp = store.audit_checkpoint()
        assert cp is not None and cp.seq == 30
        folder = tmp_path / "exported"
        assert [c.seq for c in export_checkpoints(store, str(folder))] == [30]
        assert store.audit_verify().ok
        # the attack
        store.db.execute("DELETE FROM audit_log WHERE seq > 25")
        store.db.execute("DELETE FROM audit_checkpoints")
        store.db.execute(
            "UPDATE audit_head SET seq = ?, hash = ?, key_id = ?, mac = ?, ts = ? WHERE id = 1",
            tuple(old_head[k] for k in ("seq", "hash", "key_id", "mac", "ts")),
        )
        assert store.audit_verify().ok  # consistent as far as the database can tell
        found = store.audit_verify(load_exported(str(folder)))
        assert (found.ok, found.seq, found.problem) == (False, 26, "truncated")
        name = folder / "checkpoint-000000000030.json"
        assert one_line(found.message) == (
            f"the chain ends at record 25 but the exported checkpoint at record 30 ({name}) "
            "vouches for record 30: records 26-30 were deleted (truncated)"
        )
    finally:
        store.close()


def test_a_database_checkpoint_past_the_end_shows_a_truncation(db_url: str) -> None:
    store = chain_store(db_url, records=30, every=10)
    try:
        assert [c.seq for c in store.audit_checkpoints()] == [10, 20, 30]
        old = row(store, 20)
        store.db.execute("DELETE FROM audit_log WHERE seq > 20")
        store.db.execute(
            "UPDATE audit_head SET seq = 20, hash = ? WHERE id = 1", (old["hash"],)
        )  # the MAC no longer fits, and the checkpoint at 30 vouches for more
        found = store.audit_verify()
        assert (found.seq, found.problem) == (21, "truncated")
        assert "the checkpoint at record 30 vouches for record 30" in found.message
    finally:
        store.close()


def test_a_forged_checkpoint_is_found(db_url: str) -> None:
    store = chain_store(db_url, records=30, every=10)
    try:
        store.db.execute("UPDATE audit_checkpoints SET ts = ts + 1 WHERE seq = 20")
        found = store.audit_verify()
        assert (found.seq, found.problem) == (20, "checkpoint")
        assert found.message == (
            "the checkpoint at record 20 has an invalid signature (forged or altered checkpoint)"
        )
    finally:
        store.close()


def test_records_keep_verifying_after_a_key_rotation(db_url: str) -> None:
    keyring = Keyring.from_keys({"k1": KEY})
    store = Store(db_url, keys=keyring)
    try:
        for i in range(3):
            store.audit("before", str(i))
        keyring.rotate()  # k2 is current: new records name it
        for i in range(3):
            store.audit("after", str(i))
        assert [row(store, s)["key_id"] for s in (3, 4)] == ["k1", "k2"]
        assert store.audit_verify().ok
    finally:
        store.close()
    without_k1 = Store(db_url, keys=Keyring.from_keys({"k2": bytes(range(100, 132))}))
    try:
        found = without_k1.audit_verify()
        assert (found.seq, found.problem) == (1, "key")
        assert "written with key 'k1', which the keyring does not hold" in found.message
    finally:
        without_k1.close()
