"""Street addresses: a house number and a street with a street type, as written in the US and UK,
Germany, France, Spain, Italy and the Netherlands; the span covers the whole address (unit,
postcode and city included when they follow).

Three shapes:
- number first (en, fr): "1600 Pennsylvania Avenue NW, Washington, DC 20500", "221B Baker
  Street, London NW1 6XE", "12 rue de la Paix, 75002 Paris". English street types are the
  USPS suffixes (read from Faker's en_US address provider on first use) and their
  abbreviations, capitalised.
- street type first (es, it): "Calle Mayor 5, 3º B", "C/ de Alcalá 12", "Via Roma 10", "Piazza
  Garibaldi, 1/A, 20121 Milano (MI)".
- street then number (de, nl): "Hauptstraße 12", "Berliner Str. 5a", "Am Markt 3a, 10115
  Berlin", "Kerkstraat 12-2, 1234 AB Amsterdam".
A street type is required, and a street type word alone does not make one ("3 Street Fighter
games", "Route 66", "5 Avenues of growth", "Via email"). Weak shapes score lower and need a
postcode and city after them or an address word near them ("Adresse", "ship to", "dirección",
"woont op"): German prepositional streets ("Am Markt 3"), compounds ending in "-platz",
"-ring", "-hof"... after an article ("der Arbeitsplatz 3"), rarer USPS types.

Each shape is one regex that starts with a digit, a capital or a street-type literal, so that the
regex engine skips ahead in C to where an address can start.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterator
from typing import Final

from lockgate.privacy.entities import Entity, Span
from lockgate.privacy.recognizers.context import near, words_pattern
from lockgate.privacy.recognizers.names import UPPER, word_set

FULL_SCORE: Final = 0.95
"""Street, number, postcode and city."""
STREET_SCORE: Final = 0.9
"""A street with a common street type and a number."""
UNCOMMON_SCORE: Final = 0.6
"""A rarer street type ("Shoals", "Crossing"), or a compound ending in "-platz", "-ring"..."""
WEAK_SCORE: Final = 0.45
"""Below the analyzer's floor unless context or a postcode lifts it."""
CONTEXT_BONUS: Final = 0.3

_CONTEXT: Final = words_pattern(
    word_set(
        "address addr adresse anschrift wohnhaft wohnt wohnen lieferadresse rechnungsadresse "
        "lieferung zustellung umzug zieht ship shipping deliver delivery delivered billing "
        "mailing lives live moved located residence domicile domicilio habite livraison "
        "dirección direccion vive envío envio entrega indirizzo residente consegna adres "
        "bezorgadres woont wonen verhuisd bezorging postadres"
    )
)

_COMMON_EN: Final = word_set(
    "Street St Avenue Ave Road Rd Boulevard Blvd Lane Ln Drive Dr Court Ct Place Pl Way Terrace "
    "Ter Parkway Pkwy Circle Cir Highway Hwy Square Sq Trail Trl Close Crescent Cres Grove "
    "Gardens Mews Row Walk Plaza Alley Expressway Freeway Turnpike Pike"
)
_ABBREVIATED: Final = word_set("St Ave Rd Blvd Ln Dr Ct Pl Ter Pkwy Cir Hwy Sq Trl Cres")
_DIRECTIONS: Final = word_set("N S E W NE NW SE SW North South East West")


@functools.cache
def _en_types() -> frozenset[str]:
    """Capitalised English street types: the common ones and the USPS suffixes."""
    provider = importlib.import_module("faker.providers.address.en_US").Provider
    return frozenset({s for s in provider.street_suffixes if s[:1].isupper()} | _COMMON_EN)


