"""Email addresses: RFC 5322-ish local part, internationalised (unicode) domains, plus-addressing.

The scan anchors on "@" (a literal, so the regex engine skips ahead in C) and reads the local
part backwards from there. Not emails: hosts without a dot (`user@localhost`), image names with a
scale suffix or a file extension as "top-level domain" (`icon@2x.png`), scp-style git remotes
(`git@github.com:org/repo`: a login on a host, not a mailbox) and the user part of a URL
(`ssh://git@host/...`, `https://user:password@host`: the password recognizer owns those).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from lockgate.privacy.entities import Entity, Span

SCORE: Final = 0.9

# "@" then labels of letters/digits/hyphens (any script) and a top-level domain of letters
# (any script) or punycode
_AT_DOMAIN: Final = re.compile(
    r"@((?:[^\W_](?:[^\W_]|-)*\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{2,59}))(?![\w-]|\.[^\W_])"
)
_LOCAL_REVERSED: Final = re.compile(r"[\w.%+'-]+")
_MAX_LOCAL: Final = 64

_NOT_TLDS: Final = frozenset(
    (
        "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif", "tiff", "heic", "avif",
        "psd", "css", "js", "mjs", "cjs", "jsx", "tsx", "json", "xml", "html", "htm", "txt", "csv",
        "tsv", "yml", "yaml", "toml", "ini", "cfg", "conf", "lock", "woff", "woff2", "ttf", "otf",
        "eot", "scss", "less", "php", "java", "kt", "swift", "cpp", "hpp", "jar", "war", "whl",
        "gem", "egg", "dll", "exe", "bin", "dmg", "iso", "tgz", "bz2", "xz"
    )
)  # fmt: skip
"""File extensions that are not top-level domains: `name@2x.png`, `lib@1.2.js`."""

_SCALE_SUFFIX: Final = re.compile(r"\d+(?:\.\d+)?x\.")
_URL_AUTHORITY: Final = re.compile(r"[A-Za-z][\w+.-]*://[^\s/@]*\Z")


def _local_start(text: str, at: int) -> int:
    """Where the local part ending at `at` starts (== `at` when there is none): read backwards,
    by matching the reversed characters before the "@"."""
    lo = at - _MAX_LOCAL if at > _MAX_LOCAL else 0
    m = _LOCAL_REVERSED.match(text[lo:at][::-1])
    i = at - m.end() if m else at
    while i < at and text[i] in ".-'":  # not a dot, hyphen or opening quote first
        i += 1
    return i


class EmailRecognizer:
    """Email addresses, shape only (the shape is distinctive enough to score high)."""

    name = "email"
    entities = (Entity.EMAIL,)

    def find(self, text: str) -> Iterator[Span]:
        for m in _AT_DOMAIN.finditer(text):
            at = m.start()
            start = _local_start(text, at)
            if start == at or text[at - 1] == "." or ".." in text[start:at]:
                continue
            if start > 0 and not _starts_clean(text, start):
                continue
            domain = m.group(1)
            tld = domain.rsplit(".", 1)[1].lower()
            if tld in _NOT_TLDS or _SCALE_SUFFIX.match(domain):
                continue
            end = m.end()
            if text.startswith(":", end) and end + 1 < len(text) and _path_char(text[end + 1]):
                continue  # git@github.com:org/repo
            yield Span(start, end, Entity.EMAIL, SCORE, self.name)


def _starts_clean(text: str, start: int) -> bool:
    """Whether the address at `start` is not the user part of a URL (`scheme://user@host`)."""
    prev = text[start - 1]
    if prev in ("/", ":"):
        line_start = text.rfind("\n", 0, start) + 1
        lead = text[max(line_start, start - 256) : start]
        if prev == "/" and lead.endswith("//"):
            return False
        if prev == ":" and _URL_AUTHORITY.search(lead[:-1] if lead else lead):
            return False
    return True


def _path_char(ch: str) -> bool:
    return ch.isalnum() or ch in "~./_-"


RECOGNIZERS: Final = (EmailRecognizer(),)
