"""Context words: the words just before (or after) a candidate value on the same line."""

from __future__ import annotations

import re
from collections.abc import Iterable

WINDOW = 48
"""Characters looked at on each side of a candidate."""


def words_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """A case-insensitive pattern matching any of `words` as whole words (phrases allowed)."""
    alternatives = sorted({re.escape(w.lower()) for w in words}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def before(text: str, start: int, window: int = WINDOW) -> str:
    """Up to `window` characters before `start`, cut at the previous line break."""
    lo = max(0, start - window)
    cut = text.rfind("\n", lo, start)
    return text[(cut + 1 if cut >= 0 else lo) : start]


def after(text: str, end: int, window: int = WINDOW) -> str:
    """Up to `window` characters after `end`, cut at the next line break."""
    hi = min(len(text), end + window)
    cut = text.find("\n", end, hi)
    return text[end : cut if cut >= 0 else hi]


def near(text: str, start: int, end: int, pattern: re.Pattern[str], window: int = WINDOW) -> bool:
    """Whether `pattern` occurs within `window` characters of the span, on its line."""
    return bool(
        pattern.search(before(text, start, window)) or pattern.search(after(text, end, window))
    )
