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

    def _found(self, text: str) -> list[Span]:
        """Every span the recognizers find of the wanted entities, any score or length."""
        wanted = self.entities
        out: list[Span] = []
        for recognizer in self.recognizers:
            if wanted.issuperset(recognizer.entities):
                out.extend(recognizer.find(text))
            else:
                out.extend([s for s in recognizer.find(text) if s.entity in wanted])
        return out

    def _candidates(self, text: str) -> list[Span]:
        floor = self.min_score
        return [s for s in self._found(text) if s.score >= floor and s.end > s.start]

    def analyze(self, text: str) -> list[Span]:
        """The spans found in one text, in order."""
        return resolve(self._candidates(text)) if text else []

    def analyze_batch(self, texts: Sequence[str | None]) -> list[list[Span]]:
        """The spans found in each text (None counts as empty), offsets relative to that text.

        One pass over the batch's spans in text order does what `analyze` does per text: it
        drops spans below the minimum score or crossing into the next row, resolves each
        cluster of overlapping spans (a cluster never spans two rows) and shifts the kept spans
        to their row's offsets."""
        rows = [t or "" for t in texts]
        out: list[list[Span]] = [[] for _ in rows]
        if not any(rows):
            return out
        blob = "\n".join(rows)
        # starts[i] is where row i begins in the blob; a sentinel past the end closes the last row
        starts = [0, *accumulate(len(r) + 1 for r in rows)]
        spans = self._found(blob)
        spans.sort()
        floor = self.min_score
        found: list[Span] = []
        base = 0
        row_end = next_row = -1
        cluster: list[Span] = []
        reach = -1
        for span in spans:
            start, end = span.start, span.end
            if start >= next_row:
                if cluster:
                    _shift_into(found, cluster, base)
                    cluster = []
                row = bisect_right(starts, start) - 1
                base, next_row = starts[row], starts[row + 1]
                row_end = next_row - 1
                found = out[row]
            if end > row_end or end <= start or span.score < floor:
                continue  # crosses into the next row (not one value), empty or too unsure
            if cluster and start >= reach:
                if len(cluster) == 1:  # most clusters: one span, kept
                    last = cluster[0]
                    found.append(
                        Span(
                            last.start - base,
                            last.end - base,
                            last.entity,
                            last.score,
                            last.recognizer,
                        )
                        if base
                        else last
                    )
                else:
                    _shift_into(found, cluster, base)
                cluster = [span]
                reach = end
            else:
                cluster.append(span)
                if end > reach or len(cluster) == 1:
                    reach = end
        if cluster:
            _shift_into(found, cluster, base)
        return out


def _shift_into(found: list[Span], cluster: list[Span], base: int) -> None:
    """Append the best spans of one cluster of overlapping spans to `found`, moved by -`base`."""
    if len(cluster) == 1:
        kept = cluster
    elif len(cluster) == 2:
        kept = [min(cluster, key=_priority)]  # two spans in a cluster overlap: one stays
    else:
        kept = _best_of(cluster)
    if base:
        found.extend(
            [Span(s.start - base, s.end - base, s.entity, s.score, s.recognizer) for s in kept]
        )
    else:
        found.extend(kept)
