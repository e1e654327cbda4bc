"""Where a URL or host leads: this machine only, or across a network."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    """`host` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def plain_http_elsewhere(url: str) -> bool:
    """Whether `url` is plain http:// to a host other than this machine: what it carries
    crosses a network readable."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. a broken [IPv6] host: refused when it is meant for http
        return url.strip().lower().startswith("http://")
    return parts.scheme == "http" and not is_loopback(parts.hostname or "")
