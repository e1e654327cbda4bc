"""Context words: the words just before (or after) a candidate value on the same line."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

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


def cased(words: Iterable[str]) -> set[str]:
    """Each word in lower case, Capitalised, Title Case, Title Case but for short words ("Date
    of Birth") and UPPER case."""
    out: set[str] = set()
    for w in words:
        titled = " ".join(p.capitalize() if len(p) > 3 else p for p in w.split(" "))
        out.update((w, w[:1].upper() + w[1:], w.title(), titled, w.upper()))
    return out


def last_words(text: str, start: int, count: int, window: int = 48) -> str:
    """The last `count` whole words before `start` on its line that are in the same sentence: a
    word ending in "!", "?", ";" or in "." (unless an abbreviation of up to three letters, such
    as "tel." or "no.") closes the sentence before."""
    lo = max(text.rfind("\n", 0, start) + 1, start - window)
    words = text[lo:start].split()
    if lo > 0 and text[lo - 1] not in " \t\n" and words and not text[lo].isspace():
        words = words[1:]  # cut in the middle of a word
    words = words[-count:]
    for i in range(len(words) - 1, -1, -1):
        w = words[i]
        if w[-1] in "!?;" or (w[-1] == "." and len(w) > 4):
            return " ".join(words[i + 1 :])
    return " ".join(words)


class Labels:
    """Words that, among the last few before a number in its sentence, say what it is: a
    positive word (its entity: "card", "tel") or a negative one (a look-alike's: "order",
    "invoice"). Only the closest counts; a word further back belongs to something else ("...
    his account. 4111 ...")."""

    def __init__(self, positive: Iterable[str], negative: Iterable[str], words: int = 3) -> None:
        positive = frozenset(positive)
        alternatives = sorted({*positive, *negative}, key=len, reverse=True)
        self._pattern = re.compile(
            r"(?<!\w)(?:" + "|".join(re.escape(w) for w in alternatives) + r")(?!\w)"
        )
        self._positive = positive
        self._words = words

    def window(self, text: str, start: int) -> str:
        """The words before `start` that may label it, lower-cased."""
        return last_words(text, start, self._words).lower()

    def closest(self, window: str) -> bool | None:
        """True when the closest label in `window` is positive, False when negative, None for
        no label."""
        last = None
        for match in self._pattern.finditer(window):
            last = match
        return None if last is None else last.group() in self._positive


def trie_pattern(words: Iterable[str]) -> str:
    """A regex matching any of `words` (longest first), factored by common prefixes.

    Scanning a long text for many words, the regex engine tries every alternative at every
    position whose character could start one; factored, it tries one branch per character.
    Case-sensitive on purpose: a case-insensitive alternation is ten times slower, so callers
    list the casings they want (see `cased`).
    """
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            return "(?:" + body + ")?"
        return body

    return emit(root)
