"""Passwords: argon2id hashes (argon2-cffi's defaults, rehashed when they change), generated
one-time passwords, and the rules a new password must meet."""

from __future__ import annotations

import contextlib
import functools
import secrets

from lockgate.errors import ConfigError

MIN_LENGTH = 12


def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """The password matches the stored hash (constant time). Without a hash (an unknown user,
    an account without a password) a hash is checked all the same, so that the time taken
    does not tell whether the user exists; False."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    if not stored:
        with contextlib.suppress(VerificationError, InvalidHashError):
            PasswordHasher().verify(_decoy(), password)
        return False
    try:
        return PasswordHasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _decoy() -> str:
    """A hash of a random password, checked when there is no real one to check."""
    return hash_password(secrets.token_urlsafe(16))


def check_password(password: str, user: str) -> str:
    """A new password, or ConfigError saying what it lacks."""
    if len(password) < MIN_LENGTH:
        raise ConfigError(f"the password must have at least {MIN_LENGTH} characters")
    if user.lower() in password.lower():
        raise ConfigError("the password must not contain the user's name")
    return password


def one_time_password() -> str:
    """A random password to hand over once (the user changes it at first login)."""
    return secrets.token_urlsafe(18)
