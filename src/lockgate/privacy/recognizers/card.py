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
from string import ascii_letters, digits
from typing import Final

from lockgate.privacy.checksums import card_valid
from lockgate.privacy.entities import Entity, Span
from lockgate.privacy.recognizers.context import Labels

_CANDIDATE: Final = re.compile(
    # the first digit is not glued to a word, number or code (checked after it is read, so the
    # engine skips ahead to digits); ASCII classes, which the engine tests faster than \d and \w
    r"[0-9](?<![0-9A-Za-z_.\-/+#,][0-9])(?:[ \-]?[0-9]){11,18}(?![0-9A-Za-z_]|[.\-/,][0-9])"
)


def _shape_table() -> bytes:
    table = bytearray(b"b" * 256)
    for chars, shape in ((digits, "0"), (ascii_letters + "_./+#,", "x"), (" ", " "), ("-", "-")):
        for ch in chars:
            table[ord(ch)] = ord(shape)
    return bytes(table)


_SHAPE: Final = _shape_table()
"""A translation table: digit -> "0", a character a card may not follow -> "x", space and dash
stay, anything else (line breaks among them) -> "b"."""

_LINE_HINT: Final = re.compile(
    # a necessary condition for a card, on the shape of the text: its first four digits are bare
    # (one group of four, or no separators), after a character it may follow, and twelve digits
    # or more follow. The literal "0000" first lets the engine skip ahead in C, where _CANDIDATE
    # would be tried at every digit; only the lines with a hit are then read with _CANDIDATE.
    rb"0000(?<=[ b]0000)(?:[ \-]?0){8,15}"
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
_LABELS: Final = Labels(_POSITIVE, _NEGATIVE)


def _label(text: str, start: int) -> bool | None:
    """True for a card label closest before `start`, False for a look-alike's, None for neither
    (a "#" right before an unlabelled number makes it a reference)."""
    window = _LABELS.window(text, start)
    label = _LABELS.closest(window)
    if label is None and window.rstrip().endswith("#"):
        return False
    return label


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
        for start, end in _hinted_lines(text):
            yield from self._find_in(text, start, end)

    def _find_in(self, text: str, pos: int, endpos: int) -> Iterator[Span]:
        for m in _CANDIDATE.finditer(text, pos, endpos):
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


def _hinted_lines(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of the lines of `text` that may hold a card: the first line (nothing before
    its first character for _LINE_HINT to read) and every line with a _LINE_HINT hit. A candidate
    never crosses a line break, so reading these lines alone finds every card."""
    cut = text.find("\n")
    if cut < 0:
        yield 0, len(text)
        return
    done = cut
    yield 0, done
    # latin-1 with "?" for other characters keeps one byte per character, so offsets agree
    shape = text.encode("latin-1", "replace").translate(_SHAPE)
    for hit in _LINE_HINT.finditer(shape, done):
        first = hit.start()
        if first <= done:
            continue  # on a line already read
        start = text.rfind("\n", 0, first) + 1
        cut = text.find("\n", first)
        done = len(text) if cut < 0 else cut
        yield start, done


RECOGNIZERS: Final = (CardRecognizer(),)
