"""Recognizers of structured PII (email, phone, SSN, card, IBAN, IP, date of birth): true values
in several formats and locales are found with their exact span; look-alikes give no span."""

from __future__ import annotations

import datetime as dt

import pytest

from lockgate.privacy.analyzer import Analyzer
from lockgate.privacy.checksums import (
    IBAN_LENGTHS,
    card_scheme,
    card_valid,
    iban_valid,
    luhn_valid,
    ssn_valid,
)
from lockgate.privacy.entities import Entity
from lockgate.privacy.recognizers import card, dob, email, iban, ip, phone, ssn
from lockgate.privacy.recognizers.base import Recognizer

STRUCTURED: tuple[Recognizer, ...] = (
    *email.RECOGNIZERS,
    *phone.RECOGNIZERS,
    *ssn.RECOGNIZERS,
    *card.RECOGNIZERS,
    *iban.RECOGNIZERS,
    *ip.RECOGNIZERS,
    *dob.RECOGNIZERS,
)


def found(entity: Entity, text: str) -> list[str]:
    """The values of `entity` the analyzer (default minimum score) keeps in `text`."""
    spans = Analyzer(entities=[entity], recognizers=STRUCTURED).analyze(text)
    return [text[s.start : s.end] for s in spans]


def check(entity: Entity, text: str, expected: str | None) -> None:
    assert found(entity, text) == ([expected] if expected else [])


# -- checksums ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("79927398713", True), ("4111111111111111", True), ("4111111111111112", False),
     ("0", True), ("", False), ("12a4", False)],
)  # fmt: skip
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("number", "scheme"),
    [("4111111111111111", "visa"), ("4222222222222", "visa"), ("5555555555554444", "mastercard"),
     ("2221000000000009", "mastercard"), ("378282246310005", "amex"),
     ("6011111111111117", "discover"), ("3530111333300000", "jcb"),
     ("30569309025904", "diners"), ("6200000000000005", "unionpay"),
     ("6759649826438453", "maestro"), ("2200000000000004", "mir"),
     ("1234567812345670", None), ("34111111111111", None), ("3782822463100050", None)],
)  # fmt: skip
def test_card_scheme_by_prefix_and_length(number: str, scheme: str | None) -> None:
    assert card_scheme(number) == scheme


def test_card_valid_needs_scheme_and_luhn() -> None:
    assert card_valid("4111111111111111")
    assert not card_valid("4111111111111112")  # Luhn fails
    assert not card_valid("1234567812345670")  # Luhn passes, no scheme


@pytest.mark.parametrize(
    ("value", "valid"),
    [("DE89370400440532013000", True), ("GB82WEST12345698765432", True),
     ("NO9386011117947", True), ("DE89370400440532013001", False),
     ("DE8937040044053201300", False), ("de89370400440532013000", False),
     ("XX89370400440532013000", False), ("DEAB370400440532013000", False)],
)  # fmt: skip
def test_iban_checksum_and_length(value: str, valid: bool) -> None:
    assert iban_valid(value) is valid


def test_iban_lengths_are_plausible() -> None:
    assert all(len(code) == 2 and code.isupper() for code in IBAN_LENGTHS)
    assert all(15 <= n <= 34 for n in IBAN_LENGTHS.values())
    assert IBAN_LENGTHS["DE"] == 22 and IBAN_LENGTHS["FR"] == 27 and IBAN_LENGTHS["NO"] == 15


@pytest.mark.parametrize(
    ("parts", "valid"),
    [(("123", "45", "6789"), True), (("000", "12", "3456"), False),
     (("666", "12", "3456"), False), (("900", "12", "3456"), False),
     (("999", "12", "3456"), False), (("123", "00", "4567"), False),
     (("123", "45", "0000"), False), (("078", "05", "1120"), False),
     (("219", "09", "9999"), False), (("899", "99", "9999"), True)],
)  # fmt: skip
def test_ssn_ranges(parts: tuple[str, str, str], valid: bool) -> None:
    assert ssn_valid(*parts) is valid


