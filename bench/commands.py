"""Whole commands timed from a cold process: W0 (import, init), W1 (`lockgate run`)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import LOCKGATE, REPO, child_env, median, repeat, spread, timed_subprocess


class _Folders:
    """Temporary folders, removed at the end."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def new(self) -> str:
        folder = tempfile.mkdtemp(prefix="lockgate-bench-")
        self.made.append(folder)
        return folder

    def cleanup(self) -> None:
        for folder in self.made:
            shutil.rmtree(folder, ignore_errors=True)


def _check(proc: Any, what: str, errors: list[str]) -> None:
    if proc.returncode != 0 and len(errors) < 3:
        tail = (
            (proc.stderr or proc.stdout or b"").decode(errors="replace").strip().splitlines()[-3:]
        )
        errors.append(f"{what} exited {proc.returncode}: {' | '.join(tail)}")


def w0(db_url: str | None, reps: int) -> list[dict[str, Any]]:
    env = child_env(db_url)
    python = sys.executable
    errors: list[str] = []
    folders = _Folders()

    def cmd(argv: list[str], cwd: str | None = None) -> float:
        wall, proc = timed_subprocess(argv, cwd=cwd or folders.new(), env=env)
        _check(proc, " ".join(Path(a).name for a in argv[:3]), errors)
        return wall

    bare = repeat(lambda: cmd([python, "-c", "pass"]), reps)
    imp = repeat(lambda: cmd([python, "-c", "import lockgate"]), reps)
    imp_wall = median(imp)
    lines: list[dict[str, Any]] = [
        {
            "workload": "W0",
            "case": "import",
            "command": "python -c 'import lockgate'",
            **spread(imp),
            "python_startup_s": round(median(bare), 6),
            "import_only_s": round(imp_wall - median(bare), 6),
            "target": "<= 0.15 s",
            "meets": imp_wall <= 0.15 and not errors,
            "reps": reps,
        }
    ]
    errors_import = list(errors)
    errors.clear()
    init = repeat(lambda: cmd([str(LOCKGATE), "init"]), reps)  # a new empty folder each time
    init_wall = median(init)
    # "no other set-up command needed": right after init, the example pipeline runs
    ready_dir = folders.new()
    _, first = timed_subprocess([str(LOCKGATE), "init"], cwd=ready_dir, env=env)
    _check(first, "lockgate init", errors)
    _, then = timed_subprocess([str(LOCKGATE), "run", "hello"], cwd=ready_dir, env=env)
    _check(then, "lockgate run hello (right after init)", errors)
    ready = first.returncode == 0 and then.returncode == 0
    lines.append(
        {
            "workload": "W0",
            "case": "init",
            "command": "lockgate init (in an empty folder)",
            **spread(init),
            "run_after_init_ok": ready,
            "target": "<= 0.5 s; no other set-up command needed",
            "meets": init_wall <= 0.5 and ready and not errors,
            "reps": reps,
        }
    )
    for line, errs in ((lines[0], errors_import), (lines[1], errors)):
        line["ok"] = not errs
        if errs:
            line["failures"] = errs
    folders.cleanup()
    return lines


W1_FILES = {
    "python": REPO / "examples" / "simple_pipeline.py",
    "yaml": REPO / "examples" / "yaml" / "simple_pipeline.yaml",
    "airflow-dag": REPO / "examples" / "airflow" / "simple_pipeline.py",
}
"""The seed pipeline in each form; the Airflow file is the seed tutorial's DAG, unchanged."""


def w1(db_url: str | None, reps: int) -> list[dict[str, Any]]:
    env = child_env(db_url)
    folders = _Folders()
    try:
        return [_w1_case(case, file, env, folders, reps) for case, file in W1_FILES.items()]
    finally:
        folders.cleanup()


def _w1_case(
    case: str, file: Path, env: dict[str, str], folders: _Folders, reps: int
) -> dict[str, Any]:
    errors: list[str] = []

    def run_in(folder: str) -> float:
        wall, proc = timed_subprocess([str(LOCKGATE), "run", str(file)], cwd=folder, env=env)
        _check(proc, "lockgate run", errors)
        return wall

    project = folders.new()  # no lockgate.toml: state goes to ./.lockgate, as for a user
    samples = repeat(lambda: run_in(project), reps)  # the warm-up run creates ./.lockgate
    fresh = repeat(lambda: run_in(folders.new()), reps, warmup=0)  # first run in a new folder
    wall = median(samples)
    line: dict[str, Any] = {
        "workload": "W1",
        "case": case,
        "command": f"lockgate run {file.relative_to(REPO)}",
        "executor": "threads",
        "n_tasks": 3,
        **spread(samples),
        "diag_first_run_new_folder_s": round(median(fresh), 6),
        "target": "<= 0.5 s",
        "meets": wall <= 0.5 and not errors,
        "reps": reps,
        "ok": not errors,
    }
    if errors:
        line["failures"] = errors
    return line
