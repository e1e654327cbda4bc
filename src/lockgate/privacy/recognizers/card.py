"""Payment card numbers (PAN): 13-19 digits (Maestro from 12), bare or in the usual groups of 4 (Amex and Diners
4-6-5 / 4-6-4) separated by spaces or dashes.

A number is a card only if its issuer prefix and length belong to a real scheme and it passes
Luhn (checksums.card_valid). One random number in ten passes Luhn, so a tracking, order or
account label before the number rejects it, and the closest label wins.

Scores: a card label before it 1.0; grouped 0.95; bare digits 0.9.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from lockgate.privacy.checksums import card_valid
from lockgate.privacy.entities import Entity, Span
from lockgate.privacy.recognizers.context import last_words

_CANDIDATE: Final = re.compile(
    # the first digit is not glued to a word, number or code (checked after it is read, so the
    # engine skips ahead to digits); ASCII classes, which the engine tests faster than \d and \w
    r"[0-9](?<![0-9A-Za-z_.\-/+#,][0-9])(?:[ \-]?[0-9]){11,18}(?![0-9A-Za-z_]|[.\-/,][0-9])"
)

_IBAN_HEAD: Final = re.compile(r"\b[A-Z]{2}[0-9]{2}(?: [A-Z0-9]{4})* \Z")

_POSITIVE = (
    "card", "card number", "card no", "credit card", "debit card", "cc", "ccn", "pan", "visa",
    "mastercard", "master card", "amex", "american express", "discover", "jcb", "diners",
    "maestro", "unionpay", "payment", "paid with", "charged", "karte", "kreditkarte",
    "kartennummer", "carte", "carte bancaire", "cb", "tarjeta", "carta", "kaart", "creditcard",
)  # fmt: skip
_NEGATIVE = (
    "tracking", "track", "order", "invoice", "ref", "ref.", "reference", "account", "acct",
    "iban", "imei", "serial", "transaction", "txn", "ticket", "sku", "isbn", "shipment", "parcel",
    "awb", "waybill", "sendung", "sendungsnummer", "bestellung", "commande", "suivi", "colis",
    "pedido", "seguimiento", "ordine", "spedizione", "bestelling", "zending", "id", "uuid",
)  # fmt: skip
_CONTEXT: Final = re.compile(
    r"(?<!\w)(?:"
    + "|".join(re.escape(w) for w in sorted({*_POSITIVE, *_NEGATIVE}, key=len, reverse=True))
    + r")(?!\w)"
)
_POSITIVE_SET: Final = frozenset(_POSITIVE)

_WORDS: Final = 3
"""Only the last words before a number, in its sentence, can label it: a word further back
belongs to something else ("... his account. 4111 ...")."""


def _label(text: str, start: int) -> bool | None:
    """True for a card label closest before `start`, False for a look-alike's, None for neither
    (a "#" right before an unlabelled number makes it a reference)."""
    window = last_words(text, start, _WORDS).lower()
    last = None
    for match in _CONTEXT.finditer(window):
        last = match
    if last is None:
        return False if window.rstrip().endswith("#") else None
    return last.group() in _POSITIVE_SET


def _grouping_ok(groups: list[str]) -> bool:
    """Groups of 4 (the last one 1-4 digits), or Amex/Diners 4-6-5 and 4-6-4."""
    sizes = [len(g) for g in groups]
    if sizes in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4


def _card_prefix(candidate: str) -> tuple[int, bool] | None:
    """The length of the longest prefix of `candidate` that is a card, and whether it is
    grouped; None when none is."""
    separators = set(candidate) - set("0123456789")
    if not separators:
        return (len(candidate), False) if card_valid(candidate) else None
    if len(separators) > 1:
        return None
    sep = separators.pop()
    groups = candidate.split(sep)
    while groups and sum(len(g) for g in groups) >= 12:
        if _grouping_ok(groups) and card_valid("".join(groups)):
            return len(sep.join(groups)), True
        groups.pop()  # a number or year after the card: try without it
    return None


class CardRecognizer:
    """Payment card numbers: scheme prefix and length, Luhn, and the label before them."""

    name = "card"
    entities = (Entity.CARD,)

    def find(self, text: str) -> Iterator[Span]:
        for m in _CANDIDATE.finditer(text):
            found = _card_prefix(m.group())
            if found is None:
                continue
            length, grouped = found
            start = m.start()
            if _IBAN_HEAD.search(text, max(0, start - 40), start):
                continue  # the digits of an IBAN (one that failed its checksum)
            label = _label(text, start)
            if label is False:
                continue
            score = 1.0 if label else 0.95 if grouped else 0.9
            yield Span(start, start + length, Entity.CARD, score, self.name)


RECOGNIZERS: Final = (CardRecognizer(),)
