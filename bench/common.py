"""Helpers shared by the workloads: repetitions, medians, result lines, process facts."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PIPELINES = Path(__file__).resolve().parent / "pipelines"
BIN = Path(sys.executable).parent
LOCKGATE = BIN / "lockgate"


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def repeat(fn: Callable[[], float], reps: int, warmup: int = 1) -> list[float]:
    """Call `fn` (which returns the seconds it measured) `warmup` times, then `reps` times."""
    for _ in range(warmup):
        fn()
    return [fn() for _ in range(reps)]


def spread(samples: list[float], digits: int = 6) -> dict[str, Any]:
    """Median, min and max of the samples, for the result line."""
    return {
        "wall_s": round(median(samples), digits),
        "wall_s_min": round(min(samples), digits),
        "wall_s_max": round(max(samples), digits),
    }


def timed_subprocess(
    argv: list[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    """Wall time of a whole command, from fork to exit."""
    start = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    return time.perf_counter() - start, proc


def child_env(db_url: str | None) -> dict[str, str]:
    """Environment for commands the benchmark starts: no stray lockgate settings, except the
    database when `--db` was given. PYTHONDONTWRITEBYTECODE (set on these machines) is dropped so
    that, as on a user's machine, the warm-up leaves compiled bytecode for the timed runs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LOCKGATE_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    if db_url:
        env["LOCKGATE_DB_URL"] = db_url
    return env


def rss_mb(field: str = "VmHWM") -> float | None:
    """A memory figure of this process from /proc/self/status (VmHWM = peak RSS), in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    if field == "VmHWM":
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return None


def git_version() -> str:
    """Short commit id of the repo, with `+dirty` when the working tree has changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def db_kind(db_url: str | None) -> str:
    """`sqlite` or `postgresql` (never the URL itself: it may hold a password)."""
    if not db_url:
        return "sqlite"
    scheme = db_url.split(":", 1)[0].split("+", 1)[0]
    return "postgresql" if scheme.startswith("postgres") else scheme
