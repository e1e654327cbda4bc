"""The person-name and street-address recognizers: true values (with their exact spans),
look-alikes that must not match, and how they behave in a batch of rows."""

from __future__ import annotations

import pytest

from lockgate.privacy.analyzer import Analyzer
from lockgate.privacy.entities import Entity
from lockgate.privacy.recognizers import address, names

NAMES = names.NameRecognizer()
ADDRESSES = address.AddressRecognizer()


def found(recognizer: names.NameRecognizer | address.AddressRecognizer, text: str) -> list[str]:
    """The matched texts that the analyzer would keep (score at or above its floor)."""
    return [text[s.start : s.end] for s in recognizer.find(text) if s.score >= 0.5]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dear Anna Schmidt, thank you for your message.", ["Anna Schmidt"]),
        ("Spoke with José García (jose@example.com) re: refund.", ["José García"]),
        ("Customer Zoë Ødegaard called about her order.", ["Zoë Ødegaard"]),
        ("Jean-Pierre O'Connor asked for a callback.", ["Jean-Pierre O'Connor"]),
        ("Please call Mr. Smith back on Monday.", ["Smith"]),
        ("Frau Müller bittet um Rückruf.", ["Müller"]),
        ("Mme Dupont a appelé ce matin.", ["Dupont"]),
        ("La Sig.ra Rossi ha cambiato indirizzo.", ["Rossi"]),
        ("Estimado/a Sr. López: su incidencia ha sido resuelta.", ["López"]),
        ("Beste Dhr. de Vries, uw ticket is bijgewerkt.", ["de Vries"]),
        ("Sehr geehrte Frau van der Heyden, vielen Dank.", ["van der Heyden"]),
        ("Klant Jan van der Berg belde over zijn bestelling.", ["Jan van der Berg"]),
        ("Herr Dr. Schmidt hat angerufen.", ["Schmidt"]),
        ("Cordialement, Pierre Martin", ["Pierre Martin"]),
        ("Thanks, Anna", ["Anna"]),
        ("Good morning Naja, your appointment is confirmed.", ["Naja"]),
        ("Anruf von Hans-J. Kälin: Karte verloren.", ["Hans-J. Kälin"]),
        ("Regards, Ralph Church", ["Ralph Church"]),
        ("Hülya Freitag zieht um.", ["Hülya Freitag"]),
        ("Réunion avec Alix Dumont de Rossi S.p.A. le 14 mai.", ["Alix Dumont"]),
        ("Silvian Paško, silvian@example.com, +1 208 555 0100", ["Silvian Paško"]),
        ("Terugbetaling t.n.v. Çıvgın İnönü.", ["Çıvgın İnönü"]),
        ("Dear Cara Bell, welcome back.", ["Cara Bell"]),
        ("Mark Johnson called twice.", ["Mark Johnson"]),
    ],
)
def test_finds_names(text: str, expected: list[str]) -> None:
    assert found(NAMES, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Mark the ticket as resolved.",
        "Bill me later option disabled.",
        "Will call back tomorrow.",
        "May we contact you next week?",
        "Grant access to the shared drive.",
        "The Apple Watch is sold out in New York and Santa Clara.",
        "Delivered to the store on Rose Street.",
        "Smith & Sons Ltd sent the invoice.",
        "Payment from Müller GmbH received.",
        "Our partner Marks & Spencer agreed.",
        "Escalated to Tier 2 on Monday.",
        "Login from Mercedes-Benz Vito app.",
        "Moved to rue Victor Hugo last year.",
        "3 Street Fighter games are missing.",
        "Meeting moved to June, see you in Victoria Station.",
        "Mit freundlichen Grüßen, Ihr Support-Team",
        "Customer Service will answer within 24 hours.",
    ],
)
def test_ignores_look_alikes(text: str) -> None:
    assert found(NAMES, text) == []


def test_titles_are_left_out_of_the_span_and_score_high() -> None:
    text = "Appel de Dr Philippe Maury : carte perdue."
    (span,) = NAMES.find(text)
    assert text[span.start : span.end] == "Philippe Maury"
    assert span.entity is Entity.NAME and span.score == names.TITLE_SCORE


def test_ambiguous_first_names_need_a_surname_title_or_context() -> None:
    assert found(NAMES, "Left voicemail for Dean.") == []
    assert found(NAMES, "Left voicemail for Dean Martin.") == ["Dean Martin"]
    assert found(NAMES, "Hi Dean, your order shipped.") == ["Dean"]


