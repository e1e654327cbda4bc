"""Every transform by name."""

from __future__ import annotations

from lockgate.errors import PrivacyError, did_you_mean
from lockgate.privacy.transforms import (
    encrypt,
    fake,
    fpe,
    generalize,
    hashing,
    mask,
    nullify,
    redact,
    redact_text,
    tokenize,
)
from lockgate.privacy.transforms.operation import Operation

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        redact.OPERATION,
        mask.MASK,
        mask.TRUNCATE,
        tokenize.OPERATION,
        hashing.OPERATION,
        fpe.ENCRYPT,
        fpe.DECRYPT,
        encrypt.ENCRYPT,
        encrypt.DECRYPT,
        generalize.OPERATION,
        nullify.OPERATION,
        fake.OPERATION,
        redact_text.OPERATION,
    )
}


def lookup(name: str | Operation) -> Operation:
    """The operation called `name` (an Operation is returned as it is)."""
    if isinstance(name, Operation):
        return name
    found = OPERATIONS.get(name)
    if found is None:
        raise PrivacyError(f"unknown operation {name!r}" + did_you_mean(name, sorted(OPERATIONS)))
    return found
