"""Lists of realistic values (names, streets, cities...) taken from faker's locale providers.

They are read once per locale, on first use, straight from the providers' class attributes:
`fake` indexes into them with keyed tokens instead of calling Faker once per row.
"""

from __future__ import annotations

import importlib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pyarrow as pa

from lockgate.errors import PrivacyError

EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
"""Reserved for documentation (RFC 2606): a fake address can never reach a real mailbox."""


@dataclass(frozen=True)
class Pools:
    """The value lists of one locale, as Arrow string arrays."""

    first_names: pa.Array
    last_names: pa.Array
    cities: pa.Array
    street_suffixes: pa.Array
    states: pa.Array
    countries: pa.Array
    company_suffixes: pa.Array
    email_domains: pa.Array
    email_first: pa.Array
    """First names as lowercase ASCII letters (`José` -> `jose`), for email addresses."""
    email_last: pa.Array


def _names(value: Any) -> list[str]:
    """A provider attribute (a tuple, list, or dict of value -> weight) as a list of strings."""
    if isinstance(value, dict):
        value = list(value)
    return [str(v) for v in value or () if str(v).strip()]


def _provider(kind: str, locale: str) -> Any:
    base = importlib.import_module(f"faker.providers.{kind}").Provider
    try:
        return importlib.import_module(f"faker.providers.{kind}.{locale}").Provider
    except ModuleNotFoundError:
        return base


def _first(*candidates: list[str]) -> list[str]:
    return next((c for c in candidates if c), [""])


@lru_cache(maxsize=8)
def pools(locale: str = "en_US") -> Pools:
    """The value lists of `locale` (e.g. `en_US`, `de_DE`, `fr_FR`)."""
    try:
        importlib.import_module(f"faker.providers.person.{locale}")
    except ModuleNotFoundError:
        raise PrivacyError(
            f"fake: faker has no locale {locale!r}; use one such as en_US, en_GB, de_DE, fr_FR"
        ) from None
    person = _provider("person", locale)
    address = _provider("address", locale)
    company = _provider("company", locale)
    base_address = importlib.import_module("faker.providers.address").Provider
    first = _first(
        _names(getattr(person, "first_names", ())),
        _names(getattr(person, "first_names_female", ()))
        + _names(getattr(person, "first_names_male", ())),
    )
    last = _first(_names(getattr(person, "last_names", ())))
    suffixes = _first(
        _names(getattr(address, "city_suffixes", ())), _names(base_address.city_suffixes)
    )
    cities = _first(
        _names(getattr(address, "cities", ())),
        [f"{name}{suffix}" for name in last[:300] for suffix in suffixes],
    )
    states = _first(
        _names(getattr(address, "states_abbr", ())), _names(getattr(address, "states", ()))
    )
    return Pools(
        first_names=pa.array(first, pa.string()),
        last_names=pa.array(last, pa.string()),
        cities=pa.array(cities, pa.string()),
        street_suffixes=pa.array(
            _first(_names(getattr(address, "street_suffixes", ())), ["Street"]), pa.string()
        ),
        states=pa.array(states, pa.string()),
        countries=pa.array(_first(_names(getattr(base_address, "countries", ()))), pa.string()),
        company_suffixes=pa.array(
            _first(_names(getattr(company, "company_suffixes", ())), ["Inc"]), pa.string()
        ),
        email_domains=pa.array(EMAIL_DOMAINS, pa.string()),
        email_first=pa.array(_ascii_lower(first), pa.string()),
        email_last=pa.array(_ascii_lower(last), pa.string()),
    )


def _ascii_lower(names: list[str]) -> list[str]:
    """`Müller` -> `muller`: the letters a-z left once accents are taken off (`x` if none)."""
    out = []
    for name in names:
        plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
        out.append("".join(c for c in plain if "a" <= c <= "z") or "x")
    return out
