"""IP addresses: IPv4 in dotted decimal and IPv6 (full, compressed, with an embedded IPv4).

IPv4: every octet 0-255 without leading zeros (`010.1.1.1` is octal-ambiguous, not matched). Not
IPs: version strings (`version 1.2.3.4`, `v10.0.0.1`, `Chrome/120.0.6099.109`, `1.2.3.4-beta`),
OIDs and section numbers (by their label), and four numbers inside a longer dotted run
(`1.2.3.4.5`). IPv6 is checked by `ipaddress`; compressed forms need two groups and one of at
least three hex digits, so C++/Rust paths (`a::b`) and slices (`[1::2]`) are not addresses.

Scores: 0.85, or 0.95 with an address label ("ip", "host", "client"...). Private ranges are
still IPs (they identify machines, and people behind them, in logs). Loopback, unspecified
(`0.0.0.0`, `::`), broadcast and netmask-shaped values (`255.255.255.0`) identify no one: 0.45,
below the analyzer's default minimum.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Final

from lockgate.privacy.entities import Entity, Span

SCORE: Final = 0.85
LABELLED: Final = 0.95
NOBODY: Final = 0.45

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# anchored on the literal "." so the engine skips ahead in C; the first octet is read backwards.
# Not followed by a word character, more dotted parts or a version suffix ("1.2.3.4-beta"), but
# a full stop ending a sentence and a range ("10.0.0.1-10.0.0.9") are fine.
_V4_TAIL: Final = re.compile(
    rf"\.{_OCTET}\.{_OCTET}\.{_OCTET}(?![0-9A-Za-z_]|\.[0-9A-Za-z_]|-[A-Za-z_])"
)
_V4_HEAD: Final = re.compile(rf"(?<![0-9A-Za-z_.+])(?<![A-Za-z_]-){_OCTET}\Z")
_V6_ANCHOR: Final = re.compile(r":(?::|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:)")
_V6_BODY: Final = re.compile(
    r"(?:[0-9A-Fa-f]{0,4}:)+(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d.])|[0-9A-Fa-f]{0,4})"
)
_HEX_COLON: Final = frozenset("0123456789abcdefABCDEF:")

_VERSION_WORDS = (
    "version", "ver", "ver.", "v", "v.", "vers", "release", "rel", "build", "rev", "revision",
    "firmware", "fw", "sdk", "oid", "section", "sec.", "chapter", "§", "clause", "figure", "fig.",
    "table", "step", "rule", "patch", "update", "edition", "schema", "mib", "snmp",
    "versión", "versione", "versie",
)  # fmt: skip
_ADDRESS_WORDS = (
    "ip", "ip address", "ipv4", "ipv6", "addr", "address", "host", "hostname", "server",
    "client", "remote", "remote_addr", "peer", "src", "source", "dst", "destination", "from",
    "to", "gateway", "gw", "dns", "nameserver", "proxy", "via", "connect", "connected",
    "connecting", "listening", "bind", "inet", "inet6", "route", "subnet", "x-forwarded-for",
    "forwarded", "login", "logged", "user_ip", "client_ip", "ip_address", "ip_addr", "src_ip",
    "dst_ip", "remote_ip", "host_ip", "server_ip", "clientip", "remoteip", "ipaddress",
    "adresse", "dirección", "indirizzo", "adres", "ip-adresse", "ip-adres",
)  # fmt: skip
_VERSION_SET: Final = frozenset(_VERSION_WORDS)
_VERSION_ENDINGS: Final = ("version", "versie", "versión", "versione", "_ver", "-ver")
_ADDRESS_ENDINGS: Final = ("_ip", "-ip", "_addr", "-addr", "ip_address", "ipaddress")
_SOFTWARE: Final = frozenset({"client", "server", "host", "agent", "proxy"})
_WITH: Final = frozenset({"with", "using", "mit", "avec", "con", "met"})
_BREAKS: Final = str.maketrans(dict.fromkeys("\"'()[]{}<>:=,;?&/", " "))
_SHORT: Final = frozenset({"v", "ip", "fw", "gw"})
_ADDRESS_SET: Final = frozenset(_ADDRESS_WORDS)
_NOBODY_FIRST: Final = frozenset({"127", "0", "255"})
_NETMASK_OCTETS: Final = frozenset({"0", "128", "192", "224", "240", "248", "252", "254", "255"})


def _label(text: str, start: int) -> bool | None:
    """True for an address label among the three words before `start`, False for a
    version/section label, None for neither; the closest label wins. Words, not a regex:
    every IP in a log line is checked, so this must cost little."""
    segment = text[start - 32 if start > 32 else 0 : start]
    cut = segment.rfind("\n")
    if cut >= 0:
        segment = segment[cut + 1 :]
    seen = 0
    previous = ""
    words = segment.translate(_BREAKS).lower().split()
    for i in range(len(words) - 1, -1, -1):
        w = words[i]
        if len(w) < 3 and w not in _SHORT:
            continue  # "de", "l'": "version de l'appli 1.2.3.4"
        if w in _ADDRESS_SET or w.endswith(_ADDRESS_ENDINGS):
            # "with client 1.2.3.4", "mit Client ...": the software, so its version
            previous = words[i - 1] if i else ""
            return not (w in _SOFTWARE and previous in _WITH)
        if w in _VERSION_SET or w.endswith(_VERSION_ENDINGS):
            return False
        seen += 1
        if seen == 3:
            break
    return None


def _v4_nobody(address: str) -> bool:
    """Loopback, unspecified, broadcast or a netmask (255.255.255.0, 255.255.0.0...)."""
    if address.startswith("127.") or address == "0.0.0.0":
        return True
    return address.startswith("255.") and all(o in _NETMASK_OCTETS for o in address.split("."))


class Ipv4Recognizer:
    """IPv4 addresses in dotted decimal."""

    name = "ipv4"
    entities = (Entity.IP,)

    def find(self, text: str) -> Iterator[Span]:
        head_before = _V4_HEAD.search
        for m in _V4_TAIL.finditer(text):
            dot = m.start()
            head = head_before(text, dot - 3 if dot > 3 else 0, dot)
            if head is None:
                continue
            start = head.start()
            if start > 1 and text[start - 1] == "/" and text[start - 2].isalnum():
                continue  # a product's version: Chrome/120.0.6099.109
            label = _label(text, start)
            if label is False:
                continue
            end = m.end()
            if head.group() in _NOBODY_FIRST and _v4_nobody(text[start:end]):
                score = NOBODY
            else:
                score = LABELLED if label else SCORE
            yield Span(start, end, Entity.IP, score, self.name)


class Ipv6Recognizer:
    """IPv6 addresses, checked by the standard library's parser."""

    name = "ipv6"
    entities = (Entity.IP,)

    def find(self, text: str) -> Iterator[Span]:
        done = -1
        for m in _V6_ANCHOR.finditer(text):
            if m.start() < done:
                continue
            start = m.start()
            while start > 0 and m.start() - start < 40 and text[start - 1] in _HEX_COLON:
                start -= 1
            body = _V6_BODY.match(text, start)
            if body is None:
                continue
            end = body.end()
            done = end
            span = _v6_span(text, start, end)
            if span is None:
                continue
            start, end, address = span
            label = _label(text, start)
            if label is False:
                continue
            if address.is_loopback or address.is_unspecified:
                score = NOBODY
            else:
                score = LABELLED if label else SCORE
            yield Span(start, end, Entity.IP, score, self.name)


def _v6_span(text: str, start: int, end: int) -> tuple[int, int, ipaddress.IPv6Address] | None:
    """The address in text[start:end] with its bounds, or None when it is not one."""
    if end - start > 45:
        return None
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.:"):
        return None
    if end < len(text) and (text[end].isalnum() or text[end] in "_:"):
        return None
    if end < len(text) and text[end] == "." and text[end + 1 : end + 2].isalnum():
        return None
    raw = text[start:end]
    try:
        address = ipaddress.IPv6Address(raw)
    except ValueError:
        return None
    if "::" in raw:
        groups = [g for g in raw.split(":") if g]
        if (len(groups) < 2 or max(len(g) for g in groups) < 3) and raw not in ("::", "::1"):
            return None
    return start, end, address


RECOGNIZERS: Final = (Ipv4Recognizer(), Ipv6Recognizer())
