"""Deterministic synthetic data for the privacy benchmarks (D1-D4), with the true spans labelled.

- `text_corpus(n, seed)`: free-text rows (support notes, CRM comments, chat and e-mail snippets in
  English, German, French, Spanish, Italian and Dutch) with PII at known spans and look-alike
  decoys around it (order numbers shaped like phone numbers, 16-digit numbers failing Luhn,
  version strings shaped like IPs, SKUs shaped like SSNs, shipping dates beside birth dates,
  capitalised non-names, street-like non-addresses). `heldout=True` draws every person name from
  locales that the name recognizer's gazetteer does not load (`HELDOUT_NAME_LOCALES`), so that
  name recall is also measured on names it cannot have seen.
- `log_corpus(n, seed)`: application log lines (access lines, app and JSON logs, stack traces,
  curl commands, config dumps) with secrets and PII labelled.
- `customers(n, seed)`: a customer table (pyarrow) with PII, free-text and decoy columns, and
  `EXPECTED_CLASSIFICATION`, the classification every column should get.

The templates were written from how such text looks, before the recognizers were tuned, and
they do not import the recognizers. Values are valid where they should be: Luhn-valid cards
with real IIN prefixes, mod-97-valid IBANs (with the national check digits of FR, ES, NL, BE),
SSNs outside the invalid ranges, phone numbers that `phonenumbers` says are valid.

The same seed gives the same output byte for byte (random.Random and numpy's PCG64 are
stable), given the same versions of Faker (name and street lists) and phonenumbers (validity).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import importlib
import json
import random
import re
import string
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------------------------
# Labelled rows


@dataclass(frozen=True, slots=True)
class Label:
    """`text[start:end]` is a value of `entity` (an `Entity` value such as "email")."""

    start: int
    end: int
    entity: str


@dataclass(frozen=True, slots=True)
class Row:
    text: str
    labels: tuple[Label, ...]
    locale: str = ""
    kind: str = ""
    """The template family (`note`, `access`, `json`...), for reading failures."""


def dumps(rows: Sequence[Row]) -> bytes:
    """The rows as JSON lines (text, labels, locale, kind): what determinism is checked on."""
    out = []
    for r in rows:
        labels = [[lb.start, lb.end, lb.entity] for lb in r.labels]
        out.append(
            json.dumps(
                {"text": r.text, "labels": labels, "locale": r.locale, "kind": r.kind},
                ensure_ascii=False,
                separators=(",", ":"),
            )
        )
    return ("\n".join(out) + "\n").encode()


# --------------------------------------------------------------------------------------------
# Name and street data (Faker's lists, read directly: no Faker instance, no per-row calls)

MAIN_NAME_LOCALES: dict[str, tuple[str, ...]] = {
    "en": ("en_US", "en_GB", "en_IE"),
    "de": ("de_DE", "de_AT", "de_CH"),
    "fr": ("fr_FR", "fr_CH"),
    "es": ("es_ES", "es_MX"),
    "it": ("it_IT",),
    "nl": ("nl_NL", "nl_BE"),
}
"""Where the names of each corpus language come from (all loaded by the name gazetteer)."""

HELDOUT_NAME_LOCALES: tuple[str, ...] = (
    "pl_PL",
    "cs_CZ",
    "sk_SK",
    "hu_HU",
    "ro_RO",
    "hr_HR",
    "sl_SI",
    "sv_SE",
    "no_NO",
    "da_DK",
    "fi_FI",
    "et_EE",
    "lt_LT",
    "lv_LV",
    "tr_TR",
    "yo_NG",
    "ig_NG",
    "ha_NG",
    "tw_GH",
    "sw",
    "zu_ZA",
    "en_IN",
    "id_ID",
)
"""Locales whose names the name recognizer's gazetteer does not load (the held-out slice)."""

_PARTICLES = ("van", "de", "der", "den", "von", "da", "di", "del", "la", "le", "ter", "ten", "zu")


def _plausible(name: str) -> bool:
    """Drop Faker oddities (inverted 'Bourgondië, van', five-word titles) from the corpus."""
    words = name.split()
    if not words or "," in name or len(words) > 3 or any(c.isdigit() for c in name):
        return False
    if name.endswith((" I", " II", " III")):
        return False
    return words[0][:1].isupper() or words[0] in _PARTICLES or words[0] in ("'s", "'t")


