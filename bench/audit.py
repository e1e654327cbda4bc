"""AUDIT: the audit chain's own costs on SQLite (or the `--db` database): appending 1,000,000
records in bulk (`AuditChain.append`, many records per transaction, every record hashed, MACed
and linked as in production, checkpoints every 1,000) and verifying all of them (`verify`:
streamed in seq order, hashes, MACs, links, head and checkpoints).

The append line reports the median rate over the chunks of the million (each chunk of
`CHUNK` records is one timed repetition, its own transaction); verification is timed `reps`
times after one warm-up. The W2 overhead of the chain on the engine is `diag_audit_overhead_pct`
on the W2 line (bench/engine.py).

    python -m bench.audit [--reps 5] [--records 1000000] [--db postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from typing import Any

from bench.common import median, repeat, spread

RECORDS = 1_000_000
CHUNK = 100_000
"""Records appended per transaction (one timed repetition each)."""
VERIFY_TARGET_S = 10.0
"""'Verifies in seconds': 1M records in at most this long."""


def _entries(start: int, count: int) -> list[Any]:
    """Records like a busy project's: CLI actions and pipeline versions with small details."""
    from lockgate.store.audit import entry

    actions = ("run.trigger", "pipeline.pause", "connection.set", "secret.read", "waiver.create")
    return [
        entry(
            "ops@build-host",
            actions[i % len(actions)],
            f"pipeline_{i % 97}",
            f"20261124T0314{i % 60:02d}-{i:012x}",
            {"i": i, "params": ["day", "region"], "zone": "staging"},
        )
        for i in range(start, start + count)
    ]


def audit_bench(reps: int, db_url: str | None, records: int = RECORDS) -> list[dict[str, Any]]:
    from lockgate.privacy.keys import Keyring
    from lockgate.store.store import Store

    folder = tempfile.mkdtemp(prefix="lockgate-bench-audit-")
    url = db_url or f"sqlite:///{folder}/lockgate.db"
    store = Store(url, keys=Keyring.generate())
    chain = store.chain
    try:
        if db_url:  # a shared database: start from an empty chain
            with store.db.transaction() as cur:
                for table in ("audit_log", "audit_head", "audit_checkpoints"):
                    cur.execute(f"DELETE FROM {table}")
        chunks: list[float] = []
        appended = 0
        while appended < records:
            count = min(CHUNK, records - appended)
            batch = _entries(appended, count)
            start = time.perf_counter()
            with store.db.transaction() as cur:
                chain.append(cur, batch)
            chunks.append(time.perf_counter() - start)
            appended += count
        total = sum(chunks)
        rates = [CHUNK / s for s in chunks[:-1]] or [records / total]
        findings: list[Any] = []

        def verify() -> float:
            begin = time.perf_counter()
            findings.append(store.audit_verify())
            return time.perf_counter() - begin

        samples = repeat(verify, reps)
        wall = median(samples)
        ok = all(f.ok and f.records == records for f in findings)
        checkpoints = len(store.audit_checkpoints())
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)
    db = "postgresql" if db_url else "sqlite"
    return [
        {
            "workload": "AUDIT",
            "case": "append",
            "db": db,
            "records": records,
            "records_per_transaction": CHUNK,
            "appends_per_s": round(median(rates)),
            "total_s": round(total, 3),
            "checkpoints": checkpoints,
            "target": "bulk appends as fast as hashing allows (no target)",
            "meets": True,
            "reps": len(rates),
            "ok": appended == records,
        },
        {
            "workload": "AUDIT",
            "case": "verify",
            "db": db,
            "records": records,
            **spread(samples, 3),
            "records_per_s": round(records / wall),
            "target": f"verify {records:,} records in seconds (<= {VERIFY_TARGET_S:g} s)",
            "meets": ok and wall <= VERIFY_TARGET_S,
            "reps": reps,
            "ok": ok,
        },
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--records", type=int, default=RECORDS)
    ap.add_argument("--db", default=None)
    args = ap.parse_args(argv)
    for line in audit_bench(args.reps, args.db, args.records):
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
