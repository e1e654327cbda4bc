"""Decide a column's classification from a sample of its values and its name, with a confidence.

Every sampled value is analysed as `"<column name in words>: <value>"`, so that context words in
the name ("date of birth", "phone") count for the recognizers; only spans inside the value are
kept. A column is entity E when most of its values are (almost) wholly spans of E; `free_text`
when its values are longer texts and a fair share of them hold a span. The name decides what
content alone cannot: dates are `pii.dob` only under a birth-date name, names that say "sku",
"order", "version", "tracking"... veto entities that have no checksum (phone, SSN, IP, date of
birth, name, address), and first/last name and address columns are recognised from their name
and the shape of their values when the recognizers find too few of them.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.io.formats import json_texts
from lockgate.model.classification import base_class, is_raw
from lockgate.privacy.analyzer import Analyzer
from lockgate.privacy.entities import FREE_TEXT, Entity, Span

WHOLE = 0.7
"""A value is wholly entity E when spans of E cover at least this share of its characters."""
WHOLE_BY_ENTITY = {Entity.ADDRESS: 0.45, Entity.NAME: 0.6}
"""Addresses are often found without their city or postcode, names without a middle name."""
COLUMN_SHARE = 0.5
"""A column is entity E when at least this share of its non-empty sampled values are wholly E."""
FREE_TEXT_WORDS = 4.0
FREE_TEXT_SHARE = 0.1
"""Free text: values of at least this many words on average, this share of them holding a span."""
SPARSE_VALUES = 2
SPARSE_SHARE = 0.02
"""Sparse PII: a column whose sampled values hold PII spans in at least this many values and
this share of them (an e-mail in 1 comment of 20, a column of `n/a` and a few e-mails) is
`free_text`, whatever the length of its values: `--auto` then masks those spans."""
SHAPE_SHARE = 0.8
"""Name-hinted name/address columns: this share of values shaped like names/addresses."""
MAX_VALUE_CHARS = 2000
"""Longer values are cut to this many characters before analysis (enough to judge them)."""

CHECKSUMMED = frozenset({Entity.EMAIL, Entity.CARD, Entity.IBAN})
"""Entities whose look-alikes fail a validator; names that say 'sku' or 'order' do not veto them."""

ABBREVIATIONS = {
    "dob": "date of birth",
    "bday": "birthday",
    "ssn": "social security number",
    "tel": "telephone",
    "addr": "address",
    "fname": "first name",
    "lname": "last name",
    "firstname": "first name",
    "lastname": "last name",
    "fullname": "full name",
    "surname": "last name",
    "dateofbirth": "date of birth",
    "birthdate": "birth date",
    "cc": "credit card",
    "ccnum": "credit card number",
    "pan": "card number",
    "ipaddr": "ip address",
    "msisdn": "phone number",
    "mobile": "mobile phone",
    "zip": "zip code",
    "postcode": "post code",
}
"""Column-name words spelled out, so that the recognizers' context words find them."""

HINTS: dict[Entity, tuple[str, ...]] = {
    Entity.EMAIL: ("email", "e mail", "mail"),
    Entity.PHONE: ("phone", "telephone", "mobile", "cell", "fax", "contact number"),
    Entity.SSN: ("social security", "national id", "tax id", "tin"),
    Entity.CARD: ("card", "credit card", "card number", "pan"),
    Entity.IBAN: ("iban", "bank account"),
    Entity.IP: ("ip", "ipv4", "ipv6", "remote addr"),
    Entity.DOB: ("birth", "birthday", "born"),
    Entity.NAME: (
        "first name",
        "last name",
        "full name",
        "given name",
        "family name",
        "middle name",
        "maiden name",
        "forename",
        "customer name",
        "contact name",
        "person name",
        "holder name",
        "cardholder",
        "name",
    ),
    Entity.ADDRESS: ("address", "street", "address line", "mailing address"),
}
"""Words in a column's name that point to an entity (matched as whole words of the name)."""
STRONG_NAME = tuple(h for h in HINTS[Entity.NAME] if h != "name")
NOT_ADDRESS = ("ip address", "mac address", "email address", "e mail address", "wallet address")
NOT_PII = frozenset(
    {
        "sku",
        "order",
        "tracking",
        "version",
        "ver",
        "invoice",
        "ship",
        "shipped",
        "delivery",
        "product",
        "part",
        "serial",
        "build",
        "release",
        "lot",
        "batch",
        "model",
        "item",
    }
)
"""Words in a column's name that say its values are codes, not personal data."""
NOT_PERSON = frozenset(
    {"product", "item", "model", "company", "business", "brand", "merchant", "vendor", "store",
     "shop", "bank", "file", "host", "domain", "app", "project", "team", "service", "event",
     "category", "city", "country", "region", "state", "street", "org", "organisation",
     "organization", "table", "column", "field", "schema", "database"}
)  # fmt: skip
"""Words that make a bare `name` something other than a person's name (`product_name`)."""

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_NAME_SHAPE = re.compile(r"[^\W\d_][^\W\d_'’.\- ]*(?:[ '’.\-]+[^\W\d_][^\W\d_'’.\- ]*){0,3}\.?")
_ADDRESS_SHAPE = re.compile(r"(?=.*\d)(?=.*[^\W\d_]{3}).{6,}", re.DOTALL)


