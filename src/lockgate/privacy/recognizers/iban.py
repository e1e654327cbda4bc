"""IBANs: country code, two check digits and the national account number, written compact
(`DE89370400440532013000`) or in groups of four (`DE89 3704 0044 0532 0130 00`).

The country's exact length and ISO 7064 mod 97 decide (checksums.iban_valid), so no context is
needed: score 0.95. Lower case (`de89...`) is not the IBAN notation and is not matched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from lockgate.privacy.checksums import IBAN_LENGTHS, iban_valid
from lockgate.privacy.entities import Entity, Span

SCORE: Final = 0.95

_CANDIDATE: Final = re.compile(
    # the country code is not glued to a word (checked after it is read, so the engine can skip
    # ahead to capitals)
    r"[A-Z](?<![0-9A-Za-z_][A-Z])[A-Z][0-9][0-9](?:[ \u00a0]?[A-Z0-9]){10,32}"
)
_SPACES: Final = frozenset(" \u00a0")


def _iban_end(text: str, start: int, stop: int, length: int) -> int | None:
    """Where the IBAN of `length` characters starting at `start` ends, or None when the
    candidate does not hold one: spaces only between groups of four, nothing glued after."""
    count = 0
    i = start
    spaced = False
    while i < stop and count < length:
        ch = text[i]
        if ch in _SPACES:
            if count % 4:
                return None
            spaced = True
        else:
            count += 1
        i += 1
    if count < length:
        return None
    if i < len(text) and (text[i].isalnum() or text[i] == "_"):
        return None  # more letters or digits glued on: part of a longer token
    if spaced and i < len(text) and text[i] in _SPACES and length % 4 == 0:
        # a spaced IBAN whose length is a multiple of 4 must not go on with another group
        nxt = text[i + 1 : i + 2]
        if nxt.isdigit():
            return None
    return i


class IbanRecognizer:
    """IBANs with their country's length and a valid mod-97 checksum."""

    name = "iban"
    entities = (Entity.IBAN,)

    def find(self, text: str) -> Iterator[Span]:
        for m in _CANDIDATE.finditer(text):
            start = m.start()
            length = IBAN_LENGTHS.get(text[start : start + 2])
            if length is None:
                continue
            end = _iban_end(text, start, m.end(), length)
            if end is None:
                continue
            compact = text[start:end].replace(" ", "").replace("\u00a0", "")
            if iban_valid(compact):
                yield Span(start, end, Entity.IBAN, SCORE, self.name)


RECOGNIZERS: Final = (IbanRecognizer(),)