_CITY: Final = (
    rf"(?:'s-)?{UPPER}[\w'’-]*(?:[ \t]+(?:(?:am|im|an der|an|de|del|de la|sur|sous|en|di|d')"
    rf"[ \t]*)?{UPPER}[\w'’-]*){{0,2}}"
)
_US_TAIL: Final = re.compile(
    rf",[ \t]*(?P<city>{_CITY}),?[ \t]+[A-Z]{{2}}[ \t]+\d{{5}}(?:-\d{{4}})?(?!\w)"
)
_UK_TAIL: Final = re.compile(
    rf",[ \t]*(?:(?P<city>{_CITY}),?[ \t]+)?[A-Z]{{1,2}}\d[A-Z\d]?[ \t]\d[A-Z]{{2}}(?!\w)"
)
_EU_TAIL: Final = re.compile(
    rf",?[ \t]+(?:[A-Z]-)?(?:\d{{5}}|\d{{4}}[ \t]?[A-Z]{{2}})[ \t]+(?P<city>{_CITY})"
    r"(?:[ \t]+\(?[A-Z]{2}\)?(?!\w))?"
)
_UNIT: Final = re.compile(
    r"(?:,?[ \t]*(?:Apt|Apartment|Suite|Ste|Unit|Fl|Floor|Rm|Room|Bldg|Flat|Studio)\.?[ \t]*#?"
    r"[ \t]*|[ \t]*#[ \t]*)[\w-]{1,6}(?!\w)"
)
_DIRECTION_AFTER: Final = re.compile(r"[ \t]+(?:NW|NE|SW|SE|N|S|E|W)(?!\w)\.?")
_NONSPACE: Final = re.compile(r"\S+")
_CITY_STOP: Final = word_set(
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday Montag Dienstag Mittwoch "
    "Donnerstag Freitag Samstag Sonntag Tel Phone Email Bitte Ab Via Mr Mrs Ms Dr Herr Frau "
    "Please Thanks Call"
)

_FR_TYPES: Final = (
    r"(?:[Rr]ue|[Aa]venue|[Aa]v\.|[Bb]oulevard|[Bb]d|[Pp]lace|[Cc]hemin|[Ii]mpasse|[Aa]ll[ée]e"
    r"|[Qq]uai|[Cc]ours|[Rr]oute|[Ss]quare|[Pp]assage|[Rr]ond-[Pp]oint|[Vv]oie|[Ss]entier"
    r"|[Rr]ésidence|[Ff]aubourg|[Pp]romenade|[Pp]arvis|[Cc]hauss[ée]e|[Mm]ontée|[Rr]uelle"
    r"|[Hh]ameau|[Ll]otissement)"
)
# 1600 Pennsylvania Avenue NW / 221B Baker Street / 12 rue de la Paix / 3 bis, avenue Foch
_NUMBER_FIRST: Final = re.compile(
    r"[0-9](?<![\w/.,:+-][0-9])[0-9]{0,5}+(?:[ \t]?(?:bis|ter|quater)(?!\w)|[A-Za-z](?!\w)|-\d{1,4}[A-Za-z]?)?"
    rf"(?:,?[ \t]+(?P<fr>{_FR_TYPES}"
    rf"(?:[ \t]+(?:(?:de|du|des|la|le|les|aux|au|sur|sous|en|à)[ \t]+)*(?:[dl]['’])?"
    rf"{UPPER}[\w'’-]*){{1,5}})"
    rf"|[ \t]+(?P<words>(?:(?:{UPPER}[\w'’-]*|\d{{1,3}}(?:st|nd|rd|th))\.?[ \t]+){{0,4}}"
    rf"{UPPER}[\w'’-]*))"
)
_WORD: Final = re.compile(rf"(?:{UPPER}[\w'’-]*|\d{{1,3}}(?:st|nd|rd|th))")

_STRONG_FIRST: Final = (
    r"Calle|C/|Avenida|Avda\.|Paseo|Pº|Carretera|Ctra\.|Travesía|Glorieta|Callejón|Viale"
    r"|Piazza|Piazzale|Corso|Vicolo|Lungomare|Lungotevere|Circonvallazione"
)
_WEAK_FIRST: Final = (
    r"Plaza|Pza\.|Camino|Ronda|Rambla|Alameda|Via|Vía|Largo|Strada|Contrada|Borgo|Salita|Vico"
)
_STRONG_FIRST_SET: Final = frozenset(_STRONG_FIRST.replace("\\", "").split("|"))
# Calle Mayor 5, 3º B / C/ de Alcalá 12 / Via Roma, 10/A
_TYPE_FIRST: Final = re.compile(
    rf"(?P<type>{_STRONG_FIRST}|{_WEAK_FIRST})"
    rf"(?:[ \t]*(?:(?:de|del|la|las|los|el|y|di|della|delle|dei|degli|dello)[ \t]+|[dl]['’])*"
    rf"(?:{UPPER}[\w'’.-]*|\d{{1,2}}(?=[ \t]+{UPPER}))){{1,5}}?"
    r",?[ \t]+(?:n[ºo°.]\.?[ \t]*)?\d{1,4}(?:[ \t]?/?[ \t]?[A-Za-z](?!\w))?(?!\w)"
    r"(?:,?[ \t]+\d{1,2}[ºª°][ \t]*[A-Za-z]?(?!\w))?"
)

