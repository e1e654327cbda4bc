"""`lockgate --help`, `--version`, usage errors and `lockgate init`."""

from __future__ import annotations

from pathlib import Path

import pytest

import lockgate

from .helpers import lockgate as lg
from .helpers import one_line_error as user_error

COMMANDS = ("run", "resume", "list", "show", "runs", "logs", "test", "init", "db")


def test_help_lists_every_command(tmp_path: Path):
    done = lg(tmp_path, "--help")
    assert done.code == 0, done
    assert "Usage: lockgate" in done.out
    for command in COMMANDS:
        assert f" {command} " in done.out, command
    assert done.err == ""


def test_version(tmp_path: Path):
    done = lg(tmp_path, "--version")
    assert (done.code, done.out, done.err) == (0, f"lockgate {lockgate.__version__}\n", ""), done


def test_usage_errors_are_one_line(tmp_path: Path):
    assert "No such command 'bogus'" in user_error(lg(tmp_path, "bogus"))
    line = user_error(lg(tmp_path, "run"))
    assert "Missing argument" in line and "lockgate run --help" in line
    assert "--wat" in user_error(lg(tmp_path, "runs", "--wat"))
    assert "--concurrency" in user_error(lg(tmp_path, "run", "x.py", "-c", "0"))


def test_no_arguments_shows_help(tmp_path: Path):
    done = lg(tmp_path)
    assert "Usage: lockgate" in done.out, done
    assert "Traceback" not in done.err and "error" not in done.err, done


def test_init_creates_a_project_and_is_idempotent(tmp_path: Path):
    (tmp_path / ".gitignore").write_text("*.pyc\n")
    done = lg(tmp_path, "init")
    assert done.code == 0, done
    for rel in ("lockgate.toml", "pipelines/hello.py", ".gitignore"):
        assert f"created {rel}" in done.out, done
    assert "next: lockgate run hello" in done.out, done
    assert (tmp_path / ".lockgate" / "lockgate.db").is_file()
    assert (tmp_path / ".gitignore").read_text() == "*.pyc\n.lockgate/\n"
    assert '[lockgate]\npipelines = "pipelines"' in (tmp_path / "lockgate.toml").read_text()

    (tmp_path / "pipelines" / "hello.py").write_text("# mine now\n")
    again = lg(tmp_path, "init")
    assert again.code == 0, again
    assert "created" not in again.out, again
    assert (tmp_path / "pipelines" / "hello.py").read_text() == "# mine now\n"
    assert (tmp_path / ".gitignore").read_text() == "*.pyc\n.lockgate/\n"


def test_init_of_a_new_folder_then_run_the_example(tmp_path: Path):
    done = lg(tmp_path, "init", "proj")
    assert done.code == 0, done
    assert "next: cd proj && lockgate run hello" in done.out, done
    root = tmp_path / "proj"
    assert (root / "pipelines" / "hello.py").is_file()
    ran = lg(root / "pipelines", "run", "hello")  # the project is found upwards
    assert ran.code == 0, ran
    assert "run " in ran.out and ": success in " in ran.out, ran
    assert not (root / "pipelines" / ".lockgate").exists()


def test_internal_errors_exit_3_with_the_traceback(monkeypatch, capsys):
    """A bug in lockgate is not a user error (2) nor a failed run (1)."""
    from lockgate.cli import main as cli

    def broken(**_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "app", broken)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err
    assert err.endswith("error: internal error (RuntimeError): this is a bug in lockgate\n")
