"""Redaction of secrets in everything lockgate writes: task logs, results, errors, events,
notifications.

Two passes over a text. First every secret value read in this process (`register`, called by
the secret chain on each read) in each of the forms it may take on its way out: as is, each
line of a multi-line value, JSON-escaped (once and twice, solidus escaped or not), Python's
repr/ascii, HTML-escaped, shell-quoted, URL-encoded, hex, and base64 (standard and URL-safe,
padded or not, wrapped at 76 columns, and the part of the encoding that is the same wherever
the value sits in a longer encoded text). Then text shaped like a secret (AWS keys, GitHub,
GitLab and Slack tokens, JWTs, private key blocks, passwords in URLs and `password=` pairs)
through the privacy engine's secret recognizers, so secrets lockgate never read are caught too.
Both become `***`.

Values shorter than `MIN_LENGTH` characters are not redacted by value (they would blank out
ordinary words); the format pass still applies.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
import shlex
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from lockgate.privacy.analyzer import Analyzer

MASK = "***"
MIN_LENGTH = 5
MIN_FRAGMENT = 8
"""Shortest base64 fragment of a value redacted (shorter ones are common in encoded data)."""
MAX_VALUES = 10_000
_PERCENT = re.compile(r"%[0-9A-F]{2}")
"""Values kept per process; past it the oldest are forgotten (a long-running scheduler)."""


def variants(value: str) -> set[str]:
    """The forms `value` may take in text written by a task, each at least `MIN_LENGTH` long."""
    parts = [value]
    if "\n" in value or "\r" in value:
        parts += [line.strip() for line in value.splitlines()]
    out: set[str] = set()
    for part in parts:
        if len(part) < MIN_LENGTH:
            continue
        raw = part.encode("utf-8", "surrogatepass")
        escaped = json.dumps(part)[1:-1]
        quoted = quote(part, safe="")
        out.update(
            (
                part,
                escaped,
                escaped.replace("/", "\\/"),  # JSON writers that escape the solidus
                json.dumps(escaped)[1:-1],
                json.dumps(part, ensure_ascii=False)[1:-1],
                repr(part)[1:-1],  # Python's repr/ascii, in messages like f"{value!r}"
                ascii(part)[1:-1],
                html.escape(part),  # an HTML page or report
                shlex.quote(part),  # a command line echoed by a tool
                quoted,
                _PERCENT.sub(lambda m: m.group().lower(), quoted),
                quote(part),
                quote_plus(part, safe=""),
                raw.hex(),
                raw.hex().upper(),
            )
        )
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            whole = encode(raw).decode()
            out.update((whole, whole.rstrip("=")))
            for shift in range(3):  # the value at any offset inside a longer encoded text
                text = encode(b"\0" * shift + raw).decode()
                start, end = -(-8 * shift // 6), 8 * (shift + len(raw)) // 6
                if end - start >= MIN_FRAGMENT:
                    out.add(text[start:end])
            # wrapped at 76 columns (MIME, `base64`): each full line of the encoding alone
            if len(whole) > 76:
                out.update(whole[i : i + 76] for i in range(0, len(whole), 76))
    return {v for v in out if len(v) >= MIN_LENGTH}


class Redactor:
    """Known secret values and their variants, matched as one automaton (Aho-Corasick)."""

    def __init__(self) -> None:
        self._values: dict[str, None] = {}
        self._variants: dict[str, int] = {}
        self._automaton: Any = None
        self._ready: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def register(self, value: str) -> None:
        """Redact `value` (and its variants) from now on, in this process: when this returns,
        every thread's next redaction includes it."""
        if not isinstance(value, str) or len(value) < MIN_LENGTH or value in self._ready:
            return
        with self._lock:
            if value in self._values:
                return
            self._values[value] = None
            if len(self._values) > MAX_VALUES:
                del self._values[next(iter(self._values))]
                self._variants = {}
                for known in self._values:
                    self._add(known)
            else:
                self._add(value)
            self._automaton = _automaton(self._variants)
            self._ready = frozenset(self._values)  # after the automaton: the fast path is safe

    def register_all(self, values: Iterable[str]) -> None:
        for value in values:
            self.register(value)

    def _add(self, value: str) -> None:
        for form in variants(value):
            self._variants[form] = len(form)

    @property
    def longest(self) -> int:
        """Length of the longest form registered (0 when none)."""
        return max(self._variants.values(), default=0)

    def safe_cut(self, text: str, at: int) -> int:
        """`at`, or an earlier position, such that no registered form and no secret-shaped
        span of `text` crosses it (where to cut an over-long line before writing its start)."""
        spans: list[tuple[int, int]] = []
        automaton = self._automaton
        if automaton is not None:
            spans += [(end - length + 1, end + 1) for end, length in automaton.iter_long(text)]
        spans += [(s.start, s.end) for s in _formats().analyze(text)]
        moved = True
        while moved:
            moved = False
            for start, end in spans:
                if start < at < end:
                    at, moved = start, True
        return at

    def known(self, text: str) -> str:
        """`text` with every registered value (in any of its forms) replaced by `***`."""
        automaton = self._automaton
        if automaton is None or not text:
            return text
        parts: list[str] = []
        at = 0
        for end, length in automaton.iter_long(text):
            start = end - length + 1
            parts.append(text[at:start])
            # a multi-line value leaves one mask per line: line numbers still match
            parts.append("\n".join([MASK] * (text.count("\n", start, end + 1) + 1)))
            at = end + 1
        if not parts:
            return text
        parts.append(text[at:])
        return "".join(parts)

    def redact(self, text: str) -> str:
        """`text` without registered values or text shaped like a secret."""
        if not text:
            return text
        return _mask_formats(self.known(text))

    def redact_json(self, value: Any) -> Any:
        """A JSON value with every string in it (keys too) redacted."""
        return _walk(value, self.redact)

    def known_json(self, value: Any) -> Any:
        """A JSON value with the registered values replaced in every string (keys too): the
        cheap pass, for data that was redacted for formats where it was made."""
        return value if self._automaton is None else _walk(value, self.known)

    def forget(self) -> None:
        """Forget every value (tests)."""
        with self._lock:
            self._values.clear()
            self._variants.clear()
            self._automaton = None
            self._ready = frozenset()


