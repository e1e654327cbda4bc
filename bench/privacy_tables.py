"""D1 and D2: scan and mask a 1,000,000-row customer table (bench/privacy_corpus.py).

D1 times `lockgate.privacy.scan.scan` on the table written as CSV and as Parquet, in this
process after one warm-up (recognizers loaded), and checks every column's classification
against `EXPECTED_CLASSIFICATION`. D2 times `lockgate.privacy.masking.mask_file` (Parquet in,
Parquet out: tokenize email, redact SSN, truncate card to its last 4 digits, generalise date of
birth to the year) on a 7-column extract of that table (`D2_COLUMNS`: the four masked columns,
an id, a name and an amount, the width of ENVIRONMENT.md's reference Parquet figures; the whole
23-column table, whose copy alone is bound by Parquet encoding, is timed once as
`diag_rows_per_s_23_columns`), each repetition in a fresh child process that measures its own peak RSS;
it also masks a 4,000,000-row file (the same table four times) to show that memory does not
grow with the row count. `diag_*_rows_per_s` say where the time goes: reading alone, a plain
copy (read + write, no masking: the I/O floor) and the four transforms alone on batches in
memory.

    python -m bench.privacy_tables [--only D1,D2] [--reps 5] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import REPO, repeat, rss_mb, spread

ROWS = 1_000_000
SEED = 5
D1_TARGET_S = 2.0
D2_TARGET_ROWS_PER_S = 1_000_000
D2_RULES = [
    {"column": "email", "op": "tokenize", "classification": "pii.email"},
    {"column": "ssn", "op": "redact", "classification": "pii.ssn"},
    {
        "column": "card_number",
        "op": "truncate",
        "options": {"keep_last": 4},
        "classification": "pci.pan",
    },
    {
        "column": "date_of_birth",
        "op": "generalize",
        "options": {"to": "year", "as_text": True},
        "classification": "pii.dob",
    },
]
D2_COLUMNS = (
    "customer_id",
    "full_name",
    "email",
    "ssn",
    "card_number",
    "date_of_birth",
    "order_total",
)
_rows = ROWS


def _corpus(rows: int) -> tuple[Any, dict[str, str | None]]:
    from bench.privacy_corpus import EXPECTED_CLASSIFICATION, customers

    return customers(rows, seed=SEED), dict(EXPECTED_CLASSIFICATION)


def _write(table: Any, folder: Path) -> dict[str, Path]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    paths = {"csv": folder / "customers.csv", "parquet": folder / "customers.parquet"}
    pacsv.write_csv(table, paths["csv"])
    pq.write_table(table, paths["parquet"])
    return paths


def _accuracy(found: dict[str, str | None], expected: dict[str, str | None]) -> dict[str, Any]:
    pii = [c for c, v in expected.items() if v is not None]
    wrong = {c: found.get(c) for c, v in expected.items() if found.get(c) != v}
    false_pii = [c for c, v in expected.items() if v is None and found.get(c) is not None]
    missed = [c for c in pii if found.get(c) != expected[c]]
    return {
        "columns": len(expected),
        "columns_right": len(expected) - len(wrong),
        "accuracy": round((len(expected) - len(wrong)) / len(expected), 4),
        "pii_columns": len(pii),
        "pii_columns_right": len(pii) - len(missed),
        "false_pii_columns": false_pii,
        "wrong": {c: {"got": g, "expected": expected[c]} for c, g in wrong.items()},
        "all_pii_right": not missed,
    }


def d1(reps: int) -> list[dict[str, Any]]:
    """Scan the customer table as CSV and as Parquet: wall s and per-column accuracy."""
    from lockgate.privacy.scan import scan

    table, expected = _corpus(_rows)
    folder = Path(tempfile.mkdtemp(prefix="lockgate-d1-"))
    lines = []
    try:
        paths = _write(table, folder)
        del table
        for case, path in paths.items():
            cold_start = time.perf_counter()
            first = scan(path)
            cold = time.perf_counter() - cold_start
            reports = []

            def once(path: Path = path, reports: list[Any] = reports) -> float:
                start = time.perf_counter()
                reports.append(scan(path))
                return time.perf_counter() - start

            samples = repeat(once, reps, warmup=0)
            found = first.classes()
            stable = all(r.classes() == found for r in reports)
            acc = _accuracy(found, expected)
            timing = spread(samples, 4)
            line = {
                "workload": "D1",
                "case": case,
                "rows": _rows,
                "file_mb": round(path.stat().st_size / 1e6, 1),
                "sample_size": first.sample_size,
                **timing,
                **acc,
                "confidence": {c.name: round(c.confidence, 3) for c in first.columns},
                "deterministic": stable,
                "target": f"<= {D1_TARGET_S:g} s; every PII column right, no false PII column",
                "meets": timing["wall_s"] <= D1_TARGET_S
                and acc["all_pii_right"]
                and not acc["false_pii_columns"],
                "peak_rss_mb": rss_mb(),
                "diag_first_scan_s": round(cold, 4),
                "reps": reps,
                "ok": stable,
            }
            lines.append(line)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return lines


_MASK_CHILD = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
from bench.common import rss_mb
from lockgate.privacy.keys import Keyring
from lockgate.privacy.masking import mask_file, rules_from
src, dst, warm_src, warm_dst = sys.argv[1:5]
rules = rules_from(json.loads(sys.argv[5]), where="D2")
keyring = Keyring.generate()
mask_file(warm_src, warm_dst, rules=rules, keyring=keyring)  # imports, first calls
base = rss_mb("VmRSS")
start = time.perf_counter()
summary = mask_file(src, dst, rules=rules, keyring=keyring)
wall = time.perf_counter() - start
print(json.dumps({{"wall_s": wall, "rows": summary.rows, "peak_rss_mb": rss_mb(),
                  "rss_before_mb": base, "tags": summary.tags}}))
"""