@functools.cache
def person_names(locales: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(first names, last names) of Faker's person providers of `locales`, sorted, deduplicated."""
    first: set[str] = set()
    last: set[str] = set()
    for loc in locales:
        provider = importlib.import_module(f"faker.providers.person.{loc}").Provider
        for attr in dir(provider):
            values = getattr(provider, attr)
            if not isinstance(values, (list, tuple, dict)):
                continue
            if attr.startswith("first_names"):
                first.update(v for v in values if _plausible(v))
            elif attr.startswith("last_names"):
                last.update(v for v in values if _plausible(v))
    return tuple(sorted(first)), tuple(sorted(last))


@functools.cache
def _usps_suffixes() -> tuple[str, ...]:
    provider = importlib.import_module("faker.providers.address.en_US").Provider
    return tuple(sorted(set(provider.street_suffixes)))


def ascii_fold(text: str) -> str:
    """'José' -> 'jose', 'Hans-J.' -> 'hans-j': a name as a piece of an e-mail local part."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded if c.isalnum() or c == "-").strip("-").lower()


# --------------------------------------------------------------------------------------------
# Locale vocabulary

MONTHS = {
    "en": "January February March April May June July August September October November December",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
    "nl": "januari februari maart april mei juni juli augustus september oktober november december",
}
WEEKDAYS = {
    "en": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    "de": "Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag",
    "fr": "lundi mardi mercredi jeudi vendredi samedi dimanche",
    "es": "lunes martes miércoles jueves viernes sábado domingo",
    "it": "lunedì martedì mercoledì giovedì venerdì sabato domenica",
    "nl": "maandag dinsdag woensdag donderdag vrijdag zaterdag zondag",
}
TITLES = {
    "en": ("Mr", "Mr.", "Mrs", "Mrs.", "Ms", "Ms.", "Dr.", "Prof."),
    "de": ("Herr", "Frau", "Herr Dr.", "Frau Dr.", "Dr."),
    "fr": ("M.", "Mme", "Mme", "Mlle", "Dr"),
    "es": ("Sr.", "Sra.", "D.", "Dña."),
    "it": ("Sig.", "Sig.ra", "Dott.", "Dott.ssa"),
    "nl": ("Dhr.", "Mevr.", "mevrouw", "meneer"),
}
PHONE_REGIONS = {
    "en": ("US", "US", "US", "GB", "IE"),
    "de": ("DE", "DE", "AT", "CH"),
    "fr": ("FR", "FR", "BE", "CH"),
    "es": ("ES", "ES", "MX"),
    "it": ("IT",),
    "nl": ("NL", "NL", "BE"),
}
DOB_FORMATS = {
    "en": ("%m/%d/%Y", "%d/%m/%Y", "%Y-%m-%d", "{B} {d}, %Y", "%d {B} %Y"),
    "de": ("%d.%m.%Y", "%d.%m.%Y", "{d}. {B} %Y", "%Y-%m-%d"),
    "fr": ("%d/%m/%Y", "%d/%m/%Y", "{d} {B} %Y"),
    "es": ("%d/%m/%Y", "%d/%m/%Y", "{d} de {B} de %Y", "%d-%m-%Y"),
    "it": ("%d/%m/%Y", "%d/%m/%Y", "{d} {B} %Y"),
    "nl": ("%d-%m-%Y", "%d-%m-%Y", "{d} {B} %Y"),
}
PRODUCTS = (
    "Apple Watch",
    "Galaxy Note",
    "Surface Pro",
    "Kindle Paperwhite",
    "PlayStation 5",
    "Xbox Series X",
    "MacBook Air",
    "Pixel Buds",
    "ThinkPad Carbon",
    "Echo Dot",
    "Fire TV Stick",
    "iPad Mini",
    "Nintendo Switch",
    "Galaxy Tab",
    "Dyson Airwrap",
    "Ring Doorbell",
    "Philips Hue",
    "Thermomix",
    "Tesla Model Y",
    "Mercedes-Benz Vito",
)
PLACES = (
    "New York",
    "Santa Clara",
    "San Francisco",
    "Los Angeles",
    "Den Haag",
    "Frankfurt am Main",
    "Buenos Aires",
    "Santa Monica",
    "San Diego",
    "Salt Lake City",
    "Las Palmas",
    "Saint-Étienne",
    "Palma de Mallorca",
    "Bad Homburg",
    "Reggio Emilia",
    "Le Mans",
    "Costa Rica",
    "Hong Kong",
    "Rio de Janeiro",
    "Monte Carlo",
)
COMPANIES = (
    "Smith & Sons Ltd",
    "Müller GmbH",
    "Rossi S.p.A.",
    "Dupont SA",
    "Van Dijk B.V.",
    "García y Asociados S.L.",
    "Johnson Controls",
    "Ernst & Young",
    "Marks & Spencer",
    "Schneider Electric",
    "Acme Corp",
    "Northwind Traders",
    "Contoso Ltd",
    "Fabrikam Inc.",
    "Globex Corporation",
    "Initech LLC",
)
CITIES = {
    "en": (
        ("New York", "NY"),
        ("Los Angeles", "CA"),
        ("Chicago", "IL"),
        ("Houston", "TX"),
        ("Phoenix", "AZ"),
        ("Philadelphia", "PA"),
        ("San Antonio", "TX"),
        ("San Diego", "CA"),
        ("Dallas", "TX"),
        ("Austin", "TX"),
        ("Columbus", "OH"),
        ("Charlotte", "NC"),
        ("Seattle", "WA"),
        ("Denver", "CO"),
        ("Boston", "MA"),
        ("Portland", "OR"),
        ("Springfield", "IL"),
        ("Madison", "WI"),
        ("Salt Lake City", "UT"),
        ("Santa Clara", "CA"),
    ),
    "de": (
        "Berlin",
        "Hamburg",
        "München",
        "Köln",
        "Frankfurt am Main",
        "Stuttgart",
        "Düsseldorf",
        "Leipzig",
        "Dortmund",
        "Bremen",
        "Dresden",
        "Hannover",
        "Nürnberg",
        "Bad Homburg",
        "Freiburg im Breisgau",
    ),
    "fr": (
        "Paris",
        "Lyon",
        "Marseille",
        "Toulouse",
        "Nice",
        "Nantes",
        "Strasbourg",
        "Montpellier",
        "Bordeaux",
        "Lille",
        "Saint-Étienne",
        "Aix-en-Provence",
        "Boulogne-Billancourt",
    ),
    "es": (
        "Madrid",
        "Barcelona",
        "Valencia",
        "Sevilla",
        "Zaragoza",
        "Málaga",
        "Bilbao",
        "Alicante",
        "Córdoba",
        "Valladolid",
        "Palma de Mallorca",
        "Las Palmas de Gran Canaria",
    ),
    "it": (
        ("Roma", "RM"),
        ("Milano", "MI"),
        ("Napoli", "NA"),
        ("Torino", "TO"),
        ("Palermo", "PA"),
        ("Genova", "GE"),
        ("Bologna", "BO"),
        ("Firenze", "FI"),
        ("Bari", "BA"),
        ("Verona", "VR"),
        ("Reggio Emilia", "RE"),
    ),
    "nl": (
        "Amsterdam",
        "Rotterdam",
        "Den Haag",
        "Utrecht",
        "Eindhoven",
        "Groningen",
        "Tilburg",
        "Almere",
        "Breda",
        "Nijmegen",
        "Haarlem",
        "Arnhem",
        "'s-Hertogenbosch",
    ),
}
EN_STREETS = (
    "Main",
    "Oak",
    "Maple",
    "Pine",
    "Cedar",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Church",
    "Baker",
    "High",
    "Mill",
    "Sunset",
    "Lincoln",
    "Jefferson",
    "Madison",
    "Franklin",
    "Highland",
    "Pennsylvania",
    "Chestnut",
    "Willow",
    "Spring",
    "River",
    "Victoria",
    "King",
    "Queen",
    "Station",
    "Rose",
    "Martin Luther King Jr.",
    "Old Mill",
    "North Shore",
    "Green Valley",
)
EN_TYPES = (
    "Street",
    "St",
    "St.",
    "Avenue",
    "Ave",
    "Ave.",
    "Road",
    "Rd",
    "Rd.",
    "Boulevard",
    "Blvd",
    "Lane",
    "Ln",
    "Drive",
    "Dr",
    "Court",
    "Ct",
    "Place",
    "Pl",
    "Way",
    "Terrace",
    "Parkway",
    "Circle",
    "Highway",
)
DE_STREETS = (
    "Haupt",
    "Bahnhof",
    "Schul",
    "Garten",
    "Kirch",
    "Dorf",
    "Berg",
    "Wald",
    "Linden",
    "Birken",
    "Goethe",
    "Schiller",
    "Mozart",
    "Kant",
    "Beethoven",
    "Rosen",
    "Friedhof",
    "Industrie",
    "Mühlen",
    "Feld",
    "Sonnen",
    "Eichen",
    "Tal",
    "Markt",
)
DE_COMPOUND = (
    "straße",
    "straße",
    "straße",
    "str.",
    "strasse",
    "weg",
    "gasse",
    "allee",
    "platz",
    "ring",
)
DE_SEPARATE = (
    "Berliner Straße",
    "Münchner Str.",
    "Frankfurter Allee",
    "Kölner Straße",
    "Hamburger Weg",
)
DE_PREPOSITIONAL = (
    "Am Markt",
    "Am Sportplatz",
    "An der Alster",
    "Auf dem Berg",
    "Im Winkel",
    "Unter den Linden",
    "Zum Bahnhof",
    "Am Mühlbach",
    "In der Au",
)
FR_TYPES = (
    "rue",
    "rue",
    "rue",
    "avenue",
    "boulevard",
    "place",
    "chemin",
    "impasse",
    "allée",
    "quai",
)
FR_NAMES = (
    "de la Paix",
    "Victor Hugo",
    "de la République",
    "du Général de Gaulle",
    "des Lilas",
    "Jean Jaurès",
    "de Rivoli",
    "Pasteur",
    "du Moulin",
    "des Écoles",
    "de l'Église",
    "Saint-Michel",
    "Voltaire",
    "de Verdun",
    "Émile Zola",
)
ES_TYPES = (
    "Calle",
    "Calle",
    "Calle",
    "C/",
    "Avenida",
    "Avda.",
    "Plaza",
    "Paseo",
    "Camino",
    "Ronda",
)
ES_NAMES = (
    "Mayor",
    "de Alcalá",
    "Gran Vía",
    "de la Constitución",
    "de Gracia",
    "del Prado",
    "Real",
    "Nueva",
    "de Santa Ana",
    "San Francisco",
    "de Cervantes",
    "del Carmen",
    "de Andalucía",
    "Castellana",
)
IT_TYPES = ("Via", "Via", "Via", "Viale", "Piazza", "Corso", "Largo", "Vicolo")
IT_NAMES = (
    "Roma",
    "Garibaldi",
    "Giuseppe Mazzini",
    "Dante Alighieri",
    "Cavour",
    "Vittorio Emanuele II",
    "della Repubblica",
    "Europa",
    "dei Mille",
    "San Marco",
    "Nazionale",
    "XX Settembre",
    "Manzoni",
    "della Libertà",
)
NL_STREETS = (
    "Kerk",
    "Dorps",
    "School",
    "Molen",
    "Stations",
    "Julianas",
    "Beatrix",
    "Wilhelmina",
    "Eiken",
    "Linden",
    "Prinsen",
    "Heren",
    "Keizers",
    "Nieuwe",
    "Oude",
    "Brouwers",
)
NL_TYPES = (
    "straat",
    "straat",
    "straat",
    "laan",
    "weg",
    "plein",
    "gracht",
    "kade",
    "singel",
    "dijk",
)
EMAIL_DOMAINS = (
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "gmx.de",
    "web.de",
    "t-online.de",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "telefonica.es",
    "libero.it",
    "virgilio.it",
    "ziggo.nl",
    "kpnmail.nl",
    "example.com",
    "acme-corp.com",
    "mail.co.uk",
    "uni-hamburg.de",
)

# --------------------------------------------------------------------------------------------
# Values (scalar, from a random.Random)


def luhn_check_digit(payload: str) -> str:
    """The digit that makes `payload` + digit pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    digits = [c for c in number if c.isdigit()]
    return luhn_check_digit("".join(digits[:-1])) == digits[-1]


_CARD_PREFIXES = (
    ("visa", ("4",), 16),
    ("visa", ("4",), 16),
    ("visa", ("4",), 16),
    ("mastercard", ("51", "52", "53", "54", "55", "2221", "2500", "2720"), 16),
    ("mastercard", ("51", "52", "53", "54", "55"), 16),
    ("amex", ("34", "37"), 15),
    ("discover", ("6011", "644", "65"), 16),
    ("jcb", ("3528", "3541", "3566", "3589"), 16),
)


def _mod97(text: str) -> int:
    rem = 0
    for ch in text:
        value = int(ch, 36)
        rem = (rem * (100 if value > 9 else 10) + value) % 97
    return rem


def iban_check(country: str, bban: str) -> str:
    return f"{98 - _mod97(bban + country + '00'):02d}"


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _bban(rng: random.Random, country: str) -> str:
    if country == "DE":
        return _digits(rng, 18)
    if country == "AT":
        return _digits(rng, 16)
    if country == "GB":
        return rng.choice(("NWBK", "BARC", "LOYD", "HBUK", "MIDL")) + _digits(rng, 14)
    if country == "NL":  # the account number passes the Dutch 11-test
        while True:
            acct = _digits(rng, 9)
            last = -sum(int(d) * (10 - i) for i, d in enumerate(acct)) % 11
            if last < 10:
                return (
                    rng.choice(("ABNA", "INGB", "RABO", "TRIO", "SNSB", "KNAB")) + acct + str(last)
                )
    if country == "FR":  # bank, branch, account, RIB key
        bank, branch, acct = _digits(rng, 5), _digits(rng, 5), _digits(rng, 11)
        key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(acct)) % 97
        return f"{bank}{branch}{acct}{key:02d}"
    if country == "ES":  # entity, office, two national check digits, account

        def dc(ten: str) -> str:
            weights = (1, 2, 4, 8, 5, 10, 9, 7, 3, 6)
            v = 11 - sum(int(d) * w for d, w in zip(ten, weights, strict=True)) % 11
            return str({11: 0, 10: 1}.get(v, v))

        ent, off, acct = _digits(rng, 4), _digits(rng, 4), _digits(rng, 10)
        return ent + off + dc("00" + ent + off) + dc(acct) + acct
    if country == "BE":
        ten = _digits(rng, 10)
        check = int(ten) % 97 or 97
        return f"{ten}{check:02d}"
    raise ValueError(country)


