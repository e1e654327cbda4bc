"""Run every recognizer over a batch of texts at once and keep the best non-overlapping spans.

Rows are joined with "\\n" into one string so that each recognizer's regexes scan a batch in C,
once, instead of once per row; spans are then mapped back to their row. This is what makes free
text analysis run at tens of thousands of rows per second in pure Python.
"""

from __future__ import annotations

import importlib
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate

from lockgate.errors import PrivacyError, did_you_mean
from lockgate.privacy.entities import SECRETS, Entity, Span
from lockgate.privacy.recognizers.base import Recognizer

RECOGNIZER_MODULES = (
    "email",
    "phone",
    "ssn",
    "card",
    "iban",
    "ip",
    "dob",
    "names",
    "address",
    "secrets",
)
"""Modules of `lockgate.privacy.recognizers`; each exports `RECOGNIZERS`."""

MIN_SCORE = 0.5
"""Spans scored below this are dropped (shape-only matches without context or validator)."""


def default_recognizers() -> tuple[Recognizer, ...]:
    """One instance of every built-in recognizer."""
    found: list[Recognizer] = []
    for name in RECOGNIZER_MODULES:
        module = importlib.import_module(f"lockgate.privacy.recognizers.{name}")
        found.extend(module.RECOGNIZERS)
    return tuple(found)


PRESETS: dict[str, frozenset[Entity]] = {
    "all": frozenset(Entity),
    "secrets": SECRETS,
    "logs": SECRETS | {Entity.EMAIL, Entity.IP, Entity.CARD, Entity.SSN, Entity.IBAN},
}
"""Named entity sets. `logs`: what application logs leak (secrets, e-mails, IPs, and the
checksummed numbers: cards, SSNs, IBANs), without the name, address, phone and date
recognizers, which cost most on log lines and find little there."""


def parse_entities(names: Iterable[str]) -> frozenset[Entity]:
    """Entity names as given by a user (`email`, `pan`, `pii.email`, a preset such as `logs`)
    -> entities."""
    out: set[Entity] = set()
    for raw in names:
        name = raw.strip().lower()
        if name in PRESETS:
            out.update(PRESETS[name])
            continue
        match = next(
            (e for e in Entity if name in (e.value, e.name.lower(), e.classification)), None
        )
        if match is None:
            raise PrivacyError(
                f"unknown entity type {raw!r}"
                + did_you_mean(name, [*PRESETS, *(e.value for e in Entity)])
            )
        out.add(match)
    return frozenset(out)


def resolve(spans: Sequence[Span]) -> list[Span]:
    """The best non-overlapping spans, in text order: higher score wins, then the longer one.

    Spans are first cut into clusters of overlapping ones, so a long text with many spans costs
    time in proportion to their number, not its square.
    """
    if len(spans) < 2:
        return list(spans)
    out: list[Span] = []
    cluster: list[Span] = []
    reach = -1
    for span in sorted(spans):
        if cluster and span.start >= reach:
            out.extend(cluster if len(cluster) == 1 else _best_of(cluster))
            cluster = []
        cluster.append(span)
        reach = max(reach, span.end) if len(cluster) > 1 else span.end
    out.extend(cluster if len(cluster) == 1 else _best_of(cluster))
    return out


def _best_of(cluster: list[Span]) -> list[Span]:
    """Greedy by priority inside one cluster of overlapping spans, back in text order."""
    kept: list[Span] = []
    for span in sorted(cluster, key=_priority):
        start, end = span.start, span.end
        if all(end <= k.start or start >= k.end for k in kept):
            kept.append(span)
    kept.sort()
    return kept


def _priority(span: Span) -> tuple[float, int, int]:
    return (-span.score, span.start - span.end, span.start)


class Analyzer:
    """Finds PII and secrets in text with the built-in recognizers (or the ones given)."""

    def __init__(
        self,
        entities: Iterable[Entity] | None = None,
        *,
        min_score: float = MIN_SCORE,
        recognizers: Sequence[Recognizer] | None = None,
    ) -> None:
        wanted = frozenset(entities) if entities is not None else frozenset(Entity)
        pool = recognizers if recognizers is not None else default_recognizers()
        self.entities = wanted
        self.min_score = min_score
        self.recognizers = tuple(r for r in pool if wanted.intersection(r.entities))

    def _candidates(self, text: str) -> list[Span]:
        wanted, floor = self.entities, self.min_score
        return [
            span
            for recognizer in self.recognizers
            for span in recognizer.find(text)
            if span.entity in wanted and span.score >= floor and span.end > span.start
        ]

    def analyze(self, text: str) -> list[Span]:
        """The spans found in one text, in order."""
        return resolve(self._candidates(text)) if text else []

    def analyze_batch(self, texts: Sequence[str | None]) -> list[list[Span]]:
        """The spans found in each text (None counts as empty), offsets relative to that text."""
        rows = [t or "" for t in texts]
        out: list[list[Span]] = [[] for _ in rows]
        if not any(rows):
            return out
        blob = "\n".join(rows)
        # starts[i] is where row i begins in the blob
        starts = [0, *accumulate(len(r) + 1 for r in rows[:-1])]
        per_row: dict[int, list[Span]] = {}
        for span in self._candidates(blob):
            row = bisect_right(starts, span.start) - 1
            if span.end > starts[row] + len(rows[row]):
                continue  # crosses into the next row: not one value
            found = per_row.get(row)
            if found is None:
                per_row[row] = [span]
            else:
                found.append(span)
        for row, spans in per_row.items():
            base = starts[row]
            kept = resolve(spans) if len(spans) > 1 else spans
            out[row] = [s.shifted(-base) for s in kept] if base else kept
        return out
