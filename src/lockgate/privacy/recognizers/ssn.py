"""US Social Security numbers: `123-45-6789`, `123 45 6789`, and nine bare digits after an SSN
label.

Numbers in ranges the SSA never issues (area 000, 666 or 900-999, group 00, serial 0000, the
advertised 078-05-1120 and 219-09-9999) are not SSNs. Part, SKU and order codes share the shape:
the closest label before the number decides ("SKU 123-45-6789" is a part code, "SSN: ..." an SSN).

Scores: with an SSN label 0.95; dashed without a label 0.85; spaced without a label 0.7 (the
grouping is still specific); bare digits only with a label.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from lockgate.privacy.checksums import ssn_valid
from lockgate.privacy.entities import Entity, Span
from lockgate.privacy.recognizers.context import Labels

# anchored on the separator (a literal, so the engine skips ahead in C): "-45-6789", " 45 6789";
# the area number before it is read in Python
_DASHED: Final = re.compile(r"-([0-9]{2})-([0-9]{4})(?![0-9A-Za-z_]|[.\-/][0-9])")
_SPACED: Final = re.compile(r" ([0-9]{2}) ([0-9]{4})(?![0-9A-Za-z_]|[.\-/][0-9])")
# SSN labels (for nine bare digits), anchored on a literal first letter
_BARE_LABELS: Final = (
    re.compile(r"S(?:SN|S#|ocial [Ss]ec|OCIAL SEC)"),
    re.compile(r"s(?:sn|s#|ocial sec)"),
)
_BARE: Final = re.compile(r"(?<![0-9A-Za-z_.\-/+#])([0-9]{3})([0-9]{2})([0-9]{4})(?![0-9A-Za-z_])")
_GLUED_BEFORE: Final = frozenset(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_.-/+"
)

_POSITIVE = (
    "ssn", "ssns", "ssn#", "social security", "social security number", "social security no",
    "social sec", "soc sec", "soc. sec.", "ss#", "ss no", "ss no.", "ssa", "taxpayer id", "tin",
)  # fmt: skip
_NEGATIVE = (
    "sku", "part", "part no", "part number", "p/n", "pn", "item", "model", "product", "article",
    "catalog", "cat", "order", "invoice", "ref", "ref.", "reference", "tracking", "serial", "s/n",
    "sn", "lot", "batch", "po", "ticket", "case", "zip", "routing", "account", "acct", "claim",
    "policy", "version", "isbn", "upc", "ean", "artikel", "artikelcode", "artikelnummer",
    "art.-nr.", "bestellnummer", "bestellung", "teil", "teilenummer", "article", "code article",
    "référence", "réf", "réf.", "commande", "artículo", "referencia", "pedido", "código",
    "articolo", "codice articolo", "riferimento", "ordine", "codice", "referentie", "bestelling",
    "artikelnr", "onderdeel",
)  # fmt: skip
_WORDS: Final = Labels(_POSITIVE, _NEGATIVE)


def _label(text: str, start: int) -> bool | None:
    """True for an SSN label closest before `start`, False for a code's label, None for neither."""
    window = _WORDS.window(text, start)
    if window.rstrip().endswith("#") and not window.rstrip().endswith(("ss#", "ssn#")):
        return False
    return _WORDS.closest(window)


class SsnRecognizer:
    """US SSNs in issued ranges, judged by the label before them."""

    name = "ssn"
    entities = (Entity.SSN,)

    def find(self, text: str) -> Iterator[Span]:
        for pattern, separator in ((_DASHED, "-"), (_SPACED, " ")):
            for m in pattern.finditer(text):
                start = m.start() - 3
                if start < 0 or not text[start : m.start()].isdigit():
                    continue
                if start > 0 and text[start - 1] in _GLUED_BEFORE:
                    continue
                span = self._judge(text, start, m.end(), text[start : m.start()], m, separator)
                if span is not None:
                    yield span
        yield from self._bare(text)

    def _bare(self, text: str) -> Iterator[Span]:
        """Nine bare digits right after an SSN label."""
        for label in _BARE_LABELS:
            for hit in label.finditer(text):
                window_end = _window_end(text, hit.end(), 40)
                m = _BARE.search(text, hit.end(), window_end)
                if m is not None:
                    span = self._judge(text, m.start(), m.end(), m.group(1), m, "", group=2)
                    if span is not None:
                        yield span

    def _judge(
        self, text: str, start: int, end: int, area: str, m: re.Match[str], sep: str, group: int = 1
    ) -> Span | None:
        if not ssn_valid(area, m.group(group), m.group(group + 1)):
            return None
        label = _label(text, start)
        if label is False:
            return None
        if label:
            score = 0.95
        elif sep == "-":
            score = 0.85
        elif sep == " ":
            score = 0.7
        else:
            return None  # nine bare digits are an SSN only when labelled
        return Span(start, end, Entity.SSN, score, self.name)


def _window_end(text: str, pos: int, window: int) -> int:
    """The end of the `window` characters after `pos`, cut at the next line break."""
    cut = text.find("\n", pos, pos + window)
    return cut if cut >= 0 else min(len(text), pos + window)


RECOGNIZERS: Final = (SsnRecognizer(),)