IBAN_COUNTRIES = ("DE", "DE", "FR", "ES", "NL", "GB", "BE", "AT")


def iban(rng: random.Random, grouped: bool | None = None) -> str:
    country = rng.choice(IBAN_COUNTRIES)
    bban = _bban(rng, country)
    compact = country + iban_check(country, bban) + bban
    if grouped is None:
        grouped = rng.random() < 0.6
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4)) if grouped else compact


def bad_iban(rng: random.Random) -> str:
    good = iban(rng, grouped=False)
    check = (int(good[2:4]) + rng.randint(1, 50)) % 97
    bad = good[:2] + f"{max(check, 2):02d}" + good[4:]
    if _mod97(bad[4:] + bad[:4]) == 1:  # still valid by chance: break the BBAN instead
        bad = bad[:-1] + str((int(bad[-1]) + 1) % 10)
    return " ".join(bad[i : i + 4] for i in range(0, len(bad), 4)) if rng.random() < 0.6 else bad


def card(rng: random.Random) -> str:
    _, prefixes, length = rng.choice(_CARD_PREFIXES)
    payload = rng.choice(prefixes)
    payload += _digits(rng, length - 1 - len(payload))
    number = payload + luhn_check_digit(payload)
    style = rng.random()
    if length == 15:  # Amex groups 4-6-5
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[i : i + 4] for i in range(0, 16, 4)]
    if style < 0.45:
        return " ".join(groups)
    if style < 0.7:
        return "-".join(groups)
    return number


def not_luhn16(rng: random.Random) -> str:
    """16 digits that fail Luhn (tracking and reference numbers), some with card-like prefixes."""
    payload = rng.choice(("4", "5", "9", "1", "3", "6")) + _digits(rng, 14)
    good = int(luhn_check_digit(payload))
    number = payload + str((good + rng.randint(1, 9)) % 10)
    return " ".join(number[i : i + 4] for i in range(0, 16, 4)) if rng.random() < 0.3 else number


def ssn(rng: random.Random, style: str | None = None) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    group, serial = rng.randint(1, 99), rng.randint(1, 9999)
    style = style or rng.choice(("-", "-", "-", "-", " "))
    return f"{area:03d}{style}{group:02d}{style}{serial:04d}"


def bad_ssn(rng: random.Random) -> str:
    """SSN-shaped but in a range the SSA never assigns (000, 666, 9xx, group 00, serial 0000)."""
    kind = rng.randrange(5)
    area = (0, 666, rng.randint(900, 999), rng.randint(1, 665), rng.randint(1, 665))[kind]
    group = 0 if kind == 3 else rng.randint(1, 99)
    serial = 0 if kind == 4 else rng.randint(1, 9999)
    return f"{area:03d}-{group:02d}-{serial:04d}"


def sku_ssn(rng: random.Random) -> str:
    """A product code in the shape ddd-dd-dddd."""
    return f"{rng.randint(100, 899):03d}-{rng.randint(10, 99):02d}-{rng.randint(1000, 9999):04d}"


def ipv4(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if kind < 0.45:
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    first = rng.choice((23, 31, 45, 62, 77, 81, 89, 91, 104, 145, 172, 185, 198, 203, 212, 217))
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    groups[0] = rng.choice(("2001", "2a00", "2a02", "2600", "2003", "fe80"))
    if rng.random() < 0.5:  # compressed: a run of zero groups becomes ::
        i = rng.randint(2, 5)
        return ":".join(groups[:i]) + "::" + ":".join(groups[i + 2 :])
    return ":".join(groups)


def ip(rng: random.Random) -> str:
    return ipv6(rng) if rng.random() < 0.2 else ipv4(rng)


def version_ip(rng: random.Random) -> str:
    """A dotted version or build number in the shape of an IPv4 address."""
    return ".".join(str(rng.choice((rng.randint(0, 20), rng.randint(0, 255)))) for _ in range(4))


def _fmt_date(rng: random.Random, day: dt.date, lang: str) -> str:
    fmt = rng.choice(DOB_FORMATS[lang])
    month = MONTHS[lang].split()[day.month - 1]
    return day.strftime(fmt.replace("{B}", month).replace("{d}", str(day.day)))


def dob(rng: random.Random, lang: str) -> str:
    day = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(365 * 65))
    return _fmt_date(rng, day, lang)


def other_date(rng: random.Random, lang: str) -> str:
    day = dt.date(2022, 1, 1) + dt.timedelta(days=rng.randrange(365 * 3))
    return _fmt_date(rng, day, lang)


@functools.cache
def _phone_prefixes(region: str) -> tuple[tuple[str, int], ...]:
    """(leading digits, national length) of the example fixed-line and mobile numbers."""
    import phonenumbers

    out = []
    for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
        example = phonenumbers.example_number_for_type(region, kind)
        nsn = str(example.national_number)
        out.append((nsn[:2], len(nsn)))
    return tuple(out)


def phone_number(rng: random.Random, region: str) -> Any:
    """A random number that phonenumbers says is valid in `region`."""
    import phonenumbers

    code = phonenumbers.country_code_for_region(region)
    while True:
        lead, length = rng.choice(_phone_prefixes(region))
        nsn = lead + _digits(rng, length - len(lead))
        number = phonenumbers.PhoneNumber(country_code=code, national_number=int(nsn))
        if region == "IT" or nsn.startswith("0"):
            number.italian_leading_zero = nsn.startswith("0")
        if phonenumbers.is_valid_number(number):
            return number


def phone(rng: random.Random, lang: str) -> str:
    import phonenumbers

    region = rng.choice(PHONE_REGIONS[lang])
    number = phone_number(rng, region)
    fmt = rng.random()
    if fmt < 0.3:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if fmt < 0.65:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    if region == "US" and fmt < 0.85:  # 415-555-2671 / 415.555.2671
        d = str(number.national_number)
        return rng.choice(("-", ".")).join((d[:3], d[3:6], d[6:]))
    return national


