"""Helpers to run the real `lockgate` console script in temporary projects."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_BIN = Path(sys.executable).parent / "lockgate"
LOCKGATE = str(_BIN) if _BIN.exists() else (shutil.which("lockgate") or "lockgate")


@dataclass
class Done:
    """A finished `lockgate` command."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        lines = self.out.splitlines()
        assert len(lines) == 1, f"expected one JSON line, got: {self.out!r}"
        return json.loads(lines[0])

    def __str__(self) -> str:  # shown when an assertion fails
        command = " ".join(self.args)
        return f"lockgate {command} -> {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    env.update(COLUMNS="200", TERM="dumb", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def lockgate(
    cwd: Path,
    *args: str,
    timeout: float = 60,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> Done:
    """Run `lockgate ARGS` in `cwd` (without LOCKGATE_* variables in its environment, plus
    `env`), with `stdin` as its standard input."""
    proc = subprocess.run(
        [LOCKGATE, *args],
        cwd=cwd,
        env={**_env(), **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Done(args, proc.returncode, proc.stdout, proc.stderr)


def one_line_error(done: Done) -> str:
    """Check a user error: exit code 2, nothing but one 'error: ...' line on stderr."""
    assert done.code == 2, done
    assert "Traceback" not in done.err, done
    lines = done.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done
    return lines[0]


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return path


def lockgate_all(cwd: Path, commands: list[list[str]]) -> list[Done]:
    """Run independent `lockgate` commands concurrently (they only read the project)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return list(pool.map(lambda args: lockgate(cwd, *args), commands))
