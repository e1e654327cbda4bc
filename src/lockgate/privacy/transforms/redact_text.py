"""`redact_text`: replace only the PII and secrets inside free text, keeping the rest."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.privacy.analyzer import Analyzer, parse_entities
from lockgate.privacy.entities import Entity, Span
from lockgate.privacy.transforms.operation import Context, Operation
from lockgate.privacy.transforms.options import Option
from lockgate.privacy.transforms.strings import as_text

BATCH_ROWS = 20_000
"""Rows analysed per `Analyzer.analyze_batch` call (bounds the size of the joined text)."""
SECRET_PLACEHOLDER = "***"

_analyzers: dict[frozenset[Entity] | None, Analyzer] = {}
_lock = threading.Lock()


def placeholder_for(entity: Entity) -> str:
    """`[EMAIL]`, `[PHONE]`, `[CARD]`... for PII; `***` for secrets."""
    return SECRET_PLACEHOLDER if entity.is_secret else f"[{entity.name}]"


def _analyzer(ctx: Context) -> Analyzer:
    given = ctx.options["analyzer"]
    if given is not None:
        return given  # type: ignore[no-any-return]
    names = ctx.options["entities"]
    wanted = parse_entities(names) if names else None
    with _lock:
        found = _analyzers.get(wanted)
        if found is None:
            found = _analyzers[wanted] = Analyzer(wanted)
    return found


def redacted(text: str, spans: Sequence[Span], placeholder: str | None = None) -> str:
    """`text` with each span replaced by its placeholder (spans in order, not overlapping)."""
    parts: list[str] = []
    at = 0
    for span in spans:
        parts.append(text[at : span.start])
        parts.append(placeholder_for(span.entity) if placeholder is None else placeholder)
        at = span.end
    parts.append(text[at:])
    return "".join(parts)


def redact_text(values: pa.Array, ctx: Context) -> pa.Array:
    """Replace each PII or secret found inside the text by a placeholder and keep everything
    else: `[EMAIL]`, `[PHONE]`, `[NAME]`, `[CARD]`... for PII and `***` for secrets (option
    `placeholder` puts one text everywhere instead). Option `entities` limits what is looked
    for (`email, phone` or `pii.email`...). Rows are analysed in batches by the analyzer (all
    recognizers, or the `analyzer` object given from Python) and only rows with findings are
    rebuilt. Nulls stay null.
    """
    text = as_text(values, ctx.op, ctx.column)
    analyzer = _analyzer(ctx)
    only = parse_entities(ctx.options["entities"]) if ctx.options["entities"] else None
    placeholder = ctx.options["placeholder"]
    rows: list[int] = []
    new: list[str] = []
    for start in range(0, len(text), BATCH_ROWS):
        part: list[str | None] = text.slice(start, BATCH_ROWS).to_pylist()
        for i, spans in enumerate(analyzer.analyze_batch(part)):
            if only is not None:
                spans = [s for s in spans if s.entity in only]
            if spans:
                value = part[i]
                assert value is not None
                rows.append(start + i)
                new.append(redacted(value, spans, placeholder))
    if not rows:
        return text
    changed = np.zeros(len(text), dtype=bool)
    changed[rows] = True
    return pc.replace_with_mask(text, pa.array(changed), pa.array(new, text.type))


OPERATION = Operation(
    name="redact_text",
    form="redacted",
    summary="replace only the PII and secrets inside free text ([EMAIL], [PHONE], ***)",
    needs_key=False,
    run=redact_text,
    options=(
        Option("placeholder", "str", None, "one text for every finding (default: by entity)"),
        Option(
            "entities",
            "strings",
            (),
            "only these entity types (default: all): " + ", ".join(e.value for e in Entity),
            choices=tuple(
                sorted({n for e in Entity for n in (e.value, e.name.lower(), e.classification)})
            ),
        ),
        Option(
            "analyzer",
            "object",
            None,
            "Python only: the Analyzer to use",
            accept=lambda value: isinstance(value, Analyzer),
        ),
    ),
)
