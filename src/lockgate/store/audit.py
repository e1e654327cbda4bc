"""The tamper-evident audit chain in the metadata database (docs/audit.md).

Each record's `hash` is SHA-256 over the previous record's hash and its own fields, encoded
without ambiguity (each field length-prefixed); its `mac` is HMAC-SHA256 of that hash under the
`audit-mac` subkey of the key id the record names. The one-row `audit_head` names the last record
(MACed too), so deleting the newest records shows. Signed checkpoints (Ed25519, `audit-sign`
subkey) vouch for the hash at a sequence number; exported outside the database, they bound what
someone holding both the database and the key could rewrite. Retention cuts at a checkpoint.

Appends run inside the caller's transaction: the head row is read (locked with FOR UPDATE on
PostgreSQL; SQLite write transactions are BEGIN IMMEDIATE already), records are inserted, the
head is moved, all committed with the caller's other writes.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from lockgate.errors import LockgateError, StoreError

if TYPE_CHECKING:
    from lockgate.store.dbapi import Database

GENESIS = "0" * 64
"""The `prev_hash` of the first record."""
CHECKPOINT_EVERY = 1000
"""Records appended between two automatic checkpoints (the `[audit] checkpoint_every` setting)."""
MAC_PURPOSE = "audit-mac"
SIGN_PURPOSE = "audit-sign"
FETCH_ROWS = 5000
"""Records read per round while verifying: memory stays flat in the chain's length."""
PRUNE_ACTION = "audit.prune"
EVENTS_ACTION = "events"
"""The action of a batch of engine events (its detail: the JSON array of their rows)."""

_RECORD = b"lockgate.audit.record.v1\n"
_HEAD = b"lockgate.audit.head.v1\n"
_CHECKPOINT = b"lockgate.audit.checkpoint.v1\n"
_COLUMNS = "seq, ts, actor, action, target, run_id, detail, key_id, prev_hash, hash, mac"
_CP_COLUMNS = "seq, hash, ts, key_id, public_key, signature, exported_to"
_LIMITS = {"actor": 255, "action": 64, "target": 1024, "run_id": 64}
"""Column sizes: values are cut to them before hashing, so what is hashed is what is stored."""


class Keys(Protocol):
    """Where audit keys come from (the privacy `Keyring` is one): `(key id, key bytes)` for a
    purpose, from key `key_id` or, when None, the current key."""

    def key_for(self, purpose: str, key_id: str | None = None) -> tuple[str, bytes]: ...


class Entry(NamedTuple):
    """A record to append; `detail` is JSON text, hashed exactly as stored."""

    actor: str
    action: str
    target: str | None = None
    run_id: str | None = None
    detail: str | None = None


class Record(NamedTuple):
    """A stored record, as its row."""

    seq: int
    ts: float
    actor: str
    action: str
    target: str | None
    run_id: str | None
    detail: str | None
    key_id: str
    prev_hash: str
    hash: str
    mac: str


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that record `seq` had hash `hash` at time `ts`."""

    seq: int
    hash: str
    ts: float
    key_id: str
    public_key: str
    signature: str
    exported_to: str | None = None

    def to_json(self) -> dict[str, Any]:
        """What an exported checkpoint file holds."""
        doc = asdict(self)
        doc.pop("exported_to")
        return doc

    @classmethod
    def from_json(cls, doc: Any, where: str) -> Checkpoint:
        """A checkpoint read back from an export; StoreError naming `where` when malformed."""
        try:
            return cls(
                seq=int(doc["seq"]),
                hash=str(doc["hash"]),
                ts=float(doc["ts"]),
                key_id=str(doc["key_id"]),
                public_key=str(doc["public_key"]),
                signature=str(doc["signature"]),
                exported_to=where,
            )
        except (KeyError, TypeError, ValueError):
            raise StoreError(
                f"{where} is not an audit checkpoint (it needs seq, hash, ts, key_id, "
                "public_key and signature)"
            ) from None


@dataclass(frozen=True)
class Finding:
    """The result of verifying the chain: `ok`, or the first bad record (`seq`), what is wrong
    with it (`problem`) and a one-line `message`."""

    ok: bool
    message: str
    problem: str | None = None
    """edited, forged, missing, reordered, inserted, truncated, head, checkpoint, key."""
    seq: int | None = None
    records: int = 0
    first: int | None = None
    last: int | None = None
    checkpoints: int = 0
    exported: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Pruned:
    """What `prune` did: records up to `anchor` (a checkpoint) deleted."""

    anchor: int | None
    records: int
    checkpoints: int


# -- hashing ------------------------------------------------------------------------------------


def _field(value: str | None) -> str:
    # length-prefixed (in code points, so the encoding parses back unambiguously); None is "-"
    return "-" if value is None else f"{len(value)}:{value}"


def record_hash(
    prev_hash: str,
    seq: int,
    ts: float,
    actor: str,
    action: str,
    target: str | None,
    run_id: str | None,
    detail: str | None,
    key_id: str,
) -> str:
    """The hex SHA-256 of a record: the previous hash and every field, length-prefixed
    (`_field`; written out for the fields that cannot be None: verification runs this a
    million times)."""
    n, t = str(seq), repr(float(ts))
    text = (
        f"{len(prev_hash)}:{prev_hash}{len(n)}:{n}{len(t)}:{t}{len(actor)}:{actor}"
        f"{len(action)}:{action}{_field(target)}{_field(run_id)}{_field(detail)}"
        f"{len(key_id)}:{key_id}"
    )
    return hashlib.sha256(_RECORD + text.encode()).hexdigest()


def record_mac(key: bytes, digest: str) -> str:
    """HMAC-SHA256 of a record's hash (its 32 bytes)."""
    return hmac.digest(key, bytes.fromhex(digest), "sha256").hex()


