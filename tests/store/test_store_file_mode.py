"""The SQLite metadata database holds password and token hashes, sessions and the audit log:
it is created readable by its owner only, and so are SQLite's -wal and -shm files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lockgate.privacy.keys import Keyring
from lockgate.store.store import Store


def test_a_new_database_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "lockgate.db"
    keys = Keyring.generate()
    store = Store(f"sqlite:///{path}", keys=lambda: keys)
    try:
        store.audit("test.write", "x", {})  # a write: the -wal file exists now
        for file in path.parent.iterdir():
            assert stat.S_IMODE(file.stat().st_mode) & 0o077 == 0, file
    finally:
        store.close()


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    Store(f"sqlite:///{path}").close()
    os.chmod(path, 0o640)  # the operator's choice (e.g. a group of readers) is left alone
    Store(f"sqlite:///{path}").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
