"""`lockgate secrets set/get/list/rm` through the real console script: values from standard
input or a file, never from the command line, printed only with --reveal; audited by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.helpers import Done, lockgate, one_line_error

from lockgate.config import Project
from lockgate.privacy.keys import ensure_key_file, keys_file_of

VALUE = "cli-Secret-Value-93"


def run(cwd: Path, *args: str, stdin: str = "") -> Done:
    """`lockgate ARGS` with `stdin` as its standard input (empty: never a terminal's)."""
    return lockgate(cwd, *args, stdin=stdin)


@pytest.fixture
def root(project: Project) -> Path:
    ensure_key_file(keys_file_of(project))
    return project.root


def test_set_get_list_rm(root: Path) -> None:
    done = run(root, "secrets", "set", "api/token", stdin=VALUE + "\n")
    assert done.code == 0 and "secret api/token set (encrypted)" in done.out, done
    assert VALUE not in (root / ".lockgate" / "secrets.json").read_text()
    assert "replaced" in run(root, "secrets", "set", "api/token", stdin=VALUE + "\n").out

    shown = lockgate(root, "secrets", "get", "api/token")
    assert shown.code == 0 and VALUE not in shown.out, shown
    assert "found in file (19 characters" in shown.out
    assert lockgate(root, "secrets", "get", "api/token", "--reveal").out == VALUE + "\n"

    listed = lockgate(root, "secrets", "list", "--json").json()
    assert [e["name"] for e in listed["file"]] == ["api/token"]
    assert listed["backends"] == ["env (LOCKGATE_SECRET_*)", "file (secrets.json)"]
    assert VALUE not in json.dumps(listed)

    assert lockgate(root, "secrets", "rm", "api/token").code == 0
    gone = lockgate(root, "secrets", "rm", "api/token")
    assert gone.code == 2 and "holds no secret 'api/token'" in gone.err

    audit = lockgate(root, "audit", "export").out
    actions = [json.loads(line)["action"] for line in audit.splitlines()]
    assert {"secret.set", "secret.read", "secret.reveal", "secret.remove"} <= set(actions)
    assert VALUE not in audit


def test_multi_line_values_from_a_file(root: Path, tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----\n")
    assert lockgate(root, "secrets", "set", "tls/key", "--from-file", str(key)).code == 0
    out = lockgate(root, "secrets", "get", "tls/key", "--reveal").out
    assert out == key.read_text()


def test_errors_are_one_line(root: Path) -> None:
    assert "not found; looked in: env ($LOCKGATE_SECRET_NOPE)" in one_line_error(
        lockgate(root, "secrets", "get", "nope")
    )
    assert "invalid secret name 'bad name'" in one_line_error(
        run(root, "secrets", "set", "bad name", stdin="x\n")
    )
    assert "is empty" in one_line_error(run(root, "secrets", "set", "empty", stdin=""))
    (root / "lockgate.toml").write_text('[secrets]\nbackends = ["envv"]\n')
    assert "unknown secret backend 'envv'" in one_line_error(lockgate(root, "secrets", "list"))


def test_notes_for_values_tasks_would_not_find_or_redact(root: Path) -> None:
    short = run(root, "secrets", "set", "pin", stdin="1234\n")
    assert short.code == 0 and "shorter than 5 characters are not redacted" in short.err, short
    (root / "lockgate.toml").write_text('[secrets]\nbackends = ["env"]\n')
    unused = run(root, "secrets", "set", "api/token", stdin=VALUE + "\n")
    assert unused.code == 0 and '"file" is not in [secrets] backends' in unused.err, unused
    blank = run(root, "secrets", "set", "blank", stdin="   \n")
    assert "empty or blank" in one_line_error(blank)