_STRONG_SUFFIXES: Final = sorted(
    word_set(
        "straße strasse str. gasse allee chaussee damm ufer promenade straat laan gracht kade "
        "singel steeg dreef"
    )
)
_MEDIUM_SUFFIXES: Final = ("weg",)
_WEAK_SUFFIXES: Final = sorted(
    word_set(
        "platz ring pfad steig stieg kamp wall graben markt hof berg park garten zeile feld "
        "plein dijk pad baan wal haven"
    )
)
_SEPARATE_TYPES: Final = (
    r"Straße|Strasse|Str\.|Allee|Weg|Gasse|Damm|Ufer|Chaussee|Platz|Ring|Markt|Pfad"
)
_STRONG_SEPARATE: Final = ("Straße", "Strasse", "Str.", "Allee", "Weg", "Gasse", "Damm", "Ufer")
_HOUSE_NUMBER: Final = r"[ \t]+\d{1,4}(?:[ \t]?[a-zA-Z](?!\w))?(?:[-/]\d{1,4}[a-zA-Z]?)?(?!\w)"
_SUFFIX_LOOKBEHIND: Final = "|".join(
    f"(?<={re.escape(s)})" for s in (*_STRONG_SUFFIXES, *_MEDIUM_SUFFIXES, *_WEAK_SUFFIXES)
)
# Hauptstraße 12 / Goethestr. 3 / Berliner Str. 5a / Kerkstraat 12-2
_STREET_FIRST: Final = re.compile(
    rf"{UPPER}(?<![\w/.-].)[\w'’-]*+"
    rf"(?:(?P<compound>\.?(?=[ \t]+\d)(?:{_SUFFIX_LOOKBEHIND}))|[ \t]+(?P<separate>{_SEPARATE_TYPES}))"
    rf"{_HOUSE_NUMBER}"
)
# Am Markt 3a / An der Alster 12 / Unter den Linden 77 / Laan van Meerdervoort 5
_PREPOSITIONAL: Final = re.compile(
    r"(?:Am|An[ \t]+der|An[ \t]+den|Auf[ \t]+der|Auf[ \t]+dem|Im|In[ \t]+der|In[ \t]+den|Zum|Zur"
    r"|Unter[ \t]+den|Hinter[ \t]+der|Vor[ \t]+dem|Beim|Laan[ \t]+van)"
    rf"[ \t]+{UPPER}[\w'’-]*{_HOUSE_NUMBER}"
)
_PREPOSITION_WORDS: Final = word_set("Am An Auf Im In Zum Zur Unter Hinter Vor Beim")
_ARTICLE_BEFORE: Final = re.compile(
    r"(?:^|[^\w])(?:der|die|das|den|dem|des|ein|eine|einen|einem|einer|het|de|een|the|a|im|am"
    r"|vom|zum|zur|beim)[ \t]+$",
    re.IGNORECASE,
)


def _starts_word(text: str, start: int) -> bool:
    return start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "/.-_")


def _tail_end(text: str, end: int, tail: re.Pattern[str]) -> int:
    """The end of a postcode and city (or city, state and ZIP) right after `end`, or `end`."""
    m = tail.match(text, end)
    if m is None or "\n" in m.group():
        return end
    stop = m.end()
    if m.group("city"):  # trim words that follow the city ("10115 Berlin am Montag")
        words = list(_NONSPACE.finditer(text, m.start("city"), m.end("city")))
        while words and (words[-1].group() in _CITY_STOP or words[-1].group().islower()):
            words.pop()
        if not words:
            return end
        if words[-1].end() < m.end("city"):
            stop = words[-1].end()
    return stop


