"""The benchmarks' synthetic corpus (bench/privacy_corpus.py): deterministic, labels that line up
with the text and hold valid values, decoys that stay unlabelled, and the customer table."""

from __future__ import annotations

import base64
import collections
import importlib
import ipaddress
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import phonenumbers
import pyarrow as pa
import pytest

REPO = Path(__file__).resolve().parents[2]


def _corpus() -> ModuleType:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module("bench.privacy_corpus")


corpus = _corpus()

D3_ENTITIES = {"name", "email", "phone", "ssn", "pan", "iban", "ip", "dob", "address"}
DIGEST = """
import hashlib, sys
sys.path.insert(0, sys.argv[1])
from bench import privacy_corpus as c
h = hashlib.sha256()
h.update(c.dumps(c.text_corpus(400, seed=9)))
h.update(c.dumps(c.text_corpus(200, seed=9, heldout=True)))
h.update(c.dumps(c.log_corpus(400, seed=9)))
t = c.customers(500, seed=9)
h.update(str(t.schema).encode())
for col in t.columns:
    h.update(repr(col.to_pylist()).encode())
print(h.hexdigest())
"""


def _digest(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run(
        [sys.executable, "-c", DIGEST, str(REPO)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_same_seed_same_bytes_across_processes() -> None:
    first = _digest("1")
    assert len(first) == 64
    assert _digest("4242") == first  # no dependence on set or dict hashing order


def test_same_seed_same_bytes_in_process_and_other_seeds_differ() -> None:
    a = corpus.dumps(corpus.text_corpus(300, seed=3))
    assert a == corpus.dumps(corpus.text_corpus(300, seed=3))
    assert a != corpus.dumps(corpus.text_corpus(300, seed=4))
    assert corpus.dumps(corpus.log_corpus(300, seed=3)) == corpus.dumps(
        corpus.log_corpus(300, seed=3)
    )


def _mod97_ok(value: str) -> bool:
    compact = value.replace(" ", "")
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _ssn_ok(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    return len(digits) == 9 and 0 < area < 900 and area != 666 and group > 0 and serial > 0


def _phone_ok(value: str, locale: str) -> bool:
    regions = corpus.PHONE_REGIONS[locale]
    for region in regions:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
    return False


CHECKS = {
    "pan": lambda v, _: corpus.luhn_ok(v) and len(re.sub(r"\D", "", v)) in (15, 16),
    "iban": lambda v, _: _mod97_ok(v),
    "ssn": lambda v, _: _ssn_ok(v),
    "phone": _phone_ok,
    "ip": lambda v, _: ipaddress.ip_address(v) is not None,
    "email": lambda v, _: re.fullmatch(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", v) is not None,
    "dob": lambda v, _: re.search(r"\b(19[4-9]\d|200[0-5])\b", v) is not None,
    "address": lambda v, _: re.search(r"\d", v) is not None and v == v.strip(),
    "name": lambda v, _: v == v.strip() and any(w[:1].isupper() for w in v.split()),
}


@pytest.fixture(scope="module")
def rows() -> list[object]:
    return corpus.text_corpus(20_000)


def test_labels_line_up_with_valid_values(rows: list[object]) -> None:
    counts: collections.Counter[str] = collections.Counter()
    for row in rows:
        assert "\n" not in row.text
        last_end = 0
        for label in sorted(row.labels, key=lambda lb: lb.start):
            assert last_end <= label.start < label.end <= len(row.text), row
            last_end = label.end
            value = row.text[label.start : label.end]
            assert CHECKS[label.entity](value, row.locale), (label.entity, value, row.text)
            counts[label.entity] += 1
    assert set(counts) == D3_ENTITIES
    assert min(counts.values()) >= 300, counts  # a few hundred of every entity at least


def test_every_language_and_decoy_kind_appears(rows: list[object]) -> None:
    assert {row.locale for row in rows} == {"en", "de", "fr", "es", "it", "nl"}
    text = "\n".join(row.text for row in rows)
    for decoy in ("3 Street Fighter games", "Route 66", "5 Avenues of growth", "Arbeitsplatz 3"):
        assert decoy in text
    for word in ("Mark the", "Bill me later", "May we", "Grant access", "Will "):
        assert word in text


def test_decoys_are_not_labelled(rows: list[object]) -> None:
    """16-digit numbers outside card labels fail Luhn; SSN-shaped codes outside SSN labels are
    SKUs or invalid; IPv4-shaped versions are unlabelled."""
    luhn_decoys = 0
    for row in rows:
        labelled = [(lb.start, lb.end) for lb in row.labels]

        def inside(start: int, end: int, spans: list[tuple[int, int]] = labelled) -> bool:
            return any(s <= start and end <= e for s, e in spans)

        for m in re.finditer(
            r"(?<![\w ])\d{16}(?!\d)|(?<![\w])\d{4} \d{4} \d{4} \d{4}(?![ \d])", row.text
        ):
            if not inside(*m.span()):
                assert not corpus.luhn_ok(m.group()), row.text
                luhn_decoys += 1
        for m in re.finditer(r"(?:SSN on the form) \((\d{3}-\d{2}-\d{4})\)", row.text):
            assert not _ssn_ok(m.group(1)) and not inside(*m.span(1))
        for m in re.finditer(
            r"(?:version|build|client|Version|versie|versión|versione) (\d+\.\d+\.\d+\.\d+)",
            row.text,
        ):
            assert not inside(*m.span(1)), row.text
    assert luhn_decoys >= 300


def test_heldout_names_come_from_locales_the_gazetteer_does_not_load() -> None:
    from lockgate.privacy.recognizers.names import GAZETTEER_LOCALES

    assert not set(corpus.HELDOUT_NAME_LOCALES) & set(GAZETTEER_LOCALES)
    main = {loc for locs in corpus.MAIN_NAME_LOCALES.values() for loc in locs}
    assert main <= set(GAZETTEER_LOCALES)
    heldout_first, heldout_last = corpus.person_names(corpus.HELDOUT_NAME_LOCALES)
    rows = corpus.text_corpus(500, heldout=True)
    names = [
        row.text[lb.start : lb.end] for row in rows for lb in row.labels if lb.entity == "name"
    ]
    assert len(names) > 200
    pieces = set(heldout_first) | set(heldout_last)
    for name in names:
        assert (
            name in pieces or name.split(" ", 1)[0] in pieces or name.rsplit(" ", 1)[-1] in pieces
        )


def test_log_lines_label_secrets_with_their_shapes() -> None:
    rows = corpus.log_corpus(5000)
    seen: collections.Counter[str] = collections.Counter()
    for row in rows:
        assert "\n" not in row.text
        for label in row.labels:
            value = row.text[label.start : label.end]
            seen[label.entity] += 1
            if label.entity == "aws_access_key_id":
                assert re.fullmatch(r"(AKIA|ASIA)[A-Z2-7]{16}", value)
            elif label.entity == "aws_secret_key":
                assert re.fullmatch(r"[A-Za-z0-9+/]{40}", value)
            elif label.entity == "github_token":
                assert re.fullmatch(r"gh[pousr]_[A-Za-z0-9]{36}|github_pat_\w{82}", value)
            elif label.entity == "gitlab_token":
                assert re.fullmatch(r"glpat-[\w-]{20}", value)
            elif label.entity == "slack_token":
                assert re.fullmatch(r"xox[bpa]-\d+-\d+-[A-Za-z0-9]{24}", value)
            elif label.entity == "jwt":
                header = value.split(".")[0]
                assert (
                    json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["typ"]
                    == "JWT"
                )
            elif label.entity == "private_key":
                assert value.startswith("-----BEGIN ") and value.endswith("PRIVATE KEY-----")
            elif label.entity in ("password", "url_password"):
                assert value and not set(value) & set(" @:/&\"'")
            elif label.entity == "ip":
                ipaddress.ip_address(value)
            elif label.entity == "email":
                assert "@" in value
    assert set(seen) >= set(corpus.SECRETS) | {
        "private_key",
        "password",
        "url_password",
        "email",
        "ip",
    }


def test_customers_table() -> None:
    table = corpus.customers(3000, seed=11)
    assert table.num_rows == 3000
    assert table.column_names == list(corpus.EXPECTED_CLASSIFICATION)
    assert table.equals(corpus.customers(3000, seed=11))
    assert not table.equals(corpus.customers(3000, seed=12))
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    assert all(corpus.luhn_ok(v) for v in cols["card_number"])
    assert not any(corpus.luhn_ok(v) for v in cols["tracking_no"])
    assert all(_mod97_ok(v) for v in cols["iban"])
    assert all(_ssn_ok(v) for v in cols["ssn"])
    assert all(re.fullmatch(r"\d{3}-\d{2}-\d{4}", v) for v in cols["sku"])
    assert all(re.fullmatch(r"\d{3}-\d{3}-\d{4}", v) for v in cols["order_no"])
    assert all(len(v.split(".")) == 4 for v in cols["app_version"])
    assert all(ipaddress.ip_address(v) for v in cols["ip_address"])
    assert all(
        f"{a} {b}" == c
        for a, b, c in zip(cols["first_name"], cols["last_name"], cols["full_name"], strict=True)
    )
    assert table.schema.field("date_of_birth").type == pa.date32()
    assert sum(1 for v in cols["notes"] if "@" in v) > 300  # free text holding PII
