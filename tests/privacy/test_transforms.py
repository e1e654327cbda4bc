"""The column transforms: what each one does, nulls, unicode and empty strings, round trips,
determinism across tables and runs, key rotation, tags in field metadata, option errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import random
import re
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import cmac as crypto_cmac
from cryptography.hazmat.primitives.ciphers import algorithms

from lockgate.errors import KeyringError, PrivacyError
from lockgate.model import classification as tags
from lockgate.privacy.analyzer import Analyzer
from lockgate.privacy.entities import Entity, Span
from lockgate.privacy.keys import Keyring
from lockgate.privacy.transforms import (
    KEY_ID,
    OPERATIONS,
    apply,
    apply_to_field,
    cmac,
    fpe,
    redact_text,
    rows,
)

EMAILS = ["ada@example.com", None, "", "José.Müller@exämple.de", "grace@example.org"]


def tagged(name: str, values: pa.Array, tag: str | None) -> pa.Table:
    field = tags.with_tag(pa.field(name, values.type), tag)
    return pa.Table.from_arrays([values], schema=pa.schema([field]))


def field_of(data: pa.Table | pa.RecordBatch, name: str) -> pa.Field:
    return data.schema.field(name)


# -- the registry and options --------------------------------------------------------------------


def test_every_operation_is_named_documented_and_has_a_form() -> None:
    expected = {
        "redact", "mask", "truncate", "tokenize", "hash", "fpe", "fpe_decrypt", "encrypt",
        "decrypt", "generalize", "nullify", "fake", "redact_text",
    }  # fmt: skip
    assert set(OPERATIONS) == expected
    for name, op in OPERATIONS.items():
        assert op.name == name and op.form and op.summary
        assert len(op.doc) > len(op.summary), name
        assert op.check({}) == {o.name: o.default for o in op.options}
    keyed = {name for name, op in OPERATIONS.items() if op.needs_key}
    assert keyed == {"tokenize", "hash", "fpe", "fpe_decrypt", "encrypt", "decrypt", "fake"}


def test_unknown_option_names_the_operation_and_the_valid_ones() -> None:
    with pytest.raises(
        PrivacyError, match=r"mask: unknown option 'keep'; did you mean 'keep_last'\?"
    ):
        OPERATIONS["mask"].check({"keep": 2})
    with pytest.raises(PrivacyError, match=r"unknown option 'zzz'; valid options: char, format"):
        OPERATIONS["mask"].check({"zzz": 2})
    with pytest.raises(PrivacyError, match="nullify takes no options"):
        OPERATIONS["nullify"].check({"x": 1})


@pytest.mark.parametrize(
    ("op", "options", "message"),
    [
        ("mask", {"keep_last": "4"}, "mask: option 'keep_last' must be a whole number, got '4'"),
        ("mask", {"keep_last": -1}, "must be >= 0"),
        ("mask", {"keep_last": True}, "must be a whole number"),
        ("mask", {"format": "cards"}, "option 'format' cannot be 'cards'; did you mean 'card'"),
        ("tokenize", {"length": 8}, "'length' must be >= 16"),
        ("tokenize", {"format_preserving": "yes"}, "must be true or false"),
        ("redact", {"placeholder": 3}, "must be text"),
        ("generalize", {"to": "decade"}, "'to' cannot be 'decade'"),
        ("redact_text", {"entities": ["emails"]}, "unknown name 'emails'; did you mean 'email'"),
        ("redact_text", {"analyzer": "spacy"}, "wrong kind"),
    ],
)
def test_bad_option_values_are_named(op: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(PrivacyError, match=re.escape(message) if "'" in message else message):
        OPERATIONS[op].check(options)


def test_options_are_normalised() -> None:
    assert OPERATIONS["mask"].check({"format": " Card "})["format"] == "card"
    assert OPERATIONS["redact_text"].check({"entities": "email, phone"})["entities"] == (
        "email",
        "phone",
    )


def test_unknown_operation_suggests_the_closest() -> None:
    with pytest.raises(PrivacyError, match="unknown operation 'tokenise'; did you mean 'tokenize'"):
        apply("tokenise", pa.array(["x"]))


def test_keyed_operation_without_keyring_says_how_to_get_one() -> None:
    with pytest.raises(KeyringError, match="tokenize needs a key.*lockgate init"):
        apply("tokenize", pa.array(["x"]))


def test_pinned_key_id_must_exist(keyring: Keyring) -> None:
    with pytest.raises(KeyringError, match="no key with id 'k9'"):
        apply("hash", pa.array(["x"]), options={"key": "k9"}, keyring=keyring)


# -- redact, nullify -----------------------------------------------------------------------------


def test_redact_keeps_nulls_and_empty_strings() -> None:
    assert apply("redact", pa.array(EMAILS)).to_pylist() == [
        "[REDACTED]", None, "", "[REDACTED]", "[REDACTED]",
    ]  # fmt: skip
    out = apply("redact", pa.array([123, None], pa.int64()), options={"placeholder": "XXX-XX"})
    assert out.type == pa.string() and out.to_pylist() == ["XXX-XX", None]


def test_redact_a_dictionary_column_keeps_it_a_dictionary() -> None:
    values = pa.array(["a", "b", None, "a"]).dictionary_encode()
    out = apply("redact", values)
    assert pa.types.is_dictionary(out.type)
    assert out.to_pylist() == ["[REDACTED]", "[REDACTED]", None, "[REDACTED]"]


def test_nullify_keeps_the_type() -> None:
    out = apply("nullify", pa.array([1, 2, None], pa.int32()))
    assert out.type == pa.int32() and out.null_count == 3


# -- mask and truncate ---------------------------------------------------------------------------


def test_mask_keeps_first_and_last_characters() -> None:
    values = pa.array(["secret-value", "abc", "", None, "ünïcödé✓"])
    assert apply("mask", values).to_pylist() == ["********alue", "**c", "", None, "******é✓"]
    out = apply("mask", values, options={"keep_first": 2, "keep_last": 1, "char": "#"})
    assert out.to_pylist() == ["se#########e", "##c", "", None, "ü######✓"]
    assert apply("mask", values, options={"keep_last": 0, "char": "<>"}).to_pylist()[1] == "<><><>"


def test_mask_cards_keeps_separators_and_last_four_digits() -> None:
    cards = pa.array(["4111 1111 1111 1234", "5500-0000-0000-0004", "4111111111111111", None, ""])
    out = apply("mask", cards, options={"format": "card"})
    assert out.to_pylist() == [
        "**** **** **** 1234", "****-****-****-0004", "************1111", None, "",
    ]  # fmt: skip
    auto = apply("mask", cards, classification="pci.pan")
    assert auto.equals(out)
    first_six = apply("mask", cards, options={"format": "card", "keep_first": 6})
    assert first_six.to_pylist()[0] == "4*** **** **** 1234"  # at most a third is shown
    first_six = apply("mask", cards, options={"format": "card", "keep_first": 6, "max_shown": 63})
    assert first_six.to_pylist()[0] == "4111 11** **** 1234"


def test_mask_digits_of_ssns_and_phones() -> None:
    values = pa.array(["123-45-6789", "+1 (555) 010-0199", "12"])
    out = apply("mask", values, classification="pii.ssn/masked")
    assert out.to_pylist() == ["***-**-*789", "+* (***) ***-*199", "**"]
    out = apply("mask", values, options={"format": "digits", "max_shown": 50})
    assert out.to_pylist() == ["***-**-6789", "+* (***) ***-0199", "*2"]
    with pytest.raises(PrivacyError, match="'char' must be one ASCII character"):
        apply("mask", values, options={"format": "digits", "char": "•"})


def test_mask_ibans_keeps_only_the_last_four_characters() -> None:
    values = pa.array(["GB56MUBC81590830166131", "DE89 3704 0044 0532 0130 00", None])
    out = apply("mask", values, options={"keep_last": 4}, classification="pii.iban")
    # the country and bank code (letters) are hidden too: they identify the bank
    assert out.to_pylist() == ["******************6131", "**** **** **** **** **30 00", None]
    out = apply("truncate", values, options={"format": "alphanumeric"})
    assert out.to_pylist() == ["6131", "3000", None]


def test_mask_emails_keeps_the_domain() -> None:
    out = apply("mask", pa.array(EMAILS), options={"keep_first": 1}, classification="pii.email")
    assert out.to_pylist() == [
        "a**@example.com",
        None,
        "",
        "J**********@exämple.de",
        "g****@example.org",
    ]


def test_truncate_cards_to_last_four_digits() -> None:
    cards = pa.array(["4111 1111 1111 1234", "5500-0000-0000-0004", None, "", "no digits"])
    out = apply("truncate", cards, classification="pci.pan")
    assert out.to_pylist() == ["1234", "0004", None, "", ""]
    plain = apply("truncate", pa.array(["abcdef", "é✓", None]), options={"keep_last": 3})
    assert plain.to_pylist() == ["ef", "", None]


def test_mask_and_truncate_never_show_most_of_a_short_value() -> None:
    values = pa.array(["Alice", "12345", "Bob", "Al", "4111", "Zoë Ünï", None, ""])
    assert apply("mask", values).to_pylist() == [
        "****e", "****5", "**b", "**", "***1", "*****nï", None, "",
    ]  # fmt: skip
    # digits format: a value without digits is hidden whole, one `char` per character
    digits = apply("mask", values, options={"format": "digits"})
    assert digits.to_pylist() == ["*****", "****5", "***", "**", "***1", "*******", None, ""]
    assert apply("truncate", values).to_pylist() == ["e", "5", "b", "", "1", "nï", None, ""]
    digits = apply("truncate", values, options={"format": "digits"})
    assert digits.to_pylist() == ["", "5", "", "", "1", "", None, ""]
    # even when asked to show everything, a whole value is never shown
    shown = apply("mask", values, options={"max_shown": 100, "keep_first": 9})
    assert shown.to_pylist()[:4] == ["*lice", "*2345", "*ob", "*l"]
    emails = apply("mask", pa.array(["jo@x.com", "johnny@x.com"]), options={"keep_first": 2},
                   classification="pii.email")  # fmt: skip
    assert emails.to_pylist() == ["**@x.com", "jo****@x.com"]


def test_mask_numbers_as_text() -> None:
    out = apply("mask", pa.array([4111111111111234, None], pa.int64()), options={"format": "card"})
    assert out.to_pylist() == ["************1234", None]


def test_block_wise_byte_transforms_cross_block_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    cards = [
        None
        if rng.random() < 0.1
        else "".join(rng.choice("0123456789 -") for _ in range(rng.randrange(0, 30)))
        for _ in range(500)
    ]
    values = pa.array(cards)
    whole = apply("mask", values, options={"format": "card"})
    monkeypatch.setattr(rows, "BLOCK_ROWS", 7)
    assert apply("mask", values, options={"format": "card"}).equals(whole)
    for value, masked in zip(cards, whole.to_pylist(), strict=True):
        if value is None:
            assert masked is None
            continue
        digits = [i for i, c in enumerate(value) if c.isdigit()]
        kept = set(digits[len(digits) - min(4, len(digits) * 34 // 100) :])
        expected = "".join("*" if i in digits and i not in kept else c for i, c in enumerate(value))
        if not digits:  # nothing to count: hidden whole
            expected = "*" * len(value)
        assert masked == expected


# -- AES-CMAC ------------------------------------------------------------------------------------


def reference_cmac(key: bytes, value: bytes) -> bytes:
    mac = crypto_cmac.CMAC(algorithms.AES(key))
    mac.update(value)
    return mac.finalize()


def test_vectorised_cmac_equals_cryptography_byte_for_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    key = bytes(range(32))
    rng = random.Random(5)
    values = [
        "".join(rng.choice("ab€é😀\n ") for _ in range(rng.randrange(0, 70))) for _ in range(400)
    ]
    values += ["", "a" * 15, "a" * 16, "a" * 17, "b" * 32, "c" * 33, "x" * 2000]
    arrays = [
        pa.array(values),
        pa.array(values).slice(13, 300),
        pa.array(["padding"] * 5 + values, pa.large_string()).slice(5),
        pa.array([v.encode() for v in values], pa.binary()),
    ]
    monkeypatch.setattr(cmac, "BLOCK_ROWS", 64)
    for array in arrays:
        tags_ = cmac.cmac_rows(key, array)
        for i, value in enumerate(array.to_pylist()):
            raw = value if isinstance(value, bytes) else value.encode()
            assert tags_[i].tobytes() == reference_cmac(key, raw), (i, len(raw))


def test_nist_sp800_38b_aes256_example() -> None:
    key = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
    message = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    tag = cmac.cmac_rows(key, pa.array([b"", message], pa.binary()))
    assert tag[0].tobytes().hex() == "028962f61b7bf89efc6b551f4667d983"
    assert tag[1].tobytes().hex() == "28a7023f452e8f82bd4bf28d8c37c35c"


# -- tokenize and hash ---------------------------------------------------------------------------


def test_tokens_are_keyed_cmac_hex(keyring: Keyring) -> None:
    out = apply("tokenize", pa.array(EMAILS), keyring=keyring)
    _, key = keyring.key_for("tokenize")
    assert out[0].as_py() == "tok_" + reference_cmac(key, b"ada@example.com").hex()[:20]
    assert out[1].as_py() is None and out[2].as_py() == ""
    assert all(re.fullmatch(r"tok_[0-9a-f]{20}", t) for t in out.to_pylist() if t)
    custom = apply(
        "tokenize", pa.array(["x"]), options={"prefix": "", "length": 32}, keyring=keyring
    )
    assert custom[0].as_py() == reference_cmac(key, b"x").hex()


def test_tokens_match_across_tables_columns_and_runs(keyring: Keyring, key_file: Path) -> None:
    people = tagged("email", pa.array(["ada@example.com", "bob@example.com"]), "pii.email")
    orders = tagged(
        "customer", pa.array(["bob@example.com", "ada@example.com", "bob@example.com"]), None
    )
    a = apply_to_field(people, "email", "tokenize", keyring=keyring).column("email").to_pylist()
    b = (
        apply_to_field(orders, "customer", "tokenize", keyring=keyring)
        .column("customer")
        .to_pylist()
    )
    assert b == [a[1], a[0], a[1]]
    fresh = Keyring.load(key_file)  # another run: the keyring loaded again from its file
    again = apply_to_field(people, "email", "tokenize", keyring=fresh).column("email").to_pylist()
    assert again == a


def test_tokens_differ_between_keys_and_with_per_column() -> None:
    values = pa.array(["ada@example.com"])
    one = apply("tokenize", values, keyring=Keyring.generate())
    two = apply("tokenize", values, keyring=Keyring.generate())
    assert one != two
    keyring = Keyring.generate()
    plain = apply("tokenize", values, keyring=keyring, column="a")
    scoped_a = apply("tokenize", values, options={"per_column": True}, keyring=keyring, column="a")
    scoped_b = apply("tokenize", values, options={"per_column": True}, keyring=keyring, column="b")
    assert len({plain[0].as_py(), scoped_a[0].as_py(), scoped_b[0].as_py()}) == 3


def test_rotation_changes_tokens_unless_the_key_is_pinned(keyring: Keyring) -> None:
    values = pa.array(["ada@example.com", "bob@example.com"])
    before = apply("tokenize", values, keyring=keyring)
    keyring.rotate()
    assert not apply("tokenize", values, keyring=keyring).equals(before)
    pinned = apply("tokenize", values, options={"key": "k1"}, keyring=keyring)
    assert pinned.equals(before)
    table = apply_to_field(
        tagged("e", values, "pii.email"), "e", "tokenize", {"key": "k1"}, keyring
    )
    assert field_of(table, "e").metadata[KEY_ID] == b"k1"


def test_numbers_and_dates_tokenize_as_their_text(keyring: Keyring) -> None:
    numbers = apply("tokenize", pa.array([42, None], pa.int64()), keyring=keyring)
    text = apply("tokenize", pa.array(["42", None]), keyring=keyring)
    assert numbers.equals(text)
    dates = apply("tokenize", pa.array([dt.date(1990, 5, 17)]), keyring=keyring)
    assert dates.equals(apply("tokenize", pa.array(["1990-05-17"]), keyring=keyring))


def test_chunked_dictionary_and_sliced_inputs_give_the_same_tokens(keyring: Keyring) -> None:
    values = pa.array(EMAILS * 3)
    expected = apply("tokenize", values, keyring=keyring).to_pylist()
    chunked = apply(
        "tokenize", pa.chunked_array([values.slice(0, 4), values.slice(4)]), keyring=keyring
    )
    assert isinstance(chunked, pa.ChunkedArray) and chunked.to_pylist() == expected
    encoded = apply("tokenize", values.dictionary_encode(), keyring=keyring)
    assert pa.types.is_dictionary(encoded.type) and encoded.to_pylist() == expected
    assert apply("tokenize", values.slice(3, 4), keyring=keyring).to_pylist() == expected[3:7]
    large = apply("tokenize", values.cast(pa.large_string()), keyring=keyring)
    assert large.to_pylist() == expected


def test_format_preserving_tokens_keep_the_shape(keyring: Keyring) -> None:
    values = pa.array(["Ada.Lovelace-1815@example.com", "555-0100", "José", None, "", "é"])
    out = apply("tokenize", values, options={"format_preserving": True}, keyring=keyring)
    token = out.to_pylist()
    assert re.fullmatch(r"[A-Z][a-z]{2}\.[A-Z][a-z]{7}-\d{4}@[a-z]{7}\.[a-z]{3}", token[0])
    assert token[0] != values[0].as_py()
    assert re.fullmatch(r"\d{3}-\d{4}", token[1]) and token[1] != "555-0100"
    assert re.fullmatch(r"[A-Z][a-z]{3}", token[2])  # é became one ASCII letter
    assert token[3:] == [None, "", token[5]] and re.fullmatch(r"[a-z]", token[5])
    again = apply("tokenize", values, options={"format_preserving": True}, keyring=keyring)
    assert again.equals(out)
    kept = apply(
        "tokenize",
        values,
        options={"format_preserving": True, "keep_domain": True},
        keyring=keyring,
    ).to_pylist()
    assert kept[0].endswith("@example.com") and kept[0].split("@")[0] == token[0].split("@")[0]
    assert kept[1] == token[1]


def test_keep_domain_on_hex_tokens(keyring: Keyring) -> None:
    out = apply("tokenize", pa.array(EMAILS), options={"keep_domain": True}, keyring=keyring)
    plain = apply("tokenize", pa.array(EMAILS), keyring=keyring).to_pylist()
    assert out.to_pylist() == [
        plain[0] + "@example.com", None, "", plain[3] + "@exämple.de", plain[4] + "@example.org",
    ]  # fmt: skip


def test_hash_is_keyed_full_length_and_not_the_token(keyring: Keyring) -> None:
    values = pa.array(["ada@example.com", None, ""])
    hashed = apply("hash", values, keyring=keyring).to_pylist()
    _, key = keyring.key_for("hash")
    assert hashed == [reference_cmac(key, b"ada@example.com").hex(), None, ""]
    token = apply("tokenize", values, options={"prefix": "", "length": 32}, keyring=keyring)
    assert token[0].as_py() != hashed[0]
    sha = apply("hash", values, options={"algorithm": "hmac-sha256"}, keyring=keyring).to_pylist()
    assert sha[0] == hmac.new(key, b"ada@example.com", hashlib.sha256).hexdigest()
    assert sha[1:] == [None, ""]


# -- fpe -----------------------------------------------------------------------------------------


def test_fpe_round_trip_keeps_digits_and_separators(keyring: Keyring) -> None:
    values = pa.array(["123-45-6789", "4111 1111 1111 1234", None, "", "987654321"])
    out = apply("fpe", values, keyring=keyring)
    encrypted = out.to_pylist()
    assert re.fullmatch(r"\d{3}-\d{2}-\d{4}", encrypted[0]) and encrypted[0] != "123-45-6789"
    assert re.fullmatch(r"\d{4} \d{4} \d{4} \d{4}", encrypted[1])
    assert encrypted[2:4] == [None, ""] and re.fullmatch(r"\d{9}", encrypted[4])
    assert apply("fpe", values, keyring=keyring).equals(out)  # deterministic
    back = apply("fpe_decrypt", out, options={"alphabet": "digits"}, keyring=keyring)
    assert back.equals(values)
    # with the alphabet given, a value without any of its characters stays as it is
    digits = {"alphabet": "digits"}
    noted = apply("fpe", pa.array(["n/a", "123456"]), options=digits, keyring=keyring)
    assert noted[0].as_py() == "n/a"
    assert apply("fpe_decrypt", noted, options=digits, keyring=keyring)[1].as_py() == "123456"


def test_fpe_alphanumeric_alphabets_round_trip(keyring: Keyring) -> None:
    values = pa.array(["AB12-CD34", "ZZ99-0000", "A1B2"])
    out = apply("fpe", values, keyring=keyring)
    assert all(re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4})?", v) for v in out.to_pylist())
    back = apply("fpe_decrypt", out, options={"alphabet": "upper_alphanumeric"}, keyring=keyring)
    assert back.equals(values)
    mixed = pa.array(["Passport X9bC41", "ünïcode kept ok"])
    out = apply("fpe", mixed, keyring=keyring)
    kept = out[1].as_py()  # non-ASCII characters and spaces stay where they were
    assert [kept[i] for i in (0, 2, 7, 12)] == ["ü", "ï", " ", " "] and kept != mixed[1].as_py()
    assert apply("fpe_decrypt", out, options={"alphabet": "alphanumeric"}, keyring=keyring).equals(
        mixed
    )


def test_fpe_refuses_values_too_short_for_ff1(keyring: Keyring) -> None:
    values = pa.array(["123456", None, "12-34"])
    with pytest.raises(PrivacyError) as caught:
        apply("fpe", values, keyring=keyring, column="zip")
    message = str(caught.value)
    assert "row 2 of column 'zip' has 4 character(s) of alphabet 'digits'" in message
    assert "at least 6" in message and "12-34" not in message
    assert fpe.min_length(fpe.ALPHABETS["alphanumeric"]) == 4


def test_fpe_on_a_field_records_what_decrypting_needs(keyring: Keyring) -> None:
    table = tagged("ssn", pa.array(["123-45-6789", "078-05-1120"]), "pii.ssn")
    encrypted = apply_to_field(table, "ssn", "fpe", keyring=keyring)
    meta = field_of(encrypted, "ssn").metadata
    assert meta[tags.TAG_KEY] == b"pii.ssn/fpe"
    assert meta[KEY_ID] == b"k1" and meta[b"lockgate.alphabet"] == b"digits"
    keyring.rotate()  # the recorded key id still decrypts
    decrypted = apply_to_field(encrypted, "ssn", "fpe_decrypt", keyring=keyring)
    assert decrypted.column("ssn").equals(table.column("ssn"))
    meta = field_of(decrypted, "ssn").metadata
    assert meta == {tags.TAG_KEY: b"pii.ssn"}
    redacted = apply_to_field(encrypted, "ssn", "redact")  # the FPE notes go with the values
    assert field_of(redacted, "ssn").metadata == {tags.TAG_KEY: b"pii.ssn/redacted"}


def test_fpe_with_a_tweak_differs_and_needs_it_back(keyring: Keyring) -> None:
    values = pa.array(["123456789"])
    plain = apply("fpe", values, keyring=keyring)
    tweaked = apply("fpe", values, options={"tweak": "customers"}, keyring=keyring)
    assert not plain.equals(tweaked)
    options = {"tweak": "customers", "alphabet": "digits"}
    assert apply("fpe_decrypt", tweaked, options=options, keyring=keyring).equals(values)


def test_fpe_runs_large_columns_on_threads(
    keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = pa.array([f"{i:09d}" for i in range(300)])
    serial = apply("fpe", values, keyring=keyring)
    monkeypatch.setattr(fpe, "PARALLEL_FROM", 10)
    assert apply("fpe", values, keyring=keyring).equals(serial)


# -- encrypt and decrypt -------------------------------------------------------------------------


def test_encrypt_decrypt_round_trip(keyring: Keyring) -> None:
    values = pa.array(EMAILS)
    out = apply("encrypt", values, keyring=keyring, column="email")
    for value in out.to_pylist():
        assert value is None or re.fullmatch(r"lgenc:v1:k1:[A-Za-z0-9_-]+", value)
    assert out[1].as_py() is None
    assert not out.equals(apply("encrypt", values, keyring=keyring, column="email"))  # fresh nonces
    assert apply("decrypt", out, keyring=keyring, column="email").equals(values)


def test_decrypt_after_rotation_uses_each_values_key(keyring: Keyring, key_file: Path) -> None:
    old = apply("encrypt", pa.array(["before"]), keyring=keyring, column="c")
    keyring.rotate()
    new = apply("encrypt", pa.array(["after"]), keyring=keyring, column="c")
    assert new[0].as_py().startswith("lgenc:v1:k2:")
    both = pa.concat_arrays([old, new])
    later = Keyring.load(key_file)
    assert apply("decrypt", both, keyring=later, column="c").to_pylist() == ["before", "after"]


def test_a_value_moved_to_another_column_does_not_decrypt(keyring: Keyring) -> None:
    out = apply(
        "encrypt", pa.array(["ada@example.com", "bob@example.com"]), keyring=keyring, column="email"
    )
    with pytest.raises(PrivacyError) as caught:
        apply("decrypt", out, keyring=keyring, column="notes")
    message = str(caught.value)
    assert "cannot decrypt row 0 of column 'notes'" in message
    assert "example.com" not in message and "lgenc" not in message
    renamed = apply("encrypt", out, keyring=keyring, column="x")  # twice is fine too
    assert apply("decrypt", renamed, keyring=keyring, column="x").equals(out)
    moved = apply("decrypt", out, options={"context": "email"}, keyring=keyring, column="notes")
    assert moved.to_pylist() == ["ada@example.com", "bob@example.com"]


def test_tampered_unknown_key_and_plain_values_are_named_errors(keyring: Keyring) -> None:
    good = apply("encrypt", pa.array(["a", "b"]), keyring=keyring, column="c").to_pylist()
    tampered = good[1][:-2] + ("AA" if not good[1].endswith("AA") else "BB")
    with pytest.raises(
        PrivacyError, match="cannot decrypt row 1 of column 'c': the value was altered"
    ):
        apply("decrypt", pa.array([good[0], tampered]), keyring=keyring, column="c")
    foreign = good[0].replace("lgenc:v1:k1:", "lgenc:v1:k9:")
    with pytest.raises(KeyringError, match="row 0 of column 'c' was encrypted with key id 'k9'"):
        apply("decrypt", pa.array([foreign]), keyring=keyring, column="c")
    with pytest.raises(
        PrivacyError, match="row 1 of column 'c' is not a value encrypted by lockgate"
    ):
        apply("decrypt", pa.array([good[0], "plain text"]), keyring=keyring, column="c")


def test_encrypted_columns_get_their_type_back(keyring: Keyring, tmp_path: Path) -> None:
    table = pa.table(
        {
            "n": pa.array([1, None, -3], pa.int64()),
            "d": pa.array([dt.date(1990, 1, 2), None, dt.date(2001, 12, 31)]),
            "b": pa.array([b"\x00\xff", None, b""]),
        }
    )
    out = table
    for name in table.column_names:
        out = apply_to_field(out, name, "encrypt", keyring=keyring)
    assert all(out.schema.field(n).type == pa.string() for n in out.column_names)
    pq.write_table(out, tmp_path / "enc.parquet")
    back = pq.read_table(tmp_path / "enc.parquet")
    for name in table.column_names:
        back = apply_to_field(back, name, "decrypt", keyring=keyring)
    assert back.equals(table)


def test_chunked_errors_name_the_row_of_the_whole_column(keyring: Keyring) -> None:
    enc = apply("encrypt", pa.array(["a", "b", "c"]), keyring=keyring, column="c")
    chunked = pa.chunked_array([enc.slice(0, 2), pa.array(["oops"])])
    with pytest.raises(PrivacyError, match="row 2 of column 'c'"):
        apply("decrypt", chunked, keyring=keyring, column="c")


# -- generalize ----------------------------------------------------------------------------------


def test_generalize_dates_to_year_or_month() -> None:
    dates = pa.array([dt.date(1984, 5, 17), None])
    assert apply("generalize", dates).to_pylist() == [dt.date(1984, 1, 1), None]
    assert apply("generalize", dates, options={"to": "month"}).to_pylist() == [
        dt.date(1984, 5, 1),
        None,
    ]
    assert apply("generalize", dates, options={"as_text": True}).to_pylist() == ["1984", None]
    stamps = pa.array([dt.datetime(1984, 5, 17, 10, 30)], pa.timestamp("us"))
    out = apply("generalize", stamps, options={"to": "month", "as_text": True})
    assert out.to_pylist() == ["1984-05"]


def test_generalize_text_dates_in_common_layouts() -> None:
    texts = [
        "1984-05-17", "1984-05-17T10:30:00Z", "1984/05/17", "19840517", "05/17/1984",
        "17/05/1984", "17.05.1984", "May 17, 1984", "17 May 1984", "Sept. 3rd, 1984",
        "born in 1984", "garbage", "", None,
    ]  # fmt: skip
    years = apply("generalize", pa.array(texts)).to_pylist()
    assert years == ["1984"] * 11 + [None, None, None]
    months = apply("generalize", pa.array(texts), options={"to": "month"}).to_pylist()
    assert months == ["1984-05"] * 9 + ["1984-09", None, None, None, None]
    dayfirst = apply(
        "generalize", pa.array(["05/06/1984"]), options={"to": "month", "dayfirst": True}
    )
    assert dayfirst.to_pylist() == ["1984-06"]


def test_generalize_zip_codes_to_three_digits() -> None:
    codes = pa.array(["94107", "94107-1234", "03601", "K1A 0B6", "12", None])
    out = apply("generalize", codes, options={"to": "zip3"})
    assert out.to_pylist() == ["941", "941", "000", "K1A", None, None]
    kept = apply("generalize", codes, options={"to": "zip3", "hipaa": False})
    assert kept[2].as_py() == "036"
    numbers = apply("generalize", pa.array([2134, None]), options={"to": "zip3"})
    assert numbers.to_pylist() == ["021", None]


def test_generalize_ages_to_bands() -> None:
    ages = pa.array([0, 9, 35, 89, 90, 104, None, -1])
    assert apply("generalize", ages).to_pylist() == [
        "0-9", "0-9", "30-39", "80-89", "90+", "90+", None, None,
    ]  # fmt: skip
    out = apply("generalize", ages, options={"to": "age_band", "band": 5, "top": 0})
    assert out.to_pylist()[:6] == ["0-4", "5-9", "35-39", "85-89", "90-94", "100-104"]
    text = apply("generalize", pa.array([" 42", "x", "7.5"]), options={"to": "age_band"})
    assert text.to_pylist() == ["40-49", None, "0-9"]
    with pytest.raises(PrivacyError, match="'top' \\(85\\) must be a multiple of option 'band'"):
        apply("generalize", ages, options={"band": 10, "top": 85})


def test_generalize_refuses_numbers_as_dates() -> None:
    with pytest.raises(PrivacyError, match="holds no dates; use option 'to'"):
        apply("generalize", pa.array([1.5]), options={"to": "year"}, column="score")


# -- fake ----------------------------------------------------------------------------------------


def test_fakes_are_consistent_and_keyed(keyring: Keyring) -> None:
    names = pa.array(["Ada Lovelace", "Grace Hopper", "Ada Lovelace", None, ""])
    out = apply("fake", names, keyring=keyring, classification="pii.name").to_pylist()
    assert out[0] == out[2] and out[0] != out[1] and out[3:] == [None, ""]
    assert all(re.fullmatch(r"\S+ \S+", v) for v in out[:3])
    other = apply("fake", names, keyring=Keyring.generate(), classification="pii.name")
    assert other.to_pylist() != out
    again = apply("fake", names.dictionary_encode(), options={"kind": "name"}, keyring=keyring)
    assert again.to_pylist() == out


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        ("email", r"[a-z]+\.[a-z]+\d{1,2}@example\.(com|net|org)"),
        ("phone", r"\([2-9]\d\d\) 555-01\d\d"),
        ("address", r"\d{1,4} \S+ \S+, [^,]+, [A-Z]{2} \d{5}"),
        ("ip", r"10\.\d{1,3}\.\d{1,3}\.\d{1,3}"),
        ("postcode", r"\d{5}"),
        ("company", r"\S+ .+"),
        ("date_of_birth", r"(19[4-9]\d|200[0-5])-\d\d-\d\d"),
    ],
)
def test_fake_kinds_look_real_but_are_safe(keyring: Keyring, kind: str, pattern: str) -> None:
    values = pa.array([f"value {i}" for i in range(50)])
    out = apply("fake", values, options={"kind": kind}, keyring=keyring).to_pylist()
    for fake in out:
        assert re.fullmatch(pattern, fake), fake
    assert len(set(out)) > 10


def test_fake_dates_of_birth_keep_a_date_column(keyring: Keyring) -> None:
    values = pa.array([dt.date(1980, 1, 1), None])
    out = apply("fake", values, keyring=keyring, classification="pii.dob")
    assert out.type == pa.date32() and out[1].as_py() is None
    assert dt.date(1940, 1, 1) <= out[0].as_py() <= dt.date(2005, 12, 31)


def test_fake_locale_and_missing_kind(keyring: Keyring) -> None:
    german = apply(
        "fake", pa.array(["x"]), options={"kind": "last_name", "locale": "de_DE"}, keyring=keyring
    )
    assert german[0].as_py()
    with pytest.raises(PrivacyError, match="faker has no locale 'xx_YY'"):
        apply("fake", pa.array(["x"]), options={"kind": "name", "locale": "xx_YY"}, keyring=keyring)
    with pytest.raises(PrivacyError, match="column 'notes' has no classification to fake from"):
        apply("fake", pa.array(["x"]), keyring=keyring, column="notes")


# -- redact_text ---------------------------------------------------------------------------------


class TinyRecognizer:
    """Emails and AWS access key ids, by regex: enough to test how spans are replaced."""

    name = "tiny"
    entities: tuple[Entity, ...] = (Entity.EMAIL, Entity.AWS_ACCESS_KEY_ID)
    _email = re.compile(r"[\w.]+@[\w.]+\.[a-z]{2,}")
    _aws = re.compile(r"AKIA[0-9A-Z]{16}")

    def find(self, text: str) -> Iterable[Span]:
        for match in self._email.finditer(text):
            yield Span(match.start(), match.end(), Entity.EMAIL, 0.9, self.name)
        for match in self._aws.finditer(text):
            yield Span(match.start(), match.end(), Entity.AWS_ACCESS_KEY_ID, 0.95, self.name)


def tiny() -> Analyzer:
    return Analyzer(recognizers=[TinyRecognizer()])


NOTES = [
    "mail ada@example.com or bob@example.org today",
    "key AKIAABCDEFGHIJKLMNOP leaked",
    "nothing here",
    None,
    "",
    "ünïcode ✓ ada@example.com ✓",
]


def test_redact_text_replaces_only_the_spans() -> None:
    out = apply("redact_text", pa.array(NOTES), options={"analyzer": tiny()})
    assert out.to_pylist() == [
        "mail [EMAIL] or [EMAIL] today",
        "key *** leaked",
        "nothing here",
        None,
        "",
        "ünïcode ✓ [EMAIL] ✓",
    ]


def test_redact_text_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact_text, "BATCH_ROWS", 2)
    only = apply(
        "redact_text",
        pa.array(NOTES),
        options={"analyzer": tiny(), "entities": ["aws_access_key_id"]},
    )
    assert only.to_pylist()[:2] == [NOTES[0], "key *** leaked"]
    same = apply("redact_text", pa.array(NOTES), options={"analyzer": tiny(), "placeholder": "<x>"})
    assert same.to_pylist()[:2] == ["mail <x> or <x> today", "key <x> leaked"]


def test_redact_text_on_a_field_tags_it_redacted() -> None:
    table = tagged("notes", pa.array(NOTES), "free_text")
    out = apply_to_field(table, "notes", "redact_text", {"analyzer": tiny()})
    assert tags.tag_of(field_of(out, "notes")) == "free_text/redacted"
    assert redact_text.placeholder_for(Entity.CARD) == "[CARD]"


# -- apply_to_field ------------------------------------------------------------------------------


def test_apply_to_field_updates_the_tag_on_batches_and_tables(keyring: Keyring) -> None:
    table = pa.Table.from_arrays(
        [pa.array(["ada@example.com", None]), pa.array([1, 2])],
        schema=pa.schema(
            [tags.with_tag(pa.field("email", pa.string()), "pii.email"), pa.field("id", pa.int64())]
        ),
    )
    out = apply_to_field(table, "email", "tokenize", keyring=keyring)
    assert isinstance(out, pa.Table)
    assert tags.tag_of(field_of(out, "email")) == "pii.email/tokenized"
    assert field_of(out, "email").metadata[KEY_ID] == b"k1"
    assert out.column("id").equals(table.column("id")) and field_of(out, "id").metadata is None
    batch = apply_to_field(table.to_batches()[0], "email", "mask")
    assert isinstance(batch, pa.RecordBatch)
    assert tags.tag_of(field_of(batch, "email")) == "pii.email/masked"
    redacted = apply_to_field(batch, "email", "redact")
    assert tags.tag_of(field_of(redacted, "email")) == "pii.email/redacted"
    untagged = apply_to_field(table, "id", "nullify")
    assert tags.tag_of(field_of(untagged, "id")) is None


def test_apply_to_field_unknown_column() -> None:
    table = pa.table({"email": ["x"]})
    with pytest.raises(PrivacyError, match="no column 'emial'; did you mean 'email'"):
        apply_to_field(table, "emial", "redact")


def test_results_never_hold_key_material(keyring: Keyring) -> None:
    table = tagged("email", pa.array(["ada@example.com"]), "pii.email")
    shown = ""
    for op in ("tokenize", "hash", "fake", "encrypt", "mask"):
        out = apply_to_field(table, "email", op, keyring=keyring)
        shown += repr(out.schema) + repr(out.column("email").to_pylist())
    master = keyring._material("k1")
    derived = [keyring.key_for(p)[1] for p in ("tokenize", "hash", "fake", "encrypt")]
    for secret in [master, *derived]:
        assert secret.hex() not in shown
    assert not pc.any(pc.match_substring(table.column("email"), master.hex())).as_py()