# -- email --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Contact jane.doe@example.com today.", "jane.doe@example.com"),
     ("mail: first+tag@sub.example.co.uk", "first+tag@sub.example.co.uk"),
     ("<o'brien_x@example.org>", "o'brien_x@example.org"),
     ("'quoted@example.org'", "quoted@example.org"),
     ("jürgen@müller.de schrieb", "jürgen@müller.de"),
     ("用户@例子.中国", "用户@例子.中国"),
     ("δοκιμή@παράδειγμα.δοκιμή", "δοκιμή@παράδειγμα.δοκιμή"),
     ("x@xn--mller-kva.de", "x@xn--mller-kva.de"),
     ("mailto:bob@example.com", "bob@example.com"),
     ("https://shop.example/contact?email=ann@example.net", "ann@example.net"),
     ("Mail an bob@example.com: er antwortet", "bob@example.com"),
     ("user@localhost", None),
     ("background: url(icon@2x.png)", None),
     ("logo@1.5x.jpg", None),
     ("git clone git@github.com:org/repo.git", None),
     ("ssh://git@github.com/org/repo", None),
     ("postgres://app:hunter2@db.example.com/app", None),
     ("npm i lodash@4.17.21", None),
     ("docker pull image@sha256:abcdef", None),
     ("a..b@example.com", None),
     ("@example.com", None)],
)  # fmt: skip
def test_email(text: str, expected: str | None) -> None:
    check(Entity.EMAIL, text, expected)


# -- phone --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Call +44 20 7946 0958 now", "+44 20 7946 0958"),
     ("Tel +49 30 901820.", "+49 30 901820"),
     ("(415) 555-2671", "(415) 555-2671"),
     ("reach me at 415.555.2671", "415.555.2671"),
     ("+33 1 42 68 53 00", "+33 1 42 68 53 00"),
     ("0049 30 901820", "0049 30 901820"),
     ("+44 (0)20 7946 0958", "+44 (0)20 7946 0958"),
     ("+1 415 555 2671 x123", "+1 415 555 2671 x123"),
     ("en_US 415-555-2671", "415-555-2671"),
     ("en_GB 020 7946 0958", "020 7946 0958"),
     ("de_DE 030 901820", "030 901820"),
     ("fr_FR 01 42 68 53 00", "01 42 68 53 00"),
     ("fr_FR 01.42.68.53.00", "01.42.68.53.00"),
     ("es_ES 912 345 678", "912 345 678"),
     ("it_IT 02 1234 5678", "02 1234 5678"),
     ("it_IT 345 123 4567", "345 123 4567"),
     ("nl_NL 06 12345678", "06 12345678"),
     ("phone: 4155552671", "4155552671"),
     ("Telefon:+4930901820", "+4930901820"),
     ("Handy 0151 23456789", "0151 23456789"),
     ("téléphone : 01 42 68 53 00", "01 42 68 53 00"),
     ("teléfono 612 345 678", "612 345 678"),
     ("Order 415-555-2671 shipped", None),
     ("Order #4155552671", None),
     ("invoice 020 7946 0958", None),
     ("tracking no. 030 901820", None),
     ("ref 01 42 68 53 00", None),
     ("SKU 912 345 678", None),
     ("# 415 555 2671", None),
     ("at 2023-10-05 12:30:45", None),
     ("on 02.03.1985", None),
     ("total $1,234.56", None),
     ("price 1 234 567 EUR", None),
     ("4155552671", None),
     ("20231005123045", None),
     ("host 192.168.100.200", None),
     ("123-45-6789", None),
     ("555-0100", None),
     ("+44 1234", None),
     ("v1.415.555.2671", None)],
)  # fmt: skip
def test_phone(text: str, expected: str | None) -> None:
    check(Entity.PHONE, text, expected)


def test_phone_label_closest_to_the_number_decides() -> None:
    text = "Order 12 for Ann, phone 415-555-2671"
    assert found(Entity.PHONE, text) == ["415-555-2671"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Account holder +1 212 736 5000", "+1 212 736 5000"),
     ("ticket raised by +44 20 7946 0958", "+44 20 7946 0958"),
     ("Customer called about order, callback +1 212 736 5000", "+1 212 736 5000"),
     ("order 2127365000", None),
     ("invoice 4420794609", None)],
)  # fmt: skip
def test_a_valid_plus_number_is_a_phone_after_any_word(text: str, expected: str | None) -> None:
    """A look-alike label rejects bare digit runs, not a valid number written with "+"."""
    check(Entity.PHONE, text, expected)


