"""Masking files and tables: rules files, auto rules from a scan, tags, atomic streamed output."""

from __future__ import annotations

import datetime as dt
import random
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bench.privacy_corpus import luhn_check_digit

from lockgate.errors import DataError, PrivacyError
from lockgate.io.formats import read_table, write_table
from lockgate.model.classification import is_raw, tag_of, with_tag
from lockgate.privacy.keys import Keyring
from lockgate.privacy.masking import (
    Rule,
    auto_rule,
    auto_rules,
    load_rules,
    mask_file,
    mask_table,
    rules_from,
)
from lockgate.privacy.scan import scan, scan_table

RULES = """\
rules:
  - column: email
    op: tokenize
  - column: ssn
    op: redact
  - column: card_number
    op: mask
    options: {keep_last: 4}
  - column: date_of_birth
    op: generalize
    options: {to: year, as_text: true}
    classification: pii.dob
"""


def customers(n: int = 200, seed: int = 3) -> pa.Table:
    rng = random.Random(seed)
    first = ["James", "Mary", "Robert", "Linda", "Anna", "Lukas", "Sophie", "Carlos", "Emma"]
    last = ["Smith", "Johnson", "Brown", "Garcia", "Miller", "Schmidt", "Rossi", "Clark"]
    rows: dict[str, list[object]] = {
        k: []
        for k in (
            "customer_id",
            "full_name",
            "email",
            "ssn",
            "card_number",
            "date_of_birth",
            "notes",
            "sku",
            "order_total",
        )  # fmt: skip
    }
    for i in range(n):
        f, la = rng.choice(first), rng.choice(last)
        email = f"{f.lower()}.{la.lower()}{i}@example.com"
        card = "4" + "".join(rng.choice("0123456789") for _ in range(14))
        rows["customer_id"].append(i + 1)
        rows["full_name"].append(f"{f} {la}")
        rows["email"].append(email)
        rows["ssn"].append(
            f"{rng.randrange(101, 665)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
        )
        rows["card_number"].append(card + luhn_check_digit(card))
        rows["date_of_birth"].append(dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(20000)))
        rows["notes"].append(
            f"Customer {f} {la} asked for a refund, write to {email}"
            if i % 2
            else "no issues reported by the customer this month"
        )
        rows["sku"].append(
            f"{rng.randrange(101, 665)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
        )
        rows["order_total"].append(round(rng.uniform(1, 100), 2))
    return pa.table(rows)


@pytest.fixture
def keyring() -> Keyring:
    """A fixed key (overrides the key-file keyring of conftest): tokens can be compared across
    keyrings, and the test folders hold only the test's files."""
    return Keyring.from_keys({"k1": bytes(range(32))})


def _rules_file(tmp_path: Path, text: str = RULES) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_rules(tmp_path: Path) -> None:
    rules = load_rules(_rules_file(tmp_path))
    assert [(r.column, r.op) for r in rules] == [
        ("email", "tokenize"),
        ("ssn", "redact"),
        ("card_number", "mask"),
        ("date_of_birth", "generalize"),
    ]
    assert rules[2].options == {"keep_last": 4}
    assert rules[3].classification == "pii.dob"
    bare = load_rules(_rules_file(tmp_path, "- {column: email, op: tokenize}\n"))
    assert [(r.column, r.op) for r in bare] == [("email", "tokenize")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "rules:\n  - column: email\n    op: tokenize\n  - column: ssn\n    op: redact\n"
            "    opton: {}\n",
            r"rules\.yaml: rule 2 \(line 4\): unknown key 'opton'; did you mean 'options'\?",
        ),
        (
            "rules:\n  - column: email\n    op: tokenise\n",
            r"rule 1 \(line 2\) \(column 'email'\): unknown operation 'tokenise'; "
            r"did you mean 'tokenize'\?",
        ),
        (
            "rules:\n  - column: card\n    op: mask\n    options: {keep_lats: 4}\n",
            r"rule 1 \(line 2\) \(column 'card'\): .*keep_lats.*did you mean 'keep_last'",
        ),
        (
            "rules:\n  - column: card\n    op: mask\n    options: {keep_last: '4'}\n",
            r"rule 1 \(line 2\) \(column 'card'\): .*keep_last.*whole number",
        ),
        ("rules:\n  - op: redact\n", r"rule 1 \(line 2\): 'column' must name a column"),
        ("rules:\n  - column: a\n", r"rule 1 \(line 2\) \(column 'a'\): 'op' must name"),
        ("rule:\n  - column: a\n", r"unknown top-level key 'rule'; did you mean 'rules'\?"),
        (
            "rules:\n  - column: a\n    op: redact\n  - column: a\n    op: nullify\n",
            r"rule 2 \(line 4\) \(column 'a'\): column 'a' already has a rule \(rule 1\)",
        ),  # fmt: skip
        (
            "rules:\n  - column: a\n    op: redact\n    classification: pii.mail\n",
            r"unknown classification 'pii.mail'; did you mean 'pii.email'\?",
        ),  # fmt: skip
        ("rules: [column: a\n", r"rules\.yaml: not valid YAML at line \d+"),
        ("", r"rules\.yaml: no rules"),
        ("rules:\n  - redact\n", r"rule 1 \(line 2\): expected a mapping with column and op"),
    ],
)
def test_rules_file_errors_name_the_file_rule_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(PrivacyError, match=message) as caught:
        load_rules(_rules_file(tmp_path, text))
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "rules.yaml"))