_DIAG_CHILD = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
from lockgate.io.formats import BatchReader, BatchWriter
from lockgate.privacy.keys import Keyring
from lockgate.privacy.masking import mask_table, rules_from
src, dst = sys.argv[1:3]
rules = rules_from(json.loads(sys.argv[3]), where="D2")
keyring = Keyring.generate()
def copy():
    reader = BatchReader(src)
    with BatchWriter(dst, reader.schema) as writer:
        for batch in reader:
            writer.write(batch)
def read():
    for _ in BatchReader(src):
        pass
batches = list(BatchReader(src))
def transform():
    for batch in batches:
        mask_table(batch, rules, keyring)
out = {{}}
for name, fn in (("read", read), ("copy", copy), ("transforms", transform)):
    fn()
    times = []
    for _ in range(3):
        start = time.perf_counter(); fn(); times.append(time.perf_counter() - start)
    out[name] = min(times)
print(json.dumps(out))
"""


def _diagnose(src: Path, dst: Path) -> dict[str, float]:
    """Where D2's time goes, in a fresh interpreter: read only, read + write (a copy with no
    masking, the I/O floor), and the four transforms alone on batches in memory (best of 3)."""
    argv = [
        sys.executable,
        "-c",
        _DIAG_CHILD.format(repo=str(REPO)),
        str(src),
        str(dst),
        json.dumps(D2_RULES),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
    if proc.returncode != 0:
        return {}
    seconds: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        f"diag_{name}_rows_per_s": round(_rows / max(value, 1e-9))
        for name, value in seconds.items()
    }


def _mask_in_child(src: Path, dst: Path, warm: Path) -> dict[str, Any]:
    """Mask `src` into `dst` in a fresh interpreter; its wall time and peak RSS."""
    code = _MASK_CHILD.format(repo=str(REPO))
    argv = [
        sys.executable,
        "-c",
        code,
        str(src),
        str(dst),
        str(warm),
        str(warm.with_name("warm-out.parquet")),
        json.dumps(D2_RULES),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"mask child exited with {proc.returncode}: {tail[0]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _repeat_parquet(src: Path, dst: Path, times: int) -> None:
    """`src`'s rows `times` over, one row group at a time (memory stays flat)."""
    import pyarrow.parquet as pq

    source = pq.ParquetFile(src)
    with pq.ParquetWriter(dst, source.schema_arrow) as writer:
        for _ in range(times):
            for group in range(source.num_row_groups):
                writer.write_table(source.read_row_group(group))


