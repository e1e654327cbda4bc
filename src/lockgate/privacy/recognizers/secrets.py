"""Secrets: cloud and SaaS credentials, tokens, private keys and passwords, one recognizer each.

Every scan anchors on a literal (`AKIA`, `ghp_`, `glpat-`, `xox`, `eyJ`, `-----BEGIN`, `://`,
`earer`) or a rare character (the `=` or `:` after a key name), so the regex engine skips ahead
in C: log redaction runs these on every line, and an alternation of key names would be tried at
every letter. Spans cover the secret only: the value of `password=...`,
the password of `scheme://user:password@host`, the token after `Bearer`. Secrets must not slip
through, so the explicit-key forms report any non-placeholder value.

Scores: 0.95 for the distinctive shapes (AWS keys, GitHub/GitLab/Slack tokens, JWTs); then, for
the same span read by a more general rule, 0.93 for a URL's password, 0.92 for a token after
`Bearer` and 0.9 for a `key=value` pair: the analyzer keeps the higher score, so the token in
`Authorization: Bearer eyJ...` is a JWT and in `https://oauth2:glpat-...@host` a GitLab token.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import re
from collections.abc import Iterable, Iterator
from typing import Final

from lockgate.privacy.entities import Entity, Span
from lockgate.privacy.recognizers.context import cased, trie_pattern

DISTINCT: Final = 0.95
URL_PASSWORD: Final = 0.93
BEARER: Final = 0.92
PAIR: Final = 0.9

_ALNUM: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_TOKEN_CHARS: Final = _ALNUM | {"_", "-"}


def _glued(text: str, start: int) -> bool:
    """Whether the character before `start` continues a token (so a match there is a fragment)."""
    return start > 0 and text[start - 1] in _TOKEN_CHARS


def _merged(patterns: Iterable[re.Pattern[str]], text: str) -> Iterator[re.Match[str]]:
    """The matches of several patterns in text order. Several literal-prefixed patterns scan
    faster than one alternation of them, which the engine tries at every candidate letter."""
    return heapq.merge(*(p.finditer(text) for p in patterns), key=lambda m: m.start())


def _line_end(text: str, pos: int, limit: int) -> int:
    cut = text.find("\n", pos, pos + limit)
    return cut if cut >= 0 else min(len(text), pos + limit)


class _PrefixedToken:
    """Tokens recognised by a distinctive prefix and their alphabet (`ghp_...`, `glpat-...`)."""

    def __init__(self, name: str, entity: Entity, pattern: str, score: float = DISTINCT) -> None:
        self.name = name
        self.entities = (entity,)
        self._entity = entity
        self._pattern = re.compile(pattern)
        self._score = score

    def find(self, text: str) -> Iterator[Span]:
        for m in self._pattern.finditer(text):
            start = m.start()
            if not _glued(text, start):
                end = m.end()
                while text[end - 1] == ".":  # a sentence's full stop
                    end -= 1
                yield Span(start, end, self._entity, self._score, self.name)


AWS_ACCESS_KEY_ID: Final = _PrefixedToken(
    "aws_access_key_id",
    Entity.AWS_ACCESS_KEY_ID,
    r"A(?:KI|SI)A[A-Z0-9]{16}(?![A-Za-z0-9])",
)
GITHUB_TOKEN: Final = _PrefixedToken(
    "github_token",
    Entity.GITHUB_TOKEN,
    r"g(?:h[pousr]_[A-Za-z0-9]{20,251}|ithub_pat_[A-Za-z0-9_]{22,251})(?![A-Za-z0-9_])",
)
GITLAB_TOKEN: Final = _PrefixedToken(
    "gitlab_token",
    Entity.GITLAB_TOKEN,
    r"gl(?:pat|ptt|dt|rt|cbt|imt|oas|soat|ffct|ft|agent|wt|sst)-[A-Za-z0-9_.\-]{20,255}"
    r"(?![A-Za-z0-9_.\-])",
)
SLACK_TOKEN: Final = _PrefixedToken(
    "slack_token",
    Entity.SLACK_TOKEN,
    r"x(?:ox[abposre](?:\.xox[abposre])?|app)-[A-Za-z0-9\-]{10,255}(?![A-Za-z0-9\-])",
)
SLACK_WEBHOOK: Final = _PrefixedToken(
    "slack_webhook",
    Entity.SLACK_TOKEN,
    r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/\-]{10,255}",
)


class AwsSecretKeyRecognizer:
    """AWS secret access keys: 40 base64 characters, only after AWS context (a key named like
    `aws_secret_access_key`/`SecretAccessKey`/`secret`, or right after an access key id); a
    random 40-character string alone is not one."""

    name = "aws_secret_key"
    entities = (Entity.AWS_SECRET_KEY,)

    _anchors: Final = (
        re.compile("ecret"),  # secret, Secret, aws_secret_access_key, SecretAccessKey
        re.compile("ECRET"),
        re.compile(r"A(?:KI|SI)A[A-Z0-9]{16}"),  # an access key id, its secret often follows
    )
    _value: Final = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
    WINDOW: Final = 64

    def find(self, text: str) -> Iterator[Span]:
        done = -1
        for anchor in _merged(self._anchors, text):
            lo = max(anchor.end(), done)
            m = self._value.search(text, lo, _line_end(text, lo, self.WINDOW + 40))
            if m is None:
                continue
            value = m.group()
            if value.lower() == value or value.upper() == value:
                continue  # base64 of random bytes mixes cases
            done = m.end()
            yield Span(m.start(), m.end(), Entity.AWS_SECRET_KEY, DISTINCT, self.name)


_TOKEN_TYPE: Final = re.compile(r"type[\"']?[ \t]*[:=][ \t]*[\"']?\Z")


class BearerTokenRecognizer:
    """The token after `Bearer` (`Authorization: Bearer xxx`, `bearer xxx`)."""

    name = "bearer_token"
    entities = (Entity.BEARER_TOKEN,)

    _patterns: Final = tuple(
        re.compile(tail + r"[ \t]+([A-Za-z0-9\-._~+/]{6,}=*)") for tail in ("earer", "EARER")
    )

    def find(self, text: str) -> Iterator[Span]:
        for m in _merged(self._patterns, text):
            b = m.start() - 1
            if b < 0 or text[b] not in "Bb" or (b > 0 and text[b - 1].isalnum()):
                continue
            if _TOKEN_TYPE.search(text, max(0, b - 16), b):
                continue  # `token_type=bearer HTTP/1.1`: the name of the scheme, not a header
            token = m.group(1)
            if token.isalpha() and (token.islower() or token.istitle()):
                continue  # prose: "a bearer token", "Bearer Authentication"
            start, end = m.span(1)
            while text[end - 1] in ".":
                end -= 1
            yield Span(start, end, Entity.BEARER_TOKEN, BEARER, self.name)


class JwtRecognizer:
    """JSON Web Tokens: three base64url parts, the first a JSON header naming its `alg`."""

    name = "jwt"
    entities = (Entity.JWT,)

    _pattern: Final = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")

    def find(self, text: str) -> Iterator[Span]:
        for m in self._pattern.finditer(text):
            if _glued(text, m.start()):
                continue
            header = m.group().split(".", 1)[0]
            if _jwt_header(header):
                yield Span(m.start(), m.end(), Entity.JWT, DISTINCT, self.name)


def _jwt_header(part: str) -> bool:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


class PrivateKeyRecognizer:
    """PEM/OpenSSH/PGP private key blocks, BEGIN to END: the one entity spanning lines.

    Besides the whole block (0.99) it reports each of the block's lines (0.9): the analyzer
    keeps the block when a text holds all of it, and the lines when each line is its own row
    (log redaction), where a span crossing rows is dropped. A block cut off before its END
    line still has its BEGIN line and the base64 lines after it reported."""

    name = "private_key"
    entities = (Entity.PRIVATE_KEY,)

    _begin: Final = re.compile(r"-----BEGIN ([A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?)-----")
    _body_line: Final = re.compile(
        r"[ \t]*(?:[A-Za-z0-9+/=]{16,}|(?:Proc-Type|DEK-Info|Comment|Version|Hash): .*)[ \t\r]*\Z"
    )

    def find(self, text: str) -> Iterator[Span]:
        done = -1
        for begin in self._begin.finditer(text):
            if begin.start() < done:
                continue
            footer = f"-----END {begin.group(1)}-----"
            end_at = text.find(footer, begin.end())
            if end_at >= 0:
                end = end_at + len(footer)
                yield Span(begin.start(), end, Entity.PRIVATE_KEY, 0.99, self.name)
            else:
                end = self._unterminated_end(text, begin.end())
            done = end
            yield from self._lines(text, begin.start(), end)

    def _unterminated_end(self, text: str, pos: int) -> int:
        """The end of a block without its END line: the BEGIN line and base64 lines after it."""
        end = _line_end(text, pos, len(text))
        while end < len(text):
            nxt = _line_end(text, end + 1, len(text))
            if not self._body_line.match(text[end + 1 : nxt]):
                break
            end = nxt
        return end

    def _lines(self, text: str, start: int, end: int) -> Iterator[Span]:
        pos = start
        while pos < end:
            cut = text.find("\n", pos, end)
            stop = end if cut < 0 else cut
            lo, hi = pos, stop
            while lo < hi and text[lo] in " \t\r":
                lo += 1
            while hi > lo and text[hi - 1] in " \t\r":
                hi -= 1
            if hi > lo:
                yield Span(lo, hi, Entity.PRIVATE_KEY, 0.9, self.name)
            pos = stop + 1


def _placeholder(value: str) -> bool:
    """Whether a password value is a placeholder, not a secret: `***`, `xxxx`, `<password>`,
    `${DB_PASSWORD}`, `{{ secret }}`, `%s`, `?`, `null`, `[REDACTED]`..."""
    v = value.strip()
    if not v:
        return True
    if len(v) <= 9 and v.lower() in _NOT_SECRETS:
        return True
    first, last = v[0], v[-1]
    if first in _PLACEHOLDER_FIRST:
        if len(set(v)) == 1 and first in "*xX•.?#-_":
            return True
        if (first, last) in _BRACKETS and len(v) > 2:
            return True
        if v.startswith(("${", "$(", "{{", "%(", "%{")) or _ENV_REF.fullmatch(v):
            return True
    return len(v) <= 2 and v.isdigit()


_PLACEHOLDER_FIRST: Final = frozenset("*xX•.?#-_<[{($%:")
_BRACKETS: Final = frozenset({("<", ">"), ("[", "]"), ("{", "}"), ("(", ")")})
_NOT_SECRETS: Final = frozenset(
    (
        "null", "none", "nil", "true", "false", "undefined", "required", "optional", "empty",
        "redacted", "masked", "hidden", "%s", "?",
    )
)  # fmt: skip
_AUTH_SCHEMES: Final = frozenset({"basic", "bearer", "token", "digest", "negotiate", "apikey"})
_ENV_REF: Final = re.compile(r"\$[A-Z_][A-Z0-9_]*|:[a-z_]+|%[sd]")


class UrlPasswordRecognizer:
    """The password in a URL's user information: `scheme://user:PASSWORD@host`."""

    name = "url_password"
    entities = (Entity.URL_PASSWORD,)

    # the password runs to the last "@" before the path: passwords may hold "@", ":" and "#"
    _pattern: Final = re.compile(r"://[^\s:/?#@\"'<>]*:([^\s/\"'<>]+)@[\w\[]")

    def find(self, text: str) -> Iterator[Span]:
        for m in self._pattern.finditer(text):
            if not _placeholder(m.group(1)):
                start, end = m.span(1)
                yield Span(start, end, Entity.URL_PASSWORD, URL_PASSWORD, self.name)