def name_words(column: str) -> str:
    """A column name as lower-case words: `dateOfBirth`, `date_of_birth` -> `date of birth`."""
    words = [w.lower() for w in _WORD.findall(column)]
    return " ".join(ABBREVIATIONS.get(w, w) for w in words)


def _has(context: str, phrase: str) -> bool:
    return f" {phrase} " in f" {context} "


def hinted(context: str) -> frozenset[Entity]:
    """The entities a column name (in words) points to."""
    found = {e for e, hints in HINTS.items() if any(_has(context, h) for h in hints)}
    if Entity.ADDRESS in found and any(_has(context, h) for h in NOT_ADDRESS):
        found.discard(Entity.ADDRESS)
    if (
        Entity.NAME in found
        and not any(_has(context, h) for h in STRONG_NAME)
        and any(w in NOT_PERSON or w in NOT_PII for w in context.split())
    ):
        found.discard(Entity.NAME)
    return frozenset(found)


def vetoed(context: str, hints: frozenset[Entity]) -> bool:
    """Whether the name says the column holds codes (sku, order no, version...) and not PII."""
    return not hints and any(w in NOT_PII for w in context.split())


@dataclass
class ColumnClass:
    """A column's classification (None when it holds no PII), with the evidence behind it.

    `confidence` is how sure the decision is (0..1); `matches` is the share of sampled
    non-empty values that are wholly each entity (and `free_text`: the share holding a span).
    """

    name: str
    classification: str | None
    confidence: float
    type: str = ""
    sampled: int = 0
    matches: dict[str, float] = field(default_factory=dict)
    tag: str | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "classification": self.classification,
            "confidence": round(self.confidence, 3),
            "type": self.type,
            "sampled": self.sampled,
            "matches": {k: round(v, 3) for k, v in self.matches.items()},
            "tag": self.tag,
            "reason": self.reason,
        }


@functools.cache
def default_analyzer() -> Analyzer:
    """One analyzer with every built-in recognizer, built once per process."""
    return Analyzer()


def as_texts(values: pa.Array | pa.ChunkedArray) -> list[str] | None:
    """The non-empty values of a column as text, or None for columns that cannot hold PII.

    Floats, decimals and booleans are measures and flags, not personal data. Dates and times
    become ISO text (a date of birth may be stored as a date); integers become digits (a
    phone or card number may be stored as a number); nested values (structs, lists, maps from
    JSONL or Parquet) become their JSON text, so the PII inside them is found.
    """
    kind = values.type
    if (
        pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
        or pa.types.is_dictionary(kind)
        and not pa.types.is_string(kind.value_type)
    ):
        return None
    if pa.types.is_nested(kind):  # structs, lists, maps: their JSON text is analysed
        values = json_texts(values)
    elif pa.types.is_dictionary(kind):
        values = values.cast(kind.value_type)
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return None
    elif pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        values = pc.strftime(values, format="%Y-%m-%d")
    elif not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        values = values.cast(pa.string())
    texts = values.drop_null().to_pylist()
    return [t[:MAX_VALUE_CHARS] for t in texts if t and not t.isspace()]


def _coverage(spans: Sequence[Span], offset: int, length: int) -> dict[Entity, float]:
    """Share of the value's characters covered by spans of each entity (spans in the value)."""
    covered: dict[Entity, int] = {}
    for span in spans:
        if span.start >= offset:
            covered[span.entity] = covered.get(span.entity, 0) + span.end - span.start
    return {e: n / length for e, n in covered.items()}


