"""Waivers as people manage them (`lockgate policy waive/waivers`, the server's API): how long
one may last, when it ends (a date or a duration), the dataset or pattern it names as the
catalogue spells it, and its status as listed (FORGED when its MAC does not match)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from lockgate.errors import ConfigError

MAX_WAIVER_DAYS = 366
"""A waiver lasts at most a year: exceptions are reviewed, not forgotten."""
Status = Literal["active", "expired", "revoked", "FORGED"]


def status(row: Mapping[str, Any], now: float) -> Status:
    """A waiver's status; FORGED first: a row not signed with the project's key is ignored by
    the gate whatever it says."""
    if not row.get("verified"):
        return "FORGED"
    if row.get("revoked_at"):
        return "revoked"
    return "expired" if float(row["expires_at"]) <= now else "active"


def expiry(text: str, now: float | None = None) -> float:
    """When a waiver ends: a duration from now (30d), a date (2026-12-31) or an ISO date-time
    (UTC without an offset), at most `MAX_WAIVER_DAYS` ahead; ConfigError otherwise."""
    from lockgate.config import parse_duration

    moment = time.time() if now is None else now
    text = text.strip()
    try:
        until = moment + parse_duration(text)
    except ConfigError:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                f"--expires {text[:40]!r} is neither a date (2026-12-31) nor a duration (30d)"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        until = when.timestamp()
    if until - moment > MAX_WAIVER_DAYS * 86400:
        raise ConfigError(
            f"a waiver lasts at most {MAX_WAIVER_DAYS} days; give an earlier --expires"
        )
    return until


def dataset_pattern(dataset: str, root: Path) -> str:
    """The dataset (path relative to the project, URI or pattern) a waiver names, spelt as
    the catalogue spells datasets."""
    from lockgate.governance.zones import root_pattern
    from lockgate.io.catalogue import key

    pattern = dataset if any(c in dataset for c in "*?[") else key(dataset, root)
    return root_pattern(pattern, root)
