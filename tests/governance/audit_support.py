"""What the audit-chain tests share: a keyed store with a chain of records, and direct SQL on
the chain's tables (the tampering an attacker with database access could do)."""

from __future__ import annotations

import base64
from typing import Any

from lockgate.privacy.keys import Keyring
from lockgate.store.audit import record_hash
from lockgate.store.store import Store

KEY = bytes(range(32))
KEYS_ENV = "k1:" + base64.b64encode(KEY).decode()
"""The same audit key in every process of a test (LOCKGATE_KEYS form)."""
COLUMNS = (
    "ts",
    "actor",
    "action",
    "target",
    "run_id",
    "detail",
    "key_id",
    "prev_hash",
    "hash",
    "mac",
)


def keys() -> Keyring:
    return Keyring.from_keys({"k1": KEY})


def chain_store(url: str, records: int = 30, every: int = 1000) -> Store:
    """A store on `url` whose chain holds `records` records (seq 1..records)."""
    store = Store(url, keys=keys())
    store.chain.every = every
    for i in range(1, records + 1):
        store.audit("test.action", f"target-{i}", {"i": i, "note": "é ü"}, actor="tester@host")
    return store


def row(store: Store, seq: int) -> dict[str, Any]:
    found = store.db.rows(f"SELECT seq, {', '.join(COLUMNS)} FROM audit_log WHERE seq = ?", (seq,))
    assert found, f"no record {seq}"
    return found[0]


def set_row(store: Store, seq: int, **values: Any) -> None:
    """UPDATE one record's columns directly."""
    sets = ", ".join(f"{name} = ?" for name in values)
    store.db.execute(f"UPDATE audit_log SET {sets} WHERE seq = ?", (*values.values(), seq))


def rehash(values: dict[str, Any], seq: int, prev_hash: str) -> str:
    """What someone without the key can compute: a record's hash from its fields."""
    return record_hash(
        prev_hash,
        seq,
        values["ts"],
        values["actor"],
        values["action"],
        values["target"],
        values["run_id"],
        values["detail"],
        values["key_id"],
    )
