"""D5: copy 1,000,000 rows from an SQL table to Parquet and back, streamed (`lockgate.io.copy`).

The table is a realistic 7-column orders table (`orders()`: two ids, a customer name and
e-mail, an amount as decimal(12,2), a creation time with time zone and a shipping time, 10% of
them missing). For SQLite (always) and PostgreSQL (when `--db postgresql://...` is given to
bench.run, or here), each direction is its own result line: `sqlite->parquet` copies the table
to a Parquet file, `parquet->sqlite` copies that file into a new table of another database
(mode overwrite). Every repetition runs in a fresh child process (after one warm-up copy of a
small table there, so imports and first calls are not timed) that reports its own wall time
and peak RSS. Memory is flat when the same copy with 4x the rows peaks at most 25% higher
(`rss_growth_4x`). `diag_read_only_rows_per_s` is the source read alone (no writing).

With LOCKGATE_BENCH_D5_BIG=1 (or `--big` here) two diagnostic lines copy 10,000,000 rows SQLite ->
Parquet and back, and report their peak RSS (the issue's acceptance: under 500 MB).

    python -m bench.dataplane [--reps 5] [--rows 1000000] [--db postgresql://...] [--big]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import REPO, repeat, spread

ROWS = 1_000_000
BIG_ROWS = 10_000_000
BIG_ENV = "LOCKGATE_BENCH_D5_BIG"
SEED = 5
D5_TARGET_ROWS_PER_S = 500_000
FLAT_GROWTH = 1.25
"""Memory is flat when 4x the rows peak at most this much higher."""
BIG_RSS_MB = 500
PG_PREFIX = "lockgate_bench_d5_"
"""PostgreSQL tables the benchmark creates (and drops) in the --db database."""
FILL_ROWS = 500_000
"""Rows generated and written at a time when filling a source table."""

_FIRST = (
    "Olivia Liam Emma Noah Amelia Oliver Sofia Mateo Hana Yuki Aarav Priya Chen Wei Fatima "
    "Omar Lucia Pierre Ingrid Lars Zofia Jakub Amara Kwame Isabella Diego Chloe Lucas Mia Elias"
)
_LAST = (
    "Smith Johnson Garcia Müller Rossi Dubois Kowalski Nguyen Tanaka Kim Okafor Silva Jensen "
    "Novak Ivanova Haddad Cohen O'Brien Fernández Schmidt Andersson Yilmaz Costa Moreau Lee"
)
_DOMAINS = "example.com mail.example.org shop.example.net corp.example"
"""Words drawn from (space-separated)."""


def orders(rows: int, seed: int = SEED, start: int = 0) -> Any:
    """`rows` orders from id `start`: the same seed and start give the same rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng([seed, start])
    ids = np.arange(start, start + rows, dtype=np.int64)

    def draw(words: str) -> Any:
        pool = np.array(words.split())
        return pa.array(pool[rng.integers(0, len(pool), rows)])

    first, last, domain = draw(_FIRST), draw(_LAST), draw(_DOMAINS)
    local = pc.binary_join_element_wise(
        pc.utf8_lower(first), pc.cast(pa.array(ids), pa.string()), "."
    )
    cents = rng.integers(100, 5_000_000, rows)
    amount = pc.cast(
        pa.array(
            np.char.add(
                np.char.add((cents // 100).astype(str), "."),
                np.char.zfill((cents % 100).astype(str), 2),
            )
        ),
        pa.decimal128(12, 2),
    )
    created = 1_577_836_800_000_000 + rng.integers(0, 6 * 365 * 86_400 * 10**6, rows)
    shipped = created + rng.integers(3_600 * 10**6, 10 * 86_400 * 10**6, rows)
    return pa.table(
        {
            "order_id": ids,
            "customer_id": pa.array(rng.integers(1, 250_000, rows), pa.int64()),
            "customer_name": pc.binary_join_element_wise(first, last, " "),
            "email": pc.binary_join_element_wise(local, domain, "@"),
            "amount": amount,
            "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
            "shipped_at": pa.array(shipped, pa.timestamp("us"), mask=rng.random(rows) < 0.1),
        }
    )


def fill(uri: str, rows: int) -> None:
    """Write `rows` orders into the SQL table `uri` with lockgate's writer, a chunk at a time."""
    from lockgate.io.connect import open_writer
    from lockgate.io.dataset import Dataset

    schema = orders(1).schema
    with open_writer(Dataset(uri), schema) as writer:
        for start in range(0, rows, FILL_ROWS):
            writer.write(orders(min(FILL_ROWS, rows - start), start=start))


_COPY_CHILD = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
from bench.common import rss_mb
from lockgate.io.copy import copy
from lockgate.io.connect import open_reader
from lockgate.io.dataset import Dataset
src, dst, warm_src, warm_dst, read_only = sys.argv[1:6]
copy(Dataset(warm_src), Dataset(warm_dst))  # imports, first calls
base = rss_mb("VmRSS")
start = time.perf_counter()
if read_only == "1":
    with open_reader(Dataset(src)) as reader:
        rows = sum(batch.num_rows for batch in reader)
else:
    rows = copy(Dataset(src), Dataset(dst)).rows
wall = time.perf_counter() - start
print(json.dumps({{"wall_s": wall, "rows": rows, "peak_rss_mb": rss_mb(), "rss_before_mb": base}}))
"""


def _child(src: str, dst: str, warm: tuple[str, str], read_only: bool = False) -> dict[str, Any]:
    """Copy `src` to `dst` (or only read `src`) in a fresh interpreter: wall s, peak RSS."""
    argv = [
        sys.executable,
        "-c",
        _COPY_CHILD.format(repo=str(REPO)),
        src,
        dst,
        *warm,
        "1" if read_only else "0",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"copy child exited with {proc.returncode}: {tail[0]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _checksum(uri: str) -> tuple[int, int, str]:
    """Rows, sum of order ids and sum of amounts of a dataset (streamed)."""
    import pyarrow.compute as pc

    from lockgate.io.connect import open_reader
    from lockgate.io.dataset import Dataset

    rows = ids = 0
    total: Any = 0
    with open_reader(Dataset(uri)) as reader:
        for batch in reader:
            rows += batch.num_rows
            ids += pc.sum(batch.column("order_id")).as_py() or 0
            total += pc.sum(batch.column("amount")).as_py() or 0
    return rows, ids, str(total)


class _Place:
    """Where one database's datasets live: source, Parquet files and target tables."""

    def __init__(self, kind: str, folder: Path, db: str | None) -> None:
        self.kind = kind
        self.folder = folder
        self.db = db

    def sql(self, name: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.folder / (name + '.db')}#{name}"
        assert self.db is not None
        return f"{self.db.split('#')[0]}#{PG_PREFIX}{name}"

    def parquet(self, name: str) -> str:
        return (self.folder / f"{self.kind}_{name}.parquet").as_uri()

    def drop_tables(self) -> None:
        if self.kind != "postgresql" or self.db is None:
            return
        import adbc_driver_postgresql.dbapi as postgresql

        from lockgate.io.sql_postgres import libpq_url

        with postgresql.connect(libpq_url(self.db.split("#")[0])) as conn, conn.cursor() as cur:
            for name in ("orders", "orders_x4", "back", "back_x4", "warm", "warm_back"):
                cur.execute(f'DROP TABLE IF EXISTS "{PG_PREFIX}{name}"')
            conn.commit()


def _directions(place: _Place, reps: int, rows: int) -> list[dict[str, Any]]:
    """The two result lines of one database: SQL -> Parquet and Parquet -> SQL."""
    kind = place.kind
    fill(place.sql("warm"), 1000)
    fill(place.sql("orders"), rows)
    fill(place.sql("orders_x4"), 4 * rows)
    warm_out = (place.sql("warm"), place.parquet("warm"))
    warm_in = (place.parquet("warm"), place.sql("warm_back"))
    legs = [
        (f"{kind}->parquet", place.sql("orders"), place.parquet("orders"), warm_out),
        (f"parquet->{kind}", place.parquet("orders"), place.sql("back"), warm_in),
    ]
    x4 = {
        legs[0][0]: (place.sql("orders_x4"), place.parquet("orders_x4")),
        legs[1][0]: (place.parquet("orders_x4"), place.sql("back_x4")),
    }
    source_sum = _checksum(place.sql("orders"))
    lines = []
    for case, src, dst, warm in legs:
        runs: list[dict[str, Any]] = []

        def once(
            src: str = src,
            dst: str = dst,
            warm: tuple[str, str] = warm,
            runs: list[dict[str, Any]] = runs,
        ) -> float:
            result = _child(src, dst, warm)
            runs.append(result)
            return float(result["wall_s"])

        samples = repeat(once, reps, warmup=1)
        measured = runs[1:]
        timing = spread(samples, 4)
        rows_per_s = round(rows / timing["wall_s"])
        check = "ok" if _checksum(dst) == source_sum else "rows differ from the source"
        big = _child(*x4[case], warm)
        rss_1x = max(r["peak_rss_mb"] for r in measured)
        growth = round(big["peak_rss_mb"] / rss_1x, 3) if rss_1x else None
        read_only = _child(src, dst, warm, read_only=True)
        lines.append(
            {
                "workload": "D5",
                "case": case,
                "rows": rows,
                "columns": 7,
                **timing,
                "rows_per_s": rows_per_s,
                "peak_rss_mb": rss_1x,
                "peak_rss_mb_4x_rows": big["peak_rss_mb"],
                "rows_per_s_4x_rows": round(big["rows"] / big["wall_s"]),
                "rss_growth_4x": growth,
                "diag_rss_before_mb": measured[-1]["rss_before_mb"],
                "diag_read_only_rows_per_s": round(rows / read_only["wall_s"]),
                "output_checked": check,
                "target": f">= {D5_TARGET_ROWS_PER_S:,} rows/s; memory flat (4x rows: "
                f"peak RSS <= {FLAT_GROWTH}x)",
                "meets": rows_per_s >= D5_TARGET_ROWS_PER_S
                and growth is not None
                and growth <= FLAT_GROWTH
                and check == "ok",
                "reps": reps,
                "ok": check == "ok",
            }
        )
    return lines


def big(rows: int = BIG_ROWS) -> list[dict[str, Any]]:
    """The diagnostic: `rows` rows SQLite -> Parquet and back, each copy in a child process,
    with its peak RSS."""
    folder = Path(tempfile.mkdtemp(prefix="lockgate-d5-big-"))
    try:
        place = _Place("sqlite", folder, None)
        fill(place.sql("warm"), 1000)
        fill(place.sql("orders"), rows)
        warm = (place.sql("warm"), place.parquet("warm"))
        lines = []
        for case, src, dst in (
            ("sqlite->parquet", place.sql("orders"), place.parquet("orders")),
            ("parquet->sqlite", place.parquet("orders"), place.sql("back")),
        ):
            result = _child(src, dst, warm)
            lines.append(
                {
                    "workload": "D5",
                    "case": f"{case} {rows // 1_000_000}M rows (diagnostic)",
                    "rows": result["rows"],
                    "wall_s": round(result["wall_s"], 3),
                    "rows_per_s": round(result["rows"] / result["wall_s"]),
                    "peak_rss_mb": result["peak_rss_mb"],
                    "target": f"peak RSS < {BIG_RSS_MB} MB",
                    "meets": result["peak_rss_mb"] < BIG_RSS_MB and result["rows"] == rows,
                    "ok": result["rows"] == rows,
                }
            )
        return lines
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def d5(reps: int, db: str | None = None, rows: int = ROWS) -> list[dict[str, Any]]:
    """D5 on SQLite, and on PostgreSQL when `db` is a PostgreSQL URL; the 10M-row diagnostic
    too when LOCKGATE_BENCH_D5_BIG is set."""
    kinds = ["sqlite"]
    if db and db.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres"):
        kinds.append("postgresql")
    lines: list[dict[str, Any]] = []
    for kind in kinds:
        folder = Path(tempfile.mkdtemp(prefix=f"lockgate-d5-{kind}-"))
        place = _Place(kind, folder, db)
        try:
            lines += _directions(place, reps, rows)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            lines.append(
                {"workload": "D5", "case": kind, "ok": False, "meets": False, "error": first}
            )
        finally:
            place.drop_tables()
            shutil.rmtree(folder, ignore_errors=True)
    if os.environ.get(BIG_ENV, "").strip() not in ("", "0"):
        lines += big()
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.dataplane", description=__doc__)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rows", type=int, default=ROWS, help=argparse.SUPPRESS)
    ap.add_argument("--db", default=None, help="a PostgreSQL URL: run D5 there too")
    ap.add_argument("--big", action="store_true", help="only the 10M-row SQLite -> Parquet run")
    args = ap.parse_args(argv)
    lines = big() if args.big else d5(args.reps, args.db or "", args.rows)
    for line in lines:
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main())
