"""API tokens: `lgt_<id>_<secret>`. The id finds the row; only the SHA-256 of the secret is
stored (the secret has 256 random bits, so a slow hash adds nothing), compared in constant
time. The whole token is shown once, when it is made."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "lgt_"
_FORM = re.compile(r"^lgt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


def new_token() -> tuple[str, str, str]:
    """(token, id, hash of its secret)."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{PREFIX}{token_id}_{secret}", token_id, digest(secret)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    found = _FORM.match(token.strip())
    return (found.group(1), found.group(2)) if found else None


def matches(stored_hash: str, secret: str) -> bool:
    return hmac.compare_digest(stored_hash, digest(secret))