# -- SSN ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("SSN 123-45-6789", "123-45-6789"),
     ("123-45-6789", "123-45-6789"),
     ("ssn: 123 45 6789", "123 45 6789"),
     ("123 45 6789 on file", "123 45 6789"),
     ("Social Security Number: 123456789", "123456789"),
     ("SSN#123-45-6789", "123-45-6789"),
     ("SSN:899-99-9999", "899-99-9999"),
     ("123456789", None),
     ("SKU 123-45-6789", None),
     ("part no. 555-12-3456", None),
     ("order #123-45-6789", None),
     ("000-12-3456", None),
     ("666-12-3456", None),
     ("912-12-3456", None),
     ("123-00-4567", None),
     ("123-45-0000", None),
     ("078-05-1120", None),
     ("219-09-9999", None),
     ("1123-45-6789", None),
     ("123-45-67890", None),
     ("x-123-45-6789", None),
     ("SSN 1234567890", None)],
)  # fmt: skip
def test_ssn(text: str, expected: str | None) -> None:
    check(Entity.SSN, text, expected)


def test_ssn_next_to_a_sku_keeps_its_own_label() -> None:
    text = "SSN 123-45-6789, SKU 555-12-3456"
    assert found(Entity.SSN, text) == ["123-45-6789"]


# -- payment cards ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Visa 4111 1111 1111 1111 exp 12/25", "4111 1111 1111 1111"),
     ("card: 4111-1111-1111-1111", "4111-1111-1111-1111"),
     ("paid with 5555555555554444", "5555555555554444"),
     ("2221 0000 0000 0009", "2221 0000 0000 0009"),
     ("Amex 3782 822463 10005", "3782 822463 10005"),
     ("371449635398431", "371449635398431"),
     ("Discover 6011 1111 1111 1117", "6011 1111 1111 1117"),
     ("JCB 3530 1113 3330 0000", "3530 1113 3330 0000"),
     ("Diners 3056 930902 5904", "3056 930902 5904"),
     ("UnionPay 6200000000000005", "6200000000000005"),
     ("Maestro 6759649826438453", "6759649826438453"),
     ("Visa 4222222222222", "4222222222222"),
     ("Karte 4111 1111 1111 1111 2024", "4111 1111 1111 1111"),
     ("4111 1111 1111 1112", None),
     ("1234 5678 1234 5670", None),
     ("9111111111111111", None),
     ("tracking 4111111111111111", None),
     ("Order #4111 1111 1111 1111", None),
     ("#4111111111111111", None),
     ("IMEI 490154203237518", None),
     ("4111 11111111 1111", None),
     ("4111 1111-1111 1111", None),
     ("41111111111111111111", None),
     ("id=4111111111111111x", None)],
)  # fmt: skip
def test_card(text: str, expected: str | None) -> None:
    check(Entity.CARD, text, expected)


# -- IBAN ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("IBAN DE89 3704 0044 0532 0130 00 please", "DE89 3704 0044 0532 0130 00"),
     ("DE89370400440532013000", "DE89370400440532013000"),
     ("GB82 WEST 1234 5698 7654 32", "GB82 WEST 1234 5698 7654 32"),
     ("FR14 2004 1010 0505 0001 3M02 606", "FR14 2004 1010 0505 0001 3M02 606"),
     ("NL91ABNA0417164300.", "NL91ABNA0417164300"),
     ("ES91 2100 0418 4502 0005 1332 AND MORE", "ES91 2100 0418 4502 0005 1332"),
     ("IT60 X054 2811 1010 0000 0123 456", "IT60 X054 2811 1010 0000 0123 456"),
     ("BE68 5390 0754 7034", "BE68 5390 0754 7034"),
     ("IBAN:NO9386011117947", "NO9386011117947"),
     ("DE89 3704 0044 0532 0130 01", None),
     ("de89 3704 0044 0532 0130 00", None),
     ("DE89 3704 0044 0532 0130", None),
     ("DE89370400440532013000X", None),
     ("XDE89370400440532013000", None),
     ("DE8937 0400 4405 3201 3000", None),
     ("XX89 3704 0044 0532 0130 00", None)],
)  # fmt: skip
def test_iban(text: str, expected: str | None) -> None:
    check(Entity.IBAN, text, expected)


