"""Checks shared by the backend tests: the one-line error of a read, and whether values are
redacted now."""

from __future__ import annotations

import pytest

from lockgate.errors import SecretError
from lockgate.secrets import get_secret
from lockgate.secrets.redaction import redact


def error_of(name: str) -> str:
    """The message of the SecretError reading `name` raises (one line)."""
    with pytest.raises(SecretError) as caught:
        get_secret(name)
    message = str(caught.value)
    assert "\n" not in message
    return message


def assert_redacted(*values: str) -> None:
    for value in values:
        assert value not in redact(f"x {value} y")


def assert_not_redacted(*values: str) -> None:
    for value in values:
        assert value in redact(f"x {value} y")