class _Mac:
    """`record_mac` under one key, its padded key states computed once (RFC 2104): the same
    MAC in a third of the time, for appending and verifying many records."""

    def __init__(self, key: bytes) -> None:
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __call__(self, digest: str) -> str:
        inner = self._inner.copy()
        inner.update(bytes.fromhex(digest))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


def head_mac(key: bytes, seq: int, digest: str) -> str:
    """The head's MAC over its sequence number and hash (another domain than records')."""
    return hmac.digest(key, _HEAD + f"{seq}:{digest}".encode(), "sha256").hex()


def checkpoint_message(seq: int, digest: str, ts: float) -> bytes:
    """What a checkpoint's signature covers."""
    return _CHECKPOINT + "".join([_field(str(seq)), _field(digest), _field(repr(ts))]).encode()


def _signing_key(keys: Keys, key_id: str | None = None) -> tuple[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    kid, seed = keys.key_for(SIGN_PURPOSE, key_id)
    return kid, Ed25519PrivateKey.from_private_bytes(seed[:32])


def _public_hex(private: Any) -> str:
    return str(private.public_key().public_bytes_raw().hex())


def signature_ok(cp: Checkpoint, public_hex: str) -> bool:
    """Whether `cp` is signed by the Ed25519 key `public_hex`."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        public.verify(bytes.fromhex(cp.signature), checkpoint_message(cp.seq, cp.hash, cp.ts))
    except (InvalidSignature, ValueError):
        return False
    return True


@functools.cache
def user_actor() -> str:
    """The OS user running this process as an actor: `user@host` (commands, connection
    changes; the engine's records name its process instead, store/owners.py)."""
    import getpass
    import os
    import socket

    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (containers)
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def entry(
    actor: str,
    action: str,
    target: str | None = None,
    run_id: str | None = None,
    detail: Any = None,
) -> Entry:
    """An `Entry`, its fields cut to their column sizes; `detail` JSON-encoded unless it is
    text already (JSON) or None."""
    if detail is not None and not isinstance(detail, str):
        detail = json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)
    return Entry(
        actor[: _LIMITS["actor"]],
        action[: _LIMITS["action"]],
        None if target is None else target[: _LIMITS["target"]],
        None if run_id is None else run_id[: _LIMITS["run_id"]],
        detail,
    )


# -- the chain ----------------------------------------------------------------------------------


class AuditChain:
    """The chain of one metadata database: append (in the caller's transaction), checkpoint,
    verify, prune, and the queries behind `lockgate audit`. Thread-safe.

    `keys` returns the `Keys` (called on first need; StoreError when there are none)."""

    def __init__(
        self, db: Database, keys: Callable[[], Keys], every: int = CHECKPOINT_EVERY
    ) -> None:
        self.db = db
        self._keys = keys
        self.every = every
        self._last_checkpoint: int | None = None
        self._lock = threading.Lock()
        mark = db.placeholder
        self._insert = f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({', '.join([mark] * 11)})"
        self._head = (
            f"INSERT INTO audit_head (id, seq, hash, key_id, mac, ts) VALUES (1, {mark}, {mark}, "
            f"{mark}, {mark}, {mark}) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, "
            "hash = excluded.hash, key_id = excluded.key_id, mac = excluded.mac, ts = excluded.ts"
        )
        self._insert_cp = (
            f"INSERT INTO audit_checkpoints ({_CP_COLUMNS}) VALUES ({', '.join([mark] * 7)}) "
            "ON CONFLICT (seq) DO NOTHING"
        )
        # PostgreSQL: a record and the head in one statement (one round trip, not two)
        self._insert_and_head = (
            f"WITH record AS ({self._insert}) {self._head}" if db.dialect == "postgresql" else None
        )

    # -- appending ------------------------------------------------------------------------------
    def append(self, cur: Any, entries: Sequence[Entry]) -> int:
        """Append `entries` inside the transaction of `cur`; the last sequence number."""
        keys = self._keys()
        key_id, mac_key = keys.key_for(MAC_PURPOSE)
        mac = _Mac(mac_key) if len(entries) > 8 else partial(record_mac, mac_key)
        seq, prev = self._lock_head(cur)
        now = time.time()
        rows = []
        for e in entries:
            seq += 1
            digest = record_hash(
                prev, seq, now, e.actor, e.action, e.target, e.run_id, e.detail, key_id
            )
            rows.append(
                (
                    seq,
                    now,
                    e.actor,
                    e.action,
                    e.target,
                    e.run_id,
                    e.detail,
                    key_id,
                    prev,
                    digest,
                    mac(digest),
                )
            )
            prev = digest
        head = (seq, prev, key_id, head_mac(mac_key, seq, prev), now)
        if len(rows) == 1 and self._insert_and_head is not None:
            cur.execute(self._insert_and_head, (*rows[0], *head))
        else:
            if rows:
                cur.executemany(self._insert, rows)
            cur.execute(self._head, head)
        self._maybe_checkpoint(cur, keys, seq, prev, now)
        return seq

    def _lock_head(self, cur: Any) -> tuple[int, str]:
        """The last record's (seq, hash), the head row locked until the transaction ends."""
        postgres = self.db.dialect == "postgresql"
        query = "SELECT seq, hash FROM audit_head WHERE id = 1" + (
            " FOR UPDATE" if postgres else ""
        )
        cur.execute(query)
        row = cur.fetchone()
        if row is None and postgres:
            # the first append ever: make a row to lock (concurrent makers wait on its key)
            cur.execute(
                "INSERT INTO audit_head (id, seq, hash, key_id, mac, ts) "
                "VALUES (1, 0, %s, '', '', 0) ON CONFLICT (id) DO NOTHING",
                (GENESIS,),
            )
            cur.execute(query)
            row = cur.fetchone()
        if row is not None and int(row[0]) > 0:
            return int(row[0]), str(row[1])
        # no head: continue after the last record, if any (verify reports a missing head)
        cur.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        last = cur.fetchone()
        return (int(last[0]), str(last[1])) if last is not None else (0, GENESIS)

    def _maybe_checkpoint(self, cur: Any, keys: Keys, seq: int, digest: str, now: float) -> None:
        with self._lock:
            if self._last_checkpoint is None:
                self._last_checkpoint = self._newest_checkpoint(cur)
            due = seq - self._last_checkpoint >= self.every
        if not due:
            return
        newest = self._newest_checkpoint(cur)  # another process may have made one
        if seq - newest >= self.every:
            self._sign(cur, keys, seq, digest, now)
            newest = seq
        with self._lock:
            self._last_checkpoint = newest

    @staticmethod
    def _newest_checkpoint(cur: Any) -> int:
        cur.execute("SELECT MAX(seq) FROM audit_checkpoints")
        row = cur.fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    def _sign(self, cur: Any, keys: Keys, seq: int, digest: str, now: float) -> Checkpoint:
        key_id, private = _signing_key(keys)
        signature = private.sign(checkpoint_message(seq, digest, now)).hex()
        cp = Checkpoint(seq, digest, now, key_id, _public_hex(private), signature)
        cur.execute(
            self._insert_cp,
            (cp.seq, cp.hash, cp.ts, cp.key_id, cp.public_key, cp.signature, None),
        )
        return cp

    def checkpoint(self) -> Checkpoint | None:
        """A signed checkpoint of the chain as it is now (the newest one when it already
        covers the last record); None for an empty chain."""
        keys = self._keys()
        with self.db.transaction() as cur:
            seq, digest = self._lock_head(cur)
            if seq == 0:
                return None
            cur.execute(
                self.db.sql(f"SELECT {_CP_COLUMNS} FROM audit_checkpoints WHERE seq = ?"), (seq,)
            )
            found = cur.fetchone()
            if found is not None:
                return _checkpoint(found)
            cp = self._sign(cur, keys, seq, digest, time.time())
        with self._lock:
            self._last_checkpoint = max(self._last_checkpoint or 0, cp.seq)
        return cp

    # -- retention ------------------------------------------------------------------------------
    def prune(self, before: float, actor: str) -> Pruned:
        """Delete the records up to the newest checkpoint made at or before `before` (never
        past it) and the checkpoints older than that one, which stays as the anchor that
        verification starts from; the prune itself is appended to the chain."""
        with self.db.transaction() as cur:
            self._lock_head(cur)
            cur.execute(
                self.db.sql(
                    f"SELECT {_CP_COLUMNS} FROM audit_checkpoints WHERE ts <= ? "
                    "ORDER BY seq DESC LIMIT 1"
                ),
                (before,),
            )
            found = cur.fetchone()
            if found is None:
                return Pruned(None, 0, 0)
            anchor = _checkpoint(found)
            cur.execute(self.db.sql("SELECT COUNT(*) FROM audit_log WHERE seq <= ?"), (anchor.seq,))
            count = int(cur.fetchone()[0])
            if count == 0:
                return Pruned(anchor.seq, 0, 0)
            cur.execute(self.db.sql("DELETE FROM audit_log WHERE seq <= ?"), (anchor.seq,))
            cur.execute(self.db.sql("DELETE FROM audit_checkpoints WHERE seq < ?"), (anchor.seq,))
            dropped = int(cur.rowcount)
            detail = {
                "anchor": anchor.seq,
                "anchor_hash": anchor.hash,
                "records": count,
                "checkpoints": dropped,
                "before": before,
            }
            self.append(cur, [entry(actor, PRUNE_ACTION, detail=detail)])
        return Pruned(anchor.seq, count, dropped)

    # -- queries --------------------------------------------------------------------------------
    def head(self) -> dict[str, Any] | None:
        """The head row (seq, hash, key_id, mac, ts), or None before the first record."""
        found = self.db.rows("SELECT seq, hash, key_id, mac, ts FROM audit_head WHERE id = 1")
        return found[0] if found else None

    def count(self, upto: int | None = None) -> int:
        """How many records the chain holds (with seq <= `upto` when given)."""
        if upto is None:
            return int(self.db.scalar("SELECT COUNT(*) FROM audit_log") or 0)
        return int(self.db.scalar("SELECT COUNT(*) FROM audit_log WHERE seq <= ?", (upto,)) or 0)

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint, oldest first."""
        with self.db.transaction(write=False) as cur:
            cur.execute(f"SELECT {_CP_COLUMNS} FROM audit_checkpoints ORDER BY seq")
            return [_checkpoint(row) for row in cur.fetchall()]

    def mark_exported(self, seqs: Sequence[int], where: str) -> None:
        """Record that the checkpoints `seqs` were exported to `where`."""
        with self.db.transaction() as cur:
            cur.executemany(
                self.db.sql("UPDATE audit_checkpoints SET exported_to = ? WHERE seq = ?"),
                [(where, seq) for seq in seqs],
            )

    def records(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> list[Record]:
        """Records with seq > `after` and `since` <= ts < `until`, by seq, at most `limit`:
        page with `after` = the last seq of the previous page."""
        where: list[str] = ["seq > ?"]
        params: list[Any] = [after]
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if until is not None:
            where.append("ts < ?")
            params.append(until)
        with self.db.transaction(write=False) as cur:
            cur.execute(
                self.db.sql(
                    f"SELECT {_COLUMNS} FROM audit_log WHERE {' AND '.join(where)} "
                    "ORDER BY seq LIMIT ?"
                ),
                (*params, int(limit)),
            )
            return [Record(*row) for row in cur.fetchall()]

    def latest(self, limit: int) -> list[Record]:
        """The newest `limit` records, oldest first."""
        with self.db.transaction(write=False) as cur:
            cur.execute(
                self.db.sql(f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT ?"),
                (int(limit),),
            )
            return [Record(*row) for row in reversed(cur.fetchall())]

    # -- verification ---------------------------------------------------------------------------
    def verify(self, exported: Sequence[Checkpoint] = (), chunk: int = FETCH_ROWS) -> Finding:
        """Check the whole chain in one consistent snapshot, streamed in seq order; the first
        bad record, or ok. `exported`: checkpoints kept outside the database."""
        with self._snapshot() as cursor:
            cur = cursor()
            cur.execute("SELECT seq, hash, key_id, mac, ts FROM audit_head WHERE id = 1")
            head = cur.fetchone()
            cur.execute(f"SELECT {_CP_COLUMNS} FROM audit_checkpoints ORDER BY seq")
            stored = [_checkpoint(row) for row in cur.fetchall()]
            cur.close()
            check = _Verifier(self._keys(), stored, list(exported))
            rows = cursor(streaming=True)
            rows.execute(f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq")
            while True:
                batch = rows.fetchmany(chunk)
                if not batch or not check.records(batch):
                    break
            rows.close()
            first_seq = check.first
            pruned_to = (
                self._prune_anchor(cursor) if first_seq is not None and first_seq > 1 else None
            )
        return check.finish(head, pruned_to)

    def _prune_anchor(self, cursor: Callable[..., Any]) -> int | None:
        """The anchor named by the newest prune record (None: the chain was never pruned)."""
        cur = cursor()
        cur.execute(
            self.db.sql("SELECT detail FROM audit_log WHERE action = ? ORDER BY seq DESC LIMIT 1"),
            (PRUNE_ACTION,),
        )
        row = cur.fetchone()
        cur.close()
        if row is None:
            return None
        try:
            return int(json.loads(row[0])["anchor"])
        except (TypeError, ValueError, KeyError):
            return None

    @contextmanager
    def _snapshot(self) -> Iterator[Callable[..., Any]]:
        """One read-only transaction (a consistent snapshot on both databases); yields a
        cursor factory, `streaming=True` for a server-side cursor on PostgreSQL."""
        db = self.db
        postgres = db.dialect == "postgresql"
        with db.connection() as conn, db._wrap_errors():
            begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if postgres else "BEGIN"
            conn.execute(begin)
            counter = iter(range(1 << 30))

            def cursor(streaming: bool = False) -> Any:
                if streaming and postgres:
                    return conn.cursor(name=f"lockgate_audit_{next(counter)}")
                return conn.cursor()

            try:
                yield cursor
            finally:
                conn.execute("ROLLBACK")


def _checkpoint(row: Sequence[Any]) -> Checkpoint:
    return Checkpoint(
        int(row[0]), str(row[1]), float(row[2]), str(row[3]), str(row[4]), str(row[5]), row[6]
    )


class _Verifier:
    """The checks of `AuditChain.verify`, fed records in seq order."""

    def __init__(self, keys: Keys, stored: list[Checkpoint], exported: list[Checkpoint]) -> None:
        self.keys = keys
        self.macs: dict[str, tuple[bytes, _Mac] | None] = {}
        self.publics: dict[str, str | None] = {}
        self.first: int | None = None
        self.last = 0
        self.last_hash = GENESIS
        self.count = 0
        self.first_prev: str | None = None
        self.problem: tuple[int, str, str] | None = None  # (seq, problem, message)
        self.stored = stored
        self.exported = exported
        self.at: dict[int, list[tuple[Checkpoint, str]]] = {}
        self.cp_problems: list[tuple[int, str, str]] = []
        for cp, what in [
            *((c, "checkpoint") for c in stored),
            *((c, "exported") for c in exported),
        ]:
            self.at.setdefault(cp.seq, []).append((cp, what))
            bad = self._signature_problem(cp, what)
            if bad:
                self.cp_problems.append((cp.seq, "checkpoint", bad))

    def _mac_key(self, key_id: str) -> tuple[bytes, _Mac] | None:
        """The MAC key `key_id` and its record MAC function (None: the keyring lacks it)."""
        if key_id not in self.macs:
            try:
                key = self.keys.key_for(MAC_PURPOSE, key_id)[1]
                self.macs[key_id] = (key, _Mac(key))
            except (LockgateError, KeyError, ValueError):
                self.macs[key_id] = None
        return self.macs[key_id]

    def _public(self, key_id: str) -> str | None:
        if key_id not in self.publics:
            try:
                self.publics[key_id] = _public_hex(_signing_key(self.keys, key_id)[1])
            except (LockgateError, KeyError, ValueError):
                self.publics[key_id] = None
        return self.publics[key_id]

    def _signature_problem(self, cp: Checkpoint, what: str) -> str | None:
        name = _cp_name(cp, what)
        expected = self._public(cp.key_id)
        if expected is None:
            return f"{name} names key {cp.key_id!r}, which the keyring does not hold"
        if cp.public_key != expected:
            return f"{name} was not signed by the project's audit key (forged checkpoint)"
        if not signature_ok(cp, expected):
            return f"{name} has an invalid signature (forged or altered checkpoint)"
        return None

    def records(self, batch: list[Any]) -> bool:
        """Check a batch; False once a bad record was found (the rest need not be read)."""
        prev_seq, prev_hash = self.last, self.last_hash
        at = self.at
        for row in batch:
            seq, ts, actor, action, target, run_id, detail, key_id, prev, digest, mac = row
            seq = int(seq)
            if self.first is None:
                self.first, self.first_prev = seq, prev
                prev_seq, prev_hash = seq - 1, prev  # checked against the start in finish()
            if seq != prev_seq + 1:
                gap = f"{prev_seq + 1}" if seq == prev_seq + 2 else f"{prev_seq + 1}-{seq - 1}"
                return self._bad(
                    (prev_seq, prev_hash),
                    prev_seq + 1,
                    "missing",
                    f"record(s) {gap} are missing: the chain jumps from record {prev_seq} to "
                    f"{seq} (deleted records)",
                )
            if prev != prev_hash:
                return self._bad(
                    (prev_seq, prev_hash),
                    seq,
                    "reordered",
                    f"record {seq} does not follow record {prev_seq}: its prev_hash differs "
                    "from that record's hash (inserted or reordered records)",
                )
            if record_hash(prev, seq, ts, actor, action, target, run_id, detail, key_id) != digest:
                return self._bad(
                    (prev_seq, prev_hash),
                    seq,
                    "edited",
                    f"record {seq} was edited: its fields do not match its hash",
                )
            key = self._mac_key(key_id)
            if key is None:
                return self._bad(
                    (prev_seq, prev_hash),
                    seq,
                    "key",
                    f"record {seq} was written with key {key_id!r}, which the keyring does "
                    "not hold; verify with the project's keys",
                )
            if key[1](digest) != mac:
                return self._bad(
                    (prev_seq, prev_hash),
                    seq,
                    "forged",
                    f"record {seq} is forged: its hash matches its fields but its MAC does "
                    "not (re-hashed without the audit key)",
                )
            if seq in at:
                for cp, what in at[seq]:
                    if cp.hash != digest:
                        return self._bad(
                            (prev_seq, prev_hash),
                            seq,
                            "checkpoint",
                            f"record {seq} differs from what {_cp_name(cp, what)} signed: the "
                            "chain was rewritten up to here",
                        )
            prev_seq, prev_hash = seq, digest
            self.count += 1
        self.last, self.last_hash = prev_seq, prev_hash
        return True

    def _bad(self, good: tuple[int, str], seq: int, problem: str, message: str) -> bool:
        """Note the first bad record; `good`: the last good one's (seq, hash)."""
        self.last, self.last_hash = good
        self.problem = (seq, problem, message)
        return False

    def finish(self, head: Any, pruned_to: int | None) -> Finding:
        found: list[tuple[int, int, str, str]] = []  # (seq, rank, problem, message)
        if self.problem is not None:
            found.append((self.problem[0], 0, self.problem[1], self.problem[2]))
        found += [(s, 1, p, m) for s, p, m in self.cp_problems]
        start = self._start_problem(pruned_to)
        if start is not None:
            found.append((start[0], 0, start[1], start[2]))
        if self.problem is None:
            found += self._end_problems(head)
        exported = len(self.exported)
        last = self.last if self.first is not None else None
        problem: str | None = None
        seq: int | None = None
        if found:
            seq, _, problem, message = min(found, key=lambda f: (f[0], f[1]))
        elif self.first is None:
            message = "audit chain OK: empty"
        else:
            message = (
                f"audit chain OK: {self.count} record(s), {self.first}-{self.last}, "
                f"{len(self.stored)} checkpoint(s)"
                + (f", {exported} exported checkpoint(s)" if exported else "")
            )
        return Finding(
            not found,
            message,
            problem,
            seq,
            self.count,
            self.first,
            last,
            len(self.stored),
            exported,
        )

    def _start_problem(self, pruned_to: int | None) -> tuple[int, str, str] | None:
        """The first record must follow the genesis, or (after a prune) the anchor
        checkpoint, and the newest prune record must name that anchor."""
        first, prev = self.first, self.first_prev
        if first is None:
            return None
        if first == 1:
            if prev != GENESIS:
                return (
                    1,
                    "reordered",
                    "record 1 does not start the chain: its prev_hash is "
                    "not the genesis value (inserted or reordered records)",
                )
            return None
        anchor_seq = first - 1
        if pruned_to is None or pruned_to < anchor_seq:
            lost = (pruned_to or 0) + 1
            return (
                lost,
                "missing",
                f"record(s) {lost}-{anchor_seq} are missing from the start of the chain "
                "(deleted outside `lockgate audit prune`)",
            )
        if pruned_to > anchor_seq:
            return (
                first,
                "inserted",
                f"record {first} lies before the prune anchor {pruned_to} (records inserted "
                "after a prune)",
            )
        anchors = self.at.get(anchor_seq, [])
        if not anchors:
            return (
                first,
                "checkpoint",
                f"the checkpoint at record {anchor_seq}, which anchors the chain after pruning, "
                "is missing",
            )
        for cp, what in anchors:
            if cp.hash != prev:
                return (
                    first,
                    "reordered",
                    f"record {first} does not follow {_cp_name(cp, what)}, the anchor after "
                    "pruning: its prev_hash differs (inserted or reordered records)",
                )
        return None

    def _end_problems(self, head: Any) -> list[tuple[int, int, str, str]]:
        """The head and every checkpoint beyond the last record: a dropped tail."""
        last = self.last if self.first is not None else 0
        out: list[tuple[int, int, str, str]] = []
        beyond = [(cp, what) for seq, cps in self.at.items() if seq > last for cp, what in cps]
        for cp, what in beyond:
            out.append(
                (
                    last + 1,
                    2,
                    "truncated",
                    f"the chain ends at record {last} but {_cp_name(cp, what)} vouches for "
                    f"record {cp.seq}: records {last + 1}-{cp.seq} were deleted (truncated)",
                )
            )
        if head is None:
            if last:
                out.append(
                    (
                        last + 1,
                        3,
                        "head",
                        "the chain's head row is missing (deleted: the tail "
                        f"after record {last} cannot be checked)",
                    )
                )
            return out
        seq, digest, key_id, mac = int(head[0]), str(head[1]), str(head[2]), str(head[3])
        key = self._mac_key(key_id)
        if key is None or head_mac(key[0], seq, digest) != mac:
            out.append(
                (
                    last + 1,
                    3,
                    "head",
                    f"the chain's head (record {seq}) has a wrong MAC: it was rewritten without "
                    f"the audit key (records after {last} may have been deleted)",
                )
            )
        elif seq > last:
            out.append(
                (
                    last + 1,
                    3,
                    "truncated",
                    f"the chain ends at record {last} but its head is record {seq}: records "
                    f"{last + 1}-{seq} were deleted (truncated)",
                )
            )
        elif seq < last:
            out.append(
                (
                    seq + 1,
                    3,
                    "inserted",
                    f"record {seq + 1} lies beyond the chain's head (record {seq}): inserted "
                    "after it, or the head was rolled back",
                )
            )
        elif digest != self.last_hash:
            out.append(
                (seq, 3, "head", f"the chain's head does not match record {seq} (rewritten)")
            )
        return out


def _cp_name(cp: Checkpoint, what: str) -> str:
    if what == "exported":
        return f"the exported checkpoint at record {cp.seq}" + (
            f" ({cp.exported_to})" if cp.exported_to else ""
        )
    return f"the checkpoint at record {cp.seq}"