class AddressRecognizer:
    """Street addresses in free text (see the module docstring for the shapes)."""

    name = "address"
    entities = (Entity.ADDRESS,)

    def find(self, text: str) -> Iterator[Span]:
        seen: set[int] = set()
        for shape in (self._number_first, self._type_first, self._street_first):
            for span in shape(text):
                if span.start not in seen:
                    seen.add(span.start)
                    yield span

    def _span(self, text: str, start: int, end: int, base: float, tail: re.Pattern[str]) -> Span:
        full = _tail_end(text, end, tail)
        if full > end:
            return Span(start, full, Entity.ADDRESS, FULL_SCORE, self.name)
        score = base
        if base < STREET_SCORE and near(text, start, end, _CONTEXT):
            score = min(STREET_SCORE, base + CONTEXT_BONUS)
        return Span(start, end, Entity.ADDRESS, score, self.name)

    def _number_first(self, text: str) -> Iterator[Span]:
        every = _en_types()
        for m in _NUMBER_FIRST.finditer(text):
            if m.group("fr"):
                if "\n" not in m.group():
                    yield self._span(text, m.start(), m.end(), STREET_SCORE, _EU_TAIL)
                continue
            words = list(_WORD.finditer(text, m.start("words"), m.end("words")))
            skip = 1 if words and words[0].group() in _DIRECTIONS and len(words) > 2 else 0
            # the last street type of the words: "Old Mill Boulevard", "Green Valley Springs"
            k = next((k for k in range(len(words) - 1, skip, -1) if words[k].group() in every), 0)
            if not k:
                continue
            word = words[k].group()
            end = words[k].end()
            if word in _ABBREVIATED and text.startswith(".", end):
                end += 1
            base = STREET_SCORE if word in _COMMON_EN else UNCOMMON_SCORE
            d = _DIRECTION_AFTER.match(text, end)
            if d:
                end = d.end()
            u = _UNIT.match(text, end)
            if u and "\n" not in u.group():
                end, base = u.end(), STREET_SCORE
            span = self._span(text, m.start(), end, base, _US_TAIL)
            if span.end == end:
                span = self._span(text, m.start(), end, base, _UK_TAIL)
            yield span

    def _type_first(self, text: str) -> Iterator[Span]:
        for m in _TYPE_FIRST.finditer(text):
            if "\n" in m.group() or not _starts_word(text, m.start()):
                continue
            base = STREET_SCORE if m.group("type") in _STRONG_FIRST_SET else 0.7
            yield self._span(text, m.start(), m.end(), base, _EU_TAIL)

    def _street_first(self, text: str) -> Iterator[Span]:
        for m in _STREET_FIRST.finditer(text):
            if "\n" in m.group():
                continue
            if m.group("compound") is not None:
                street = text[m.start() : m.start("compound")].lower() + m.group("compound")
                if street.endswith(tuple(_STRONG_SUFFIXES)):
                    base = STREET_SCORE
                elif street.endswith(_MEDIUM_SUFFIXES):
                    base = 0.7
                elif _ARTICLE_BEFORE.search(text, max(0, m.start() - 12), m.start()):
                    base = WEAK_SCORE  # "der Arbeitsplatz 3"
                else:
                    base = UNCOMMON_SCORE
            elif text[m.start() : m.start("separate")].rstrip() in _PREPOSITION_WORDS:
                continue  # "Am Markt 3": the prepositional shape below
            else:
                base = STREET_SCORE if m.group("separate") in _STRONG_SEPARATE else UNCOMMON_SCORE
            yield self._span(text, m.start(), m.end(), base, _EU_TAIL)
        for m in _PREPOSITIONAL.finditer(text):
            if "\n" not in m.group() and _starts_word(text, m.start()):
                yield self._span(text, m.start(), m.end(), WEAK_SCORE, _EU_TAIL)


RECOGNIZERS: Final = (AddressRecognizer(),)
