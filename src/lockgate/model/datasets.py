"""Dataset URIs: what a task updates when it succeeds (`Task.produces`) and what a pipeline
waits for (`Pipeline.datasets`). Only their form is checked here; what they point at is not."""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_URI_LENGTH = 1000
URI_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")
"""`scheme://rest`: a scheme as RFC 3986 spells it, then anything without whitespace."""


def check_uri(value: object) -> str:
    """`value` if it is a dataset URI, else ValueError saying what is wrong with it."""
    if not isinstance(value, str):
        raise ValueError(f"a dataset URI must be text, got {value!r}")
    if len(value) > MAX_URI_LENGTH:
        raise ValueError(
            f"dataset URI {value[:40]!r}... is {len(value)} characters long; "
            f"at most {MAX_URI_LENGTH} are allowed"
        )
    if any(c.isspace() for c in value):
        raise ValueError(f"dataset URI {value!r} contains whitespace")
    if not URI_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not a dataset URI: write scheme://location, "
            "e.g. 's3://bucket/orders.parquet' or 'file:///data/orders.csv'"
        )
    return value


def check_uris(values: Iterable[object]) -> tuple[str, ...]:
    """The URIs of `values` as a tuple; ValueError for a bad or repeated one, or for a lone
    string (which would otherwise be read as a list of characters)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError(f"expected a list of dataset URIs, got {values!r}")
    out: dict[str, None] = {}
    for value in values:
        uri = check_uri(value)
        if uri in out:
            raise ValueError(f"dataset URI {uri!r} is listed twice")
        out[uri] = None
    return tuple(out)