def test_gazetteer_comes_from_faker_locales() -> None:
    first, last = names.gazetteer()
    assert {"Anna", "José", "Pieter", "Giuseppe", "François"} <= first
    assert {"Schmidt", "García", "Rossi"} <= last
    assert "Okafor" not in first  # ig_NG is not loaded: no name from every locale
    assert names.is_first_name("Jean-Pierre", first)
    assert not names.is_first_name("Mercedes-Benz", first)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Ship to 1600 Pennsylvania Avenue NW, Washington, DC 20500 please.",
            "1600 Pennsylvania Avenue NW, Washington, DC 20500",
        ),
        ("Flat above 221B Baker Street.", "221B Baker Street"),
        (
            "Moved to 12 Oak St., Apt 4B, Springfield, IL 62704.",
            "12 Oak St., Apt 4B, Springfield, IL 62704",
        ),
        (
            "Send it to 10 Downing Street, London SW1A 2AA today",
            "10 Downing Street, London SW1A 2AA",
        ),
        ("Wohnhaft Hauptstraße 12 seit Mai.", "Hauptstraße 12"),
        ("Neue Adresse: Am Markt 3a, 10115 Berlin.", "Am Markt 3a, 10115 Berlin"),
        ("Berliner Str. 5a, 10115 Berlin am Montag", "Berliner Str. 5a, 10115 Berlin"),
        ("Livraison au 12 rue de la Paix, 75002 Paris.", "12 rue de la Paix, 75002 Paris"),
        ("Habite au 3 bis, avenue Victor Hugo.", "3 bis, avenue Victor Hugo"),
        ("Vive en Calle Mayor 5, 3º B.", "Calle Mayor 5, 3º B"),
        ("Envío a C/ de Alcalá 12, 28014 Madrid.", "C/ de Alcalá 12, 28014 Madrid"),
        ("Residente in Via Roma 10.", "Via Roma 10"),
        (
            "Consegna: Piazza Garibaldi, 1/A, 20121 Milano (MI).",
            "Piazza Garibaldi, 1/A, 20121 Milano (MI)",
        ),
        ("Woont op Kerkstraat 12-2, 1234 AB Amsterdam.", "Kerkstraat 12-2, 1234 AB Amsterdam"),
        (
            "Delivered to 687 Old Mill Boulevard SE, Suite 19.",
            "687 Old Mill Boulevard SE, Suite 19",
        ),
    ],
)
def test_finds_addresses_with_their_whole_span(text: str, expected: str) -> None:
    assert found(ADDRESSES, text) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "We sold 3 Street Fighter games today.",
        "Playing Route 66 songs all night.",
        "Our plan has 5 Avenues of growth.",
        "Sent via email 3 times.",
        "Der Arbeitsplatz 3 im Lager ist frei.",
        "Platz 2 im Ranking für das Produkt.",
        "Version 12 Main release notes.",
    ],
)
def test_ignores_street_like_text(text: str) -> None:
    assert found(ADDRESSES, text) == []


def test_weak_shapes_need_a_postcode_or_context() -> None:
    assert found(ADDRESSES, "Treffen Am Markt 3 um zehn.") == []
    assert found(ADDRESSES, "Am Markt 3, 10115 Berlin") == ["Am Markt 3, 10115 Berlin"]
    assert found(ADDRESSES, "Lieferadresse: Am Markt 3") == ["Am Markt 3"]


def test_spans_stay_within_their_row() -> None:
    rows = [
        "Customer Anna",
        "Schmidt called from 12 Baker",
        "Street, then left. Dear Pieter de Vries, see Kerkstraat 4",
        "1234 AB Amsterdam",
    ]
    analyzer = Analyzer(recognizers=[*names.RECOGNIZERS, *address.RECOGNIZERS])
    spans = analyzer.analyze_batch(rows)
    got = [[(rows[i][s.start : s.end], s.entity.value) for s in row] for i, row in enumerate(spans)]
    assert got == [
        [("Anna", "name")],
        [],
        [("Pieter de Vries", "name"), ("Kerkstraat 4", "address")],
        [],
    ]


def test_analyzer_prefers_the_address_over_a_name_inside_it() -> None:
    text = "Driver could not find 1 Martin Luther King Jr. Street, Dallas, TX 75201 today."
    analyzer = Analyzer(recognizers=[*names.RECOGNIZERS, *address.RECOGNIZERS])
    assert [(text[s.start : s.end], s.entity) for s in analyzer.analyze(text)] == [
        ("1 Martin Luther King Jr. Street, Dallas, TX 75201", Entity.ADDRESS)
    ]