def order_like_phone(rng: random.Random, lang: str) -> str:
    """An order number with a phone number's digits and shape."""
    import phonenumbers

    number = phone_number(rng, rng.choice(PHONE_REGIONS[lang]))
    if rng.random() < 0.5:
        return str(number.national_number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def email(rng: random.Random, first: str, last: str) -> str:
    f, ln = ascii_fold(first.split()[0]), ascii_fold(last.replace(" ", ""))
    f, ln = f or "user", ln or "mail"
    local = rng.choice(
        (
            f"{f}.{ln}",
            f"{f}.{ln}",
            f"{f[0]}{ln}",
            f"{f}_{ln}",
            f"{f}{rng.randint(1, 99)}",
            f"{ln}.{f}",
            f"{f}.{ln}+shop",
            f"{f}-{ln}{rng.randint(70, 99)}",
        )
    )
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def address(rng: random.Random, lang: str) -> str:
    """A street address as written in `lang`'s country, sometimes with unit, postcode and city."""
    tail = rng.random()
    if lang == "en":
        suffix = rng.choice(_usps_suffixes()) if rng.random() < 0.15 else rng.choice(EN_TYPES)
        number = str(rng.choice((rng.randint(1, 99), rng.randint(100, 9999), rng.randint(10, 999))))
        if rng.random() < 0.08:
            number += rng.choice("ABC")
        street = f"{number} {rng.choice(EN_STREETS)} {suffix}"
        if rng.random() < 0.1:
            street += " " + rng.choice(("NW", "NE", "SW", "SE", "N", "S"))
        if rng.random() < 0.25:
            street += (
                rng.choice((", Apt ", " Apt. ", ", Suite ", " #", ", Unit "))
                + str(rng.randint(1, 40))
                + rng.choice(("", "", "B"))
            )
        if tail < 0.5:
            city, state = rng.choice(CITIES["en"])
            zip_code = f"{rng.randint(1001, 99950):05d}"
            street += (
                f", {city}, {state} {zip_code}"
                if rng.random() < 0.7
                else f", {city} {state} {zip_code}"
            )
        return street
    if lang == "de":
        k = rng.random()
        if k < 0.6:
            street = rng.choice(DE_STREETS) + rng.choice(DE_COMPOUND)
        elif k < 0.8:
            street = rng.choice(DE_SEPARATE)
        else:
            street = rng.choice(DE_PREPOSITIONAL)
        number = str(rng.randint(1, 180)) + rng.choice(("", "", "", "", "a", "b"))
        out = f"{street} {number}"
        if tail < 0.6 or k >= 0.8:
            out += f", {rng.randint(1067, 99998):05d} {rng.choice(CITIES['de'])}"
        return out
    if lang == "fr":
        number = str(rng.randint(1, 150)) + rng.choice(("", "", "", "", " bis", " ter"))
        sep = ", " if rng.random() < 0.25 else " "
        out = f"{number}{sep}{rng.choice(FR_TYPES)} {rng.choice(FR_NAMES)}"
        if tail < 0.6:
            out += f", {rng.randint(1000, 95999):05d} {rng.choice(CITIES['fr'])}"
        return out
    if lang == "es":
        number = str(rng.randint(1, 200))
        sep = ", " if rng.random() < 0.4 else " "
        out = f"{rng.choice(ES_TYPES)} {rng.choice(ES_NAMES)}{sep}{number}"
        if rng.random() < 0.3:
            out += f", {rng.randint(1, 9)}º {rng.choice('ABCD')}"
        if tail < 0.6:
            out += f", {rng.randint(1001, 52999):05d} {rng.choice(CITIES['es'])}"
        return out
    if lang == "it":
        number = str(rng.randint(1, 220)) + rng.choice(("", "", "", "/A", "B"))
        sep = ", " if rng.random() < 0.4 else " "
        out = f"{rng.choice(IT_TYPES)} {rng.choice(IT_NAMES)}{sep}{number}"
        if tail < 0.6:
            city, prov = rng.choice(CITIES["it"])
            out += f", {rng.randint(10, 98168):05d} {city}" + (
                f" ({prov})" if rng.random() < 0.5 else ""
            )
        return out
    if lang == "nl":
        number = str(rng.randint(1, 250)) + rng.choice(("", "", "", "a", "-2", " B"))
        out = f"{rng.choice(NL_STREETS)}{rng.choice(NL_TYPES)} {number}"
        if tail < 0.6:
            pc = f"{rng.randint(1000, 9999)} {rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}"
            out += f", {pc} {rng.choice(CITIES['nl'])}"
        return out
    raise ValueError(lang)


# --------------------------------------------------------------------------------------------
# Free-text templates. Slots: {name} full name; {first} first name alone; {title_last} title +
# surname (the surname is labelled); {title_name} title + full name (the name is labelled);
# {email} {phone} {ssn} {pan} {iban} {ip} {dob} {address}: labelled values. Decoys (never
# labelled): {order} phone-shaped order number, {tracking} 16 digits failing Luhn, {version}
# IP-shaped version, {sku} SSN-shaped code, {bad_ssn}, {bad_iban}, {date} a non-birth date,
# {product} {place} {company} {weekday} {month} {ticket} {amount} {time}.

TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "Customer {name} called about order {order}; please call back on {phone}.",
        "Dear {name}, thank you for contacting us. Your ticket {ticket} has been updated.",
        "Spoke with {name} ({email}) re: refund of {amount}. Mark the ticket as resolved once paid.",
        "Updated billing address to {address}. Card on file {pan}, expires 09/27.",
        "Verified identity: SSN {ssn}, DOB {dob}. Order shipped {date}.",
        "Please wire the refund to IBAN {iban} (account holder {name}).",
        "Login from {ip} flagged; app version {version} on {product}.",
        "Hi {first}, your {product} is on its way! Tracking number {tracking}, estimated delivery {weekday}.",
        "{title_last} asked us to update the email to {email} and the phone to {phone}.",
        "Replacement part SKU {sku} shipped on {date} to {address}.",
        "[{time}] {first}: hi, my card {pan} was charged twice for order {order}",
        "Refund approved by {name}. Bill me later option disabled for {email}.",
        "Will call {title_last} back on {weekday} at {phone}.",
        "Account holder: {name}; born {dob}; SSN {ssn}; address {address}.",
        "Escalated to Tier 2. User {email} says 3 Street Fighter games are missing from order {order}.",
        "May we contact you at {phone}? Regards, {name}",
        "Grant access to {email} for the {place} office; request came from IP {ip}.",
        "Shipping label printed for {name}, {address}. Ship date {date}.",
        "Fraud check: card {pan} declined, ref {tracking} is ours, not a card; device IP {ip}.",
        "New lead from {company}: contact {title_name}, {email}, {phone}.",
        "Customer moved from {place} to {address}. DOB on file: {dob}.",
        "Called {phone}, no answer. Left voicemail for {first}. Order {order} still pending.",
        "SSN given over the phone ({ssn}) matches our records. Item {sku} was returned on {date}.",
        "From: {name} <{email}> Subject: invoice {ticket} - please use IBAN {iban}.",
        "Driver couldn't find {address}; {name} asked to leave it at the door. Route 66 Diner is next door.",
        "Ticket {ticket}: {name} cannot log in, last seen from {ip} with client {version}.",
        "Our plan has 5 Avenues of growth; {name} from {company} will present on {weekday}.",
        "Order {order} for {name} contains {product}; delivered {date} to {address}.",
        "Patient {name}, date of birth {dob}, phone {phone}, email {email}.",
        "Hi team, {first} here. My new number is {phone} and I moved to {address}. Thanks!",
        "Meeting with {title_name} moved to {month}. Send the contract to {email}.",
        "Invoice {ticket} paid from {iban}. An earlier transfer from {bad_iban} bounced (invalid IBAN).",
        "SSN on the form ({bad_ssn}) is not valid, asked {name} to send it again.",
        "{name} requested account deletion under GDPR; DOB {dob} confirmed.",
        "Delivery to {address} failed on {date}; tracking {tracking}.",
        "Order {order} placed on {date} by {email}.",
        "IP {ip} added to the allowlist; server build {version}.",
        "{name}, {email}, {phone}",
        "{name} / {phone} / {address}",
        "Package left with {name} at reception on {weekday}.",
        "{name} prefers contact by email: {email}.",
        "Thanks for your help! {first}",
        "Mark the order {order} as urgent; {title_last} needs the {product} by {weekday}.",
        "Customer's date of birth: {dob}. Account opened {date}. Card {pan}.",
        "Tax form on file for {name}: SSN {ssn}, mailing address {address}.",
        "Support chat with {name}: asked to change card from {pan} to a new one. Firmware {version}.",
        "Callback requested by {title_name} at {phone} between 2 and 4 pm.",
        "Will ship {product} to {place} store. Questions to {email}.",
        "Duplicate account: {email} and {email} both belong to {name}.",
        "Employee {name} (born {dob}) reset the password from {ip}.",
        "Reference {tracking} is the parcel, order {order}; contact {phone}.",
        "Good morning {first}, your appointment at Santa Clara is on {date}.",
        "Payment from {company} received; remit to {iban}, attn {name}.",
        "Part number {sku}, 3 units; ship to {address} via express.",
        "Caller verified SSN {ssn} and date of birth {dob}; updated phone to {phone}.",
    ),
    "de": (
        "Kunde {name} hat wegen Bestellung {order} angerufen, Rückruf unter {phone}.",
        "Sehr geehrte/r {title_last}, vielen Dank für Ihre Nachricht zu Ticket {ticket}.",
        "Neue Lieferadresse: {address}. Geburtsdatum {dob}, Versand am {date}.",
        "Bitte Erstattung auf IBAN {iban} (Kontoinhaber {name}) überweisen.",
        "Anmeldung von {ip} mit App-Version {version} blockiert.",
        "Rechnungsadresse geändert auf {address}; E-Mail {email}.",
        "{title_name} möchte keine Werbung mehr an {email}.",
        "Rückruf bei {first} am {weekday} unter {phone}. Artikel {sku} ist nachbestellt.",
        "Kundin {name}, geb. {dob}, wohnhaft {address}, Tel. {phone}.",
        "Paket mit Sendungsnummer {tracking} wurde am {date} zugestellt.",
        "Karte {pan} wurde belastet, Bestellung {order}.",
        "Platz 2 im Ranking für {product}; Rückmeldung von {email}.",
        "Mit freundlichen Grüßen, {name}",
        "Termin mit {title_name} in {place} am {date}.",
        "{title_last} (Kundennummer {ticket}) meldet einen Fehler in Version {version}.",
        "Lastschrift von {bad_iban} abgelehnt (ungültige IBAN), neue IBAN {iban}.",
        "Die {company} hat {amount} überwiesen; Ansprechpartner {name}, {phone}.",
        "{name} zieht um nach {address}, bitte ab {month} dorthin liefern.",
        "Hallo {first}, Ihr {product} ist unterwegs. Sendungsnummer {tracking}.",
        "Geburtsdatum laut Ausweis: {dob}. Bestellung vom {date}.",
        "Kundenkonto {email} gesperrt, letzter Login von {ip}.",
        "{name}, {address}, {phone}",
        "Anruf von {name}: Karte {pan} verloren, bitte sperren.",
        "Der Arbeitsplatz 3 im Lager meldet Artikel {sku} als beschädigt.",
        "Frau {last} bittet um Rückruf unter {phone}.",
        "Vertrag für {name} (geboren am {dob}) an {email} gesendet.",
        "Herr {last} aus {place} hat Bestellung {order} storniert.",
        "Lieferung an {address} am {weekday} fehlgeschlagen.",
    ),
    "fr": (
        "Le client {name} a appelé au sujet de la commande n° {order}, rappeler au {phone}.",
        "Bonjour {title_last}, votre dossier {ticket} est en cours de traitement.",
        "Nouvelle adresse de livraison : {address}. Date de naissance : {dob}. Expédié le {date}.",
        "Merci de rembourser sur l'IBAN {iban} au nom de {name}.",
        "Connexion depuis {ip}, version de l'appli {version}.",
        "{title_name} souhaite changer son e-mail en {email}.",
        "Cordialement, {name}",
        "Mme {last}, née le {dob}, habite au {address}.",
        "Colis {tracking} livré le {date} ; carte {pan} débitée.",
        "Le client a acheté un {product} à {place} ; contact : {email}, {phone}.",
        "Réunion avec {name} de {company} le {date}.",
        "Prélèvement refusé sur {bad_iban} (IBAN invalide), nouvel IBAN {iban}.",
        "{name}, {email}, {phone}",
        "Salut {first}, ton {product} arrive {weekday}. Suivi : {tracking}.",
        "M. {last} a changé d'adresse : {address}.",
        "Compte {email} bloqué, dernière connexion depuis {ip}.",
        "Référence article {sku}, commande {order}, livraison le {date}.",
        "Dossier de {name}, né le {dob}, tél. {phone}.",
        "Appel de {title_name} : carte {pan} perdue, merci de la bloquer.",
        "Livraison au {address} échouée {weekday}.",
    ),
    "es": (
        "El cliente {name} llamó por el pedido {order}; devolver la llamada al {phone}.",
        "Estimado/a {title_last}: su incidencia {ticket} ha sido resuelta.",
        "Nueva dirección de envío: {address}. Fecha de nacimiento: {dob}. Enviado el {date}.",
        "Reembolsar a la cuenta IBAN {iban}, titular {name}.",
        "Acceso desde la IP {ip}, versión {version}.",
        "Saludos, {name}",
        "{title_name} pide cambiar el correo a {email}.",
        "Tarjeta {pan} rechazada; número de seguimiento {tracking}.",
        "Cliente {name}, nacido el {dob}, vive en {address}, tel. {phone}.",
        "Pedido {order} de {product} entregado en {place} el {date}.",
        "{name}, {email}, {phone}",
        "Hola {first}, tu {product} llega el {weekday}.",
        "Domiciliación rechazada en {bad_iban} (IBAN no válido); nuevo IBAN {iban}.",
        "La Sra. {last} cambió su dirección a {address}.",
        "Cuenta {email} bloqueada, último acceso desde {ip}.",
        "Referencia {sku}, pedido {order}, enviado el {date}.",
        "Llamada de {title_name}: perdió la tarjeta {pan}, bloquearla.",
        "Entrega en {address} fallida el {weekday}.",
        "Contrato de {name} (fecha de nacimiento {dob}) enviado a {email}.",
    ),
    "it": (
        "Il cliente {name} ha chiamato per l'ordine {order}; richiamare al {phone}.",
        "Gentile {title_last}, la sua pratica {ticket} è stata aggiornata.",
        "Nuovo indirizzo di consegna: {address}. Data di nascita: {dob}. Spedito il {date}.",
        "Rimborso sull'IBAN {iban} intestato a {name}.",
        "Accesso dall'IP {ip} con la versione {version} dell'app.",
        "Cordiali saluti, {name}",
        "{title_name} vuole aggiornare l'email a {email}.",
        "Carta {pan} addebitata, codice spedizione {tracking}.",
        "Cliente {name}, nato il {dob}, residente in {address}, tel. {phone}.",
        "{name}, {email}, {phone}",
        "Ciao {first}, il tuo {product} arriva {weekday}.",
        "Addebito respinto su {bad_iban} (IBAN non valido); nuovo IBAN {iban}.",
        "La Sig.ra {last} ha cambiato indirizzo: {address}.",
        "Account {email} bloccato, ultimo accesso da {ip}.",
        "Codice articolo {sku}, ordine {order}, spedito il {date}.",
        "Chiamata di {title_name}: carta {pan} smarrita, bloccarla.",
        "Consegna in {address} non riuscita {weekday}.",
        "Contratto di {name} (nata il {dob}) inviato a {email}.",
    ),
    "nl": (
        "Klant {name} belde over bestelling {order}; terugbellen op {phone}.",
        "Beste {title_last}, uw ticket {ticket} is bijgewerkt.",
        "Nieuw bezorgadres: {address}. Geboortedatum: {dob}. Verzonden op {date}.",
        "Terugbetaling naar IBAN {iban} t.n.v. {name}.",
        "Inlog vanaf {ip}, app-versie {version}.",
        "Met vriendelijke groet, {name}",
        "{title_name} wil het e-mailadres wijzigen naar {email}.",
        "Pas {pan} belast; trackingnummer {tracking}.",
        "Klant {name}, geboren {dob}, woont op {address}, tel. {phone}.",
        "{name}, {email}, {phone}",
        "Hoi {first}, je {product} komt {weekday}.",
        "Incasso geweigerd op {bad_iban} (ongeldige IBAN); nieuwe IBAN {iban}.",
        "Mevrouw {last} is verhuisd naar {address}.",
        "Account {email} geblokkeerd, laatste login vanaf {ip}.",
        "Artikelcode {sku}, bestelling {order}, verzonden op {date}.",
        "Telefoontje van {title_name}: pas {pan} kwijt, graag blokkeren.",
        "Bezorging op {address} mislukt op {weekday}.",
        "Contract van {name} (geboortedatum {dob}) verstuurd naar {email}.",
    ),
}

