"""What the recognizers find: entity types, their column classifications, and spans of text."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Entity(StrEnum):
    """A kind of sensitive value. The value is the suffix of its classification tag."""

    EMAIL = "email"
    PHONE = "phone"
    SSN = "ssn"
    CARD = "pan"
    IBAN = "iban"
    IP = "ip"
    DOB = "dob"
    NAME = "name"
    ADDRESS = "address"
    AWS_ACCESS_KEY_ID = "aws_access_key_id"
    AWS_SECRET_KEY = "aws_secret_key"
    GITHUB_TOKEN = "github_token"
    GITLAB_TOKEN = "gitlab_token"
    SLACK_TOKEN = "slack_token"
    BEARER_TOKEN = "bearer_token"
    JWT = "jwt"
    PRIVATE_KEY = "private_key"
    URL_PASSWORD = "url_password"
    PASSWORD = "password"

    @property
    def is_secret(self) -> bool:
        return self in SECRETS

    @property
    def classification(self) -> str:
        """The column classification tag: `pii.email`, `pci.pan`, `secret.jwt`, ..."""
        if self is Entity.CARD:
            return "pci.pan"
        return f"{'secret' if self.is_secret else 'pii'}.{self.value}"


SECRETS = frozenset(
    {
        Entity.AWS_ACCESS_KEY_ID,
        Entity.AWS_SECRET_KEY,
        Entity.GITHUB_TOKEN,
        Entity.GITLAB_TOKEN,
        Entity.SLACK_TOKEN,
        Entity.BEARER_TOKEN,
        Entity.JWT,
        Entity.PRIVATE_KEY,
        Entity.URL_PASSWORD,
        Entity.PASSWORD,
    }
)
PII = frozenset(Entity) - SECRETS

FREE_TEXT = "free_text"
"""The classification of a text column that holds PII inside longer text."""


def entity_for(classification: str) -> Entity | None:
    """The entity of a classification tag (`pii.email/tokenized` -> EMAIL), or None."""
    base = classification.split("/", 1)[0]
    for entity in Entity:
        if entity.classification == base:
            return entity
    return None


class Span(NamedTuple):
    """`text[start:end]` is a value of `entity`, found with `score` (0..1) by `recognizer`.

    A named tuple, not a dataclass: recognizers create one per candidate, hundreds of thousands
    per second, and a tuple is built several times faster.
    """

    start: int
    end: int
    entity: Entity
    score: float
    recognizer: str = ""

    def shifted(self, by: int) -> Span:
        return Span(self.start + by, self.end + by, self.entity, self.score, self.recognizer)