_KEYS = (
    "password", "passwd", "passphrase", "passcode", "passwort", "pass", "pwd", "pw", "secret",
    "token", "apikey", "api_key", "api-key", "access_key", "accesskey", "access-key",
    "secret_key", "secretkey", "private_key", "privatekey", "credentials", "credential",
    "authorization", "kennwort", "mot de passe", "motdepasse", "contraseña", "contrasena",
    "wachtwoord", "mdp",
)  # fmt: skip
"""Key names whose value is a secret, matched at the end of a longer key too (`db_password`,
`client_secret`, `access_token`, `dbPassword`)."""
_SHORT_KEYS: Final = frozenset({"pass", "pwd", "pw", "token", "mdp"})
"""Keys that also end ordinary words (`compass`, `bypass`): they count only as a whole key or
after `_`, `-`, `.` or a camelCase boundary."""
_PWD: Final = frozenset({"pwd"})
"""The shell's working directory (`PWD=/home/bob`), not a password, when its value is a path."""

_ENDINGS = trie_pattern({k[-2:] for k in cased(_KEYS)})
_LAST_LETTERS = "".join(sorted({re.escape(k[-1]) for k in cased(_KEYS)}))


def _pair_pattern(separator: str) -> re.Pattern[str]:
    """A separator (`=`, `:`, `:=`, `=>`) right after what may be a key name: the separator is
    the literal the engine skips to; lookbehinds check that a key name's last two letters come
    right before it, or before its closing quote and a space. The first lookbehind, one character
    class, turns most separators away (`10:42`, `"ts":`) before the longer ones run."""
    sep = re.escape(separator)
    return re.compile(
        rf"{sep}(?<=[{_LAST_LETTERS}\"' ]{sep})"
        rf"(?:(?<=(?:{_ENDINGS}){sep})|(?<=(?:{_ENDINGS})[\"' ]{sep})"
        rf"|(?<=(?:{_ENDINGS})[\"'] {sep}))(?<!::)[=>]?[ \t]*"
    )


