"""Profile an engine workload: where does `api.run` spend its time?

    python -m bench.profile W2 [--runs N] [--db URL] [--no-store]
                              [--tool pyspy|phases|cprofile|pyinstrument] [--wall] [--top 25]

Tools (py-spy and pyinstrument are dev-only: `pip install` them into the venv, not pyproject):
- `pyspy` (default): py-spy samples every thread at 1 kHz, --nonblocking, after a warm-up done
  in a child process. By default only while a thread holds the GIL: percentages are of GIL-held
  time, which is what bounds a GIL-bound run; `--wall` instead samples the calling thread all the
  time, waits included (where does the caller's wall clock go?).
- `phases`: the wall time of each stage of `api.run` (open the store, record the version, create
  the run, the engine's run, the final flush, close), no profiler overhead.
- `cprofile`: cProfile in every thread with a per-thread CPU clock (deterministic, so per-call
  overhead inflates small functions); prints self and cumulative CPU, by function and component.
- `pyinstrument`: wall-clock call tree of the calling thread only.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.engine import Bench

SHAPES = {
    "W2": ("fanout.py", "bench_fanout"),
    "W3": ("chain.py", "bench_chain"),
    "W5": ("retry.py", "bench_retry"),
    "W6": ("grid.py", "bench_grid"),
}


class AllThreads:
    """cProfile in every thread, each with its own CPU clock (time.thread_time)."""

    def __init__(self) -> None:
        self.profiles: dict[str, list[cProfile.Profile]] = defaultdict(list)
        self._lock = threading.Lock()

    def _new(self) -> cProfile.Profile:
        prof = cProfile.Profile(time.thread_time)
        name = threading.current_thread().name
        name = name.rsplit("-", 1)[0] if name.startswith("lockgate-worker") else name
        with self._lock:
            self.profiles[name].append(prof)
        return prof

    def _hook(self, *_: Any) -> None:
        sys.setprofile(None)
        self._new().enable()

    def start(self) -> None:
        threading.setprofile(self._hook)
        self.main = self._new()
        self.main.enable()

    def stop(self) -> pstats.Stats:
        self.main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        stats: pstats.Stats | None = None
        for profs in self.profiles.values():
            for prof in profs:
                prof.create_stats()
                stats = pstats.Stats(prof) if stats is None else stats.add(prof)
        assert stats is not None
        return stats

    def per_thread(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, profs in self.profiles.items():
            total = 0.0
            for prof in profs:
                st = pstats.Stats(prof)
                total += st.total_tt  # type: ignore[attr-defined]
            out[name] = total
        return out


def component(filename: str, funcname: str) -> str:
    """A coarse owner for a function: a lockgate module, a library, or the C driver."""
    if filename == "~":  # built-in
        if "sqlite3" in funcname:
            return "sqlite3 (C driver)"
        if "psycopg" in funcname:
            return "psycopg"
        if "lock" in funcname or "acquire" in funcname or "_thread" in funcname:
            return "locks/threads (C)"
        if "json" in funcname or "encode" in funcname:
            return "json (C)"
        return "builtins"
    if "/lockgate/" in filename and "/site-packages/" not in filename:
        return "lockgate/" + filename.split("/lockgate/", 1)[1]
    for lib in ("sqlalchemy", "psycopg", "alembic"):
        if f"/{lib}/" in filename:
            return lib
    if "bench/pipelines" in filename:
        return "task functions"
    tail = filename.rsplit("/", 1)[-1]
    return f"stdlib {tail}" if "/python3" in filename else tail


def report(
    stats: pstats.Stats, top: int, threads: dict[str, float], runs: int, walls: list[float]
) -> None:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    wall = sum(walls)
    print(
        f"{runs} profiled runs, wall {wall:.3f} s under the profiler "
        f"(median {sorted(walls)[len(walls) // 2]:.4f} s/run); "
        f"CPU seen by the profiler {total:.3f} s (all threads)"
    )
    print("\nCPU per thread:")
    for name, secs in sorted(threads.items(), key=lambda kv: -kv[1]):
        print(f"  {secs:8.3f} s {100 * secs / total:5.1f}%  {name}")
    groups: dict[str, float] = defaultdict(float)
    for (filename, _line, funcname), v in raw.items():
        groups[component(filename, funcname)] += v[2]
    print("\nself CPU by component:")
    for name, secs in sorted(groups.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {secs:8.3f} s {100 * secs / total:5.1f}%  {name}")
    print(f"\ntop {top} functions by self CPU (tottime), with cumulative time:")
    rows = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    print(f"  {'self s':>8} {'self%':>6} {'cum s':>8} {'calls':>9}  function")
    for (filename, line, funcname), (_cc, nc, tt, ct, _callers) in rows:
        where = (
            funcname if filename == "~" else f"{component(filename, funcname)}:{line} {funcname}"
        )
        print(f"  {tt:8.3f} {100 * tt / total:5.1f}% {ct:8.3f} {nc:9d}  {where}")
    print("\ntop lockgate functions by cumulative CPU:")
    mine = [kv for kv in raw.items() if component(kv[0][0], kv[0][2]).startswith("lockgate/")]
    for (filename, line, funcname), (_cc, nc, _tt, ct, _callers) in sorted(
        mine, key=lambda kv: -kv[1][3]
    )[:top]:
        where = f"{component(filename, funcname)}:{line} {funcname}"
        print(f"  {ct:8.3f} {100 * ct / total:5.1f}% {nc:9d}  {where}")


class Phases:
    """Wall time of each stage of `api.run`, by wrapping (from outside src/) the functions it
    calls. Stages: open the store, record the version, create the run row, the engine's run,
    the final flush + writer stop, closing the store; `other` is what is left."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.restore: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr)
        times = self.times[label]

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times.append(time.perf_counter() - start)

        self.restore.append((owner, attr, original))
        setattr(owner, attr, timed)

    def install(self) -> None:
        from lockgate import api
        from lockgate.engine.run import RunEngine
        from lockgate.store.store import Store
        from lockgate.store.writer import EventWriter

        self.wrap(api, "open_store", "open_store (engine, schema check, recover_lost)")
        self.wrap(Store, "record_version", "record_version (fingerprint + select/insert)")
        self.wrap(Store, "create_run", "create_run (insert + commit)")
        self.wrap(RunEngine, "run", "RunEngine.run (the run itself)")
        self.wrap(EventWriter, "close", "writer.close (final flush + join)")
        self.wrap(Store, "close", "Store.close (engine.dispose)")
        self.wrap(Store, "write_events", "  [writer thread] write_events, all batches")

    def uninstall(self) -> None:
        for owner, attr, original in reversed(self.restore):
            setattr(owner, attr, original)

    def print(self, walls: list[float]) -> None:
        n = len(walls)
        wall = sum(walls) / n
        print(f"api.run wall, mean of {n} runs: {wall * 1000:.2f} ms")
        accounted = 0.0
        for label, samples in self.times.items():
            per_run = sum(samples) / n
            if not label.startswith("  "):
                accounted += per_run
            calls = len(samples) / n
            print(
                f"  {per_run * 1000:8.2f} ms {100 * per_run / wall:5.1f}%  {label}"
                + (f"  ({calls:.1f} calls/run)" if calls != 1 else "")
            )
        print(
            f"  {(wall - accounted) * 1000:8.2f} ms {100 * (wall - accounted) / wall:5.1f}%  other "
            "(pipeline checks, RunEngine(), executor, run id)"
        )


