"""IBANs: country code, two check digits and the national account number, written compact
(`DE89370400440532013000`) or in groups of four (`DE89 3704 0044 0532 0130 00`).

The country's exact length and ISO 7064 mod 97 decide (checksums.iban_valid), so no context is
needed: score 0.95. Lower case (`de89...`) is not the IBAN notation and is not matched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from string import ascii_lowercase, ascii_uppercase, digits
from typing import Final

from lockgate.privacy.checksums import IBAN_LENGTHS, iban_valid
from lockgate.privacy.entities import Entity, Span

SCORE: Final = 0.95

_CANDIDATE: Final = re.compile(
    # matched at the starts `_candidate_starts` finds; the country code is not glued to a word
    r"[A-Z](?<![0-9A-Za-z_][A-Z])[A-Z][0-9][0-9](?:[ \u00a0]?[A-Z0-9]){10,32}"
)
_SPACES: Final = frozenset(" \u00a0")


def _shape_table() -> bytes:
    table = bytearray(b" " * 256)
    for chars, shape in ((ascii_uppercase, "A"), (digits, "0"), (ascii_lowercase + "_", "a")):
        for ch in chars:
            table[ord(ch)] = ord(shape)
    return bytes(table)


_SHAPE: Final = _shape_table()
"""A translation table: capital -> "A", digit -> "0", other word character -> "a", anything
else -> " ". `_CANDIDATE` starts only where the shape of the text reads " AA00" (or "AA00" at
its start), and bytes.find looks for that in C far faster than the regex engine tries every
capital letter."""


def _candidate_starts(text: str) -> Iterator[int]:
    """The positions where a candidate may start, in order."""
    # latin-1 with "?" for other characters keeps one byte per character, so offsets agree
    shape = text.encode("latin-1", "replace").translate(_SHAPE)
    if shape.startswith(b"AA00"):
        yield 0
    at = shape.find(b" AA00")
    while at >= 0:
        yield at + 1
        at = shape.find(b" AA00", at + 2)


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
        done = 0
        for start in _candidate_starts(text):
            if start < done:
                continue  # inside the previous candidate
            m = _CANDIDATE.match(text, start)
            if m is None:
                continue
            done = m.end()
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