def classify_values(
    name: str,
    texts: Sequence[str],
    *,
    analyzer: Analyzer | None = None,
    type_name: str = "",
    tag: str | None = None,
) -> ColumnClass:
    """Classify a column from its name and its sampled non-empty values (as text)."""
    context = name_words(name)
    hints = hinted(context)
    result = ColumnClass(name, None, 1.0, type=type_name, sampled=len(texts), tag=tag)
    if not texts:
        result.confidence, result.reason = 0.0, "no values"
        return _with_tag(result)
    analyzer = analyzer or default_analyzer()
    prefix = f"{context}: " if context else ""
    values = [t.strip() for t in texts]
    found = analyzer.analyze_batch([prefix + v for v in values])
    whole: Counter[Entity] = Counter()
    with_span = 0
    sparse = 0  # values with a span that counts even under a code-like name
    veto = vetoed(context, hints)
    for value, spans in zip(values, found, strict=True):
        inside = [s for s in spans if s.start >= len(prefix)]
        if not inside:
            continue
        with_span += 1
        if not veto or any(s.entity in CHECKSUMMED or s.entity.is_secret for s in inside):
            sparse += 1
        coverage = _coverage(inside, len(prefix), max(1, len(value)))
        best = max(coverage, key=lambda e: coverage[e])
        if coverage[best] >= WHOLE_BY_ENTITY.get(best, WHOLE):
            whole[best] += 1
    n = len(values)
    result.matches = {e.classification: c / n for e, c in whole.most_common()}
    words = sum(v.count(" ") + 1 for v in values) / n
    if words >= FREE_TEXT_WORDS:
        result.matches[FREE_TEXT] = with_span / n
    ranked = whole.most_common()
    # a column mixing entities (e-mails and phones in `contact`) is its most common one
    mixed = sum(whole.values()) / n >= COLUMN_SHARE
    for entity, count in ranked:
        share = count / n
        if entity is Entity.DOB and entity not in hints:
            continue  # a date is a birth date only when the name says so
        if veto and entity not in CHECKSUMMED and not entity.is_secret:
            continue
        if share >= COLUMN_SHARE or (mixed and entity is ranked[0][0]):
            result.classification = entity.classification
            result.confidence = _boost(share, entity in hints)
            result.reason = "content and name" if entity in hints else "content"
            return _with_tag(result)
    if words >= FREE_TEXT_WORDS and with_span / n >= FREE_TEXT_SHARE:
        result.classification = FREE_TEXT
        result.confidence = min(1.0, 0.5 + with_span / n)
        result.reason = "spans inside text"
        return _with_tag(result)
    shaped = _shape_match(context, hints, values)
    if shaped is not None:
        entity, share = shaped
        result.classification = entity.classification
        result.confidence = round(0.8 * share, 3)
        result.reason = "name and shape"
        return _with_tag(result)
    if sparse >= SPARSE_VALUES and sparse / n >= SPARSE_SHARE:
        share = sparse / n
        result.classification = FREE_TEXT
        result.matches[FREE_TEXT] = with_span / n
        result.confidence = round(min(0.95, 0.5 + 2.5 * share), 3)
        result.reason = f"PII spans in {share:.0%} of values"
        return _with_tag(result)
    strongest = max(result.matches.values(), default=0.0)
    if veto and strongest:  # the name says codes, though the content looks like PII
        result.confidence, result.reason = 1.0 - strongest / 2, "code-like name"
    else:
        result.confidence = 1.0 - strongest
    return _with_tag(result)


def _boost(share: float, named: bool) -> float:
    """Content share, raised when the column name agrees with the content."""
    return min(1.0, 0.5 + share / 2) if named else share


def _shape_match(
    context: str, hints: frozenset[Entity], values: Sequence[str]
) -> tuple[Entity, float] | None:
    """A name or address column recognised from its name and the shape of its values."""
    if Entity.NAME in hints and any(_has(context, h) for h in STRONG_NAME):
        shape = _NAME_SHAPE
        entity = Entity.NAME
    elif Entity.ADDRESS in hints:
        shape = _ADDRESS_SHAPE
        entity = Entity.ADDRESS
    else:
        return None
    share = sum(1 for v in values if len(v) <= 200 and shape.fullmatch(v)) / len(values)
    return (entity, share) if share >= SHAPE_SHARE else None


def _with_tag(result: ColumnClass) -> ColumnClass:
    """Take the column's stored tag into account.

    A transformed tag (`pii.email/tokenized`) is reported when the content is of the same class
    or of none (tokens may still look like e-mails); raw PII found in a column tagged otherwise
    is reported as found. A raw tag set by the data's owner stands when content finds nothing.
    """
    tag = result.tag
    if not tag:
        return result
    if not is_raw(tag):
        if result.classification in (None, base_class(tag)):
            result.classification, result.confidence, result.reason = tag, 1.0, "tag"
    elif result.classification is None:
        result.classification, result.confidence, result.reason = tag, 1.0, "tag"
    return result
