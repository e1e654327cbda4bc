"""Fixtures of the dataset tests: SQL datasets on SQLite and PostgreSQL, and a PostgreSQL
cluster that asks for a password (scram-sha-256), for the credential errors."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from tests.conftest import _Cluster, _pg_bindir, _unavailable


@pytest.fixture(autouse=True)
def _own_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes outside a run record the gate's decision in the working folder's project: each
    test works in a fresh folder of its own (not its tmp_path, which tests list; never the
    repository)."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


PG_PASSWORD = "s3cr3t p@ss/word"
"""The password cluster's superuser password: URL-unsafe characters on purpose."""


class _PasswordCluster(_Cluster):
    """A throwaway cluster whose every connection (TCP and socket) needs the password."""

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        if args[0] == "initdb":
            pwfile = self.base / "pwfile"
            pwfile.write_text(PG_PASSWORD + "\n", encoding="utf-8")
            if self.as_root:
                shutil.chown(pwfile, "postgres", "postgres")
            rest = list(args)
            at = rest.index("-A")
            rest[at : at + 2] = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
            args = tuple(rest)
        return super()._run(*args, timeout=timeout)

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{quote(PG_PASSWORD, safe='')}@127.0.0.1:{self.port}/postgres"


@pytest.fixture(scope="session")
def pg_password_server() -> Iterator[str]:
    """The URL (with its password) of a PostgreSQL cluster using scram-sha-256 passwords."""
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
    assert bindir is not None
    cluster = _PasswordCluster(bindir)
    try:
        cluster.start()
    except Exception as exc:
        cluster.stop()
        pytest.fail(f"could not start a password-protected PostgreSQL cluster: {exc}")
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sql_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """Makes dataset URIs of tables in one database: a fresh SQLite file, then a fresh
    PostgreSQL database: sql_uri("orders") -> "sqlite:///.../data.db#orders"."""
    if request.param == "sqlite":
        base = f"sqlite:///{tmp_path / 'data.db'}"
    else:
        base = str(request.getfixturevalue("pg_url"))
    return lambda table: f"{base}#{table}"
