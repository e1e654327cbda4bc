"""Encrypted values carry their key id: ids with "-" and "_" must survive the round trip."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

from lockgate.privacy.keys import Keyring
from lockgate.privacy.transforms import apply


@pytest.mark.parametrize("key_id", ["prod-2024", "k_2", "a-b_c"])
def test_decrypt_with_key_ids_holding_dashes_and_underscores(key_id: str) -> None:
    keyring = Keyring.from_keys({key_id: os.urandom(32)})
    values = pa.array(["alice@example.com", None, ""])
    sealed = apply("encrypt", values, keyring=keyring, column="email")
    assert sealed[0].as_py().startswith(f"lgenc:v1:{key_id}:")
    assert apply("decrypt", sealed, keyring=keyring, column="email").equals(values)


def test_a_key_swapped_with_its_id_is_never_echoed() -> None:
    from lockgate.errors import KeyringError

    key_hex = "0123456789abcdef" * 4  # a hex key where the id belongs: it matches the id rule
    with pytest.raises(KeyringError) as caught:
        Keyring.from_env(f"{key_hex}:k1")
    assert key_hex not in str(caught.value)
    assert "LOCKGATE_KEYS entry 1" in str(caught.value)


def test_keys_that_are_not_random_are_refused() -> None:
    from lockgate.errors import KeyringError

    with pytest.raises(KeyringError, match="not random"):
        Keyring.from_env("k1:" + "a" * 24)