_PAIRS: Final = (_pair_pattern("="), _pair_pattern(":"))
"""`key=`, `key:`; the key is then read backwards and checked against the list."""
_KEYS_BY_ENDING: Final[dict[str, tuple[str, ...]]] = {}
for _key in sorted(_KEYS, key=len, reverse=True):
    _KEYS_BY_ENDING[_key[-2:]] = (*_KEYS_BY_ENDING.get(_key[-2:], ()), _key)
"""Key names by their last two letters, longest first: which keys a tail may end."""


def _key_ending_at(text: str, end: int) -> tuple[int, str] | None:
    """(start, lower-case name) of the key name from `_KEYS` that ends at `end`, or None."""
    lowered = text[max(0, end - 13) : end].lower()
    for key in _KEYS_BY_ENDING.get(lowered[-2:], ()):
        if lowered.endswith(key):
            return end - len(key), key
    return None


_CLI_OPTION: Final = re.compile(r"--([A-Za-z][\w-]*) (?=[^\s-])")


def _unbalanced_close(text: str, key_start: int, start: int, end: int) -> int:
    """`end` less a closing bracket that closes one opened before the key: `(password=abc)`."""
    close = text[end - 1]
    open_ = {"}": "{", "]": "[", ")": "("}[close]
    opened = text[text.rfind("\n", 0, key_start) + 1 : key_start]
    if opened.count(open_) > opened.count(close) and text.count(open_, start, end) < text.count(
        close, start, end
    ):
        return end - 1
    return end