LANG_WEIGHTS = (("en", 35), ("de", 15), ("fr", 13), ("es", 13), ("it", 12), ("nl", 12))
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass
class _People:
    first: tuple[str, ...]
    last: tuple[str, ...]


def _people(lang: str, heldout: bool) -> _People:
    first, last = person_names(HELDOUT_NAME_LOCALES if heldout else MAIN_NAME_LOCALES[lang])
    return _People(first, last)


class _TextRow:
    """Fills one template: slot values and the labels of the labelled ones."""

    def __init__(self, rng: random.Random, lang: str, people: _People, mixed: _People) -> None:
        self.rng, self.lang = rng, lang
        self.people = mixed if rng.random() < 0.15 else people
        self.person: tuple[str, str] | None = None

    def _person(self) -> tuple[str, str]:
        if self.person is None:
            self.person = (self.rng.choice(self.people.first), self.rng.choice(self.people.last))
        return self.person

    def _new_person(self) -> tuple[str, str]:
        self.person = None
        return self._person()

    def slot(self, key: str) -> tuple[str, list[tuple[int, int, str]]]:
        rng, lang = self.rng, self.lang
        if key == "name":
            first, last = self._new_person()
            text = f"{first} {last}"
            return text, [(0, len(text), "name")]
        if key == "first":
            first, _ = self._new_person()
            return first, [(0, len(first), "name")]
        if key == "last":
            _, last = self._new_person()
            return last, [(0, len(last), "name")]
        if key == "title_last":
            _, last = self._new_person()
            title = rng.choice(TITLES[lang])
            return f"{title} {last}", [(len(title) + 1, len(title) + 1 + len(last), "name")]
        if key == "title_name":
            first, last = self._new_person()
            title = rng.choice(TITLES[lang])
            full = f"{first} {last}"
            return f"{title} {full}", [(len(title) + 1, len(title) + 1 + len(full), "name")]
        if key == "email":
            first, last = self.person or self._new_person()
            value = email(rng, first, last)
            return value, [(0, len(value), "email")]
        labelled: dict[str, Callable[[], str]] = {
            "phone": lambda: phone(rng, lang),
            "ssn": lambda: ssn(rng),
            "pan": lambda: card(rng),
            "iban": lambda: iban(rng),
            "ip": lambda: ip(rng),
            "dob": lambda: dob(rng, lang),
            "address": lambda: address(rng, lang),
        }
        if key in labelled:
            value = labelled[key]()
            return value, [(0, len(value), key)]
        decoys: dict[str, Callable[[], str]] = {
            "order": lambda: order_like_phone(rng, lang),
            "tracking": lambda: not_luhn16(rng),
            "version": lambda: version_ip(rng),
            "sku": lambda: sku_ssn(rng),
            "bad_ssn": lambda: bad_ssn(rng),
            "bad_iban": lambda: bad_iban(rng),
            "date": lambda: other_date(rng, lang),
            "product": lambda: rng.choice(PRODUCTS),
            "place": lambda: rng.choice(PLACES),
            "company": lambda: rng.choice(COMPANIES),
            "weekday": lambda: rng.choice(WEEKDAYS[lang].split()),
            "month": lambda: rng.choice(MONTHS[lang].split()),
            "ticket": lambda: (
                rng.choice(("INC-", "CS-", "#", "TCK")) + _digits(rng, rng.randint(5, 7))
            ),
            "amount": lambda: (
                rng.choice(("$", "€", "£")) + f"{rng.randint(5, 2000)}.{rng.randint(0, 99):02d}"
            ),
            "time": lambda: f"{rng.randint(7, 22):02d}:{rng.randint(0, 59):02d}",
        }
        return decoys[key](), []


