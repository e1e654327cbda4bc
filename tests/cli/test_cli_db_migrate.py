"""`lockgate db migrate-to URL` through the real CLI: a used SQLite project moved to PostgreSQL
(a role that logs in with a password and owns its database, no superuser), then `lockgate runs`
and `lockgate audit verify` on the copy; SQLite to SQLite; and the one-line errors (exit 2)
for a bad URL, an unreachable server, a wrong password, a missing driver, a target that is not
empty and the project's own database. No password ever appears in what the command prints."""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lockgate.config import Project
from lockgate.store.ddl import SCHEMA_REVISION

from .helpers import Done, lockgate, one_line_error, write

FLAKY = """
id: flaky
tasks:
  first:
    shell: "echo one"
  second:
    depends_on: first
    retries: 2
    retry_delay: 0s
    shell: "test -f marker || { touch marker; echo failing once >&2; exit 1; }"
"""

FAILING = """
id: failing
tasks:
  broken:
    shell: "echo broken on purpose >&2; exit 3"
  never:
    depends_on: broken
    shell: "echo never"
"""

DATA = """
id: data
tasks:
  stage:
    copy:
      source: {uri: in/customers.csv, tags: {email: pii.email}}
      target: work/customers.parquet
      checks: [{unique: id}]
  publish:
    depends_on: stage
    copy:
      source: work/customers.parquet
      target: out/customers.csv
"""


@dataclass
class Role:
    """A PostgreSQL role that logs in with a password and owns one fresh database."""

    name: str
    password: str
    url: str
    """The database's URL with the role and its password."""

    def with_password(self, password: str) -> str:
        return self.url.replace(f":{self.password}@", f":{password}@")


def _hba_file(conn: object) -> Path:
    return Path(conn.execute("SHOW hba_file").fetchone()[0])  # type: ignore[attr-defined]


@pytest.fixture
def role(pg_server: str) -> Iterator[Role]:
    """A role with a password (checked: scram-sha-256 for it alone, on the throwaway cluster
    that trusts everyone else) owning a fresh database: the set-up docs/postgresql.md gives."""
    import psycopg

    suffix = secrets.token_hex(4)
    name, password, db = f"lockgate_{suffix}", f"pw-{secrets.token_hex(12)}", f"lg_{suffix}"
    line = f"host all {name} 127.0.0.1/32 scram-sha-256\n"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        conn.execute(f'CREATE DATABASE "{db}" OWNER {name}')
        hba = _hba_file(conn)
        hba.write_text(line + hba.read_text())
        conn.execute("SELECT pg_reload_conf()")
    host = pg_server.split("@", 1)[1].rsplit("/", 1)[0]
    found = Role(name, password, f"postgresql://{name}:{password}@{host}/{db}")
    deadline = time.monotonic() + 10
    while True:  # the server reloads its rules in the background
        try:
            psycopg.connect(found.with_password("wrong"), connect_timeout=5).close()
        except psycopg.OperationalError:
            break
        assert time.monotonic() < deadline, "the password rule was not loaded"
        time.sleep(0.05)
    try:
        yield found
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            hba = _hba_file(conn)
            hba.write_text(hba.read_text().replace(line, ""))
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,)
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
            conn.execute(f"DROP ROLE IF EXISTS {name}")


def _used(project: Project) -> dict[str, str]:
    """Use the project through the CLI: runs that retried, failed and wrote data, a user with
    a token, a signed checkpoint. Returns the runs' states by id."""
    root = project.root
    write(root, "pipelines/flaky.yaml", FLAKY)
    write(root, "pipelines/failing.yaml", FAILING)
    write(root, "pipelines/data.yaml", DATA)
    write(root, "in/customers.csv", "id,email\n1,ann@example.org\n2,bob@example.net\n")
    assert lockgate(root, "run", "flaky").code == 0
    assert lockgate(root, "run", "failing").code == 1
    assert lockgate(root, "run", "data").code == 0
    added = lockgate(root, "users", "add", "alice", "--role", "admin")
    assert added.code == 0, added
    assert lockgate(root, "tokens", "create", "--user", "alice", "--label", "ci").code == 0
    assert lockgate(root, "audit", "checkpoint").code == 0
    return _runs(root)


def _runs(root: Path, db_url: str | None = None) -> dict[str, str]:
    env = {"LOCKGATE_DB_URL": db_url} if db_url else None
    done = lockgate(root, "runs", "--json", env=env)
    assert done.code == 0, done
    return {r["id"]: r["state"] for r in done.json()["runs"]}


