"""Shared by the example tests: a copy of an example project with its data generated."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.cli.helpers import _env

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_copy(
    tmp_path: Path, name: str, generator: str, outputs: tuple[str, ...]
) -> tuple[Path, str]:
    """`examples/NAME` copied under tmp_path (without state or `outputs`), with its data
    `generator` run there: the copy and what the generator printed."""
    copy = tmp_path / name
    skip = shutil.ignore_patterns("__pycache__", ".lockgate", *outputs)
    shutil.copytree(EXAMPLES / name, copy, ignore=skip)
    done = subprocess.run(
        [sys.executable, generator], cwd=copy, env=_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return copy, done.stdout