def render(template: str, fill: Callable[[str], tuple[str, list[tuple[int, int, str]]]]) -> Row:
    """The template with its slots filled, and the labels shifted to where they landed."""
    parts: list[str] = []
    labels: list[Label] = []
    pos = 0
    last = 0
    for m in _SLOT.finditer(template):
        literal = template[last : m.start()]
        parts.append(literal)
        pos += len(literal)
        value, spans = fill(m.group(1))
        labels.extend(Label(pos + s, pos + e, ent) for s, e, ent in spans)
        parts.append(value)
        pos += len(value)
        last = m.end()
    parts.append(template[last:])
    return Row("".join(parts), tuple(labels))


def text_corpus(n: int = 20_000, seed: int = 5, *, heldout: bool = False) -> list[Row]:
    """`n` labelled free-text rows. With `heldout`, every name is from `HELDOUT_NAME_LOCALES`."""
    rng = random.Random(seed * 1_000_003 + (7 if heldout else 0))
    langs = [lang for lang, _ in LANG_WEIGHTS]
    weights = [w for _, w in LANG_WEIGHTS]
    people = {lang: _people(lang, heldout) for lang in langs}
    all_first = tuple(sorted({f for p in people.values() for f in p.first}))
    all_last = tuple(sorted({f for p in people.values() for f in p.last}))
    mixed = _People(all_first, all_last)
    rows = []
    for _ in range(n):
        lang = rng.choices(langs, weights)[0]
        template = rng.choice(TEMPLATES[lang])
        filler = _TextRow(rng, lang, people[lang], mixed)
        row = render(template, filler.slot)
        rows.append(Row(row.text, row.labels, lang, "heldout" if heldout else "note"))
    return rows


# --------------------------------------------------------------------------------------------
# Log lines (D4)

_B32 = string.ascii_uppercase + "234567"
_ALNUM = string.ascii_letters + string.digits
_B64 = _ALNUM + "+/"
_URLSAFE = _ALNUM + "-_"


def _pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(rng: random.Random) -> str:
    header = {"alg": rng.choice(("HS256", "RS256", "ES256")), "typ": "JWT"}
    payload = {
        "sub": str(rng.randint(1000, 999999)),
        "iat": 1700000000 + rng.randint(0, 10**7),
        "exp": 1710000000 + rng.randint(0, 10**7),
        "scope": rng.choice(("read", "read write", "admin")),
    }
    sig = bytes(rng.randrange(256) for _ in range(rng.choice((32, 64))))
    parts = (json.dumps(header, separators=(",", ":")).encode(), json.dumps(payload).encode())
    return ".".join((_b64url(parts[0]), _b64url(parts[1]), _b64url(sig)))