def test_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(PrivacyError, match=r"nope\.yaml: no such rules file"):
        load_rules(tmp_path / "nope.yaml")


def test_mask_file_with_rules_updates_values_and_parquet_tags(
    tmp_path: Path, keyring: Keyring
) -> None:
    table = customers()
    ssn_field = with_tag(table.schema.field("ssn"), "pii.ssn")
    tagged = pa.Table.from_arrays(
        table.columns, schema=table.schema.set(table.schema.get_field_index("ssn"), ssn_field)
    )
    write_table(tmp_path / "in.parquet", tagged)
    rules = load_rules(_rules_file(tmp_path))
    summary = mask_file(
        tmp_path / "in.parquet", tmp_path / "out.parquet", rules=rules, keyring=keyring
    )
    assert summary.rows == 200
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.num_rows == 200
    assert all(v.startswith("tok_") for v in out.column("email").to_pylist())
    assert set(out.column("ssn").to_pylist()) == {"[REDACTED]"}
    assert all(v.startswith("*" * 12) for v in out.column("card_number").to_pylist())
    assert [v[-4:] for v in out.column("card_number").to_pylist()] == [
        v[-4:] for v in table.column("card_number").to_pylist()
    ]
    years = {str(v) for v in out.column("date_of_birth").to_pylist()}
    assert all(len(y) == 4 for y in years)
    assert out.column("full_name") == table.column("full_name")
    tags = {f.name: tag_of(f) for f in out.schema}
    assert tags["ssn"] == "pii.ssn/redacted"  # from the input's tag
    assert tags["date_of_birth"] == "pii.dob/generalized"  # from the rule's classification
    assert tags["full_name"] is None
    assert summary.tags["ssn"] == "pii.ssn/redacted"


def test_tokens_are_deterministic_so_joins_still_match(tmp_path: Path, keyring: Keyring) -> None:
    table = customers()
    people = table.select(["customer_id", "email"])
    orders = pa.table({"email": table.column("email").take([5, 7, 5]), "amount": [1.0, 2.0, 3.0]})
    rules = [Rule("email", "tokenize")]
    masked_people = mask_table(people, rules, keyring)
    masked_orders = mask_table(orders, rules, keyring)
    joined = masked_orders.join(masked_people, "email")
    assert sorted(joined.column("customer_id").to_pylist()) == [6, 6, 8]
    again = mask_table(people, rules, Keyring.from_keys({"k1": bytes(range(32))}))
    assert again.column("email") == masked_people.column("email")


def test_mask_table_takes_batches_too(keyring: Keyring) -> None:
    batch = customers(10).to_batches()[0]
    out = mask_table(batch, [Rule("ssn", "redact", classification="pii.ssn")], keyring)
    assert isinstance(out, pa.RecordBatch)
    assert set(out.column(batch.schema.get_field_index("ssn")).to_pylist()) == {"[REDACTED]"}
    assert tag_of(out.schema.field("ssn")) == "pii.ssn/redacted"


