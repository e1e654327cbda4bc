"""`encrypt` and `decrypt`: AES-256-GCM field encryption, the key id stored with each value.

An encrypted value reads `lgenc:v1:<key id>:<base64url(nonce | ciphertext | tag)>`. The key id
travels with the value, so values written before a key rotation still decrypt afterwards; the
column name is authenticated with it (GCM associated data), so a value copied into another
column does not decrypt. Each value gets a fresh random nonce: equal values encrypt
differently (use `fpe` or `tokenize` where equal values must stay equal). This is per-value
cryptography: about 1.5 µs a value.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lockgate.errors import KeyringError, PrivacyError
from lockgate.privacy.transforms.operation import Context, Operation, Values
from lockgate.privacy.transforms.options import KEY_OPTION, Option
from lockgate.privacy.transforms.strings import as_text, layout

if TYPE_CHECKING:
    from lockgate.privacy.keys import Keyring

PURPOSE = "encrypt"
PREFIX = "lgenc:v1:"
NONCE = 12


def _associated(ctx: Context, key_id: str) -> bytes:
    bound = ctx.options.get("context")
    return f"{PREFIX}{key_id}:{ctx.column if bound is None else bound}".encode()


def _prepare(values: Values, ctx: Context) -> Context:
    kind = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return ctx
    return replace(ctx, options={**ctx.options, "type": str(kind)})


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def encrypt(values: pa.Array, ctx: Context) -> pa.Array:
    """Encrypt each value with AES-256-GCM under the current key (or the pinned `key`); the
    result is text, `lgenc:v1:<key id>:<base64url>`. The column name (or option `context`) is
    authenticated with the value. Numbers and dates are encrypted as text and the column's type
    is recorded in its field metadata so `decrypt` gives it back. Nulls stay null."""
    text = as_text(values, ctx.op, ctx.column, binary_ok=True)
    key_id, key = ctx.key(PURPOSE)
    seal = AESGCM(key).encrypt
    aad = _associated(ctx, key_id)
    head = f"{PREFIX}{key_id}:"
    rows = layout(text)
    raw = rows.data.tobytes()
    valid = pc.is_valid(text).to_numpy(zero_copy_only=False).tolist()
    nonces = os.urandom(NONCE * len(text))
    b64 = base64.urlsafe_b64encode
    out: list[str | None] = []
    append = out.append
    for i, start, length in zip(
        range(len(text)), rows.starts.tolist(), rows.lens.tolist(), strict=True
    ):
        if valid[i]:
            nonce = nonces[i * NONCE : i * NONCE + NONCE]
            sealed = seal(nonce, raw[start : start + length], aad)
            append(head + b64(nonce + sealed).decode().rstrip("="))
        else:
            append(None)
    return pa.array(out, type=pa.string())


def decrypt(values: pa.Array, ctx: Context) -> pa.Array:
    """Reverse `encrypt`: each value's key id selects its key, so values encrypted before a
    key rotation still decrypt. A value that was altered, moved from another column or
    encrypted under another `context` is an error naming its column and row (never the
    value). The result has the type recorded by `encrypt` (option `type`), else text."""
    text = as_text(values, ctx.op, ctx.column)
    if ctx.keyring is None:
        ctx.key(PURPOSE)  # raises: no keyring
    keyring = ctx.keyring
    assert keyring is not None
    ciphers: dict[bytes, tuple[Any, bytes]] = {}
    rows = layout(text)
    raw = rows.data.tobytes()
    head = PREFIX.encode()
    a2b = binascii.a2b_base64
    out: list[bytes | None] = []
    append = out.append
    valid = pc.is_valid(text).to_numpy(zero_copy_only=False).tolist()
    for i, start, length in zip(
        range(len(text)), rows.starts.tolist(), rows.lens.tolist(), strict=True
    ):
        if not valid[i]:
            append(None)
            continue
        end = start + length
        if not raw.startswith(head, start, end):
            raise PrivacyError(f"{ctx.op}: {ctx.where(i)} is not a value encrypted by lockgate")
        colon = raw.find(b":", start + len(head), end)
        key_id = raw[start + len(head) : colon]
        cipher = ciphers.get(key_id)
        if cipher is None:
            cipher = ciphers[key_id] = _decrypter(keyring, key_id, colon, ctx, i)
        try:
            # only the base64url part is translated: key ids may hold "-" and "_"
            sealed = a2b(raw[colon + 1 : end].translate(_FROM_URLSAFE) + b"==")
            append(cipher[0](sealed[:NONCE], sealed[NONCE:], cipher[1]))
        except (InvalidTag, ValueError, binascii.Error):
            raise PrivacyError(
                f"{ctx.op}: cannot decrypt {ctx.where(i)}: the value was altered, or was "
                "encrypted for another column or context"
            ) from None
    return _typed(pa.array(out, type=pa.binary()), ctx)


def _decrypter(
    keyring: Keyring, raw_id: bytes, colon: int, ctx: Context, row: int
) -> tuple[Any, bytes]:
    """The decrypt function and associated data for the key id of row `row`."""
    key_id = raw_id.decode(errors="replace")
    if colon < 0 or not key_id:
        raise PrivacyError(f"{ctx.op}: {ctx.where(row)} is not a value encrypted by lockgate")
    if key_id not in keyring:
        raise KeyringError(
            f"{ctx.op}: {ctx.where(row)} was encrypted with key id {key_id!r}, which the "
            f"keyring does not hold (it holds {', '.join(keyring.ids)})"
        )
    return AESGCM(keyring.key_for(PURPOSE, key_id)[1]).decrypt, _associated(ctx, key_id)


def _typed(raw: pa.Array, ctx: Context) -> pa.Array:
    wanted = ctx.options.get("type")
    if wanted in ("binary", "large_binary"):
        return raw
    try:
        text = raw.cast(pa.string())
    except pa.ArrowInvalid:
        return raw  # encrypted bytes that are not text come back as bytes
    if not wanted or wanted in ("string", "large_string"):
        return text
    try:
        return pc.cast(text, pa.type_for_alias(str(wanted)))
    except (ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return text


_CONTEXT = Option(
    "context",
    "str",
    None,
    "text authenticated with each value instead of the column name (keep it when renaming)",
)

ENCRYPT = Operation(
    name="encrypt",
    form="encrypted",
    summary="AES-GCM field encryption; the key id is stored with each value",
    needs_key=True,
    run=encrypt,
    options=(KEY_OPTION, _CONTEXT),
    prepare=_prepare,
    records=("type",),
    per_unique=False,
)

DECRYPT = Operation(
    name="decrypt",
    form="decrypted",
    summary="reverse encrypt (any key id the keyring holds, so after rotation too)",
    needs_key=True,
    run=decrypt,
    options=(
        _CONTEXT,
        Option("type", "str", None, "the Arrow type of the result (recorded by encrypt)"),
    ),
    records=("type",),
    reverses=True,
    per_unique=False,
)
