"""Durations as people write them: `90`, `30s`, `5m`, `1h30m`, `2d`, or a `timedelta`."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")


def parse_duration(value: Any) -> float:
    """Seconds in `value`; ValueError saying the accepted forms otherwise."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, 5m or 1h30m, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            return float(text)
        except ValueError:
            pass
        pos, total = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        else:
            if pos == len(text) and pos > 0:
                return total
    raise ValueError(f"expected a duration such as 30s, 5m or 1h30m, got {value!r}")


def format_duration(seconds: float) -> str:
    """The shortest exact text for `seconds` (`5400` -> `1h30m`)."""
    if seconds <= 0 or seconds != int(seconds):
        return f"{seconds:g}s"
    rest, out = int(seconds), []
    for unit in ("d", "h", "m", "s"):
        size = int(_UNITS[unit])
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out)
