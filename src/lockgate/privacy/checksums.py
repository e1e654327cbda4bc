"""Check digits and number-range rules that tell a real identifier from a look-alike.

Luhn (payment cards), ISO 13616 IBAN (country length + mod 97), payment card schemes by issuer
prefix (IIN) and length, and the US SSN ranges that were never issued.
"""

from __future__ import annotations

from typing import Final

_LUHN_DOUBLED: Final = str.maketrans("0123456789", "0246813579")
"""A digit -> the digit sum of its double (7 -> 14 -> 5), as a translation table."""


def luhn_valid(digits: str) -> bool:
    """Whether the decimal string `digits` passes the Luhn check (mod 10)."""
    if not (digits.isascii() and digits.isdigit()):
        return False
    total = sum(map(int, digits[-1::-2])) + sum(map(int, digits[-2::-2].translate(_LUHN_DOUBLED)))
    return total % 10 == 0


IBAN_LENGTHS: Final[dict[str, int]] = {
    # the SWIFT IBAN registry
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
    # used nationally, not (yet) in the registry
    "AO": 25, "BF": 28, "BJ": 28, "CI": 28, "CM": 27, "CV": 25, "DZ": 26, "IR": 26, "MA": 28,
    "MG": 27, "ML": 28, "MZ": 25, "SN": 28,
}  # fmt: skip
"""Country code -> total IBAN length (letters and digits, no spaces)."""


def iban_valid(iban: str) -> bool:
    """Whether `iban` (upper case, no spaces) has its country's length and mod-97 remainder 1."""
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit():
        return False
    if not iban.isascii() or not iban.isalnum() or not iban.isupper():
        return False
    rearranged = iban[4:] + iban[:4]
    # letters count as 10..35; int(c, 36) maps 0-9 to themselves and A-Z to 10-35
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


# (first prefix, last prefix, valid lengths, scheme); prefixes compared on the same number of digits
_LEN_16_19: Final = frozenset(range(16, 20))
_LEN_12_19: Final = frozenset(range(12, 20))
CARD_SCHEMES: Final[tuple[tuple[str, str, frozenset[int], str], ...]] = (
    ("4", "4", frozenset({13, 16, 19}), "visa"),
    ("51", "55", frozenset({16}), "mastercard"),
    ("2221", "2720", frozenset({16}), "mastercard"),
    ("34", "34", frozenset({15}), "amex"),
    ("37", "37", frozenset({15}), "amex"),
    ("6011", "6011", _LEN_16_19, "discover"),
    ("644", "649", _LEN_16_19, "discover"),
    ("65", "65", _LEN_16_19, "discover"),
    ("3528", "3589", _LEN_16_19, "jcb"),
    ("35", "35", _LEN_16_19, "jcb"),  # older JCB ranges (3500-3527, 3590-3599) still in tests
    ("2131", "2131", frozenset({15}), "jcb"),
    ("1800", "1800", frozenset({15}), "jcb"),
    ("300", "305", frozenset(range(14, 20)), "diners"),
    ("3095", "3095", frozenset(range(14, 20)), "diners"),
    ("36", "36", frozenset(range(14, 20)), "diners"),
    ("38", "39", frozenset(range(14, 20)), "diners"),
    ("62", "62", _LEN_16_19, "unionpay"),
    ("2200", "2204", _LEN_16_19, "mir"),
    ("5018", "5018", _LEN_12_19, "maestro"),
    ("5020", "5020", _LEN_12_19, "maestro"),
    ("5038", "5038", _LEN_12_19, "maestro"),
    ("56", "58", _LEN_12_19, "maestro"),
    ("5893", "5893", _LEN_12_19, "maestro"),
    ("6304", "6304", _LEN_12_19, "maestro"),
    ("6759", "6759", _LEN_12_19, "maestro"),
    ("6761", "6763", _LEN_12_19, "maestro"),
    ("5019", "5019", frozenset({16}), "dankort"),
    ("636", "636", _LEN_16_19, "interpayment"),
    ("637", "639", frozenset({16}), "instapayment"),
    ("60", "60", frozenset({16}), "rupay"),
    ("508", "508", frozenset({16}), "rupay"),
    ("9792", "9792", frozenset({16}), "troy"),
    ("506099", "506198", frozenset({16, 18, 19}), "verve"),
    ("650002", "650027", frozenset({16, 18, 19}), "verve"),
)
"""Issuer prefix ranges of the card schemes in use, with the card lengths each issues (Maestro
from 12 digits). UATP (prefix 1) is left out: any 15-digit number starting with 1 would
otherwise qualify."""


_SCHEMES_BY_PREFIX: Final = tuple(
    (len(low), int(low), int(high), lengths, scheme) for low, high, lengths, scheme in CARD_SCHEMES
)


def card_scheme(digits: str) -> str | None:
    """The scheme whose issuer prefix and length `digits` has ("visa", ...), or None."""
    n = len(digits)
    prefixes = {size: int(digits[:size]) for size in (1, 2, 3, 4, 6)}
    for size, low, high, lengths, scheme in _SCHEMES_BY_PREFIX:
        if n in lengths and low <= prefixes[size] <= high:
            return scheme
    return None


def card_valid(digits: str) -> bool:
    """Whether `digits` is a plausible payment card number: a known scheme's prefix and length,
    and the Luhn check."""
    return 12 <= len(digits) <= 19 and luhn_valid(digits) and card_scheme(digits) is not None


SSN_ADVERTISED: Final = frozenset({"078051120", "219099999"})
"""SSNs printed in advertisements (a wallet insert, a mail-order ad) and never valid."""


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """Whether an SSN's parts (3, 2 and 4 digits) are in ranges the SSA issues: area not 000,
    666 or 900-999; group not 00; serial not 0000; not a well-known advertised number."""
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return area + group + serial not in SSN_ADVERTISED
