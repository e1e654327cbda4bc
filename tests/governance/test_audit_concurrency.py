"""Several appenders on one chain (SQLite and PostgreSQL): two processes and several threads
appending at once keep one valid chain, without a lost, duplicated or unlinked record."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from lockgate.store.store import Store

from .audit_support import KEYS_ENV, keys

APPENDER = """
import os, sys, time
from lockgate.privacy.keys import Keyring
from lockgate.store.store import Store

url, count, name, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
store = Store(url, keys=Keyring.from_env(os.environ["AUDIT_TEST_KEYS"]))
store.chain.every = 25
while not os.path.exists(go):
    time.sleep(0.005)
for i in range(count):
    store.audit("concurrent", f"{name}-{i}", {"i": i}, actor=name)
store.close()
"""


def test_two_processes_append_to_one_chain(db_url: str, tmp_path: Path) -> None:
    Store(db_url, keys=keys()).close()  # the schema exists before both start
    go = tmp_path / "go"
    env = {**os.environ, "AUDIT_TEST_KEYS": KEYS_ENV}
    count = 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, db_url, str(count), name, str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    time.sleep(0.3)  # both are waiting for the signal
    go.write_text("")
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    store = Store(db_url, keys=keys())
    try:
        found = store.audit_verify()
        assert found.ok, found.message
        assert (found.records, found.first, found.last) == (2 * count, 1, 2 * count)
        records = store.audit_records(limit=10 * count)
        for name in ("a", "b"):
            mine = [r.target for r in records if r.actor == name]
            assert mine == [f"{name}-{i}" for i in range(count)]  # each in its own order
        head = store.audit_head()
        assert head is not None and head["seq"] == 2 * count
        seqs = [cp.seq for cp in store.audit_checkpoints()]
        assert seqs and all(b - a >= 25 for a, b in zip(seqs, seqs[1:], strict=False))
    finally:
        store.close()


def test_threads_of_one_process_append_to_one_chain(db_url: str) -> None:
    store = Store(db_url, keys=keys())
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for i in range(40):
                store.audit("threaded", f"{name}-{i}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        found = store.audit_verify()
        assert found.ok and found.records == 160, found.message
    finally:
        store.close()
