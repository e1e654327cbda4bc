"""`make bench`: run the engine and data workloads of ../shared/BENCHMARKS.md and print one JSON line each.

    python -m bench.run [--only W2,W4] [--reps 5] [--db postgresql://...] [--no-diag]

Every figure is the median of --reps repetitions (default 5) after one warm-up. State goes to a
real metadata DB: an SQLite file in a temporary project folder, or the database given by --db.
W0 and W1 time whole commands; W2-W6 each run in a fresh child process (`--child`), which calls
`lockgate.api.run` in-process and measures its own peak RSS; W7 runs the scheduler daemon in such a
child process (bench/scheduler.py); W8 fills a database with 100,000 runs and times the server's
runs list and pipeline page through a real `lockgate serve` (bench/history.py); W9 runs the Dask
executor on a real scheduler and two workers on 127.0.0.1 (bench/distributed.py). D1-D4, the
privacy engine's workloads, run in such a child too (bench/privacy_tables.py: scan and mask
tables; bench/privacy_text.py: free text and log lines, on
the synthetic labelled corpus of bench/privacy_corpus.py). AUDIT appends a million audit records
and verifies them (bench/audit.py). Lines go to stdout and to
bench/results/latest.jsonl; a short summary goes to stderr. Fields named `diag_*` are diagnostics,
not part of a target. To see where the time goes: `python -m bench.profile W2` (bench/profile.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import REPO, child_env, db_kind, git_version

WORKLOADS = (
    "W0",
    "W1",
    "W2",
    "W3",
    "W4",
    "W5",
    "W6",
    "W7",
    "W8",
    "W9",
    "D1",
    "D2",
    "D3",
    "D4",
    "D5",
    "AUDIT",
)
CASES = {
    "W2": ["W2"],
    "W3": ["W3"],
    "W4": ["W4:threads", "W4:processes"],
    "W5": ["W5"],
    "W6": ["W6"],
    "W7": ["W7"],
    "W8": ["W8"],
    "W9": ["W9"],
    "D1": ["D1"],
    "D2": ["D2"],
    "D3": ["D3"],
    "D4": ["D4"],
    "D5": ["D5"],
    "AUDIT": ["AUDIT"],
}
PRIVACY = {
    "D1": "privacy_tables",
    "D2": "privacy_tables",
    "D3": "privacy_text",
    "D4": "privacy_text",
    "D5": "dataplane",
}
"""The data workloads: the module whose function of the same name (lower case) runs them."""
RESULTS = Path(__file__).resolve().parent / "results" / "latest.jsonl"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--only", default="", help="comma-separated workloads, e.g. W2,W3 (default: all)"
    )
    ap.add_argument("--reps", type=int, default=5, help="repetitions after one warm-up (default 5)")
    ap.add_argument("--db", default=None, help="database URL (default: SQLite in a temp project)")
    ap.add_argument("--no-diag", action="store_true", help="skip the diag_no_store_* runs")
    ap.add_argument("--out", default=str(RESULTS), help="where to write the JSON lines")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.reps < 1:
        ap.error("--reps must be >= 1")
    if args.reps < 5 and not args.child:
        print(f"bench: --reps {args.reps} is below the 5 BENCHMARKS.md asks for", file=sys.stderr)
    wanted = [w.strip().upper() for w in args.only.split(",") if w.strip()] or list(WORKLOADS)
    unknown = [w for w in wanted if w not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    args.workloads = wanted
    return args


def _run_child(case: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run one engine case in a fresh interpreter; it writes its lines to a temporary file."""
    with tempfile.NamedTemporaryFile(prefix="lockgate-bench-", suffix=".jsonl", delete=False) as fh:
        out = fh.name
    argv = [
        sys.executable,
        "-m",
        "bench.run",
        "--child",
        case,
        "--reps",
        str(args.reps),
        "--out",
        out,
    ]
    if args.db:
        argv += ["--db", args.db]
    if args.no_diag:
        argv.append("--no-diag")
    env = child_env(None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    try:
        proc = subprocess.run(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            check=False,
        )
        lines = [json.loads(x) for x in Path(out).read_text().splitlines() if x.strip()]
    finally:
        os.unlink(out)
    if proc.returncode != 0 or not lines:
        workload, _, executor = case.partition(":")
        return [
            {
                "workload": workload,
                **({"executor": executor} if executor else {}),
                "ok": False,
                "meets": False,
                "error": f"benchmark process exited with code {proc.returncode}",
            }
        ]
    return lines


def _child(args: argparse.Namespace) -> int:
    if args.child == "W7":
        from bench import scheduler

        lines = scheduler.w7(args.db, args.reps, not args.no_diag)
    elif args.child == "W8":
        from bench import history

        lines = history.w8(args.reps, args.db)
    elif args.child == "W9":
        from bench import distributed

        lines = distributed.w9(args.db, args.reps, not args.no_diag)
    elif args.child == "AUDIT":
        from bench import audit

        lines = audit.audit_bench(args.reps, args.db)
    elif args.child in PRIVACY:
        import importlib

        module = importlib.import_module(f"bench.{PRIVACY[args.child]}")
        fn = getattr(module, args.child.lower())
        lines = fn(args.reps, args.db) if args.child == "D5" else fn(args.reps)
    else:
        from bench import engine

        lines = engine.run_case(args.child, args.db, args.reps, not args.no_diag)
    with open(args.out, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line) + "\n")
    return 0


