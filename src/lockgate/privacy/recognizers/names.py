"""Person names: capitalised words confirmed by a first-name gazetteer, a title or a context word.

No model: a name is a run of capitalised words (Unicode: José, Müller, Ødegaard, Zoë, O'Connor,
Jean-Pierre, with particles as in "van der Berg") that is
- preceded by a title ("Mr", "Frau", "Mme", "Sr.", "Sig.ra", "Dhr."...): the words after it;
- or preceded by a greeting, sign-off or role word ("Dear", "Cordialement,", "Kunde", "spoke
  with", "name:"), or followed by an e-mail address or phone number (a contact line);
- or starts with a first name of the gazetteer and has a surname after it (the surname needs no
  list), or is a lone gazetteer first name.
The gazetteer is the union of the first names of Faker's person providers for `GAZETTEER_LOCALES`
(western European and American locales), loaded once on first use from the installed package:
no download, no model. First names that are also everyday words or places (`AMBIGUOUS`: "May",
"Will", "Mark", "Bill", "Grant", "Rose", "Victoria", "Mercedes") need a known surname after them,
a title or context.

Not names: organisations (a run joined to "&", "GmbH", "Ltd", "S.p.A.", "Group"...: "Smith &
Sons Ltd" and "Müller GmbH" are organisations even though they hold a surname), words cut at
weekdays, months, labels and product words ("Apple Watch"), place names ("Santa Clara", "New
York"), street names ("Rose Street", "rue Victor Hugo", "Martin Luther King Jr. Street": the
address recognizer owns those) and capitalised words after a number ("3 Street Fighter games").
The span is the name without its title. Not found: lower-case or all-capital names, and a
lone unknown word without a title ("Okafor called").
"""

from __future__ import annotations

import functools
import importlib
import re
import sys
import unicodedata
from collections.abc import Iterator
from typing import Final

from lockgate.privacy.entities import Entity, Span

GAZETTEER_LOCALES: Final = (
    "en_US",
    "en_GB",
    "en_IE",
    "en_NZ",
    "de_DE",
    "de_AT",
    "de_CH",
    "fr_FR",
    "fr_BE",
    "fr_CH",
    "fr_CA",
    "es_ES",
    "es_MX",
    "es_AR",
    "es_CO",
    "es_CL",
    "it_IT",
    "nl_NL",
    "nl_BE",
    "pt_PT",
    "pt_BR",
)
"""Locales whose first names (and surnames) the gazetteer loads from Faker's person providers."""