def _frame_component(frame: str) -> str:
    """`func (path/file.py)` as py-spy prints it -> a component like those of `component()`."""
    name, _, where = frame.rpartition(" (")
    where = where.rstrip(")")
    if where.startswith("lockgate/"):
        return where
    for lib in ("sqlalchemy", "psycopg", "alembic"):
        if where.startswith(lib + "/"):
            return lib
    if where.startswith("bench/pipelines"):
        return "task functions"
    return f"stdlib {where}" if not where.startswith("bench/") else where


def analyse_pyspy(
    path: str, rate: int, wall: float, top: int, only_thread: str | None = None
) -> None:
    """Self and inclusive time per function from py-spy's raw (collapsed) stacks."""
    threads: dict[str, int] = defaultdict(int)
    self_t: dict[str, int] = defaultdict(int)
    incl: dict[str, int] = defaultdict(int)
    comp: dict[str, int] = defaultdict(int)
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        if thread.startswith("lockgate-worker"):
            thread = "lockgate-worker-*"
        if only_thread is not None and thread != only_thread:
            continue
        frames = frames[1:]
        if not frames:
            continue
        total += count
        threads[thread] += count
        self_t[frames[-1]] += count
        comp[_frame_component(frames[-1])] += count
        for f in set(frames):
            incl[f] += count
    held = total / rate
    if only_thread is not None:
        print(
            f"py-spy --idle at {rate} Hz, thread {only_thread} only: {total} samples = "
            f"{held:.2f} s over {wall:.2f} s of runs; percentages are of that thread's wall time"
        )
    else:
        print(
            f"py-spy --gil at {rate} Hz: {total} samples = {held:.2f} s with the GIL held, over "
            f"{wall:.2f} s of runs ({100 * held / wall:.0f}% GIL busy); "
            "percentages are of GIL-held time"
        )
    print("\nGIL time per thread:")
    for name, n in sorted(threads.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("\nself time by component:")
    for name, n in sorted(comp.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {100 * n / total:5.1f}%  {name}")
    print(f"\ntop {top} functions by self time:")
    for name, n in sorted(self_t.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {100 * n / total:5.1f}%  {name}")
    print(f"\ntop {top} lockgate functions by inclusive time:")
    mine = [(k, v) for k, v in incl.items() if "(lockgate/" in k]
    for name, n in sorted(mine, key=lambda kv: -kv[1])[:top]:
        print(f"  {100 * n / total:5.1f}%  {name}")


def _have_pyspy() -> bool:
    import shutil

    return bool(shutil.which("py-spy")) or Path(sys.executable).with_name("py-spy").exists()


def run_under_pyspy(args: argparse.Namespace, runs: int) -> None:
    """Warm up in a child, attach py-spy to it, then let it do the measured runs."""
    import shutil
    import subprocess
    import tempfile

    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [
        sys.executable,
        "-m",
        "bench.profile",
        args.workload,
        "--tool",
        "none",
        "--runs",
        str(runs),
    ]
    if args.db:
        argv += ["--db", args.db]
    if args.no_store:
        argv.append("--no-store")
    child = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert child.stdin is not None and child.stdout is not None
    ready = child.stdout.readline().split()
    raw = args.save or tempfile.mktemp(prefix="lockgate-pyspy-", suffix=".txt")
    rate = 1000
    mode = ["--idle"] if args.wall else ["--gil"]
    spy = subprocess.Popen(
        [
            pyspy,
            "record",
            "--pid",
            ready[1],
            "--format",
            "raw",
            "-r",
            str(rate),
            *mode,
            "--threads",
            "--nolineno",
            "--nonblocking",
            "-o",
            raw,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let py-spy attach
    child.stdin.write("go\n")
    child.stdin.flush()
    done = child.stdout.readline().split()
    child.wait()
    spy.wait()
    walls = [float(x) for x in done[1:]]
    print(f"{len(walls)} runs, median {sorted(walls)[len(walls) // 2]:.4f} s/run under py-spy")
    analyse_pyspy(raw, rate, sum(walls), args.top, "MainThread" if args.wall else None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("workload", choices=sorted(SHAPES))
    ap.add_argument(
        "--runs", type=int, default=None, help="profiled runs (default: W6 3, others 20)"
    )
    ap.add_argument("--db", default=None)
    ap.add_argument(
        "--tool",
        choices=("pyspy", "cprofile", "pyinstrument", "phases", "none"),
        default="pyspy",
        help="pyspy needs `pip install py-spy` in the venv (default)",
    )
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--no-store", action="store_true", help="store=False (engine alone)")
    ap.add_argument(
        "--wall",
        action="store_true",
        help="pyspy: wall-clock view of the calling thread, waits included",
    )
    ap.add_argument("--save", default=None, help="write the merged cProfile stats to this file")
    args = ap.parse_args(argv)
    runs = args.runs or (3 if args.workload == "W6" else 20)
    b = Bench(args.db)
    pipe = b.pipeline(*SHAPES[args.workload])
    for _ in range(2):  # warm-up: imports, schema creation, first-run caches
        b.run(pipe, store=not args.no_store)
    walls: list[float] = []
    if args.tool == "pyspy" and not _have_pyspy():
        print(
            "py-spy is not installed (pip install py-spy into the venv); using cProfile",
            file=sys.stderr,
        )
        args.tool = "cprofile"
    if args.tool == "pyspy":
        b.cleanup()
        run_under_pyspy(args, runs)
        return 0
    if args.tool == "none":  # the child of --tool pyspy: warm, wait, run, report the walls
        print("READY", os.getpid(), flush=True)
        sys.stdin.readline()
        walls = [b.run(pipe, store=not args.no_store) for _ in range(runs)]
        print("DONE", *walls, flush=True)
    elif args.tool == "phases":
        phases = Phases()
        phases.install()
        for _ in range(runs):
            walls.append(b.run(pipe, store=not args.no_store))
        phases.uninstall()
        phases.print(walls)
    elif args.tool == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
        for _ in range(runs):
            walls.append(b.run(pipe, store=not args.no_store))
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    else:
        prof = AllThreads()
        prof.start()
        for _ in range(runs):
            walls.append(b.run(pipe, store=not args.no_store))
        stats = prof.stop()
        if args.save:
            stats.dump_stats(args.save)
        report(stats, args.top, prof.per_thread(), runs, walls)
    if b.failures:
        print("failures:", b.failures[:3], file=sys.stderr)
    b.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["AllThreads", "component", "main", "Path"]