def _verify(root: Path, db_url: str | None = None) -> dict[str, object]:
    env = {"LOCKGATE_DB_URL": db_url} if db_url else None
    done = lockgate(root, "audit", "verify", "--json", env=env)
    assert done.code == 0, done
    found: dict[str, object] = done.json()
    return found


def _migrated(done: Done, tables: int) -> str:
    """Check the command's report; its `verified:` line."""
    assert done.code == 0, done
    lines = done.out.splitlines()
    assert len(lines) == tables + 3, done
    assert all(" row(s) copied" in line for line in lines[:tables]), done
    assert lines[tables].startswith(f"verified: {tables} tables, "), done
    assert "audit chain intact (" in lines[tables], done
    assert lines[tables + 1].startswith("audited: db.migrate_to, record "), done
    assert lines[tables + 2].startswith("next: ") and "LOCKGATE_DB_URL" in lines[tables + 2]
    return lines[tables]


def _tables() -> int:
    from lockgate.store.schema import metadata

    return len(metadata.tables)


@pytest.mark.postgres
def test_a_used_project_moves_to_postgresql_and_reads_the_same(
    project: Project, role: Role
) -> None:
    root = project.root
    runs = _used(project)
    assert sorted(runs.values()) == ["failed", "success", "success"]
    source_chain = _verify(root)

    done = lockgate(root, "db", "migrate-to", role.url)
    verified = _migrated(done, _tables())
    records = source_chain["records"]
    assert f"audit chain intact ({records} records)" in verified, done
    assert role.password not in done.out + done.err
    assert f'db_url = "postgresql://{role.name}@' in done.out  # the URL without its password
    assert "given by PGPASSWORD or ~/.pgpass" in done.out

    assert _runs(root, role.url) == runs  # the same runs, read from PostgreSQL
    copied_chain = _verify(root, role.url)
    assert copied_chain["ok"] is True
    assert copied_chain["records"] == records + 1  # + the migration's own record
    shown = lockgate(root, "audit", "show", "-n", "1", "--json", env={"LOCKGATE_DB_URL": role.url})
    [last] = shown.json()["records"]
    assert last["action"] == "db.migrate_to" and last["target"] == "sqlite:///" + str(
        root / ".lockgate" / "lockgate.db"
    )
    # the project goes on on PostgreSQL: a new run, the chain still intact
    again = lockgate(root, "run", "flaky", env={"LOCKGATE_DB_URL": role.url})
    assert again.code == 0, again
    assert len(_runs(root, role.url)) == len(runs) + 1
    assert _verify(root, role.url)["ok"] is True
    assert _runs(root) == runs  # the SQLite database was left as it was


def test_sqlite_to_sqlite_and_a_second_copy_into_it_is_refused(project: Project) -> None:
    root = project.root
    runs = _used(project)
    target = f"sqlite:///{root / 'backup' / 'copy.db'}"
    done = lockgate(root, "db", "migrate-to", target)
    _migrated(done, _tables())
    assert _runs(root, target) == runs
    assert _verify(root, target)["ok"] is True

    again = lockgate(root, "db", "migrate-to", target)
    line = one_line_error(again)
    assert "is not empty: table " in line and "fresh, empty database" in line, line
    assert _runs(root, target) == runs


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_usage_errors_are_one_line(project: Project, tmp_path: Path) -> None:
    root = project.root
    _used(project)
    cases = {
        "mysql://u:hunter2pw@db/x": "unsupported database URL 'mysql://u:***@db/x'",
        "": "give the URL of the database to copy into",
        f"postgresql://u:hunter2pw@127.0.0.1:{_closed_port()}/x": "cannot connect to "
        "postgresql://u:***@127.0.0.1:",
        project.db_url: "is the project's own metadata database",
        "sqlite:///:memory:": "in-memory databases",
    }
    for url, expected in cases.items():
        line = one_line_error(lockgate(root, "db", "migrate-to", url))
        assert expected in line, (url, line)
        assert "hunter2pw" not in line


@pytest.mark.postgres
def test_a_wrong_password_is_one_line_and_never_shown(project: Project, role: Role) -> None:
    root = project.root
    _used(project)
    wrong = f"pw-{secrets.token_hex(12)}"
    done = lockgate(root, "db", "migrate-to", role.with_password(wrong))
    line = one_line_error(done)
    assert "cannot connect to" in line and "password authentication failed" in line, line
    assert wrong not in done.out + done.err and role.password not in done.out + done.err