def _walk(value: Any, fix: Any) -> Any:
    if isinstance(value, str):
        return fix(value)
    if isinstance(value, list | tuple):
        return [_walk(v, fix) for v in value]
    if isinstance(value, dict):
        return {fix(str(k)): _walk(v, fix) for k, v in value.items()}
    return value


def _automaton(forms: dict[str, int]) -> Any:
    import ahocorasick

    automaton = ahocorasick.Automaton()
    for form, length in forms.items():
        automaton.add_word(form, length)
    automaton.make_automaton()
    return automaton


@functools.cache
def _formats() -> Analyzer:
    """The privacy engine's secret recognizers alone (its other modules are not loaded: this
    runs in every process that writes a task's log, `lockgate run` included)."""
    from lockgate.privacy.analyzer import Analyzer
    from lockgate.privacy.entities import SECRETS
    from lockgate.privacy.recognizers.secrets import RECOGNIZERS

    recognizers: Any = RECOGNIZERS  # each satisfies the Recognizer protocol
    return Analyzer(SECRETS, recognizers=recognizers)


def _mask_formats(text: str) -> str:
    """`text` with every secret-shaped span replaced; a span over several lines (a private key
    block) leaves one mask per line, line endings kept."""
    spans = _formats().analyze(text)
    if not spans:
        return text
    parts: list[str] = []
    at = 0
    for span in spans:
        parts.append(text[at : span.start])
        pieces = text[span.start : span.end].split("\n")
        parts.extend(f"{MASK}{chr(13) if p.endswith(chr(13)) else ''}\n" for p in pieces[:-1])
        parts.append(MASK)
        at = span.end
    parts.append(text[at:])
    return "".join(parts)


REDACTOR = Redactor()
"""The process's redactor: every secret read in this process is registered here."""
register = REDACTOR.register
register_all = REDACTOR.register_all
redact = REDACTOR.redact
redact_json = REDACTOR.redact_json
known_json = REDACTOR.known_json


def strings(value: Any, *, keys: bool = False) -> Iterator[str]:
    """Every string in a JSON value, nested ones too (and the keys of its objects, with
    `keys`)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            if keys:
                pending.extend(str(k) for k in item)
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)


def register_strings(value: Any) -> None:
    """Redact from now on every string in a JSON value, nested ones too (a structured
    secret's fields, whichever was asked for); keys are not."""
    for text in strings(value):
        register(text)


def secret_kind(text: str) -> str | None:
    """The kind of the first secret-shaped text in `text` (`github_token`, `url_password`,
    ...), or `"secret"` for a value read in this process; None when there is none."""
    if REDACTOR.known(text) != text:
        return "secret"
    spans = _formats().analyze(text)
    return spans[0].entity.value if spans else None


def redact_json_text(text: str | None) -> str | None:
    """A JSON text with every string in it redacted (text that is not JSON: as text)."""
    if text is None:
        return None
    try:
        return json.dumps(redact_json(json.loads(text)), separators=(",", ":"))
    except ValueError:
        return redact(text)
