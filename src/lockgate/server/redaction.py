"""What the server shows of text written by tasks (logs, errors, results, params, event
data) goes through the privacy engine's text redaction first: secrets become `***`, PII its
placeholder (`[EMAIL]`), the same recognizers `lockgate redact` uses on log files."""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockgate.privacy.analyzer import Analyzer


@functools.cache
def _analyzer() -> Analyzer:
    from lockgate.privacy.analyzer import Analyzer

    return Analyzer()


def text(value: str | None) -> str | None:
    """`value` with secrets and PII replaced."""
    if not value:
        return value
    from lockgate.privacy.textredact import redact_text

    return redact_text(_analyzer(), value)


def json_value(value: Any) -> Any:
    """A JSON value with every string in it redacted (keys kept)."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


def stored_json(raw: str | None) -> Any:
    """A JSON text from the store, decoded and redacted (text that is not JSON, redacted)."""
    if raw is None:
        return None
    try:
        return json_value(json.loads(raw))
    except ValueError:
        return text(raw)
