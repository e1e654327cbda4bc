"""The recognizer protocol: find spans of one or more entity types in text."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from lockgate.privacy.entities import Entity, Span


class Recognizer(Protocol):
    """Finds values of its entities in `text` and returns their spans.

    `text` is usually many rows joined with "\\n" (the analyzer runs each recognizer once per
    batch, so regexes scan one long string in C). A recognizer must therefore not let a match or
    its context cross a "\\n" unless its entity is multi-line by nature (private key blocks);
    the analyzer drops spans that cross a row boundary. Scores: 0.85-1.0 when a checksum or
    validator passed or context confirms; lower when only the shape matches. Look-alikes that
    fail a validator are not returned at all.
    """

    name: str
    entities: tuple[Entity, ...]

    def find(self, text: str) -> Iterable[Span]: ...
