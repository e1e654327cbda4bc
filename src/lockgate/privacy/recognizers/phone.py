"""Phone numbers: international (`+44 20 7946 0958`, `0049 30 901820`) and the national formats
of the US, GB, IE, DE, AT, CH, FR, BE, NL, IT, ES and MX, validated with `phonenumbers`.

A compiled regex finds phone-shaped runs and already rejects, in C, the runs glued to other
tokens and the shapes of dates, IPv4 addresses and SSNs; `phonenumbers` (tens of microseconds a
call, so cached) is asked only about the few candidates left. The label just before a number
decides between a phone ("tel", "call", "Handy"...) and a look-alike ("order", "invoice", "#",
"tracking", "SKU"...): the closest such word wins.

Scores: a valid number written internationally 0.9, or in a national phone format 0.8; with a
phone word before it 0.95. A number that is only the right length for its country (possible,
not valid) counts with a phone word (0.85), written internationally (0.7) or in the US
`(415) 555-2671` style (0.6). A national number written as a bare digit run counts only with a
phone word: ten digits alone are as likely an id (and validating every id would cost).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Final

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumber

from lockgate.privacy.entities import Entity, Span
from lockgate.privacy.recognizers.context import Labels

_SEP = r"[ \u00a0.\-/]"
# ASCII classes throughout: the engine tests them faster than \d and \w, and this scan runs at
# every digit of every row
_CANDIDATE: Final = re.compile(
    # a first character not glued to a word, number, path or "#" (checked after it is read, so
    # the engine can skip ahead to "+", "(" or a digit); not the minutes of a time
    r"[+(0-9](?<![0-9A-Za-z_.,/+\-#@][+(0-9])(?<![0-9]:[0-9])"
    # when it is a digit (already read), not the start of a date, an IPv4 address or an SSN
    r"(?!(?<=[0-9])[0-9]{3}[-./][0-9][0-9]?[-./][0-9][0-9]?(?![.\-/]?[0-9]))"
    r"(?!(?<=[0-9])[0-9]?[-./][0-9][0-9]?[-./](?:[0-9][0-9]){1,2}(?![.\-/]?[0-9]))"
    r"(?!(?<=[0-9])[0-9]{0,2}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?!\.?[0-9]))"
    r"(?!(?<=[0-9])[0-9]{2}([- ])[0-9][0-9]\1[0-9]{4}(?![0-9]))"
    r"(?:(?<=\()\+?[0-9]{1,5}\)|(?<=\+)[0-9]|(?<=[0-9])[0-9])"
    rf"(?:{_SEP}?(?:\([0-9]{{1,5}}\)|[0-9])){{5,22}}"
    r"(?:\ ?(?:x|ext\.?)\ ?[0-9]{1,6})?"
    r"(?![0-9A-Za-z_:]|[.\-/,][0-9])"
)

_KEEP_DIGITS: Final = str.maketrans(dict.fromkeys("+() .-/\u00a0xet"))
"""Deletes every character a candidate may hold but its digits."""
_EXTENSION: Final = re.compile(r" ?(?:x|ext\.?) ?\d{1,6}\Z")
_IBAN_HEAD: Final = re.compile(r"\b[A-Z]{2}[0-9]{2}(?: [A-Z0-9]{4})* \Z")
_NANP_STYLE: Final = re.compile(r"(?:\+?1[ .\-]?)?\(\d{3}\) ?\d{3}[ .\-]\d{4}")

_POSITIVE = (
    "phone", "telephone", "tel", "tel.", "call", "mobile", "cell", "cellphone", "fax", "sms",
    "text", "whatsapp", "dial", "ring", "contact", "telefon", "telefonnummer", "handy", "mobil",
    "rufnummer", "téléphone", "telephone", "portable", "tél", "tél.", "appelez", "teléfono",
    "telefono", "móvil", "movil", "llame", "cellulare", "chiamare", "telefoon", "mobiel", "bel",
)  # fmt: skip
_NEGATIVE = (
    "order", "order no", "order number", "invoice", "tracking", "track", "shipment", "parcel",
    "ref", "ref.", "reference", "sku", "part", "item", "article", "serial", "ticket", "case",
    "transaction", "txn", "id", "account", "acct", "po", "isbn", "ean", "upc",
    "batch", "lot", "model", "version", "build", "timestamp", "epoch", "price", "total", "amount",
    "bestellung", "bestellnummer", "rechnung", "sendung", "sendungsnummer", "artikel",
    "commande", "facture", "colis", "suivi", "réf", "réf.", "pedido", "factura", "envío",
    "seguimiento", "referencia", "ordine", "fattura", "spedizione", "riferimento",
    "bestelling", "factuur", "zending", "usd", "eur", "gbp",
)  # fmt: skip


_LABELS: Final = Labels(_POSITIVE, _NEGATIVE)
_SYMBOLS: Final = ("#", "$", "€", "£")
"""Right before a number: an order/reference number or a price, not a phone."""


def _label(text: str, start: int) -> bool | None:
    """True for a phone word closest before `start`, False for a look-alike's label, None for
    neither (lower-cased; the window stops at the line break)."""
    window = _LABELS.window(text, start)
    if window.rstrip().endswith(_SYMBOLS):
        return False
    return _LABELS.closest(window)


@lru_cache(maxsize=8192)
def _judge(international: bool, digits: str) -> int:
    """2 if `digits` is a valid number, 1 if only possible, 0 if neither. International digits
    start with the country code; national ones are tried in the main locales by their shape."""
    best = 0
    readings = _international_reading(digits) if international else _national_readings(digits)
    for number in readings:
        if phonenumbers.is_valid_number(number):
            return 2
        if best == 0 and phonenumbers.is_possible_number(number):
            best = 1
    return best


def _international_reading(digits: str) -> Iterator[PhoneNumber]:
    """`digits` split into its country calling code (codes are prefix-free) and national number:
    built directly, as `phonenumbers.parse` costs more than the validation itself."""
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            national = digits[size:]
            if national:
                zeros = len(national) - len(national.lstrip("0"))
                yield PhoneNumber(
                    country_code=code,
                    national_number=int(national),
                    italian_leading_zero=zeros > 0 or None,
                    number_of_leading_zeros=zeros if zeros > 1 else None,
                )
            return


_TRUNK_ZERO: Final = (44, 49, 33, 31, 32, 43, 41, 353)
"""GB, DE, FR, NL, BE, AT, CH, IE: national numbers written with a leading trunk 0."""


def _national_readings(digits: str) -> Iterator[PhoneNumber]:
    """`digits` as written nationally in the US, GB, IE, DE, AT, CH, FR, BE, NL, IT, ES, MX."""
    n = len(digits)
    first = digits[0]
    if first == "0":
        rest = int(digits[1:])
        for country_code in _TRUNK_ZERO:
            yield PhoneNumber(country_code=country_code, national_number=rest)
        yield PhoneNumber(country_code=39, national_number=int(digits), italian_leading_zero=True)
        return
    if n == 10 or (n == 11 and first == "1"):
        yield PhoneNumber(country_code=1, national_number=int(digits[-10:]))
    if n == 10:
        yield PhoneNumber(country_code=52, national_number=int(digits))  # Mexico
    if first == "3" and n in (9, 10):
        yield PhoneNumber(country_code=39, national_number=int(digits))
    if n == 9 and first in "6789":
        yield PhoneNumber(country_code=34, national_number=int(digits))


def _international(candidate: str, digits: str) -> tuple[bool, str]:
    """Whether the number is written with an international prefix, and its digits from the
    country code on (a national trunk "(0)" after the country code left out)."""
    if "(0)" in candidate:
        digits = candidate.replace("(0)", "").translate(_KEEP_DIGITS)
    if candidate.startswith("+"):
        return True, digits
    if digits.startswith("00") and candidate.startswith("00"):
        return True, digits[2:]
    if digits.startswith("011") and candidate.startswith("011") and len(digits) > 11:
        return True, digits[3:]  # the US exit code
    return False, digits


class PhoneRecognizer:
    """Phone numbers, validated by `phonenumbers`, judged by the label before them."""

    name = "phone"
    entities = (Entity.PHONE,)

    def find(self, text: str) -> Iterator[Span]:
        for m in _CANDIDATE.finditer(text):
            candidate = m.group()
            core = _EXTENSION.sub("", candidate) if "x" in candidate else candidate
            digits = core.translate(_KEEP_DIGITS)
            if not 7 <= len(digits) <= 15:
                continue
            international, digits = _international(core, digits)
            if not international and not _plausible_national(digits):
                continue
            start = m.start()
            if _IBAN_HEAD.search(text, max(0, start - 40), start):
                continue  # the digits of an IBAN (one that failed its checksum)
            label = _label(text, start)
            verdict = -1
            if label is False:
                # a valid number written with "+" is a phone whatever word precedes it
                # ("ticket raised by +44 20 7946 0958"); other look-alikes are rejected
                if not core.startswith("+") or _judge(True, digits) != 2:
                    continue
                label, verdict = None, 2
            elif label is None and not international and core.isdigit():
                continue  # a bare national digit run is a phone only when labelled
            if verdict < 0:
                verdict = _judge(international, digits)
            score = _score(verdict, label, international, core)
            if score:
                yield Span(start, m.end(), Entity.PHONE, score, self.name)


def _plausible_national(digits: str) -> bool:
    n = len(digits)
    first = digits[0]
    if first == "0":
        return n >= 7 and digits[1] != "0"
    return n in (9, 10) or (n == 11 and first == "1")


def _score(verdict: int, label: bool | None, international: bool, candidate: str) -> float:
    if verdict == 0:
        return 0.0
    if label:
        return 0.95 if verdict == 2 else 0.85
    if verdict == 2:
        return 0.9 if international else 0.8
    if international:
        return 0.7
    return 0.6 if _NANP_STYLE.fullmatch(candidate) else 0.0


RECOGNIZERS: Final = (PhoneRecognizer(),)
