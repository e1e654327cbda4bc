"""Dates of birth: a date near a birth-date label ("born", "DOB", "date of birth", "geboren",
"né le", "fecha de nacimiento", "data di nascita", "geboortedatum"...), not every date.

The scan looks for the labels first (rare, so few windows to read), then for dates in the same
line next to them. Each date belongs to the closest label before it: a shipping, order or
creation label ("shipped", "ordered", "created", "geliefert", "expédié"...) claims its own date
even in a sentence that also holds a birth date. A date with no label before it counts when a
birth label follows right after it ("1985-03-02 (DOB)").

Formats: 1985-03-02, 03/02/1985 (month or day first), 2.3.1985, 02.03.1985, March 2, 1985,
2 March 1985, 2 mars 1985, 2. März 1985, 2 de marzo de 1985, 1er mars 1985, two-digit years.
The date must exist and lie between 1900-01-01 and today. Score 0.9.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Final

from lockgate.privacy.entities import Entity, Span
from lockgate.privacy.recognizers.context import cased, trie_pattern

SCORE: Final = 0.9
WINDOW: Final = 64
"""Characters read after a birth label (and before it) for its date."""

_BIRTH = (
    "born", "born on", "dob", "d.o.b.", "d.o.b", "date of birth", "birth date", "birthdate",
    "birthday", "b.", "geboren", "geboren am", "geburtsdatum", "geburtstag", "geb.", "né le",
    "née le", "né", "née", "date de naissance", "fecha de nacimiento", "nacido", "nacida",
    "nacido el", "nacida el", "nato il", "nata il", "nato a", "nata a", "data di nascita",
    "geboortedatum", "geboren op",
)  # fmt: skip
_OTHER = (
    "shipped", "ship date", "shipping", "delivered", "delivery", "ordered", "order", "order date",
    "created", "created at", "updated", "modified", "issued", "expires", "expiry", "expiration",
    "valid until", "due", "paid", "purchased", "registered", "joined", "signed up", "hired",
    "started", "since", "last login", "visited", "booked", "arrival", "departure", "invoice",
    "dated", "posted", "published", "released", "sent", "received", "renewed", "cancelled",
    "versandt", "versendet", "geliefert", "bestellt", "erstellt", "aktualisiert", "bezahlt",
    "lieferung", "expédié", "livré", "livraison", "commandé", "créé", "mis à jour", "payé",
    "enviado", "entregado", "pedido", "creado", "actualizado", "pagado", "spedito",
    "consegnato", "ordinato", "creato", "aggiornato", "pagato", "verzonden", "geleverd",
    "besteld", "aangemaakt", "bijgewerkt", "betaald", "opened", "closed", "returned", "placed",
    "appointment", "meeting", "scheduled", "versand", "bestellung", "bestellung vom", "zugestellt",
    "termin", "lieferdatum", "eröffnet", "réunion", "rendez-vous", "commande", "envío", "cita",
    "reunión", "consegna", "appuntamento", "riunione", "ordine", "bestelling", "afspraak",
    "verstuurd", "gesendet", "envoyé", "inviato", "geopend",
)  # fmt: skip


# a birth label (the word boundary before it is checked on the few hits)
_BIRTH_LABEL: Final = re.compile(trie_pattern(cased(_BIRTH)) + r"(?!\w)")
_LABEL: Final = re.compile(r"(?<!\w)" + trie_pattern(cased((*_BIRTH, *_OTHER))) + r"(?!\w)")
"""Any label, birth or other, in the casings of `cased` (a factored, case-sensitive pattern
scans a window ten times faster than a case-insensitive alternation)."""
_BIRTH_SET: Final = frozenset(_BIRTH)

_MONTHS: Final[dict[str, int]] = {}
for _number, _names in enumerate(
    (
        "january jan janvier janv januar jänner jän enero ene gennaio gen januari",
        "february feb février fevrier févr fevr februar febrero febbraio febr februari",
        "march mar mars märz maerz marzo maart mrt mär",
        "april apr avril avr abril aprile",
        "may mai mayo maggio mei mag",
        "june jun juin juni junio giugno",
        "july jul juillet juil juli julio luglio lug",
        "august aug août aout agosto ago augustus",
        "september sep sept septembre septiembre setiembre settembre set",
        "october oct octobre oktober octubre ottobre okt ott",
        "november nov novembre noviembre",
        "december dec décembre decembre déc dezember diciembre dicembre dez dic",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number

_MONTH = trie_pattern(cased(_MONTHS)) + r"\.?"
_DATE: Final = re.compile(
    r"(?<![\w.\-/])(?:"
    r"(?P<iso_y>\d{4})(?P<iso_s>[-/.])(?P<iso_m>\d{1,2})(?P=iso_s)(?P<iso_d>\d{1,2})"
    r"|(?P<n_a>\d{1,2})(?P<n_s>[-/.])(?P<n_b>\d{1,2})(?P=n_s)(?P<n_y>\d{4}|\d{2})"
    rf"|(?P<mf_m>{_MONTH})\s(?P<mf_d>\d{{1,2}})(?:st|nd|rd|th)?,?\s(?P<mf_y>\d{{4}})"
    r"|(?P<df_d>\d{1,2})(?:\.|er|st|nd|rd|th|º|°)?\s?(?:de\s|of\s)?"
    rf"(?P<df_m>{_MONTH}),?\s(?:de\s)?(?P<df_y>\d{{4}})"
    r")(?![\w]|[.\-/]\d)"
)


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        year += 1900 if year > dt.date.today().year % 100 else 2000
    return year


def _plausible(year: int, month: int, day: int) -> bool:
    try:
        date = dt.date(year, month, day)
    except ValueError:
        return False
    return dt.date(1900, 1, 1) <= date <= dt.date.today()


def _is_birth_date(m: re.Match[str]) -> bool:
    """Whether the matched date exists and is a plausible birth date."""
    g = m.group
    if g("iso_y"):
        return _plausible(int(g("iso_y")), int(g("iso_m")), int(g("iso_d")))
    if g("n_y"):
        year, a, b = _year(g("n_y")), int(g("n_a")), int(g("n_b"))
        if g("n_s") == ".":
            return _plausible(year, b, a)  # dotted dates are day first
        return _plausible(year, a, b) or _plausible(year, b, a)
    if g("mf_y"):
        month = _MONTHS[g("mf_m").rstrip(".").lower()]
        return _plausible(int(g("mf_y")), month, int(g("mf_d")))
    month = _MONTHS[g("df_m").rstrip(".").lower()]
    return _plausible(int(g("df_y")), month, int(g("df_d")))


def _owner(text: str, line_start: int, at: int) -> str | None:
    """The kind ("birth" or "other") of the label closest before `at` on its line."""
    last = None
    for match in _LABEL.finditer(text, max(line_start, at - WINDOW), at):
        last = match
    return None if last is None else _kind(last)


def _kind(label: re.Match[str]) -> str:
    return "birth" if label.group().lower() in _BIRTH_SET else "other"


def _labelled_after(text: str, end: int, line_end: int) -> bool:
    """Whether a birth label follows the date at `end` with only punctuation between."""
    after = _LABEL.search(text, end, min(line_end, end + 24))
    if after is None or _kind(after) != "birth":
        return False
    return not any(c.isalnum() for c in text[end : after.start()])


class DobRecognizer:
    """Dates of birth: real, plausible dates owned by a birth-date label."""

    name = "dob"
    entities = (Entity.DOB,)

    def find(self, text: str) -> Iterator[Span]:
        done = -1
        for label in _BIRTH_LABEL.finditer(text):
            if label.start() and (
                text[label.start() - 1].isalnum() or text[label.start() - 1] == "_"
            ):
                continue
            line_start = text.rfind("\n", 0, label.start()) + 1
            line_end = text.find("\n", label.end())
            if line_end < 0:
                line_end = len(text)
            lo = max(line_start, label.start() - WINDOW, done)
            hi = min(line_end, label.end() + WINDOW)
            for m in _DATE.finditer(text, lo, hi):
                if not _is_birth_date(m):
                    continue
                start, end = m.start(), m.end()
                owner = _owner(text, line_start, start)
                if owner == "other":
                    continue
                if owner is None and not _labelled_after(text, end, line_end):
                    continue
                done = max(done, end)
                yield Span(start, end, Entity.DOB, SCORE, self.name)


RECOGNIZERS: Final = (DobRecognizer(),)