@pytest.mark.postgres
def test_without_the_driver_it_says_which_extra_to_install(
    project: Project, role: Role, tmp_path: Path
) -> None:
    root = project.root
    _used(project)
    shim = tmp_path / "no-psycopg" / "psycopg"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('psycopg is hidden for this test')\n")
    done = lockgate(root, "db", "migrate-to", role.url, env={"PYTHONPATH": str(shim.parent)})
    line = one_line_error(done)
    assert "pip install 'lockgate[postgres]'" in line, line
    assert role.password not in done.out + done.err


def test_the_report_lists_every_table(project: Project, tmp_path: Path) -> None:
    _used(project)
    done = lockgate(project.root, "db", "migrate-to", f"sqlite:///{tmp_path / 'c.db'}")
    _migrated(done, _tables())
    copied = {line.split()[0]: int(line.split()[1]) for line in done.out.splitlines()[:-3]}
    from lockgate.store.schema import metadata

    assert set(copied) == set(metadata.tables)
    assert copied["runs"] == 3 and copied["users"] >= 1 and copied["api_tokens"] == 1
    assert copied["lineage"] >= 2 and copied["audit_checkpoints"] >= 1
    total = sum(copied.values())
    assert f"verified: {_tables()} tables, {total} rows" in done.out


@pytest.mark.postgres
def test_a_runtime_role_with_only_data_rights_runs_the_project(
    project: Project, role: Role, pg_server: str
) -> None:
    """docs/postgresql.md's least privilege: the owner role creates and migrates the schema;
    the role lockgate runs as needs only to read and write rows and use the sequences."""
    import psycopg

    root = project.root
    runs = _used(project)
    assert lockgate(root, "db", "migrate-to", role.url).code == 0
    app = f"app_{secrets.token_hex(4)}"
    dbname = role.url.rsplit("/", 1)[1]
    admin = pg_server.rsplit("/", 1)[0] + "/" + dbname
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {app} LOGIN")
        conn.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{dbname}" TO {app}')
        conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}"
        )
        conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {app}")
    app_url = f"postgresql://{app}@" + admin.split("@", 1)[1]
    env = {"LOCKGATE_DB_URL": app_url}
    try:
        for name in ("flaky", "data"):
            done = lockgate(root, "run", name, env=env)
            assert done.code == 0, done
        upgraded = lockgate(root, "db", "upgrade", env=env)
        assert upgraded.out.strip().endswith(f"already at revision {SCHEMA_REVISION}"), upgraded
        assert len(_runs(root, app_url)) == len(runs) + 2
        assert _verify(root, app_url)["ok"] is True
        # and it cannot change the schema
        with psycopg.connect(app_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER TABLE runs ADD COLUMN x INTEGER")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (app,)
            )
            conn.execute(f"DROP OWNED BY {app}")
            conn.execute(f"DROP ROLE {app}")


@pytest.mark.postgres
def test_a_pg_dump_backup_restores_to_a_verifiable_database(
    project: Project, role: Role, pg_server: str, tmp_path: Path
) -> None:
    """docs/postgresql.md's backup: pg_dump in custom format, pg_restore as the owner role
    into a new database; the chain verifies and lockgate goes on there."""
    import psycopg

    root = project.root
    runs = _used(project)
    assert lockgate(root, "db", "migrate-to", role.url).code == 0
    dump = tmp_path / "lockgate.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", f"--file={dump}", role.url], check=True, timeout=60
    )
    restored = f"{role.url.rsplit('/', 1)[1]}_restored"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{restored}" OWNER {role.name}')
    url = role.url.rsplit("/", 1)[0] + "/" + restored
    try:
        subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={url}", str(dump)], check=True, timeout=60
        )
        assert _runs(root, url) == runs
        chain = _verify(root, url)
        assert chain["ok"] is True and chain["records"] == _verify(root, role.url)["records"]
        assert lockgate(root, "run", "flaky", env={"LOCKGATE_DB_URL": url}).code == 0
        assert _verify(root, url)["ok"] is True
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (restored,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{restored}"')


@pytest.mark.postgres
def test_the_password_may_stay_out_of_the_url(project: Project, role: Role) -> None:
    """The driver is libpq's: PGPASSWORD (or ~/.pgpass) gives the password, so lockgate.toml
    can hold the URL without it."""
    root = project.root
    runs = _used(project)
    bare = role.url.replace(f":{role.password}@", "@")
    done = lockgate(root, "db", "migrate-to", bare, env={"PGPASSWORD": role.password})
    _migrated(done, _tables())
    assert "given by PGPASSWORD" not in done.out
    listed = lockgate(
        root, "runs", "--json", env={"LOCKGATE_DB_URL": bare, "PGPASSWORD": role.password}
    )
    assert {r["id"]: r["state"] for r in listed.json()["runs"]} == runs
