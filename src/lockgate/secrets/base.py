"""The secret backend interface: each backend answers `get(name)` with a value or None."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from lockgate.errors import ConfigError, SecretError

if TYPE_CHECKING:
    from lockgate.config import Project

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-/]{0,199}(#[A-Za-z0-9_.\-]{1,100})?\Z")
NAME_RULE = (
    "secret names are 1-200 letters, digits, '_', '-', '.' or '/', starting with a letter, "
    "optionally followed by #FIELD (a field of a structured secret)"
)


def check_name(name: object) -> str:
    """`name` if it is a valid secret name, else SecretError saying what a name may be."""
    if not isinstance(name, str) or not _NAME.match(name) or "//" in name or name.endswith("/"):
        raise SecretError(f"invalid secret name {name!r}: {NAME_RULE}")
    return name


def split_field(name: str) -> tuple[str, str | None]:
    """`db/main#password` -> (`db/main`, `password`); a name without `#` has no field."""
    path, sep, fld = name.partition("#")
    return path, (fld if sep else None)


class SecretBackend(ABC):
    """One place secrets are kept. Built from its `[secrets.KIND]` table of lockgate.toml.

    `get` returns the value, None when the backend does not hold the secret (the chain then
    asks the next backend), and raises SecretError when the backend cannot answer (unreachable,
    access denied, a value that is not text): an unanswered question never falls through to
    a backend further down the chain, which could hold an older value.
    """

    kind: ClassVar[str]
    settings_keys: ClassVar[frozenset[str]] = frozenset()
    """The keys its `[secrets.KIND]` table may hold (others are a ConfigError)."""

    def __init__(self, settings: Mapping[str, Any], where: str) -> None:
        unknown = sorted(set(settings) - self.settings_keys)
        if unknown:
            allowed = ", ".join(sorted(self.settings_keys)) or "none"
            raise ConfigError(
                f"{where}: unknown setting {unknown[0]!r} in [secrets.{self.kind}] "
                f"(settings: {allowed})"
            )
        self.where = where

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], where: str, project: Project
    ) -> SecretBackend:
        """The backend for a project (`where`: the config file, for messages)."""
        return cls(settings, where)

    @abstractmethod
    def get(self, name: str) -> str | None:
        """The value of secret `name` (already checked by `check_name`), or None."""

    def describe(self) -> str:
        """Where this backend looks, for messages (never a credential)."""
        return self.kind

    def where_is(self, name: str) -> str:
        """Where `name` would be found in this backend, for the not-found message."""
        return self.describe()


def text_value(value: Any, name: str, backend: str) -> str:
    """A backend's raw value as the secret's text; SecretError for anything else or empty."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(
                f"secret {name!r} in {backend} is binary, not UTF-8 text; store it base64-encoded"
            ) from None
    if not isinstance(value, str):
        raise SecretError(
            f"secret {name!r} in {backend} is a {type(value).__name__}, not text; "
            "name one of its fields with NAME#FIELD"
        )
    if not value.strip():
        raise SecretError(
            f"secret {name!r} in {backend} is empty or blank; set a value (an empty secret is "
            "never used in place of a missing one)"
        )
    return value


def field_of(doc: Any, name: str, fld: str | None, backend: str, default: str | None) -> str:
    """The field `fld` (or `default`) of a structured secret `doc` (a mapping)."""
    key = fld or default
    if not isinstance(doc, Mapping):
        raise SecretError(f"secret {name!r} in {backend} is not a set of fields")
    if key is None or key not in doc:
        fields = ", ".join(sorted(map(str, doc))) or "none"
        raise SecretError(
            f"secret {name!r} in {backend} has no field {key!r} (fields: {fields}); "
            "name one with NAME#FIELD"
        )
    return text_value(doc[key], name, backend)