class PasswordRecognizer:
    """The value of a password, secret, token or API key pair: `password=...`,
    `passwd: ...`, `"password": "..."`, `api_key='...'`, `--password ...` (span: the value)."""

    name = "password"
    entities = (Entity.PASSWORD,)

    # quoted: up to the closing quote, escapes allowed (loops unrolled: runs of plain characters
    # are matched in one step)
    _quoted: Final = re.compile(
        r"\"([^\"\\\n]*(?:\\.[^\"\\\n]*)*)\"|'([^'\\\n]*(?:\\.[^'\\\n]*)*)'"
    )
    # unquoted: up to a space or quote, or a "&", ";" or "," that starts the next pair
    _bare: Final = re.compile(
        r"[^\s\"'&;,]*(?:(?:&|[;,](?=\S))(?![ \t]*[\w.\[\]-]+[ \t]*[=:])[^\s\"'&;,]*)*"
    )

    def find(self, text: str) -> Iterator[Span]:
        seen: set[int] = set()
        for pattern in _PAIRS:
            for m in pattern.finditer(text):
                key = self._key_before(text, m)
                if key is not None:
                    seen.add(m.end())
                    span = self._span(text, key, m.end())
                    if span is not None:
                        yield span
        for m in _CLI_OPTION.finditer(text):
            option = m.group(1).lower()
            if _key_ending_at(option, len(option)) and m.end() not in seen:
                span = self._span(text, (m.start(1), option), m.end())
                if span is not None:
                    yield span

    def _key_before(self, text: str, m: re.Match[str]) -> tuple[int, str] | None:
        """(start, lower-case key name) of the key whose tail `m` matched, or None when the word
        is not a secret's key (`compass=`, `monkey:`)."""
        key_end = m.start()
        while text[key_end - 1] in "\"' ":
            key_end -= 1
        found = _key_ending_at(text, key_end)
        if found is None:
            return None
        start, key = found
        prev = text[start - 1] if start else ""
        if prev == "\n" or not prev.isalnum() or key not in _SHORT_KEYS:
            return start, key
        if prev.islower() and text[start].isupper():
            return start, key  # camelCase: dbPass, authToken
        return None

    def _span(self, text: str, key: tuple[int, str], pos: int) -> Span | None:
        value = self._value(text, pos, key[0])
        if value is None:
            return None
        start, end = value
        if key[1] in _PWD and text[start] in "/~":
            return None
        return Span(start, end, Entity.PASSWORD, PAIR, self.name)

    def _value(self, text: str, pos: int, key_start: int) -> tuple[int, int] | None:
        if pos >= len(text) or text[pos] == "\n":
            return None
        if text[pos] in "\"'":
            q = self._quoted.match(text, pos)
            if q is None:
                return None
            start, end = q.span(1) if q.group(1) is not None else q.span(2)
        else:
            b = self._bare.match(text, pos)
            if b is None:
                return None
            # a "." at the end stays in the span: it may end a sentence or the password
            # (`password=Xy7.`), and a full stop redacted costs less than a character leaked
            start, end = b.span()
            if end > start and text[end - 1] in "}])":
                end = _unbalanced_close(text, key_start, start, end)
            if text[start:end].lower() in _AUTH_SCHEMES:  # Authorization: Basic xxx
                return self._value(text, end + 1, key_start) if text.startswith(" ", end) else None
        if end <= start or _placeholder(text[start:end]):
            return None
        return start, end


RECOGNIZERS: Final = (
    AWS_ACCESS_KEY_ID,
    AwsSecretKeyRecognizer(),
    GITHUB_TOKEN,
    GITLAB_TOKEN,
    SLACK_TOKEN,
    SLACK_WEBHOOK,
    BearerTokenRecognizer(),
    JwtRecognizer(),
    PrivateKeyRecognizer(),
    UrlPasswordRecognizer(),
    PasswordRecognizer(),
)