# -- IP -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Login from 203.0.113.7.", "203.0.113.7"),
     ("client=10.1.2.3, status=200", "10.1.2.3"),
     ("192.168.0.1", "192.168.0.1"),
     ("http://198.51.100.20:8080/x", "198.51.100.20"),
     ("route 10.0.0.0/8", "10.0.0.0"),
     ("ip 172.16.254.3", "172.16.254.3"),
     ("2001:db8::1", "2001:db8::1"),
     ("addr 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
     ("fe80::1%eth0 up", "fe80::1"),
     ("[2001:db8::8a2e:370:7334]:443", "2001:db8::8a2e:370:7334"),
     ("mapped ::ffff:192.0.2.1", "::ffff:192.0.2.1"),
     ("version 1.2.3.4", None),
     ("Version: 10.0.0.1", None),
     ("v10.0.0.1", None),
     ("Chrome/120.0.6099.109", None),
     ("Python/3.11.4.1 on linux", None),
     ("release 1.2.3.4-beta", None),
     ("1.2.3.4-rc1", None),
     ("OID 2.5.4.3", None),
     ("1.3.6.1.4.1", None),
     ("1.2.3.4.5", None),
     ("see section 4.2.1.3", None),
     ("010.1.1.1", None),
     ("256.1.1.1", None),
     ("1.2.3", None),
     ("127.0.0.1", None),
     ("0.0.0.0", None),
     ("::1", None),
     ("netmask 255.255.255.0", None),
     ("std::vector<int>", None),
     ("a[1::2]", None),
     ("12:30:45", None),
     ("MAC 00:1a:2b:3c:4d:5e", None)],
)  # fmt: skip
def test_ip(text: str, expected: str | None) -> None:
    check(Entity.IP, text, expected)


def test_ip_loopback_is_reported_below_the_default_minimum() -> None:
    spans = Analyzer(entities=[Entity.IP], recognizers=STRUCTURED, min_score=0.0).analyze(
        "bind 127.0.0.1 and ::1"
    )
    assert [(s.start, s.end) for s in spans] == [(5, 14), (19, 22)]
    assert all(s.score < 0.5 for s in spans)


# -- date of birth ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("DOB: 1985-03-02", "1985-03-02"),
     ("born 03/02/1985 in Ohio", "03/02/1985"),
     ("Date of Birth: 2.3.1985", "2.3.1985"),
     ("Geburtsdatum 02.03.1985", "02.03.1985"),
     ("born on March 2, 1985", "March 2, 1985"),
     ("birthday: 2 March 1985", "2 March 1985"),
     ("Jane Doe (b. 2 March 1985)", "2 March 1985"),
     ("née le 2 mars 1985 à Lyon", "2 mars 1985"),
     ("date de naissance : 1er mars 1985", "1er mars 1985"),
     ("geboren am 2. März 1985", "2. März 1985"),
     ("fecha de nacimiento: 2 de marzo de 1985", "2 de marzo de 1985"),
     ("nacido el 02/03/1985", "02/03/1985"),
     ("data di nascita 2 marzo 1985", "2 marzo 1985"),
     ("geboortedatum 2 maart 1985", "2 maart 1985"),
     ("DATE OF BIRTH 1985-03-02", "1985-03-02"),
     ("1985-03-02 (DOB)", "1985-03-02"),
     ("DOB 03/02/85", "03/02/85"),
     ("shipped 2023-01-05", None),
     ("order date 03/02/1985", None),
     ("created 1985-03-02", None),
     ("2023-01-05 delivered", None),
     ("born 1985-02-30", None),
     ("born 2999-01-01", None),
     ("born 1850-01-01", None),
     ("born 13/13/1985", None),
     ("stubborn 1985-03-02", None),
     ("NATO summit 2023-07-11", None),
     ("DOB unknown, shipped 2023-01-05", None),
     ("born 1985-03-02T10:00:00", None)],
)  # fmt: skip
def test_dob(text: str, expected: str | None) -> None:
    check(Entity.DOB, text, expected)


@pytest.mark.parametrize(
    "text",
    ["Born 1985-03-02, ordered 2023-01-05",
     "customer born on 1985-03-02 shipped on 2023-01-05",
     "shipped 2023-01-05 to a customer born 1985-03-02",
     "delivered 2023-01-05; date of birth 1985-03-02"],
)  # fmt: skip
def test_dob_is_not_the_shipping_date_in_the_same_sentence(text: str) -> None:
    assert found(Entity.DOB, text) == ["1985-03-02"]