def d2(reps: int) -> list[dict[str, Any]]:
    """Mask the customer table Parquet -> Parquet: rows/s and peak RSS at 1x and 4x rows."""
    import pyarrow.parquet as pq

    wide, _ = _corpus(_rows)
    table = wide.select(list(D2_COLUMNS))
    folder = Path(tempfile.mkdtemp(prefix="lockgate-d2-"))
    try:
        src = folder / "customers.parquet"
        pq.write_table(table, src)
        wide_src = folder / "customers_23.parquet"
        pq.write_table(wide, wide_src)
        warm = folder / "warm.parquet"
        pq.write_table(table.slice(0, 1000), warm)
        del table, wide
        dst = folder / "masked.parquet"
        runs: list[dict[str, Any]] = []

        def once() -> float:
            result = _mask_in_child(src, dst, warm)
            runs.append(result)
            return float(result["wall_s"])

        samples = repeat(once, reps, warmup=1)
        measured = runs[1:]
        timing = spread(samples, 4)
        rows_per_s = round(_rows / timing["wall_s"])
        tags = measured[-1]["tags"]
        masked = pq.read_table(dst, columns=["email", "ssn", "card_number", "date_of_birth"])
        check = _check_masked(masked)
        big = folder / "customers_x4.parquet"
        _repeat_parquet(src, big, 4)
        x4 = _mask_in_child(big, folder / "masked_x4.parquet", warm)
        rss_1x = max(r["peak_rss_mb"] for r in measured)
        diag = _diagnose(src, folder / "copy.parquet")
        wide_run = _mask_in_child(wide_src, folder / "masked_23.parquet", warm)
        line = {
            "workload": "D2",
            "rows": _rows,
            "columns": list(D2_COLUMNS),
            "rules": [f"{r['op']} {r['column']}" for r in D2_RULES],
            **timing,
            "rows_per_s": rows_per_s,
            "peak_rss_mb": rss_1x,
            "peak_rss_mb_4x_rows": x4["peak_rss_mb"],
            "rows_per_s_4x_rows": round(x4["rows"] / x4["wall_s"]),
            "rss_growth_4x": round(x4["peak_rss_mb"] / rss_1x, 3) if rss_1x else None,
            "diag_rss_before_mb": measured[-1]["rss_before_mb"],
            **diag,
            "diag_rows_per_s_23_columns": round(wide_run["rows"] / wide_run["wall_s"]),
            "tags": {k: v for k, v in tags.items() if v},
            "output_checked": check,
            "tags_checked": all(
                (tags.get(r["column"]) or "").startswith(r["classification"] + "/")
                for r in D2_RULES
            ),
            "target": f">= {D2_TARGET_ROWS_PER_S:,} rows/s; memory flat in row count (streamed)",
            "meets": rows_per_s >= D2_TARGET_ROWS_PER_S
            and x4["peak_rss_mb"] <= rss_1x * 1.25
            and check == "ok",
            "reps": reps,
            "ok": check == "ok",
        }
        copy = diag.get("diag_copy_rows_per_s")
        if not line["meets"] and copy and rows_per_s >= 0.8 * copy:
            line["note"] = (
                f"a plain Parquet copy of the same file (read + write, no masking) runs at "
                f"{copy:,} rows/s here: Parquet encoding and compression bound D2; the "
                f"four transforms alone run at {diag.get('diag_transforms_rows_per_s', 0):,} rows/s"
            )
        return [line]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _check_masked(masked: Any) -> str:
    """`ok`, or what is wrong with the masked columns."""
    import pyarrow.compute as pc

    email = masked.column("email").slice(0, 1000).to_pylist()
    if any("@" in (v or "") for v in email):
        return "email not tokenized"
    if set(masked.column("ssn").slice(0, 1000).to_pylist()) - {"[REDACTED]"}:
        return "ssn not redacted"
    if pc.max(pc.utf8_length(masked.column("card_number"))).as_py() != 4:
        return "card not truncated to 4"
    dob = masked.column("date_of_birth").slice(0, 1000).to_pylist()
    if any(v is not None and len(str(v)) != 4 for v in dob):
        return f"date of birth not a year: {dob[0]!r}"
    return "ok"


WORKLOADS: dict[str, Callable[[int], list[dict[str, Any]]]] = {"D1": d1, "D2": d2}


def main(argv: list[str] | None = None) -> int:
    global _rows
    ap = argparse.ArgumentParser(prog="python -m bench.privacy_tables", description=__doc__)
    ap.add_argument("--only", default="D1,D2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rows", type=int, default=ROWS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    _rows = args.rows
    for name in [w.strip().upper() for w in args.only.split(",") if w.strip()]:
        for line in WORKLOADS[name](args.reps):
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main())