def _summary(line: dict[str, Any]) -> str:
    name = line["workload"] + (f" {line['case']}" if "case" in line else "")
    name += f" {line['executor']}" if "executor" in line and line["workload"] in ("W4",) else ""
    key = next(
        (
            k
            for k in (
                "tasks_per_s",
                "ms_per_link",
                "efficiency",
                "overhead_ms",
                "rows_per_s",
                "lines_per_s",
                "appends_per_s",
                "records_per_s",
            )
            if k in line
        ),
        None,
    )
    figure = f"wall {line['wall_s']:.4f} s" if "wall_s" in line else line.get("error", "")
    if "p99_ms" in line:
        figure = f"p50 {line['p50_ms']} ms, p99 {line['p99_ms']} ms ({line['n_samples']} samples)"
    if line.get("p95_worst"):
        figure = f"worst p95 {line['p95_ms']} ms ({line['p95_worst']}, {len(line['endpoints'])} endpoints)"
    if key:
        figure += f", {key} {line[key]}"
    if "peak_rss_mb" in line and line["workload"] == "W6":
        figure += f", peak RSS {line['peak_rss_mb']} MB"
    verdict = "MEETS" if line.get("meets") else "misses"
    return f"  {name:<16} {verdict:<7} {figure}   (target: {line.get('target', '?')})"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.child:
        return _child(args)
    from bench import commands

    meta = {
        "db": db_kind(args.db),
        "commit": git_version(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    written: list[dict[str, Any]] = []
    with out_path.open("w", encoding="utf-8") as out:
        for workload in args.workloads:
            if workload == "W0":
                lines = commands.w0(args.db, args.reps)
            elif workload == "W1":
                lines = commands.w1(args.db, args.reps)
            else:
                lines = [x for case in CASES[workload] for x in _run_child(case, args)]
            for line in lines:
                line.update({k: v for k, v in meta.items() if k not in line})
                text = json.dumps(line)
                print(text, flush=True)
                out.write(text + "\n")
                out.flush()
                written.append(line)
    met = sum(1 for x in written if x.get("meets"))
    print(
        f"bench: {met}/{len(written)} lines meet their target (db {meta['db']}, "
        f"{args.reps} reps, commit {meta['commit']}); written to {out_path}",
        file=sys.stderr,
    )
    for line in written:
        print(_summary(line), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
