"""`lockgate connections add/list/show/rm` through the real console script: secrets read from
standard input, never printed, never stored in clear; lockgate.toml connections; one-line
errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cli.helpers import Done, lockgate, one_line_error, write

from lockgate.config import Project
from lockgate.privacy.keys import ensure_key_file, keys_file_of

PG_PASSWORD = "hunter2-Pg-5ecret"
URL_PASSWORD = "url-pa55-77"
TOKEN = "tok-Abc123-xyz"
HEADER_KEY = "hdr-Key-4242"
SECRETS = (PG_PASSWORD, URL_PASSWORD, TOKEN, HEADER_KEY)


def run(cwd: Path, *args: str, stdin: str = "") -> Done:
    """`lockgate ARGS` with `stdin` as its standard input (empty: never a terminal's)."""
    return lockgate(cwd, *args, stdin=stdin)


@pytest.fixture
def root(project: Project) -> Path:
    """A project with a key file, as `lockgate init` leaves it."""
    ensure_key_file(keys_file_of(project))
    return project.root


def no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def db_bytes(root: Path) -> bytes:
    """The metadata database's files (main file, WAL, shared memory), as bytes."""
    files = sorted((root / ".lockgate").glob("lockgate.db*"))
    assert files
    return b"".join(f.read_bytes() for f in files)


def test_add_list_show_rm_never_show_or_store_a_secret(root: Path) -> None:
    added = run(
        root,
        "connections",
        "add",
        "warehouse",
        "postgresql://etl@db.internal:5432/dw",
        "--secret",
        "password",
        stdin=PG_PASSWORD + "\n",
    )
    assert added.code == 0, added
    assert (
        "connection warehouse added (postgresql" in added.out and "secrets: password" in added.out
    )
    api = run(
        root,
        "connections",
        "add",
        "api",
        f"https://ann:{URL_PASSWORD}@api.example.com/v1",
        "-o",
        'headers={"Accept": "application/json"}',
        "-o",
        "max_pages=50",
        "-s",
        "token",
        "-s",
        "headers",
        stdin=f'{TOKEN}\n{{"X-Api-Key": "{HEADER_KEY}"}}\n',
    )
    assert api.code == 0, api
    assert (
        api.err.startswith("warning: the URL holds a password") and "--secret password" in api.err
    )
    lake = lockgate(
        root, "connections", "add", "lake", "s3://bucket/exports", "-o", "region=eu-west-1"
    )
    assert lake.code == 0, lake

    listed = lockgate(root, "connections", "list")
    assert listed.code == 0, listed
    lines = listed.out.splitlines()
    assert lines[0].split() == ["name", "kind", "url", "secrets", "source"]
    assert lines[1].split() == [
        "api",
        "http",
        "https://ann@api.example.com/v1",
        "headers,",
        "password,",
        "token",
        "store",
    ]
    assert lines[2].split() == ["lake", "s3", "s3://bucket/exports", "-", "store"]
    assert lines[3].split()[:4] == [
        "warehouse",
        "postgresql",
        "postgresql://etl@db.internal:5432/dw",
        "password",
    ]

    doc = lockgate(root, "connections", "list", "--json").json()
    by_name = {c["name"]: c for c in doc["connections"]}
    assert by_name["api"]["secrets"] == ["headers", "password", "token"]
    assert by_name["api"]["options"] == {"headers": {"Accept": "application/json"}, "max_pages": 50}
    assert (
        by_name["lake"]["options"] == {"region": "eu-west-1"} and by_name["lake"]["secrets"] == []
    )

    shown = lockgate(root, "connections", "show", "api")
    assert shown.code == 0, shown
    assert "url      https://ann@api.example.com/v1" in shown.out
    assert "secrets  headers, password, token (encrypted)" in shown.out
    assert 'option   headers={"Accept": "application/json"}' in shown.out
    assert lockgate(root, "connections", "show", "warehouse", "--json").json()["secrets"] == [
        "password"
    ]

    everything = [added, api, lake, listed, shown]
    no_secret_in(*(d.out + d.err for d in everything))
    stored = db_bytes(root)
    for secret in SECRETS:
        assert secret.encode() not in stored

    removed = lockgate(root, "connections", "rm", "warehouse")
    assert removed.code == 0 and "connection warehouse removed" in removed.out
    names = [
        c["name"] for c in lockgate(root, "connections", "list", "--json").json()["connections"]
    ]
    assert names == ["api", "lake"]


def test_secrets_are_never_taken_from_the_command_line(root: Path) -> None:
    done = lockgate(
        root,
        "connections",
        "add",
        "wh",
        "postgresql://etl@db/dw",
        "--secret",
        f"password={PG_PASSWORD}",
    )
    line = one_line_error(done)
    assert "--secret takes a field name only" in line and PG_PASSWORD not in line
    done = lockgate(
        root, "connections", "add", "wh", "postgresql://etl@db/dw", "-o", f"password={PG_PASSWORD}"
    )
    line = one_line_error(done)
    assert "'password' is a secret" in line and "--secret password" in line
    assert PG_PASSWORD not in line


def test_add_errors_are_one_line(root: Path) -> None:
    line = one_line_error(
        run(root, "connections", "add", "wh", "postgresql://etl@db/dw", "-s", "passwd", stdin="x\n")
    )
    assert (
        "'passwd' is not a secret field of a postgresql connection; did you mean 'password'?"
        in line
    )
    line = one_line_error(
        run(root, "connections", "add", "wh", "postgresql://etl@db/dw", "-s", "password")
    )
    assert "expected 1 secret value(s) on standard input" in line
    line = one_line_error(lockgate(root, "connections", "add", "wh", "ftp://host/x"))
    assert "unknown scheme 'ftp'" in line
    line = one_line_error(lockgate(root, "connections", "add", "bad name", "s3://b"))
    assert "invalid connection name 'bad name'" in line
    assert lockgate(root, "connections", "add", "wh", "s3://b").code == 0
    line = one_line_error(lockgate(root, "connections", "add", "wh", "s3://c"))
    assert "connection 'wh' exists already" in line and "--replace" in line
    replaced = lockgate(root, "connections", "add", "wh", "s3://c", "--replace")
    assert replaced.code == 0 and "connection wh replaced" in replaced.out
    line = one_line_error(lockgate(root, "connections", "show", "wj"))
    assert line == "error: unknown connection 'wj'; known connections: wh"
    line = one_line_error(lockgate(root, "connections", "rm", "nope"))
    assert line == "error: no connection 'nope' in the store; the store holds wh"


def test_secrets_without_project_keys(project: Project) -> None:
    done = run(
        project.root,
        "connections",
        "add",
        "wh",
        "postgresql://etl@db/dw",
        "-s",
        "password",
        stdin="x\n",
    )
    line = one_line_error(done)
    assert "its secrets need the project's keys" in line and "lockgate init" in line


def test_toml_connections_are_listed_with_their_variables(root: Path) -> None:
    write(
        root,
        "lockgate.toml",
        """
        [connections.warehouse]
        url = "postgresql://etl@db.internal:5432/dw"
        password_env = "PG_PASSWORD"

        [connections.lake]
        url = "s3://bucket"
        endpoint_url = "http://127.0.0.1:9000"
        key_env = "LAKE_KEY"
        secret_env = "LAKE_SECRET"
        """,
    )
    assert lockgate(root, "connections", "add", "lake", "s3://other").code == 2
    listed = lockgate(root, "connections", "list")
    assert listed.code == 0, listed
    rows = [line.split() for line in listed.out.splitlines()[1:]]
    assert rows[0][:3] == ["lake", "s3", "s3://bucket"]
    assert "key ($LAKE_KEY), secret ($LAKE_SECRET)" in listed.out
    assert rows[1][:4] == [
        "warehouse",
        "postgresql",
        "postgresql://etl@db.internal:5432/dw",
        "password",
    ]
    assert "($PG_PASSWORD)" in listed.out and "lockgate.toml" in listed.out
    shown = lockgate(root, "connections", "show", "lake", "--json").json()
    assert shown["source"] == "lockgate.toml" and shown["secret_env"] == {
        "key": "LAKE_KEY",
        "secret": "LAKE_SECRET",
    }
    line = one_line_error(lockgate(root, "connections", "rm", "lake"))
    assert "defined in lockgate.toml: remove it there" in line


def test_a_plain_password_in_lockgate_toml_is_refused(root: Path) -> None:
    write(
        root,
        "lockgate.toml",
        f"""
        [connections.warehouse]
        url = "postgresql://etl@db/dw"
        password = "{PG_PASSWORD}"
        """,
    )
    line = one_line_error(lockgate(root, "connections", "list"))
    assert "[connections.warehouse]: password must not be written in lockgate.toml" in line
    assert 'password_env = "VARIABLE"' in line and PG_PASSWORD not in line


def test_a_password_on_the_command_line_is_taken_with_a_clear_warning(root: Path) -> None:
    added = lockgate(
        root, "connections", "add", "wh", f"postgresql://etl:{PG_PASSWORD}@db.internal/dw"
    )
    assert added.code == 0, added
    warning = added.err.splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: the URL holds a password")
    assert "shell history and `ps`" in warning[0] and "--secret password" in warning[0]
    assert "stores it encrypted" in warning[0]
    assert lockgate(root, "connections", "show", "wh", "--json").json()["secrets"] == ["password"]
    query = lockgate(
        root, "connections", "add", "wq", f"postgresql://etl@db/dw?password={URL_PASSWORD}"
    )
    assert query.code == 0 and query.err.startswith("warning: the URL holds a password"), query
    shown = lockgate(root, "connections", "show", "wq", "--json").json()
    assert shown["url"] == "postgresql://etl@db/dw" and shown["secrets"] == ["password"]
    lake = lockgate(root, "connections", "add", "lake", f"s3://AKIA1:{TOKEN}@bucket/x")
    assert lake.code == 0 and "--secret key --secret secret" in lake.err, lake
    plain = lockgate(root, "connections", "add", "ok", "postgresql://etl@db/dw")
    assert plain.code == 0 and plain.err == "", plain
    twice = lockgate(root, "connections", "add", "wh", f"postgresql://etl:{PG_PASSWORD}@db/dw")
    assert twice.code == 2 and twice.err.startswith("warning: the URL holds a password"), twice
    assert "error: connection 'wh' exists already" in twice.err
    no_secret_in(*(d.out + d.err for d in (added, query, lake, plain, twice)))
    stored = db_bytes(root)
    for secret in (PG_PASSWORD, URL_PASSWORD, TOKEN):
        assert secret.encode() not in stored