def password(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return rng.choice(("hunter2", "changeme", "letmein", "Passw0rd", "summer2024", "admin123"))
    if kind < 0.6:
        return _pick(rng, _ALNUM, rng.randint(10, 20))
    return _pick(rng, _ALNUM + "!$*_-.~", rng.randint(12, 24))


SECRETS: dict[str, Callable[[random.Random], str]] = {
    "aws_access_key_id": lambda r: r.choice(("AKIA", "AKIA", "ASIA")) + _pick(r, _B32, 16),
    "aws_secret_key": lambda r: _pick(r, _B64, 40),
    "github_token": lambda r: (
        r.choice(("ghp_", "gho_", "ghs_", "ghu_")) + _pick(r, _ALNUM, 36)
        if r.random() < 0.8
        else "github_pat_" + _pick(r, _ALNUM, 22) + "_" + _pick(r, _ALNUM, 59)
    ),
    "gitlab_token": lambda r: "glpat-" + _pick(r, _URLSAFE, 20),
    "slack_token": lambda r: (
        r.choice(("xoxb-", "xoxp-", "xoxa-"))
        + f"{r.randint(10**9, 10**12)}-{r.randint(10**9, 10**12)}-"
        + _pick(r, _ALNUM, 24)
    ),
    "bearer_token": lambda r: (
        _pick(r, _URLSAFE, r.choice((32, 40, 43, 64)))
        if r.random() < 0.6
        else _pick(r, "0123456789abcdef", 40)
    ),
    "jwt": jwt,
}


def _private_key(rng: random.Random) -> str:
    kind = rng.choice(("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"))
    body = "\\n".join(_pick(rng, _B64, 64) for _ in range(rng.randint(3, 8)))
    return f"-----BEGIN {kind}-----\\n{body}\\n-----END {kind}-----"


class _LogRow:
    """Pieces of one log line; `add` appends literal text or a labelled value."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.labels: list[Label] = []
        self.pos = 0

    def add(self, text: str, entity: str | None = None) -> _LogRow:
        if entity:
            self.labels.append(Label(self.pos, self.pos + len(text), entity))
        self.parts.append(text)
        self.pos += len(text)
        return self

    def row(self, kind: str) -> Row:
        return Row("".join(self.parts), tuple(self.labels), "", kind)


_PATHS = (
    "/api/v1/orders",
    "/api/v2/customers/search",
    "/login",
    "/static/app.3f2a9c.js",
    "/health",
    "/checkout/confirm",
    "/account/settings",
    "/graphql",
    "/api/v1/invoices/INV-20931/pdf",
    "/images/logo@2x.png",
)
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.94 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "okhttp/4.12.0",
    "Go-http-client/1.1",
    "kube-probe/1.29",
)
_LOGGERS = (
    "app.api",
    "app.auth",
    "billing.worker",
    "sqlalchemy.engine",
    "uvicorn.access",
    "celery.task",
)


def _ts(rng: random.Random) -> dt.datetime:
    return dt.datetime(2024, 3, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=rng.randrange(86400 * 30))


def _hex(rng: random.Random, n: int) -> str:
    return _pick(rng, "0123456789abcdef", n)


def _uuid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _person_email(rng: random.Random) -> str:
    first, last = person_names(MAIN_NAME_LOCALES["en"] + MAIN_NAME_LOCALES["de"])
    return email(rng, rng.choice(first), rng.choice(last))


def _access_line(rng: random.Random) -> Row:
    r = _LogRow()
    r.add(ip(rng), "ip").add(" - ")
    if rng.random() < 0.2:
        r.add(_person_email(rng), "email")
    else:
        r.add("-")
    r.add(" [" + _ts(rng).strftime("%d/%b/%Y:%H:%M:%S +0000") + '] "')
    r.add(rng.choice(("GET", "GET", "POST", "PUT", "DELETE")) + " " + rng.choice(_PATHS))
    q = rng.random()
    if q < 0.08:
        r.add("?email=").add(_person_email(rng), "email").add("&page=2")
    elif q < 0.12:
        r.add("?access_token=").add(jwt(rng), "jwt")
    elif q < 0.15:
        r.add("?user=admin&password=").add(password(rng), "password").add("&remember=1")
    elif q < 0.2:
        r.add(f"?v={version_ip(rng)}&sha={_hex(rng, 40)}")
    elif q < 0.23:
        r.add("?password_reset=true&token_type=bearer")
    r.add(
        f' HTTP/1.1" {rng.choice((200, 200, 200, 201, 204, 301, 401, 403, 404, 500))} {rng.randint(0, 90000)}'
    )
    r.add(
        ' "' + rng.choice(("-", "https://shop.example.com/cart", "https://www.google.com/")) + '"'
    )
    r.add(' "' + rng.choice(_AGENTS) + '"')
    return r.row("access")


def _app_line(rng: random.Random) -> Row:
    r = _LogRow()
    level = rng.choice(("INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"))
    r.add(_ts(rng).isoformat(timespec="milliseconds").replace("+00:00", "Z") + f" {level:5} ")
    r.add(f"[{rng.choice(_LOGGERS)}] req={_uuid(rng)} ")
    k = rng.randrange(22)
    if k == 0:
        r.add("login ok user=").add(_person_email(rng), "email").add(" ip=").add(ip(rng), "ip")
    elif k == 1:
        r.add("connecting to postgresql://app:").add(password(rng), "url_password")
        r.add("@").add(ipv4(rng), "ip").add(":5432/orders")
    elif k == 2:
        r.add("using AWS credentials AWS_ACCESS_KEY_ID=").add(
            SECRETS["aws_access_key_id"](rng), "aws_access_key_id"
        )
        r.add(" AWS_SECRET_ACCESS_KEY=").add(SECRETS["aws_secret_key"](rng), "aws_secret_key")
    elif k == 3:
        r.add("calling GitHub API with token ").add(SECRETS["github_token"](rng), "github_token")
    elif k == 4:
        r.add("slack notify failed token=").add(SECRETS["slack_token"](rng), "slack_token")
        r.add(" channel=#alerts")
    elif k == 5:
        r.add("request headers: {'Authorization': 'Bearer ").add(
            SECRETS["bearer_token"](rng), "bearer_token"
        )
        r.add("', 'Accept': 'application/json'}")
    elif k == 6:
        r.add("auth header Authorization: Bearer ").add(jwt(rng), "jwt")
    elif k == 7:
        r.add("db config host=db.internal user=app password=").add(password(rng), "password")
        r.add(" sslmode=require")
    elif k == 8:
        r.add("password reset requested for ").add(_person_email(rng), "email")
        r.add(" password_reset_token_sent=true")
    elif k == 9:
        r.add(f"deployed commit {_hex(rng, 40)} version {version_ip(rng)} to 3 pods")
    elif k == 10:
        r.add("user updated settings password=*** mfa=true")
    elif k == 11:
        r.add("cloning https://oauth2:").add(SECRETS["gitlab_token"](rng), "gitlab_token")
        r.add("@gitlab.example.com/platform/infra.git")
    elif k == 12:
        r.add("gitlab pipeline trigger token ").add(SECRETS["gitlab_token"](rng), "gitlab_token")
    elif k == 13:
        r.add("redis://default:").add(password(rng), "url_password").add(
            "@cache.internal:6379/0 connected"
        )
    elif k == 14:
        r.add(f"cache hit ratio 0.93 keys=120344 evicted=12 build {version_ip(rng)}")
    elif k == 15:
        r.add("payment failed for ").add(_person_email(rng), "email").add(
            f" amount=49.90 ref={_uuid(rng)}"
        )
    elif k == 16:
        r.add("rate limited client ").add(ip(rng), "ip").add(" after 120 requests")
    elif k == 17:
        r.add(f"job finished in 1.{rng.randint(100, 999)}s sha256={_hex(rng, 64)}")
    elif k == 18:
        r.add("upstream 502 from ").add(ipv4(rng), "ip").add(
            f":8080 after 30001 ms (nginx/1.25.{rng.randint(1, 4)})"
        )
    elif k == 19:
        r.add('Bearer realm="api", error="invalid_token" max_tokens=4096')
    elif k == 20:
        r.add("amqp://guest:").add(password(rng), "url_password").add(
            "@rabbitmq:5672// consumer started"
        )
    else:
        r.add('Loaded service account private_key="').add(_private_key(rng), "private_key").add('"')
    return r.row("app")


def _json_line(rng: random.Random) -> Row:
    r = _LogRow()
    r.add(
        '{"ts":"'
        + _ts(rng).isoformat()
        + '","level":"'
        + rng.choice(("info", "warn", "error"))
        + '",'
    )
    k = rng.randrange(8)
    if k == 0:
        r.add('"msg":"user signed up","email":"').add(_person_email(rng), "email")
        r.add('","ip":"').add(ip(rng), "ip").add('"')
    elif k == 1:
        r.add('"msg":"outbound request","headers":{"Authorization":"Bearer ')
        if rng.random() < 0.5:
            r.add(jwt(rng), "jwt")
        else:
            r.add(SECRETS["bearer_token"](rng), "bearer_token")
        r.add('","Content-Type":"application/json"}')
    elif k == 2:
        r.add('"msg":"login failed","user":"').add(_person_email(rng), "email")
        r.add('","password":"').add(password(rng), "password").add('"')
    elif k == 3:
        r.add('"msg":"config loaded","aws_access_key_id":"')
        r.add(SECRETS["aws_access_key_id"](rng), "aws_access_key_id")
        r.add('","aws_secret_access_key":"').add(SECRETS["aws_secret_key"](rng), "aws_secret_key")
        r.add('","region":"eu-central-1"')
    elif k == 4:
        r.add(
            f'"msg":"request done","req_id":"{_uuid(rng)}","status":200,"duration_ms":{rng.randint(1, 900)}'
        )
    elif k == 5:
        r.add(
            f'"msg":"client version","app_version":"{version_ip(rng)}","commit":"{_hex(rng, 40)}"'
        )
    elif k == 6:
        r.add('"msg":"webhook","slack_token":"').add(
            SECRETS["slack_token"](rng), "slack_token"
        ).add('"')
    else:
        r.add('"msg":"ci","env":{"GITHUB_TOKEN":"').add(
            SECRETS["github_token"](rng), "github_token"
        )
        r.add('","CI":"true"}')
    r.add("}")
    return r.row("json")


_PY_FRAMES = (
    '  File "/srv/app/handlers/orders.py", line 88, in create_order',
    '  File "/usr/lib/python3.11/site-packages/sqlalchemy/engine/base.py", line 1410, in execute',
    "    return self._execute_context(dialect, constructor, statement, parameters)",
    "Traceback (most recent call last):",
    "    at com.acme.billing.InvoiceService.charge(InvoiceService.java:142)",
    "    at org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
    "Caused by: java.net.SocketTimeoutException: Read timed out",
    "KeyError: 'customer_id'",
)


def _trace_line(rng: random.Random) -> Row:
    r = _LogRow()
    k = rng.random()
    if k < 0.7:
        r.add(rng.choice(_PY_FRAMES))
    elif k < 0.85:
        r.add("sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to ")
        r.add("postgresql://orders:").add(password(rng), "url_password").add("@")
        r.add(ipv4(rng), "ip").add(":5432/orders failed: timeout expired")
    else:
        r.add("ValueError: invalid email address ").add(_person_email(rng), "email")
    return r.row("trace")


def _curl_line(rng: random.Random) -> Row:
    r = _LogRow()
    k = rng.randrange(4)
    if k == 0:
        r.add('curl -s -H "Authorization: Bearer ')
        if rng.random() < 0.5:
            r.add(SECRETS["github_token"](rng), "github_token")
        else:
            r.add(SECRETS["bearer_token"](rng), "bearer_token")
        r.add('" https://api.github.com/repos/acme/shop/actions/runs')
    elif k == 1:
        r.add("curl -u deploy: https://deploy:").add(password(rng), "url_password")
        r.add("@registry.example.com/v2/_catalog")
    elif k == 2:
        r.add('curl -X POST https://hooks.example.com/notify -d \'{"email":"')
        r.add(_person_email(rng), "email").add('","token":"').add(jwt(rng), "jwt").add("\"}'")
    else:
        r.add(f"curl -sSL https://get.example.com/install.sh?version={version_ip(rng)} | sh")
    return r.row("curl")


def _env_line(rng: random.Random) -> Row:
    r = _LogRow()
    k = rng.randrange(7)
    if k == 0:
        r.add("export AWS_ACCESS_KEY_ID=").add(
            SECRETS["aws_access_key_id"](rng), "aws_access_key_id"
        )
    elif k == 1:
        r.add("aws_secret_access_key = ").add(SECRETS["aws_secret_key"](rng), "aws_secret_key")
    elif k == 2:
        r.add("DB_PASSWORD=").add(password(rng), "password")
    elif k == 3:
        r.add("SLACK_BOT_TOKEN=").add(SECRETS["slack_token"](rng), "slack_token")
    elif k == 4:
        r.add("GITLAB_TOKEN=").add(SECRETS["gitlab_token"](rng), "gitlab_token")
    elif k == 5:
        r.add(f"GIT_COMMIT={_hex(rng, 40)} BUILD_ID={rng.randint(1000, 99999)}")
    else:
        r.add("DATABASE_URL=mysql://shop:").add(password(rng), "url_password").add(
            "@db-1.internal:3306/shop"
        )
    return r.row("env")


_LOG_KINDS: tuple[tuple[Callable[[random.Random], Row], int], ...] = (
    (_access_line, 35),
    (_app_line, 30),
    (_json_line, 18),
    (_trace_line, 9),
    (_curl_line, 4),
    (_env_line, 4),
)


def log_corpus(n: int = 100_000, seed: int = 5) -> list[Row]:
    """`n` labelled application log lines."""
    rng = random.Random(seed * 1_000_003 + 11)
    makers = [m for m, _ in _LOG_KINDS]
    weights = [w for _, w in _LOG_KINDS]
    return [rng.choices(makers, weights)[0](rng) for _ in range(n)]


# --------------------------------------------------------------------------------------------
# The customer table (D1/D2), vectorised

EXPECTED_CLASSIFICATION: dict[str, str | None] = {
    "customer_id": None,
    "first_name": "pii.name",
    "last_name": "pii.name",
    "full_name": "pii.name",
    "email": "pii.email",
    "phone": "pii.phone",
    "ssn": "pii.ssn",
    "card_number": "pci.pan",
    "iban": "pii.iban",
    "ip_address": "pii.ip",
    "date_of_birth": "pii.dob",
    "street_address": "pii.address",
    "city": None,
    "zip": None,
    "signup_date": None,
    "order_total": None,
    "notes": "free_text",
    "status": None,
    "sku": None,
    "order_no": None,
    "app_version": None,
    "tracking_no": None,
    "ship_date": None,
}
"""What scan should call each column of `customers()`. A city or ZIP alone is not an address."""


def _pool(seed: int, size: int, make: Callable[[random.Random], str]) -> Any:
    import pyarrow as pa

    rng = random.Random(seed)
    return pa.array([make(rng) for _ in range(size)], pa.string())


def _digit_strings(digits: Any, layout: str) -> Any:
    """Fixed-width strings from a (rows, k) uint8 digit matrix; `layout` has one 'd' per digit,
    any other character is copied (e.g. 'ddd-dd-dddd')."""
    import numpy as np
    import pyarrow as pa

    n = digits.shape[0]
    width = len(layout)
    buf = np.empty((n, width), dtype=np.uint8)
    col = 0
    for i, ch in enumerate(layout):
        if ch == "d":
            buf[:, i] = digits[:, col] + 48
            col += 1
        else:
            buf[:, i] = ord(ch)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf.tobytes()))


def _luhn_digits(payload: Any) -> Any:
    """The Luhn check digit of each row of a (rows, k) digit matrix."""
    import numpy as np

    doubled = payload[:, ::-1].astype(np.int16)
    doubled[:, ::2] *= 2
    doubled[doubled > 9] -= 9
    return ((10 - doubled.sum(axis=1) % 10) % 10).astype(np.uint8)


def _cards(gen: Any, n: int) -> Any:
    import numpy as np
    import pyarrow.compute as pc

    prefixes = np.array([[4, 0], [5, 1], [5, 2], [5, 4], [5, 5], [6, 5], [4, 9], [3, 5]], np.uint8)
    digits = gen.integers(0, 10, size=(n, 16), dtype=np.uint8)
    digits[:, :2] = prefixes[gen.integers(0, len(prefixes), n)]
    digits[:, 15] = _luhn_digits(digits[:, :15])
    spaced = _digit_strings(digits, "dddd dddd dddd dddd")
    plain = _digit_strings(digits, "d" * 16)
    amex = gen.integers(0, 10, size=(n, 15), dtype=np.uint8)
    amex[:, 0] = 3
    amex[:, 1] = np.where(gen.random(n) < 0.5, 4, 7)
    amex[:, 14] = _luhn_digits(amex[:, :14])
    amex_s = _digit_strings(amex, "dddd dddddd ddddd")
    which = gen.choice(3, size=n, p=[0.55, 0.35, 0.10]).astype(np.int8)
    return pc.choose(which, spaced, plain, amex_s)


def _mod97_rows(chars: Any) -> Any:
    """mod 97 of each row of a (rows, k) matrix of digit/letter values (0-35)."""
    import numpy as np

    rem = np.zeros(chars.shape[0], dtype=np.int64)
    for j in range(chars.shape[1]):
        v = chars[:, j].astype(np.int64)
        rem = np.where(v > 9, rem * 100 + v, rem * 10 + v) % 97
    return rem


def _ibans(gen: Any, n: int) -> Any:
    """German IBANs (DE + 2 check digits + 18-digit BBAN), grouped by four."""
    import numpy as np

    bban = gen.integers(0, 10, size=(n, 18), dtype=np.uint8)
    tail = np.tile(np.array([13, 14, 0, 0], np.uint8), (n, 1))  # "DE00"
    check = 98 - _mod97_rows(np.hstack([bban, tail]))
    digits = np.hstack([np.stack([check // 10, check % 10], axis=1).astype(np.uint8), bban])
    out = _digit_strings(digits, "DEdd dddd dddd dddd dddd dd")
    return out


def _ssns(gen: Any, n: int, valid: bool) -> Any:
    import numpy as np

    if valid:
        area = gen.integers(1, 899, n)
        area = np.where(area == 666, 667, area)
        group = gen.integers(1, 100, n)
        serial = gen.integers(1, 10000, n)
    else:
        area, group, serial = (
            gen.integers(0, 1000, n),
            gen.integers(0, 100, n),
            gen.integers(0, 10000, n),
        )
    digits = np.stack(
        [
            area // 100,
            area // 10 % 10,
            area % 10,
            group // 10,
            group % 10,
            serial // 1000,
            serial // 100 % 10,
            serial // 10 % 10,
            serial % 10,
        ],
        axis=1,
    ).astype(np.uint8)
    return _digit_strings(digits, "ddd-dd-dddd")


def _dotted(gen: Any, n: int, high: Any) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = [pa.array(gen.integers(lo, hi, n, dtype=np.int64)).cast(pa.string()) for lo, hi in high]
    return pc.binary_join_element_wise(*parts, ".")


def customers(n: int, seed: int = 5) -> Any:
    """A customer table of `n` rows (pyarrow.Table); columns and their expected classification in
    `EXPECTED_CLASSIFICATION`. Vectorised: 1,000,000 rows take a few seconds."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    gen = np.random.default_rng(seed)
    firsts, lasts = person_names(tuple(loc for locs in MAIN_NAME_LOCALES.values() for loc in locs))
    first_pool, last_pool = pa.array(firsts, pa.string()), pa.array(lasts, pa.string())
    fi = gen.integers(0, len(firsts), n)
    li = gen.integers(0, len(lasts), n)
    first, last = first_pool.take(fi), last_pool.take(li)
    fold = (
        [ascii_fold(f.split()[0]) or "user" for f in firsts],
        [ascii_fold(x.replace(" ", "")) or "mail" for x in lasts],
    )
    local = pc.binary_join_element_wise(
        pa.array(fold[0], pa.string()).take(fi),
        pa.array(fold[1], pa.string()).take(li),
        pa.array(gen.integers(1, 1000, n)).cast(pa.string()),
        pa.array(np.array(["", "."], dtype=object)[gen.integers(0, 2, n)], pa.string()),
    )  # the last array is the separator: 'anna.schmidt.123' or 'annaschmidt123'
    domains = pa.array(EMAIL_DOMAINS, pa.string()).take(gen.integers(0, len(EMAIL_DOMAINS), n))
    emails = pc.binary_join_element_wise(local, domains, "@")

    rng_seed = seed * 7919
    langs = ("en", "de", "fr", "es", "it", "nl")
    phones = _pool(rng_seed + 1, 4096, lambda r: phone(r, r.choice(langs)))
    addresses = _pool(rng_seed + 2, 4096, lambda r: address(r, r.choice(langs)))
    notes_rows = text_corpus(2048, seed=seed + 101)
    plain_notes = (
        "no issues",
        "called back, resolved",
        "prefers email contact",
        "VIP customer",
        "asked about delivery times",
        "",
    )
    notes_pool = pa.array([r.text for r in notes_rows] + list(plain_notes), pa.string())
    ipv6_pool = _pool(rng_seed + 3, 1024, ipv6)

    ipv4s = _dotted(gen, n, [(1, 224), (0, 256), (0, 256), (1, 255)])
    ips = pc.if_else(
        pa.array(gen.random(n) < 0.85), ipv4s, ipv6_pool.take(gen.integers(0, 1024, n))
    )
    epoch = np.datetime64("1970-01-01", "D")
    dob_days = (np.datetime64("1940-01-01", "D") - epoch).astype(np.int32) + gen.integers(
        0, 365 * 65, n
    )
    signup = (np.datetime64("2015-01-01", "D") - epoch).astype(np.int32) + gen.integers(
        0, 365 * 9, n
    )
    ship = signup + gen.integers(0, 30, n).astype(np.int32)
    cities = pa.array(
        [c if isinstance(c, str) else c[0] for lang in langs for c in CITIES[lang]], pa.string()
    )
    tracking_payload = gen.integers(0, 10, size=(n, 16), dtype=np.uint8)
    tracking_payload[:, 15] = (_luhn_digits(tracking_payload[:, :15]) + gen.integers(1, 10, n)) % 10
    order_digits = gen.integers(0, 10, size=(n, 10), dtype=np.uint8)
    order_digits[:, 0] = gen.integers(2, 10, n)

    columns: dict[str, Any] = {
        "customer_id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "first_name": first,
        "last_name": last,
        "full_name": pc.binary_join_element_wise(first, last, " "),
        "email": emails,
        "phone": phones.take(gen.integers(0, 4096, n)),
        "ssn": _ssns(gen, n, valid=True),
        "card_number": _cards(gen, n),
        "iban": _ibans(gen, n),
        "ip_address": ips,
        "date_of_birth": pa.array(dob_days, pa.int32()).cast(pa.date32()),
        "street_address": addresses.take(gen.integers(0, 4096, n)),
        "city": cities.take(gen.integers(0, len(cities), n)),
        "zip": pa.array(gen.integers(1001, 99999, n)).cast(pa.string()),
        "signup_date": pa.array(signup, pa.int32()).cast(pa.date32()),
        "order_total": pa.array(np.round(gen.gamma(2.0, 40.0, n), 2)),
        "notes": notes_pool.take(gen.integers(0, len(notes_pool), n)),
        "status": pa.array(("active", "inactive", "pending", "churned"), pa.string()).take(
            gen.integers(0, 4, n)
        ),
        "sku": _ssns(gen, n, valid=False),
        "order_no": _digit_strings(order_digits, "ddd-ddd-dddd"),
        "app_version": _dotted(gen, n, [(1, 20), (0, 30), (0, 60), (0, 255)]),
        "tracking_no": _digit_strings(tracking_payload, "d" * 16),
        "ship_date": pa.array(ship, pa.int32()).cast(pa.date32()),
    }
    return pa.table(columns)