def test_auto_rules_follow_the_classification() -> None:
    report = scan_table(customers())
    rules = {r.column: (r.op, r.classification) for r in auto_rules(report)}
    assert rules == {
        "full_name": ("tokenize", "pii.name"),
        "email": ("tokenize", "pii.email"),
        "ssn": ("redact", "pii.ssn"),
        "card_number": ("mask", "pci.pan"),
        "date_of_birth": ("generalize", "pii.dob"),
        "notes": ("redact_text", "free_text"),
    }


@pytest.mark.parametrize(("src", "dst"), [("csv", "csv"), ("parquet", "parquet"), ("jsonl", "csv")])
def test_auto_mask_leaves_no_raw_pii_class(
    tmp_path: Path, keyring: Keyring, src: str, dst: str
) -> None:
    write_table(tmp_path / f"in.{src}", customers())
    summary = mask_file(tmp_path / f"in.{src}", tmp_path / f"out.{dst}", auto=True, keyring=keyring)
    assert summary.report is not None
    assert {r.column for r in summary.rules} == {
        "full_name", "email", "ssn", "card_number", "date_of_birth", "notes"
    }  # fmt: skip
    again = scan(tmp_path / f"out.{dst}")
    raw = {c.name: c.classification for c in again.columns if is_raw(c.classification)}
    assert raw == {}
    out = read_table(tmp_path / f"out.{dst}")
    notes = [n for n in out.column("notes").to_pylist() if n and "asked for a refund" in n]
    assert notes and not any("@example.com" in n for n in notes)
    assert out.column("sku").to_pylist() == customers().column("sku").to_pylist()
    if dst == "parquet":
        tags = {f.name: tag_of(f) for f in pq.read_schema(tmp_path / "out.parquet")}
        assert tags["email"] == "pii.email/tokenized"
        assert tags["notes"] == "free_text/redacted"
        assert tags["sku"] is None
        assert {c.name: c.classification for c in again.columns}["email"] == "pii.email/tokenized"


def test_explicit_rules_win_over_auto(tmp_path: Path, keyring: Keyring) -> None:
    write_table(tmp_path / "in.parquet", customers())
    summary = mask_file(
        tmp_path / "in.parquet",
        tmp_path / "out.parquet",
        rules=[Rule("email", "redact")],
        auto=True,
        keyring=keyring,
    )
    ops = {r.column: r.op for r in summary.rules}
    assert ops["email"] == "redact"
    assert ops["ssn"] == "redact"
    assert tag_of(pq.read_schema(tmp_path / "out.parquet").field("email")) == "pii.email/redacted"


def test_streamed_in_small_batches_gives_the_same_file(tmp_path: Path, keyring: Keyring) -> None:
    write_table(tmp_path / "in.csv", customers(1000))
    rules = load_rules(_rules_file(tmp_path))
    seen: list[tuple[int, int]] = []
    small = mask_file(
        tmp_path / "in.csv",
        tmp_path / "small.csv",
        rules=rules,
        keyring=keyring,
        batch_rows=64,
        progress=lambda done, total: seen.append((done, total)),
    )
    mask_file(tmp_path / "in.csv", tmp_path / "big.csv", rules=rules, keyring=keyring)
    assert small.batches >= 16
    assert (tmp_path / "small.csv").read_bytes() == (tmp_path / "big.csv").read_bytes()
    size = (tmp_path / "in.csv").stat().st_size
    assert seen[-1] == (size, size)