def test_dob_today_is_plausible_and_tomorrow_is_not() -> None:
    today = dt.date.today()
    tomorrow = today + dt.timedelta(days=1)
    assert found(Entity.DOB, f"born {today.isoformat()}") == [today.isoformat()]
    assert found(Entity.DOB, f"born {tomorrow.isoformat()}") == []


# -- batches ------------------------------------------------------------------------------------


SPLIT_ROWS = [
    "call 415 555",
    "2671 please",
    "SSN 123-45",
    "6789",
    "card 4111 1111",
    "1111 1111",
    "IBAN DE89 3704 0044 0532",
    "0130 00",
    "born",
    "1985-03-02",
    "jane@",
    "example.com",
    "10.0.0",
    ".1",
]
"""Values cut in two by a row boundary: neither half is a value."""


def test_no_span_crosses_rows_in_a_batch() -> None:
    analyzer = Analyzer(recognizers=STRUCTURED)
    assert analyzer.analyze_batch(SPLIT_ROWS) == [[] for _ in SPLIT_ROWS]


@pytest.mark.parametrize("recognizer", STRUCTURED, ids=lambda r: r.name)
def test_recognizers_keep_matches_within_a_line(recognizer: Recognizer) -> None:
    blob = "\n".join(SPLIT_ROWS)
    assert [
        blob[s.start : s.end] for s in recognizer.find(blob) if "\n" in blob[s.start : s.end]
    ] == []


def test_batch_spans_are_relative_to_their_row() -> None:
    rows = ["jane@example.com", None, "", "SSN 123-45-6789 and ip 203.0.113.7", "x"]
    out = Analyzer(recognizers=STRUCTURED).analyze_batch(rows)
    got = [
        [(row or "")[s.start : s.end] for s in spans] for row, spans in zip(rows, out, strict=True)
    ]
    assert got == [["jane@example.com"], [], [], ["123-45-6789", "203.0.113.7"], []]


LOG_ROWS = [
    "DE89370400440532013000 first in the batch",
    "4111111111111111 first on its row",
    "2024-05-01T10:00:00Z paid with card 4111 1111 1111 1111 ok",
    "请付款 卡号 5500-0000-0000-0004, IBAN GB82 WEST 1234 5698 7654 32",
    "Überweisung an DE89 3704 0044 0532 0130 00 erhalten",
    "«GB82WEST12345698765432» and €378282246310005",
    "order 2024-05-01 ref 1234 5678 9012 3456 and x4111111111111111",
    "tracking 4111111111111111, DE89370400440532013001, GB82 WEST 1234 5698 7654 3",
    "user=bob ip=203.0.113.7 mail bob@example.com password=hunter2.",
]
"""Cards and IBANs at the start of a batch, after non-ASCII characters, on later rows, beside
look-alikes: the scans that skip ahead to likely lines and starts must miss none of them."""


def test_batch_finds_what_each_row_alone_finds() -> None:
    analyzer = Analyzer()
    alone = [analyzer.analyze(row) for row in LOG_ROWS]
    assert analyzer.analyze_batch(LOG_ROWS) == alone
    assert Analyzer(entities=[Entity.CARD, Entity.IBAN]).analyze_batch(LOG_ROWS[::-1]) == [
        [s for s in spans if s.entity in (Entity.CARD, Entity.IBAN)] for spans in alone[::-1]
    ]
    values = {
        (row[s.start : s.end], s.entity)
        for row, spans in zip(LOG_ROWS, alone, strict=True)
        for s in spans
    }
    assert {v for v, e in values if e is Entity.CARD} == {
        "4111111111111111",
        "4111 1111 1111 1111",
        "5500-0000-0000-0004",
        "378282246310005",
    }
    assert {v for v, e in values if e is Entity.IBAN} == {
        "DE89370400440532013000",
        "GB82 WEST 1234 5698 7654 32",
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
    }


def test_every_recognizer_follows_the_protocol() -> None:
    for recognizer in STRUCTURED:
        assert recognizer.name and recognizer.entities
        assert list(recognizer.find("")) == []
