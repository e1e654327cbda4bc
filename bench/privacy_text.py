"""D3 (PII in free text) and D4 (secrets and PII in log lines): throughput of the full Analyzer and
precision/recall/F1 per entity type on the labelled corpus of bench/privacy_corpus.py.

    python -m bench.privacy_text [--only D3,D4] [--reps 5] [--examples 5] [--profile]

Scoring: a predicted span is a true positive when it has the labelled entity type and overlaps
the labelled span substantially: intersection over union >= 0.5, or it contains the whole
labelled span and is at most twice as long. Each label matches at most one prediction and each
prediction at most one label; unmatched predictions are false positives, unmatched labels false
negatives. The same rule applies to every entity.

Throughput, D3: the analyzer (every entity type) reads the corpus in batches of `BATCH` rows
(`Analyzer.analyze_batch`), as a column of a record batch would be; rows/s is the median of
--reps passes after a warm-up pass, whose spans are the ones scored. D4: what `lockgate redact
--entities logs` does, `redact_file` on a log file holding the corpus `D4_FILE_COPIES` times,
with its default worker processes (one per CPU) started inside each timed pass; accuracy is
that analyzer's on the corpus. D3 also scores, apart, a held-out slice whose
person names all come from locales the name gazetteer does not load (`diag_name_*_heldout`).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.common import median, rss_mb
from bench.privacy_corpus import Label, Row, log_corpus, text_corpus

SEED = 5
D3_ROWS = 20_000
D3_HELDOUT_ROWS = 4_000
D4_LINES = 100_000
D4_FILE_COPIES = 5
"""The timed log file holds the corpus this many times (500,000 lines, about 80 MB)."""
D4_PRESET = "logs"
"""The entity set D4 measures (`lockgate redact --entities logs`)."""
BATCH = 4096
D3_ENTITIES = ("name", "email", "phone", "ssn", "pan", "iban", "ip", "dob", "address")
D4_SECRETS = (
    "aws_access_key_id",
    "aws_secret_key",
    "github_token",
    "gitlab_token",
    "slack_token",
    "bearer_token",
    "jwt",
    "private_key",
    "url_password",
    "password",
)
D4_PII = ("email", "ip")
D3_MIN_ROWS_PER_S = 20_000
D4_MIN_LINES_PER_S = 100_000
MIN_RECALL, MIN_PRECISION = 0.95, 0.90


def matches(pred: tuple[int, int], gold: Label) -> bool:
    """The scoring rule (module docstring) for two spans of the same entity."""
    ps, pe = pred
    inter = min(pe, gold.end) - max(ps, gold.start)
    if inter <= 0:
        return False
    union = max(pe, gold.end) - min(ps, gold.start)
    if inter / union >= 0.5:
        return True
    return ps <= gold.start and pe >= gold.end and (pe - ps) <= 2 * (gold.end - gold.start)


class Tally:
    """True/false positives and false negatives per entity, with a few examples of each miss."""

    def __init__(self, keep: int = 0) -> None:
        self.tp: dict[str, int] = {}
        self.fp: dict[str, int] = {}
        self.fn: dict[str, int] = {}
        self.keep = keep
        self.examples: dict[str, list[str]] = {}

    def _note(self, key: str, text: str) -> None:
        if self.keep and len(self.examples.setdefault(key, [])) < self.keep:
            self.examples[key].append(text)

    def add(self, row: Row, spans: Sequence[Any]) -> None:
        preds = [(s.start, s.end, str(s.entity.value)) for s in spans]
        used = [False] * len(preds)
        for gold in row.labels:
            hit = next(
                (
                    i
                    for i, (ps, pe, ent) in enumerate(preds)
                    if not used[i] and ent == gold.entity and matches((ps, pe), gold)
                ),
                None,
            )
            if hit is None:
                self.fn[gold.entity] = self.fn.get(gold.entity, 0) + 1
                found = [
                    f"{row.text[ps:pe]!r}:{e}"
                    for ps, pe, e in preds
                    if ps < gold.end and pe > gold.start
                ]
                self._note(
                    f"fn {gold.entity}",
                    f"{row.text[gold.start : gold.end]!r} found as {found or 'nothing'} in {row.text!r}",
                )
            else:
                used[hit] = True
                self.tp[gold.entity] = self.tp.get(gold.entity, 0) + 1
        for i, (ps, pe, ent) in enumerate(preds):
            if not used[i]:
                self.fp[ent] = self.fp.get(ent, 0) + 1
                self._note(f"fp {ent}", f"{row.text[ps:pe]!r} in {row.text!r}")

    def metrics(self, entity: str) -> dict[str, Any]:
        tp, fp, fn = self.tp.get(entity, 0), self.fp.get(entity, 0), self.fn.get(entity, 0)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": tp + fn,
            "tp": tp,
            "fp": fp,
            "fn": fn,
        }


def default_analyzer() -> Any:
    from lockgate.privacy.analyzer import Analyzer

    return Analyzer()


def analyze(analyzer: Any, texts: Sequence[str]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for i in range(0, len(texts), BATCH):
        out.extend(analyzer.analyze_batch(texts[i : i + BATCH]))
    return out


def _timed_passes(
    analyzer: Any, texts: Sequence[str], reps: int
) -> tuple[list[list[Any]], list[float]]:
    start = time.perf_counter()
    spans = analyze(analyzer, texts)  # warm-up; these spans are scored
    warm = time.perf_counter() - start
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        analyze(analyzer, texts)
        samples.append(time.perf_counter() - start)
    return spans, samples or [warm]


def _per_recognizer_ms(analyzer: Any, texts: Sequence[str]) -> dict[str, float]:
    """Milliseconds each recognizer's `find` takes over the corpus (one pass, same batches)."""
    blobs = ["\n".join(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
    out: dict[str, float] = {}
    for rec in analyzer.recognizers:
        start = time.perf_counter()
        for blob in blobs:
            for _ in rec.find(blob):
                pass
        out[rec.name] = round((time.perf_counter() - start) * 1000, 1)
    return out


def _accuracy(tally: Tally, entities: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {e: tally.metrics(e) for e in entities}


def _others(tally: Tally, entities: Sequence[str]) -> dict[str, int]:
    """False positives of entity types that the corpus does not label."""
    return {e: n for e, n in sorted(tally.fp.items()) if e not in entities and n}


def d3(reps: int, *, analyzer: Any = None, examples: int = 0) -> list[dict[str, Any]]:
    analyzer = analyzer or default_analyzer()
    rows = text_corpus(D3_ROWS, SEED)
    texts = [r.text for r in rows]
    spans, samples = _timed_passes(analyzer, texts, reps)
    tally = Tally(examples)
    for row, found in zip(rows, spans, strict=True):
        tally.add(row, found)
    per_entity = _accuracy(tally, D3_ENTITIES)

    heldout = text_corpus(D3_HELDOUT_ROWS, SEED, heldout=True)
    held_tally = Tally(examples)
    for row, found in zip(heldout, analyze(analyzer, [r.text for r in heldout]), strict=True):
        held_tally.add(row, found)
    held_names = held_tally.metrics("name")
    unknown = _unknown_first_name_recall(heldout, analyzer)

    rows_per_s = len(rows) / median(samples)
    meets_speed = rows_per_s >= D3_MIN_ROWS_PER_S
    meets_accuracy = all(
        m["recall"] >= MIN_RECALL and m["precision"] >= MIN_PRECISION for m in per_entity.values()
    )
    line: dict[str, Any] = {
        "workload": "D3",
        "rows": len(rows),
        "chars": sum(len(t) for t in texts),
        "batch_rows": BATCH,
        "wall_s": round(median(samples), 4),
        "wall_s_min": round(min(samples), 4),
        "wall_s_max": round(max(samples), 4),
        "rows_per_s": round(rows_per_s),
        "per_entity": per_entity,
        "min_recall": min(m["recall"] for m in per_entity.values()),
        "min_precision": min(m["precision"] for m in per_entity.values()),
        "target": ">= 20,000 rows/s; recall >= 0.95 and precision >= 0.90 on every entity type",
        "meets_speed": meets_speed,
        "meets_accuracy": meets_accuracy,
        "meets": meets_speed and meets_accuracy,
        "diag_name_recall_heldout": held_names["recall"],
        "diag_name_precision_heldout": held_names["precision"],
        "diag_name_support_heldout": held_names["support"],
        "diag_name_recall_unknown_first_name": unknown[0],
        "diag_name_support_unknown_first_name": unknown[1],
        "diag_other_false_positives": _others(tally, D3_ENTITIES),
        "diag_ms_per_recognizer": _per_recognizer_ms(analyzer, texts),
        "peak_rss_mb": rss_mb(),
        "reps": reps,
        "ok": True,
    }
    if examples:
        line["examples"] = {
            **tally.examples,
            **{f"heldout {k}": v for k, v in held_tally.examples.items()},
        }
    return [line]


def _unknown_first_name_recall(rows: Sequence[Row], analyzer: Any) -> tuple[float, int]:
    """Recall on held-out names whose first word the gazetteer does not hold (none of its
    first names: what only titles, context and surnames can find)."""
    from lockgate.privacy.recognizers.names import gazetteer

    first, _ = gazetteer()
    picked = []
    for row in rows:
        labels = tuple(
            lb
            for lb in row.labels
            if lb.entity == "name" and row.text[lb.start : lb.end].split()[0] not in first
        )
        if labels:
            picked.append(Row(row.text, labels, row.locale, row.kind))
    tally = Tally()
    for row, found in zip(picked, analyze(analyzer, [r.text for r in picked]), strict=True):
        tally.add(row, [s for s in found if s.entity.value == "name"])
    m = tally.metrics("name")
    return m["recall"], m["support"]


def d4(reps: int, *, analyzer: Any = None, examples: int = 0) -> list[dict[str, Any]]:
    """Log redaction as `lockgate redact --entities logs` does it: accuracy of that analyzer on
    the labelled corpus, and lines/s of `redact_file` on a log file of `D4_FILE_COPIES` copies
    of the corpus (its default worker processes included, started inside the timing)."""
    from lockgate.privacy.analyzer import Analyzer, parse_entities

    analyzer = analyzer or Analyzer(parse_entities([D4_PRESET]))
    rows = log_corpus(D4_LINES, SEED)
    texts = [r.text for r in rows]
    spans = analyze(analyzer, texts)
    tally = Tally(examples)
    for row, found in zip(rows, spans, strict=True):
        tally.add(row, found)
    secrets = _accuracy(tally, D4_SECRETS)
    pii = _accuracy(tally, D4_PII)
    covered = _covered(rows, spans)
    samples, single, workers = _redact_file_passes(texts, reps)
    lines = len(texts) * D4_FILE_COPIES
    lines_per_s = lines / median(samples)
    meets_speed = lines_per_s >= D4_MIN_LINES_PER_S
    meets_recall = all(m["recall"] == 1.0 for m in secrets.values())
    line: dict[str, Any] = {
        "workload": "D4",
        "lines": lines,
        "entities": D4_PRESET,
        "workers": workers,
        "wall_s": round(median(samples), 4),
        "wall_s_min": round(min(samples), 4),
        "wall_s_max": round(max(samples), 4),
        "lines_per_s": round(lines_per_s),
        "per_entity": {**secrets, **pii},
        "min_secret_recall": min(m["recall"] for m in secrets.values()),
        "target": ">= 100,000 lines/s; recall 1.0 on every secret type",
        "meets_speed": meets_speed,
        "meets_recall": meets_recall,
        "meets": meets_speed and meets_recall,
        "diag_lines_per_s_one_process": round(lines / median(single)),
        **_capture_rates(texts, reps),
        "diag_lines_per_s_all_entities_analyzer": _all_entities_rate(texts),
        "diag_secret_redacted_recall": covered,
        "diag_other_false_positives": _others(tally, D4_SECRETS + D4_PII),
        "diag_ms_per_recognizer": _per_recognizer_ms(analyzer, texts),
        "peak_rss_mb": rss_mb(),
        "reps": reps,
        "ok": True,
    }
    if examples:
        line["examples"] = tally.examples
    return [line]


def _capture_rates(texts: Sequence[str], reps: int) -> dict[str, Any]:
    """Lines/s of a task's log capture (engine/logcapture.py `LogSink`, one `write` per line
    as `print` does, 20 secret values registered) against plain writes of the same lines to a
    file (what capture cost before redaction): on the D4 corpus (a secret or PII item on most
    lines: the worst case) and on typical task output (progress lines, no secret)."""
    import os
    import tempfile

    from lockgate.engine.logcapture import LogSink
    from lockgate.secrets.redaction import register

    for i in range(20):
        register(f"bench-Registered-Secret-{i:02d}-value")
    corpus = [t + "\n" for t in texts] * 10
    typical = [
        f"2026-11-25 10:{i // 60 % 60:02d}:{i % 60:02d} INFO etl.load: wrote batch {i} "
        f"({i * 500:,} rows) to warehouse.orders in 0.{i % 9}s\n"
        for i in range(len(corpus))
    ]

    def redacted(path: str, lines: list[str]) -> None:
        sink = LogSink(path)
        for line in lines:
            sink.write(line)
        sink.close()

    def plain(path: str, lines: list[str]) -> None:
        with open(path, "a", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line)

    rates = {}
    with tempfile.TemporaryDirectory(prefix="lockgate-d4-capture-") as tmp:
        for name, fn, lines in (
            ("corpus", redacted, corpus),
            ("typical", redacted, typical),
            ("plain", plain, corpus),
        ):
            took = []
            for rep in range(max(3, reps)):
                path = os.path.join(tmp, f"{name}-{rep}.log")
                started = time.perf_counter()
                fn(path, lines)
                took.append(time.perf_counter() - started)
            rates[name] = len(lines) / median(took)
    return {
        "diag_capture_lines_per_s_redacted_d4_corpus": round(rates["corpus"]),
        "diag_capture_lines_per_s_redacted_typical": round(rates["typical"]),
        "diag_capture_lines_per_s_unredacted": round(rates["plain"]),
    }


def _redact_file_passes(texts: Sequence[str], reps: int) -> tuple[list[float], list[float], int]:
    """Wall seconds of `redact_file` over the log file: --reps passes with the default workers
    after a warm-up, then passes with one process; and how many workers the default gave."""
    import os
    import tempfile

    from lockgate.privacy.textredact import default_workers, redact_file

    with tempfile.TemporaryDirectory(prefix="lockgate-d4-") as tmp:
        src, dst = os.path.join(tmp, "app.log"), os.path.join(tmp, "out.log")
        with open(src, "w", encoding="utf-8") as fh:
            block = "\n".join(texts) + "\n"
            for _ in range(D4_FILE_COPIES):
                fh.write(block)
        workers = default_workers(os.path.getsize(src))

        def once(n: int | None) -> float:
            start = time.perf_counter()
            redact_file(src, dst, entities=[D4_PRESET], workers=n)
            return time.perf_counter() - start

        once(None)
        samples = [once(None) for _ in range(reps)]
        single = [once(1) for _ in range(max(1, min(reps, 3)))]
    return samples, single, workers


def _all_entities_rate(texts: Sequence[str]) -> int:
    """Lines/s of the analyzer with every entity type (one process): `lockgate redact` without
    `--entities`, names, addresses, phones and dates included."""
    from lockgate.privacy.analyzer import Analyzer

    _, samples = _timed_passes(Analyzer(), texts, 1)
    return round(len(texts) / median(samples))


def _covered(rows: Sequence[Row], spans: Sequence[Sequence[Any]]) -> dict[str, float]:
    """Per secret type, the share of labelled values wholly inside some predicted span of any
    type: what `lockgate redact` would hide even when it names the type differently."""
    hit: dict[str, int] = {}
    total: dict[str, int] = {}
    for row, found in zip(rows, spans, strict=True):
        for gold in row.labels:
            if gold.entity not in D4_SECRETS:
                continue
            total[gold.entity] = total.get(gold.entity, 0) + 1
            if any(s.start <= gold.start and s.end >= gold.end for s in found):
                hit[gold.entity] = hit.get(gold.entity, 0) + 1
    return {e: round(hit.get(e, 0) / n, 4) for e, n in sorted(total.items())}


def profile(workload: str, top: int = 25) -> str:
    """cProfile of one analysis pass over the D3 or D4 corpus, sorted by own time."""
    analyzer = default_analyzer()
    rows = text_corpus(D3_ROWS, SEED) if workload == "D3" else log_corpus(D4_LINES, SEED)
    texts = [r.text for r in rows]
    analyze(analyzer, texts)
    prof = cProfile.Profile()
    prof.enable()
    analyze(analyzer, texts)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.privacy_text", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--only", default="D3,D4", help="D3, D4 or both (default)")
    ap.add_argument(
        "--reps", type=int, default=5, help="timed passes after one warm-up (default 5)"
    )
    ap.add_argument(
        "--examples", type=int, default=0, help="keep N examples of each miss per entity"
    )
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one pass instead")
    args = ap.parse_args(argv)
    wanted = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    for workload in wanted:
        if args.profile:
            print(profile(workload))
            continue
        fn = d3 if workload == "D3" else d4
        for line in fn(args.reps, examples=args.examples):
            print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