def test_missing_column_fails_before_anything_is_written(tmp_path: Path, keyring: Keyring) -> None:
    write_table(tmp_path / "in.parquet", customers())
    with pytest.raises(PrivacyError, match=r"has no column 'emial'.*did you mean 'email'\?"):
        mask_file(
            tmp_path / "in.parquet",
            tmp_path / "out.parquet",
            rules=[Rule("emial", "tokenize")],
            keyring=keyring,
        )
    assert not (tmp_path / "out.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_keyed_operation_without_keyring_fails_first(tmp_path: Path) -> None:
    write_table(tmp_path / "in.parquet", customers())
    with pytest.raises(PrivacyError, match=r"tokenize \(column 'email'\) needs a key"):
        mask_file(
            tmp_path / "in.parquet", tmp_path / "out.parquet", rules=[Rule("email", "tokenize")]
        )
    assert not (tmp_path / "out.parquet").exists()


def test_failure_leaves_the_old_output(tmp_path: Path, keyring: Keyring) -> None:
    write_table(tmp_path / "in.parquet", customers(1000))
    write_table(tmp_path / "out.parquet", pa.table({"old": [1, 2, 3]}))
    before = (tmp_path / "out.parquet").read_bytes()

    def interrupt(done: int, total: int) -> None:
        if done > 300:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mask_file(
            tmp_path / "in.parquet",
            tmp_path / "out.parquet",
            rules=[Rule("ssn", "redact")],
            keyring=keyring,
            batch_rows=100,
            progress=interrupt,
        )
    assert (tmp_path / "out.parquet").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.parquet"]
    assert not [t for t in threading.enumerate() if t.name.startswith("lockgate-mask")]


def test_nothing_to_do_and_bad_input(tmp_path: Path, keyring: Keyring) -> None:
    write_table(tmp_path / "in.csv", customers(5))
    with pytest.raises(PrivacyError, match=r"give masking rules \(--rules\) or use --auto"):
        mask_file(tmp_path / "in.csv", tmp_path / "out.csv")
    with pytest.raises(DataError, match=r"missing\.csv: no such file"):
        mask_file(tmp_path / "missing.csv", tmp_path / "out.csv", auto=True, keyring=keyring)


def test_rules_from_mappings() -> None:
    rules = rules_from([{"column": "a", "op": "redact"}], where="task mask")
    assert rules == [Rule("a", "redact", {}, None, "task mask: rule 1 (column 'a')")]
    with pytest.raises(PrivacyError, match=r"task mask: rule 1: unknown key 'colum'"):
        rules_from([{"colum": "a", "op": "redact"}], where="task mask")


def test_empty_input_still_writes_the_masked_schema(tmp_path: Path, keyring: Keyring) -> None:
    write_table(tmp_path / "in.parquet", customers(10).slice(0, 0))
    summary = mask_file(
        tmp_path / "in.parquet",
        tmp_path / "out.parquet",
        rules=[Rule("ssn", "redact", classification="pii.ssn")],
        keyring=keyring,
    )
    assert summary.rows == 0
    schema = pq.read_schema(tmp_path / "out.parquet")
    assert tag_of(schema.field("ssn")) == "pii.ssn/redacted"


def test_free_text_is_redacted_once_per_distinct_value_and_stays_plain_text() -> None:
    table = pa.table(
        {"notes": ["write to ann@example.com", "no issues", "write to ann@example.com", None]}
    )
    out = mask_table(table, [Rule("notes", "redact_text", classification="free_text")])
    assert out.schema.field("notes").type == pa.string()
    assert out.column("notes").to_pylist() == [
        "write to [EMAIL]",
        "no issues",
        "write to [EMAIL]",
        None,
    ]
    assert tag_of(out.schema.field("notes")) == "free_text/redacted"


def test_auto_masking_a_masked_parquet_file_changes_nothing(
    tmp_path: Path, keyring: Keyring
) -> None:
    write_table(tmp_path / "in.parquet", customers())
    mask_file(tmp_path / "in.parquet", tmp_path / "once.parquet", auto=True, keyring=keyring)
    again = mask_file(
        tmp_path / "once.parquet", tmp_path / "twice.parquet", auto=True, keyring=keyring
    )
    assert again.rules == []
    assert pq.read_table(tmp_path / "twice.parquet").equals(
        pq.read_table(tmp_path / "once.parquet")
    )


def _fpe_rules(tmp_path: Path, op: str) -> list[Rule]:
    return load_rules(_rules_file(tmp_path, f"rules:\n  - column: ref\n    op: {op}\n"))


def test_fpe_auto_alphabet_is_decided_once_for_every_batch(
    tmp_path: Path, keyring: Keyring
) -> None:
    # the first batch holds letters and digits, a later one digits only, another only nulls:
    # every batch uses the alphabet decided on the first, which the output records
    refs: list[str | None] = [f"AB{i:04d}" if i % 2 else "123456" for i in range(16)]
    refs += ["123456", "654321"] * 8 + [None] * 16 + [f"ZZ{i:04d}" for i in range(16)]
    write_table(tmp_path / "in.parquet", pa.table({"ref": refs}))
    mask_file(
        tmp_path / "in.parquet",
        tmp_path / "enc.parquet",
        rules=_fpe_rules(tmp_path, "fpe"),
        keyring=keyring,
        batch_rows=16,
    )
    enc = read_table(tmp_path / "enc.parquet")
    assert enc.schema.field("ref").metadata[b"lockgate.alphabet"] == b"upper_alphanumeric"
    cipher: dict[str, str] = {}
    for plain, token in zip(refs, enc["ref"].to_pylist(), strict=True):
        assert (plain is None) == (token is None)
        if plain is not None:
            assert len(token) == len(plain) and token != plain
            assert cipher.setdefault(plain, token) == token  # same value, same ciphertext
    mask_file(
        tmp_path / "enc.parquet",
        tmp_path / "dec.parquet",
        rules=_fpe_rules(tmp_path, "fpe_decrypt"),
        keyring=keyring,
        batch_rows=16,
    )
    assert read_table(tmp_path / "dec.parquet")["ref"].to_pylist() == refs


def test_fpe_auto_alphabet_fails_on_a_later_value_that_does_not_fit(
    tmp_path: Path, keyring: Keyring
) -> None:
    refs = [f"{100000 + i}" for i in range(40)] + ["AB123456"]
    write_table(tmp_path / "in.parquet", pa.table({"ref": refs}))
    with pytest.raises(PrivacyError) as err:
        mask_file(
            tmp_path / "in.parquet",
            tmp_path / "enc.parquet",
            rules=_fpe_rules(tmp_path, "fpe"),
            keyring=keyring,
            batch_rows=16,
        )
    message = str(err.value)
    assert "row 40 of column 'ref'" in message and "'digits'" in message
    assert "alphabet: upper_alphanumeric" in message
    assert not (tmp_path / "enc.parquet").exists()


def test_same_file_in_and_out_is_refused(
    tmp_path: Path, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_table(tmp_path / "customers.csv", customers(5))
    before = (tmp_path / "customers.csv").read_bytes()
    monkeypatch.chdir(tmp_path)
    for out in ("customers.csv", "./customers.csv"):
        with pytest.raises(DataError, match="is the input file too"):
            mask_file("customers.csv", out, auto=True, keyring=keyring)
    assert (tmp_path / "customers.csv").read_bytes() == before


def test_output_folder_is_named_as_a_folder(tmp_path: Path, keyring: Keyring) -> None:
    write_table(tmp_path / "in.csv", customers(5))
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError, match=r"out: is a folder; give a file name"):
        mask_file(tmp_path / "in.csv", tmp_path / "out", auto=True, keyring=keyring)


def test_rules_without_classification_take_the_class_from_tags_or_a_scan(
    tmp_path: Path, keyring: Keyring
) -> None:
    table = customers(60)
    email = table.schema.get_field_index("email")
    table = table.set_column(
        email, with_tag(table.schema.field(email), "pii.email"), table.column(email)
    )
    write_table(tmp_path / "in.parquet", table)
    rules = rules_from(
        [
            {"column": "full_name", "op": "fake"},  # no tag in the input: scanned
            {"column": "email", "op": "hash"},  # tagged in the input
        ]
    )
    summary = mask_file(
        tmp_path / "in.parquet", tmp_path / "out.parquet", rules=rules, keyring=keyring
    )
    out = pq.read_schema(tmp_path / "out.parquet")
    assert tag_of(out.field("full_name")) == "pii.name/faked"
    assert tag_of(out.field("email")) == "pii.email/hashed"
    assert summary.tags["full_name"] == "pii.name/faked"
    assert tag_of(out.field("sku")) is None  # not ruled: not scanned, not tagged


def test_auto_masks_ibans_to_their_last_four_characters() -> None:
    rule = auto_rule("iban", "pii.iban")
    assert rule is not None
    out = mask_table(pa.table({"iban": ["GB56MUBC81590830166131"]}), [rule])
    assert out["iban"].to_pylist() == ["******************6131"]


def test_an_unknown_pinned_key_names_the_rules_file_and_rule(
    tmp_path: Path, keyring: Keyring
) -> None:
    write_table(tmp_path / "in.csv", customers(5))
    rules = load_rules(
        _rules_file(
            tmp_path, "rules:\n  - column: email\n    op: tokenize\n    options: {key: k9}\n"
        )
    )
    with pytest.raises(PrivacyError) as err:
        mask_file(tmp_path / "in.csv", tmp_path / "out.csv", rules=rules, keyring=keyring)
    message = str(err.value)
    assert "rules.yaml: rule 1 (line 2)" in message and "'k9'" in message
    assert not (tmp_path / "out.csv").exists()


def test_errors_name_the_row_of_the_file_not_of_the_batch(tmp_path: Path, keyring: Keyring) -> None:
    # row 37 (in the third batch of 16) is too short for FF1, and is named as row 37
    refs = [f"{100000 + i}" for i in range(50)]
    refs[37] = "12"
    write_table(tmp_path / "in.parquet", pa.table({"ref": refs}))
    rules = load_rules(
        _rules_file(tmp_path, "rules:\n  - column: ref\n    op: fpe\n"
                    "    options: {alphabet: digits}\n")
    )  # fmt: skip
    with pytest.raises(PrivacyError, match=r"row 37 of column 'ref'"):
        mask_file(
            tmp_path / "in.parquet", tmp_path / "out.parquet", rules=rules, keyring=keyring,
            batch_rows=16,
        )  # fmt: skip
    # decrypt: a value altered at row 41 of an encrypted file
    mask_file(
        tmp_path / "in.parquet",
        tmp_path / "enc.parquet",
        rules=load_rules(_rules_file(tmp_path, "rules:\n  - column: ref\n    op: encrypt\n")),
        keyring=keyring,
    )
    enc = pq.read_table(tmp_path / "enc.parquet")
    values = enc["ref"].to_pylist()
    values[41] = "not encrypted"
    altered = enc.set_column(0, enc.schema.field(0), pa.array(values, enc.schema.field(0).type))
    pq.write_table(altered, tmp_path / "altered.parquet")
    with pytest.raises(PrivacyError, match=r"row 41 of column 'ref'"):
        mask_file(
            tmp_path / "altered.parquet",
            tmp_path / "dec.parquet",
            rules=load_rules(_rules_file(tmp_path, "rules:\n  - column: ref\n    op: decrypt\n")),
            keyring=keyring,
            batch_rows=16,
        )


@pytest.mark.parametrize("command", ["scan", "mask"])
def test_a_duplicated_csv_column_is_one_clear_error(
    tmp_path: Path, keyring: Keyring, command: str
) -> None:
    src = tmp_path / "dup.csv"
    src.write_text("email,email,name\na@example.com,b@example.com,Bob\n", encoding="utf-8")
    message = r"dup\.csv: column 'email' appears 2 times in the header; give each column"
    with pytest.raises(DataError, match=message):
        if command == "scan":
            scan(src)
        else:
            mask_file(src, tmp_path / "out.csv", auto=True, keyring=keyring)
    assert not (tmp_path / "out.csv").exists()


def _nested_rows() -> list[str]:
    import json

    return [
        json.dumps(
            {
                "id": i,
                "user": {"email": f"user{i}@example.com", "phone": "+1 415 555 0100"},
                "cc_emails": [f"cc{i}@example.org", f"other{i}@example.net"],
                "meta": {"n": i},
            }
        )
        for i in range(30)
    ]


def test_nested_columns_are_scanned_and_auto_masked_as_json_text(
    tmp_path: Path, keyring: Keyring
) -> None:
    src = tmp_path / "nested.jsonl"
    src.write_text("\n".join(_nested_rows()) + "\n", encoding="utf-8")
    report = scan(src)
    assert report.column("user").classification == "free_text"
    assert report.column("cc_emails").classification == "free_text"
    assert report.column("meta").classification is None
    assert "JSON" in report.column("meta").reason
    mask_file(src, tmp_path / "out.jsonl", auto=True, keyring=keyring)
    text = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    assert "@example" not in text and "555" not in text
    out = read_table(tmp_path / "out.jsonl")
    assert out["user"].to_pylist()[0] == '{"email": "[EMAIL]", "phone": "[PHONE]"}'
    assert out["cc_emails"].to_pylist()[0] == '["[EMAIL]", "[EMAIL]"]'
    assert out["meta"].to_pylist()[0] == {"n": 0}  # no PII: kept as it was
    # Parquet keeps the struct type on input and records the masked text's tag
    write_table(tmp_path / "nested.parquet", read_table(src))
    mask_file(tmp_path / "nested.parquet", tmp_path / "out.parquet", auto=True, keyring=keyring)
    assert scan(tmp_path / "out.parquet").column("user").classification == "free_text/redacted"