TITLE_SCORE: Final = 0.9
CONTEXT_SCORE: Final = 0.85
GAZETTEER_SCORE: Final = 0.85
WEAK_SCORE: Final = 0.7
"""Unknown words beside an e-mail address or phone number; a lone first name after a role."""
LONE_SCORE: Final = 0.6
"""A lone first name without context ("Left voicemail for Anna")."""


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text`."""
    return frozenset(text.split())


def _char_class(category: str) -> str:
    """The body of a regex character class holding the letters of `category` (Lu, Ll) in the
    Latin, Greek and Cyrillic blocks, as ranges."""
    blocks = (range(0x250), range(0x370, 0x530), range(0x1E00, 0x1F00))
    codes = [c for block in blocks for c in block if unicodedata.category(chr(c)) == category]
    ranges: list[tuple[int, int]] = []
    for c in codes:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


UPPER: Final = "[" + _char_class("Lu") + _char_class("Lt") + "]"
"""A regex character class: one capital letter (Latin, Greek, Cyrillic)."""
_LO: Final = "[" + _char_class("Ll") + "\u0300-\u036f]"
_REST: Final = (
    f"(?:['’]{UPPER})?{_LO}+(?:{UPPER}{_LO}+)?"  # after the capital: nna, 'Connor, cDonald
)
_PART: Final = (
    f"{UPPER}{_REST}(?:-{UPPER}{_REST})*(?:-{UPPER}\\.)?"  # O'Connor, Jean-Pierre, Hans-J.
)
_PARTICLE: Final = (
    r"(?:van|von|vom|der|den|dem|de|del|della|dei|di|da|das|dos|do|du|des|la|le|ter|ten|zu|y|e"
    r"|bin|ibn|al|el|af|av|'s|'t|Ó|Ní|Nic|Ua|Mac)"
)
_PARTICLE_WORDS: Final = frozenset(_PARTICLE[3:-1].split("|"))

# A run of capitalised words, with initials and particles between them. It starts with the
# capital itself so that the regex engine skips ahead to capitals in C; the look-behind after
# that letter keeps a run from starting inside a word, an e-mail address or a path.
_RUN: Final = re.compile(
    rf"{UPPER}(?<![\w'’@./\\-].){_REST}(?:-{UPPER}{_REST})*(?:-{UPPER}\.)?"
    rf"(?:[ \t]+(?:{UPPER}\.[ \t]+)?(?:{_PARTICLE}[ \t]+){{0,3}}{_PART}){{0,3}}"
    r"(?![\w@])"
)
_TOKEN: Final = re.compile(_PART)
_TITLE_BEFORE: Final = re.compile(
    r"(?:^|(?<=[^\w.]))(?:(?:Mrs|Mr|Ms|Miss|Mx|Dr|Prof|Herr|Frau|Mme|Mlle|Madame|Monsieur|Sra|Srta"
    r"|Sr|Doña|Dña|Don|Sig\.ra|Sig\.na|Signora|Signor|Sig|Dott\.ssa|Dott|Ing|Avv|Dhr|Mevr|Mevrouw"
    r"|mevrouw|Meneer|meneer|Mw)\.?|M\.|D\.)[ \t]+"
    rf"(?P<pre>(?:{_PARTICLE}[ \t]+){{0,3}})$"
)
"""A title (and particles: "Dhr. van der") ending right before a run."""

TITLE_WORDS: Final = word_set(
    "Mr Mrs Ms Miss Mx Dr Prof Herr Frau Mme Mlle Madame Monsieur Sr Sra Srta Doña Dña Don Sig "
    "Signor Signora Dott Ing Avv Dhr Mevr Mevrouw Meneer Mw"
)
_DOTTED_TITLES: Final = word_set(
    "Mr. Mrs. Ms. Dr. Prof. M. Sr. Sra. Srta. D. Dña. Sig. Sig.ra Sig.na Dott. Dott.ssa Dhr. "
    "Mevr. Mw. Ing. Avv. mevrouw meneer"
)
_AMBIGUOUS_TITLES: Final = word_set("Dr Dr. St St. D. M.")
_TITLE_TRIGGERS: Final = TITLE_WORDS | _DOTTED_TITLES | _PARTICLE_WORDS
"""Words right before a run that may end a title (or the particles after one)."""
"""Titles that are also street-type abbreviations ("55 Oak Dr Apt. 2B")."""

_STRONG_LEAD: Final = word_set(
    "Dear Hi Hello Hey Greetings Regards Thanks Cheers Sincerely Signed Attn Liebe Lieber Hallo "
    "Servus Moin Grüße Gruß Bonjour Salut Cher Chère Cordialement Hola Estimado Estimada Querido "
    "Querida Saludos Atentamente Ciao Gentile Caro Cara Salve Saluti Beste Hoi Geachte Groet "
    "Groeten Lieve"
)
"""Capitalised greetings and sign-offs that make the words after them a name."""
_WEAK_LEAD: Final = word_set(
    "Customer Client Cliente Kunde Kundin Klant Klantnaam Caller Patient Employee Contact User "
    "Agent Passenger Guest Tenant Applicant Member Subscriber Borrower Holder Kontakt Inhaber "
    "Inhaberin Kontoinhaber Kontoinhaberin Ansprechpartner Ansprechpartnerin Mitarbeiter "
    "Mitarbeiterin Paziente Paciente Utente Usuario Utilisateur Gebruiker Titular Titolare "
    "Titulaire Intestatario"
)
"""Capitalised role words: enough before two or more capitalised words, or a first name."""
_SINGLE_CONTEXT: Final = word_set(
    "dear hi hello hey morning afternoon evening regards thanks cheers sincerely hallo liebe "
    "lieber bonjour salut cher chère cordialement hola estimado estimada querido querida saludos "
    "ciao gentile caro cara salve saluti beste hoi geachte groet groeten lieve name"
)
"""Words right before a lone unknown word that make it a name ("Good morning Naja")."""

_CONTEXT_BEFORE: Final = re.compile(
    r"(?:^|[^\w])(?:"
    r"dear|hi|hello|hey|good (?:morning|afternoon|evening)|regards|best|thanks|thank you|cheers"
    r"|sincerely|signed(?: by)?|spoke (?:with|to)|talked (?:with|to)|call(?:ed)? with|name"
    r"|full name|contact(?: person)?|attn|attention|from:|to:|cc:|account holder|holder|owner"
    r"|approved by|requested by|assigned to|handled by|lieber?|hallo|sehr geehrter?|grüßen?"
    r"|gruß|ansprechpartner(?:in)?|sprach mit|inhaber(?:in)?|kontoinhaber(?:in)?|bonjour|salut"
    r"|cher|chère|cordialement|bien à vous|au nom de|titulaire|de la part de|hola|estimad[oa]"
    r"|querid[oa]|saludos|atentamente|titular|a nombre de|ciao|gentile|car[oa]|salve"
    r"|cordiali saluti|saluti|intestat[oa] a|a nome di|beste|hoi|geachte|groet(?:en)?"
    r"|met vriendelijke groet|t\.n\.v\.|ten name van|namens|lieve"
    r")[ \t]*[:,!.\-–—]?[ \t]*$",
    re.IGNORECASE,
)
"""Words that end the text just before a name ("Spoke with", "Regards,", "name:", "t.n.v.")."""
_WEAK_BEFORE: Final = re.compile(
    r"(?:^|[^\w])(?:customer|client[ea]?|kund(?:e|in)|klant|caller|patient|paziente|paciente"
    r"|employee|user|agent|contact|guest|member|holder|inhaber(?:in)?|titular|titolare)"
    r"[ \t]*[:,]?[ \t]*$",
    re.IGNORECASE,
)
_SELF_AFTER: Final = re.compile(r"[ \t]+here\b|:[ \t]")
"""A speaker: "Hunter here.", "[10:42] Mason: hi"."""
_PII_AFTER: Final = re.compile(r"[ \t]*(?:[,/;|(<:-][ \t]*)?(?:[\w.+-]+@|\+?\d[\d ()./-]{6,})")
"""An e-mail address or phone number right after the words: a contact line ("Name, mail, tel")."""
_STREET_BEFORE: Final = re.compile(
    r"(?:^|[^\w])(?:rue|avenue|av\.|boulevard|bd|place|allée|quai|chemin|impasse|cours|via|viale"
    r"|piazza|piazzale|corso|largo|vicolo|calle|c/|avenida|avda\.|plaza|paseo|camino|ronda"
    r"|rambla|laan|straat)"
    r"[ \t]+(?:(?:de|du|des|la|le|les|del|della|dei|di|van|der)[ \t]+|[dl]['’])*$",
    re.IGNORECASE,
)
_STREET_TYPES: Final = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way"
    r"|Terrace|Parkway|Square|Straße|Strasse|Str|Allee|Platz|Weg|Ring|Gasse)"
)
_STREET_AFTER: Final = re.compile(rf"\.?[ \t]+{_STREET_TYPES}\b\.?(?:,?[ \t]+\d|[ \t]*$)")
"""A street type after the words (and a number or the line's end): "Rose Street 5"."""
_PLACE_WORDS: Final = word_set(
    "Street Avenue Road Lane Drive Court Place Way Terrace Parkway Boulevard Highway Square "
    "Straße Strasse Allee Platz Gasse Weg Ring Station Airport Hospital Hotel Center Centre Mall "
    "Tower Bridge Church School Museum Stadium Market Store Shop Office City County State Valley "
    "Lake River Beach Island Mountain Bay Harbor Harbour "
    # weekdays and months (capitalised in every language here, or at a sentence start)
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March July "
    "September October November December Montag Dienstag Mittwoch Donnerstag Freitag Samstag "
    "Sonntag Januar Februar März Juni Juli Oktober Dezember Lundi Mardi Mercredi Jeudi Vendredi "
    "Samedi Dimanche Lunes Martes Miércoles Jueves Viernes Sábado Lunedì Martedì Mercoledì "
    "Giovedì Venerdì Sabato Maandag Dinsdag Woensdag Donderdag Vrijdag Zaterdag Zondag"
)
"""Street, place, weekday and month words: they end a run, except after a first name, where they
may be a surname ("Ralph Church", "Hülya Freitag")."""
_ORG_AFTER: Final = re.compile(
    r"[ \t]*(?:&|\+[ \t]|(?:GmbH|AG|KG|SE|Ltd|Inc|LLC|LLP|PLC|plc|Corp|Co\.|SA|S\.A\.|SAS|SARL"
    r"|S\.p\.A\.|SpA|S\.r\.l\.|Srl|S\.L\.|BV|B\.V\.|NV|N\.V\.|Oy|AB|ApS)(?!\w))"
)
"""What makes the words before it an organisation: "Smith & Sons", "Müller GmbH", "Rossi S.p.A."."""
_HOUSE_NUMBER_BEFORE: Final = re.compile(r"\d\S*[ \t]+(?:[A-Z]\S*[ \t]+){0,3}$")

_ORG: Final = word_set(
    "Ltd Limited Inc Incorporated Corp Corporation LLC LLP PLC Plc Co GmbH AG KG SE SA SAS SARL "
    "SpA Srl BV NV Oy AB AS ApS Group Holding Holdings Partners Associates Sons Brothers Bros "
    "Foundation Stiftung Verein Institute Institut University Universität Université "
    "Universidad Università Bank Trust Company Compagnie Gesellschaft Asociados Industries "
    "Solutions Systems Technologies Labs Consulting Services Traders Controls Electric "
    "Electronics Energy Motors Airlines Pharma Insurance Logistics Software Media Capital "
    "Ventures Retail Foods"
)
"""Words that make a run of capitalised words an organisation."""

_STOP: Final = word_set(
    # products and teams
    "Watch Pro Mini Air Plus Ultra Note Tab Series Edition Model Phone Pad Book Dot Buds "
    "Stick Doorbell Hue Team Support Service Department Desk Sales Billing Shipping "
    # function words and labels that start sentences or follow names
    "The This That These Those Our Your My His Her Their Its And Or But If When Please Thanks "
    "Thank Tel Phone Email Mail Fax Mobile Handy Ticket Order Subject Re Fw Fwd Betreff Objet "
    "Asunto Oggetto Onderwerp Der Die Das Den Dem Ein Eine Ihr Ihre Sie Wir Bitte Danke Les "
    "Un Une Merci Il Lo Gli Los Las Una Het Een Geb Nr No SSN DOB IBAN Card Karte Carte "
    "Tarjeta Carta Pas Version Build Firmware App"
)
"""Capitalised words that are never part of a person's name: a run is cut before them."""

_PLACE_LEAD: Final = word_set(
    "San Santa Santo São Saint Sainte St Ste New Los Las El Bad Den Rio Monte Costa Palma Buenos "
    "Salt Hong Fort Port Lake Mount Mont Puerto Porto Villa Ciudad Nueva Nuevo Neu Alt Groß "
    "Klein Via Calle Viale Piazza Corso Largo Rue Avenida Plaza Paseo Camino"
)
"""First words of place and street names ("Santa Clara", "New York", "Via Roma")."""

AMBIGUOUS: Final = word_set(
    # English words and places that are also first names
    "Will May Mark Bill Grant Rose June April August Hope Joy Faith Grace Dean Frank Jack Max "
    "Chase Hunter Summer Guy Ray Art Page Miles Sterling Sky Pat Rich Rob Drew Gene Lance Pierce "
    "Reed Wade Dawn Eve Autumn Winter Star Angel Christian Iris Ivy Jade Ruby Amber Crystal "
    "Daisy Holly Lily Olive Pearl Sunny Cliff Glen Heath Buck Bud Earl Duke King Prince Major "
    "Royal Rusty Sandy Stormy Misty Penny Candy Cherry Honey Kitty Melody Harmony Destiny "
    "Justice Liberty Trinity Serenity Patience Prudence Constance Charity Mercy Temple Haven "
    "River Brook Rain Ocean Forest Stone Storm Phoenix Victoria Georgia Virginia Carolina Austin "
    "Jordan Madison Charlotte Paris Florence Lincoln Washington Sydney Savannah Dallas Houston "
    "Chelsea Brooklyn Dakota Cheyenne Asia India China America Regina Adelaide Alexandria Aurora "
    "Orlando Denver Alexa Siri Mercedes Tesla Dior Chanel Can Else Ever An Una Van Job Beat Line "
    "Lot Nada Pero Che Dom Ante Sean Long Young Price Street Bishop Baker Cook Marshal Carter "
    "Taylor Mason Cash Bond Gray Grey Green Brown White Black "
    # German, French, Spanish, Italian, Dutch words that are also first names
    "Ernst Wolf Engel Heide Kai Horst Sonne Linde Pierre Claire Blanche Aimé Désiré Constant "
    "Fidèle Modeste Victoire France Marine Océane Mélodie Fleur Aube Avril Maxime Noël Ange Sage "
    "Clément Rosa Luz Pilar Dolores Consuelo Amparo Rocío Paz Sol Nieves Cruz Reyes Salvador "
    "Blanca Ángeles Asunción Concepción Encarnación Esperanza Remedios Socorro Soledad Milagros "
    "Rosario Inmaculada Caridad Fe Gracia Gloria Domingo Santiago Abril Mar Camino Cielo Lucero "
    "Bella Gioia Fortunato Benvenuto Speranza Stella Marina Viola Celeste Fiore Primo Domenica "
    "Felice Grazia Luce Sole Pietra Amico Durante Massimo Romano Vittoria Leone Lupo Giusto "
    "Sereno Roma Roos Jet Bas Mei Floor Sien Lien Pleun Sterre Lieve Ella"
)
"""First names that are also everyday words or places: they need a surname, title or context."""

Token = tuple[int, int, str]


@functools.cache
def gazetteer() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, surnames) of Faker's person providers for `GAZETTEER_LOCALES`."""
    first: set[str] = set()
    last: set[str] = set()
    for locale in GAZETTEER_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attr, values in vars(provider).items():
            if not isinstance(values, (list, tuple, dict)):
                continue
            into = first if attr.startswith("first_names") else None
            into = last if attr.startswith("last_names") else into
            if into is not None:
                for value in values:
                    into.update(sys.intern(p) for p in value.split() if p[:1].isupper())
    return frozenset(first), frozenset(last)


def is_first_name(word: str, first: frozenset[str]) -> bool:
    """Whether `word` is a gazetteer first name ("Jean-Pierre": every part one)."""
    if word in first:
        return True
    return "-" in word and all(p in first for p in word.split("-") if not p.endswith("."))


def _line_before(text: str, start: int, width: int = 40) -> str:
    before = text[max(0, start - width) : start]
    return before[before.rfind("\n") + 1 :]


def _previous_word(text: str, start: int) -> str:
    """The word before `start` on its line, with its punctuation ("Dr.", "Regards,"), or ""."""
    end = start - 1 if start and text[start - 1] in " \t" else start
    lo = max(0, end - 24)
    cut = text.rfind(" ", lo, end)
    word = text[cut + 1 if cut >= 0 else lo : end]
    newline = word.rfind("\n")
    return word[newline + 1 :] if newline >= 0 else word


_CONTEXT_LAST_WORDS: Final = word_set(
    "dear hi hello hey morning afternoon evening regards best thanks you cheers sincerely signed "
    "by with to name contact person attn attention from: to: cc: holder owner lieber liebe hallo "
    "geehrte geehrter grüße grüßen gruß ansprechpartner ansprechpartnerin mit inhaber inhaberin "
    "kontoinhaber kontoinhaberin bonjour salut cher chère cordialement vous nom titulaire part "
    "hola estimado estimada querido querida saludos atentamente titular nombre ciao gentile caro "
    "cara salve saluti a di beste hoi geachte groet groeten t.n.v t.n.v. van namens lieve customer "
    "client cliente clientes kunde kundin klant caller patient paziente paciente employee user "
    "agent guest member titolare"
)
"""The last words of the phrases of `_CONTEXT_BEFORE` and `_WEAK_BEFORE`: a cheap first test."""
_STREET_LAST_WORDS: Final = word_set(
    "rue avenue av. boulevard bd place allée quai chemin impasse cours via viale piazza piazzale "
    "corso largo vicolo calle c/ avenida avda. plaza paseo camino ronda rambla laan straat"
)


class NameRecognizer:
    """Person names in free text (see the module docstring for the rules)."""

    name = "names"
    entities = (Entity.NAME,)

    def find(self, text: str) -> Iterator[Span]:
        first, last = gazetteer()
        for m in _RUN.finditer(text):
            run = m.group()
            if " " in run or "\t" in run or run in first:
                span = self._judge(text, m.start(), run, first, last)
            else:
                span = self._lone_unknown(text, m.start(), m.end())
            if span is not None:
                yield span

    def _lone_unknown(self, text: str, start: int, end: int) -> Span | None:
        """One word that is no first name: a name after a title ("Frau Müller", "Sr. López")
        or a greeting ("Good morning Naja")."""
        if start == 0 or text[start - 1] not in " \t":
            return None
        prev = _previous_word(text, start)
        if prev in _TITLE_TRIGGERS:
            name_start = self._title_start(text, start, prev)
            if name_start:
                return self._check(text, name_start, end, TITLE_SCORE, True)
        elif prev.rstrip(",:").lower() in _SINGLE_CONTEXT:
            return self._check(text, start, end, CONTEXT_SCORE, False)
        return None

    @staticmethod
    def _title_start(text: str, start: int, prev: str) -> int:
        """Where the name starts if a title ends right before `start` (or before particles:
        "Dhr. van der Berg" starts at "van"), else 0. `prev` is the word before `start`."""
        if prev in _DOTTED_TITLES or prev in TITLE_WORDS:
            if prev in _AMBIGUOUS_TITLES and _HOUSE_NUMBER_BEFORE.search(
                _line_before(text, start - len(prev) - 1, 30)
            ):
                return 0  # "55 Oak Dr Apt. 2B", "6º D. Fecha": a street type or a door
            return start
        if prev in _PARTICLE_WORDS:
            m = _TITLE_BEFORE.search(text, max(0, start - 40), start)
            if m is not None:
                return m.start("pre")
        return 0

    def _judge(
        self, text: str, run_start: int, run: str, first: frozenset[str], last: frozenset[str]
    ) -> Span | None:
        tokens: list[Token] = []
        pos = run_start
        for word in run.split():  # capitalised words; particles and initials stay in the gaps
            at = text.index(word, pos)
            pos = at + len(word)
            if word not in _PARTICLE_WORDS and not (len(word) == 2 and word[1] == "."):
                tokens.append((at, pos, word))
        titled = strong = weak = False
        # greetings, roles and titles lead a run: the name starts after the last of them
        lead = -1
        for k, (_, _, word) in enumerate(tokens[:3]):
            if word in TITLE_WORDS:  # "Appel de Dr Philippe Maury": a title may come later
                if (
                    k
                    and word in _AMBIGUOUS_TITLES
                    and _HOUSE_NUMBER_BEFORE.search(_line_before(text, tokens[k][0], 30))
                ):
                    break  # "55 Oak Dr Apt. 2B": a street type
                titled, lead = True, k
            elif k == lead + 1 and (k == 0 or not is_first_name(word, first)):
                if word in _STRONG_LEAD:  # "Dear Cara Bell": Cara is her name, not "dear"
                    strong, lead = True, k
                elif word in _WEAK_LEAD:
                    weak, lead = True, k
        if tokens and tokens[0][2].split("-")[0] in _PLACE_LEAD:
            return None
        after_lead = tokens[lead][1] if lead >= 0 else -1
        tokens = self._cut(text, tokens[lead + 1 :], first)
        if not tokens:
            return None
        if lead < 0 and not is_first_name(tokens[0][2], first):
            tokens = self._after_particle(text, tokens, first)
        head = tokens[0][2]
        start, end = tokens[0][0], tokens[-1][1]
        if after_lead >= 0 and after_lead + 1 < start:
            gap = text[after_lead:start].split()
            while gap and gap[0] in _DOTTED_TITLES:  # "Bonjour M. van Nes"
                titled = True
                after_lead = text.index(gap.pop(0), after_lead) + 1
            if gap and all(word in _PARTICLE_WORDS for word in gap):  # "Frau van der Heyden"
                start = text.index(gap[0], after_lead)
        prev = ""
        if not titled and lead < 0 and text[start - 1 : start] in (" ", "\t"):
            prev = _previous_word(text, start)
            if prev in _TITLE_TRIGGERS:
                title_start = self._title_start(text, start, prev)
                if title_start:
                    titled, start = True, title_start
        known = is_first_name(head, first)
        ambiguous = head in AMBIGUOUS
        many = len(tokens) > 1
        score = 0.0
        if titled:
            score = TITLE_SCORE
        else:
            if not strong and not weak and (not known or ambiguous or not many):
                strong, weak = self._context(text, start, end, prev, known)
            if strong and (known or many or not ambiguous):
                score = CONTEXT_SCORE
            elif many:
                if known and (not ambiguous or any(t[2] in last for t in tokens[1:])):
                    score = GAZETTEER_SCORE
                elif weak:
                    score = CONTEXT_SCORE
                elif not ambiguous and _PII_AFTER.match(text, end, min(len(text), end + 40)):
                    score = WEAK_SCORE
            elif known and not ambiguous:
                score = WEAK_SCORE if weak else LONE_SCORE
        if not score:
            return None
        return self._check(text, start, end, score, titled)

    @staticmethod
    def _context(text: str, start: int, end: int, prev: str, known: bool) -> tuple[bool, bool]:
        """(strong, weak) context around the words at `start:end`."""
        if not prev and start and text[start - 1] in " \t":
            prev = _previous_word(text, start)
        if prev.rstrip(":,!.-").lower() in _CONTEXT_LAST_WORDS or prev in ("from:", "to:", "cc:"):
            before = _line_before(text, start)
            if _CONTEXT_BEFORE.search(before):
                return True, False
            if _WEAK_BEFORE.search(before):
                return False, True
        if NameRecognizer._signs_off(text, start, end):
            return True, False
        return (known and _SELF_AFTER.match(text, end) is not None), False

    @staticmethod
    def _cut(text: str, tokens: list[Token], first: frozenset[str]) -> list[Token]:
        """The tokens before the first stop word; an organisation word or suffix drops the
        words joined to it ("Alix Dumont de Rossi S.p.A." -> "Alix Dumont")."""
        for k, (_, _, word) in enumerate(tokens):
            if word in _ORG:
                return tokens[: NameRecognizer._person_part(text, tokens, k)]
            if word in _STOP:
                return tokens[:k]
            if k and word in _PLACE_WORDS:
                head = tokens[0][2]
                if head in AMBIGUOUS or not is_first_name(head, first):
                    return tokens[:k]  # "Rose Street", "Pennsylvania Place"; "Courteney Ring" stays
        if tokens and _ORG_AFTER.match(text, tokens[-1][1]):
            return tokens[: NameRecognizer._person_part(text, tokens, len(tokens))]
        return tokens

    @staticmethod
    def _person_part(text: str, tokens: list[Token], k: int) -> int:
        """How many tokens before an organisation starting at or before `tokens[k]` belong to
        a person: those before the last particle gap ("Günar Ndaba de Schneider Electric": 2)."""
        for j in range(k - 1, 0, -1):
            if text[tokens[j - 1][1] : tokens[j][0]].strip():
                return j
        return 0

    @staticmethod
    def _after_particle(text: str, tokens: list[Token], first: frozenset[str]) -> list[Token]:
        """'Contract van Theo van Embden': after an unknown word and a particle, the name may
        start at a first name."""
        for k in range(1, len(tokens)):
            if text[tokens[k - 1][1] : tokens[k][0]].strip() and is_first_name(tokens[k][2], first):
                return tokens[k:]
        return tokens

    @staticmethod
    def _signs_off(text: str, start: int, end: int) -> bool:
        """A lone name ending its row after a sentence ("Thanks for your help! Grace")."""
        if end < len(text) and text[end] != "\n":
            return False
        before = text[max(0, start - 3) : start].rstrip()
        return bool(before) and before[-1] in "!.,"

    def _check(self, text: str, start: int, end: int, score: float, titled: bool) -> Span | None:
        """The span, unless the words belong to an organisation, a street or a quantity."""
        if (
            end < len(text)
            and text[end] in " \t&.+"
            and (_ORG_AFTER.match(text, end) or _STREET_AFTER.match(text, end))
        ):
            return None
        if start and text[start - 1] in " \t":
            prev = _previous_word(text, start)
            if prev == "&":
                return None  # "Marks & Spencer"
            if not titled and prev:
                if prev[0].isdigit() and prev[-1].isalnum():
                    return None  # "3 Street Fighter games", "12a Rose Street"
                if (
                    prev.lower() in _STREET_LAST_WORDS or prev in _PARTICLE_WORDS
                ) and _STREET_BEFORE.search(_line_before(text, start, 30)):
                    return None  # "rue Victor Hugo", "Calle de Cervantes"
        return Span(start, end, Entity.NAME, score, self.name)


RECOGNIZERS: Final = (NameRecognizer(),)
