"""Column classification: sampling, content and name together, decoys, the three file formats."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bench.privacy_corpus import luhn_check_digit

from lockgate.errors import DataError, PrivacyError
from lockgate.io.formats import write_table
from lockgate.model.classification import with_tag
from lockgate.privacy.classify import classify_values, name_words
from lockgate.privacy.scan import sample_rows, scan, scan_table

FIRST = ["James", "Mary", "Robert", "Patricia", "Michael", "Jennifer", "William", "Linda",
         "David", "Elizabeth", "Thomas", "Susan", "Daniel", "Karen", "Anna", "Lukas", "Sophie",
         "Pierre", "Camille", "Carlos", "Lucia", "Marco", "Giulia", "Jan", "Emma"]  # fmt: skip
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson",
        "Anderson", "Taylor", "Moore", "Martin", "Schmidt", "Schneider", "Dubois", "Moreau",
        "Fernandez", "Lopez", "Rossi", "Bianchi", "de Vries", "Jansen", "Clark", "Lewis"]  # fmt: skip
STREETS = ["Main Street", "Oak Avenue", "Maple Drive", "Elm Street", "Park Road", "Cedar Lane",
           "Washington Blvd", "Lake View Drive", "Pine Street", "Hill Road"]  # fmt: skip
CITIES = ["Springfield", "Portland", "Austin", "Denver", "Boston", "Madison", "Salem"]
PHONES = ["+1 415 555 01{:02d}", "+1 212 736 45{:02d}", "+44 20 7946 09{:02d}",
          "(415) 736-01{:02d}", "+33 1 42 68 53 {:02d}", "+1 650-253-00{:02d}"]  # fmt: skip

EXPECTED = {
    "customer_id": None,
    "first_name": "pii.name",
    "full_name": "pii.name",
    "email": "pii.email",
    "phone": "pii.phone",
    "ssn": "pii.ssn",
    "card_number": "pci.pan",
    "iban": "pii.iban",
    "ip_address": "pii.ip",
    "date_of_birth": "pii.dob",
    "street_address": "pii.address",
    "notes": "free_text",
    "city": None,
    "status": None,
    "order_total": None,
    "sku": None,
    "order_no": None,
    "app_version": None,
    "tracking_no": None,
    "ship_date": None,
}


def _iban(rng: random.Random) -> str:
    bban = "".join(rng.choice("0123456789") for _ in range(18))
    check = 98 - int(bban + "131400") % 97  # D=13 E=14, then "00"
    raw = f"DE{check:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def customers(n: int = 300, seed: int = 1) -> pa.Table:
    """A small customer table with PII columns and look-alike decoys, values valid where real."""
    rng = random.Random(seed)
    rows: dict[str, list[object]] = {name: [] for name in EXPECTED}
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower().replace(' ', '')}{i}@example.com"
        card = rng.choice("45") + "".join(rng.choice("0123456789") for _ in range(14))
        card += luhn_check_digit(card)
        tracking = "".join(rng.choice("0123456789") for _ in range(15))
        tracking += str((int(luhn_check_digit(tracking)) + 1 + rng.randrange(9)) % 10)
        ship = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(300))
        rows["customer_id"].append(1000 + i)
        rows["first_name"].append(first)
        rows["full_name"].append(f"{first} {last}")
        rows["email"].append(email)
        rows["phone"].append(rng.choice(PHONES).format(rng.randrange(100)))
        rows["ssn"].append(
            f"{rng.randrange(101, 665)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
        )
        rows["card_number"].append(" ".join(card[j : j + 4] for j in range(0, 16, 4)))
        rows["iban"].append(_iban(rng))
        rows["ip_address"].append(".".join(str(rng.randrange(1, 255)) for _ in range(4)))
        rows["date_of_birth"].append(dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(20000)))
        rows["street_address"].append(f"{rng.randrange(1, 9999)} {rng.choice(STREETS)}")
        rows["notes"].append(
            f"Customer {first} {last} called about the late delivery, reach at {email}"
            if i % 3 == 0
            else rng.choice(
                [
                    "no issues reported by the customer this month",
                    "asked about delivery times for the blue lamp",
                    "prefers to be contacted in the morning",
                ]
            )  # fmt: skip
        )
        rows["city"].append(rng.choice(CITIES))
        rows["status"].append(rng.choice(["active", "inactive", "pending"]))
        rows["order_total"].append(round(rng.uniform(5, 500), 2))
        rows["sku"].append(
            f"{rng.randrange(101, 665)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
        )
        rows["order_no"].append(
            f"{rng.randrange(201, 999)}-{rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}"
        )
        rows["app_version"].append(".".join(str(rng.randrange(0, 30)) for _ in range(4)))
        rows["tracking_no"].append(tracking)
        rows["ship_date"].append(ship)
    return pa.table(rows)


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_scan_classifies_each_format(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"customers.{ext}"
    write_table(path, customers())
    report = scan(path)
    assert report.rows_sampled == 300
    assert report.classes() == EXPECTED
    for column in report.columns:
        assert 0.0 <= column.confidence <= 1.0
        if column.classification is not None:
            assert column.confidence >= 0.5, column


def test_json_has_the_issue_shape(tmp_path: Path) -> None:
    write_table(tmp_path / "c.parquet", customers(50))
    doc = json.loads(json.dumps(scan(tmp_path / "c.parquet", sample_size=20).to_json()))
    assert doc["source"] == str(tmp_path / "c.parquet")
    assert doc["rows_sampled"] == 20
    email = next(c for c in doc["columns"] if c["name"] == "email")
    assert email["classification"] == "pii.email"
    assert isinstance(email["confidence"], float)
    sku = next(c for c in doc["columns"] if c["name"] == "sku")
    assert sku["classification"] is None


def test_sample_is_deterministic_and_spans_the_whole_input() -> None:
    table = pa.table({"i": pa.array(range(100_000))})
    first, seen = sample_rows(table.to_batches(max_chunksize=7000), table.schema, 500, seed=3)
    again, _ = sample_rows(table.to_batches(max_chunksize=1234), table.schema, 500, seed=3)
    other, _ = sample_rows(table.to_batches(max_chunksize=7000), table.schema, 500, seed=4)
    assert seen == 100_000
    picked = first.column("i").to_pylist()
    assert picked == again.column("i").to_pylist()  # batch sizes do not change the sample
    assert picked != other.column("i").to_pylist()
    assert len(set(picked)) == 500
    assert max(picked) > 90_000 and min(picked) < 10_000
    in_each_tenth = {p // 10_000 for p in picked}
    assert in_each_tenth == set(range(10))


def test_scan_is_deterministic(tmp_path: Path) -> None:
    write_table(tmp_path / "c.csv", customers(2000, seed=9))
    one = scan(tmp_path / "c.csv", sample_size=200, seed=7).to_json()
    two = scan(tmp_path / "c.csv", sample_size=200, seed=7).to_json()
    assert one == two


def test_a_small_sample_still_classifies(tmp_path: Path) -> None:
    write_table(tmp_path / "c.parquet", customers(400))
    report = scan(tmp_path / "c.parquet", sample_size=60)
    assert report.rows_sampled == 60
    assert report.classes() == EXPECTED


def test_decoys_are_not_pii() -> None:
    report = scan_table(customers().select(["sku", "order_no", "app_version", "tracking_no",
                                            "ship_date", "order_total", "customer_id"]))  # fmt: skip
    assert report.classes() == dict.fromkeys(report.classes())


def test_the_name_decides_between_dates() -> None:
    born = pa.array([dt.date(1960, 1, 1) + dt.timedelta(days=37 * i) for i in range(200)])
    table = pa.table({"birthDate": born, "created_at": born, "DOB": born.cast(pa.string())})
    classes = scan_table(table).classes()
    assert classes == {"birthDate": "pii.dob", "created_at": None, "DOB": "pii.dob"}


def test_timestamps_integers_and_empty_columns() -> None:
    born = [dt.datetime(1970, 5, 17, 0, 0) + dt.timedelta(days=400 * i) for i in range(100)]
    table = pa.table(
        {
            "date_of_birth": pa.array(born, pa.timestamp("us")),
            "quantity": pa.array(range(100)),
            "nothing": pa.array([None] * 100, pa.string()),
            "blank": pa.array([""] * 100),
            "flag": pa.array([True] * 100),
        }
    )
    report = scan_table(table)
    assert report.classes() == {
        "date_of_birth": "pii.dob",
        "quantity": None,
        "nothing": None,
        "blank": None,
        "flag": None,
    }
    assert report.column("nothing").confidence == 0.0
    assert report.column("nothing").sampled == 0


def test_secrets_column() -> None:
    rng = random.Random(5)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    keys = ["AKIA" + "".join(rng.choice(alphabet) for _ in range(16)) for _ in range(100)]
    report = scan_table(pa.table({"access_key": keys}))
    assert report.classes() == {"access_key": "secret.aws_access_key_id"}


def test_transformed_tag_is_reported_and_raw_pii_in_a_tagged_column_is_not_hidden() -> None:
    table = customers(100).select(["email", "ssn"])
    schema = pa.schema(
        [
            with_tag(table.schema.field("email"), "pii.email/tokenized"),
            with_tag(table.schema.field("ssn"), "pii.ssn/redacted"),
        ]
    )
    redacted = pa.table(
        {"email": table.column("email"), "ssn": pa.array(["[REDACTED]"] * 100)}, schema=schema
    )
    classes = scan_table(redacted).classes()
    assert classes == {"email": "pii.email/tokenized", "ssn": "pii.ssn/redacted"}
    wrongly_tagged = pa.table(
        {"email": table.column("email")},
        schema=pa.schema([with_tag(schema.field(0), "pii.ip/masked")]),
    )
    assert scan_table(wrongly_tagged).classes() == {"email": "pii.email"}


def test_files_bigger_than_a_batch_are_sampled_across(tmp_path: Path) -> None:
    head = customers(200_000 // 100, seed=2)
    table = pa.concat_tables([head] * 100)  # 200,000 rows, read in several batches
    pq.write_table(table, tmp_path / "big.parquet", row_group_size=20_000)
    report = scan(tmp_path / "big.parquet", sample_size=500)
    assert report.rows_seen == 200_000
    assert report.rows_sampled == 500
    assert report.classes() == EXPECTED


def test_scan_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.csv: no such file"):
        scan(tmp_path / "missing.csv")
    with pytest.raises(PrivacyError, match="sample size must be at least 1"):
        scan(tmp_path / "missing.csv", sample_size=0)
    with pytest.raises(DataError, match=r"unknown file extension \.xlsx"):
        scan(tmp_path / "book.xlsx")


def test_column_names_become_context_words() -> None:
    assert name_words("dateOfBirth") == "date of birth"
    assert name_words("customer_DOB") == "customer date of birth"
    assert name_words("IPAddress") == "ip address"
    assert name_words("home-phone") == "home phone"


def test_classify_values_reports_evidence() -> None:
    result = classify_values("contact", [f"user{i}@example.com" for i in range(50)] + ["n/a"] * 5)
    assert result.classification == "pii.email"
    assert result.matches["pii.email"] == pytest.approx(50 / 55)
    assert result.sampled == 55


def test_a_bare_name_column_needs_a_person() -> None:
    products = ["Blue Lamp", "Oak Table", "Garden Hose", "Coffee Grinder", "Desk Chair",
                "Wool Blanket", "Steel Kettle", "Paper Towels"]  # fmt: skip
    people = [f"{f} {la}" for f in FIRST[:10] for la in LAST[:10]]
    table = pa.table(
        {
            "product_name": (products * 13)[:100],
            "company_name": (["Acme Corp", "Globex Inc", "Initech LLC", "Umbrella plc"] * 25),
            "customer_name": people,
        }
    )
    assert scan_table(table).classes() == {
        "product_name": None,
        "company_name": None,
        "customer_name": "pii.name",
    }


def test_a_column_mixing_entities_is_its_most_common_one() -> None:
    emails = [f"user{i}@example.com" for i in range(40)]
    phones = [PHONES[0].format(i) for i in range(30)]
    result = classify_values("contact", emails + phones + ["n/a"] * 30)
    assert result.classification == "pii.email"
    assert result.confidence == pytest.approx(0.4)


COMMENTS = ["great service, thanks", "delivery was late again", "n/a", "ok",
            "would buy again", "the box was damaged", "call me back please", "fine"]  # fmt: skip


@pytest.mark.parametrize("every", [10, 20])
def test_sparse_pii_in_a_text_column_is_found(every: int) -> None:
    rng = random.Random(every)
    values = [
        f"please reply to {rng.choice(FIRST).lower()}{i}@example.com" if i % (2 * every) == 0
        else f"call me on {PHONES[i % len(PHONES)].format(i % 100)}" if i % every == 0
        else rng.choice(COMMENTS)
        for i in range(400)
    ]  # fmt: skip
    result = classify_values("comment", values)
    assert result.classification == "free_text"
    assert 0.5 < result.confidence < 1.0  # reflects the share, not "sure it is clean"


def test_mostly_na_with_some_emails_is_found() -> None:
    values = [f"user{i}@example.com" if i % 10 == 0 else "n/a" for i in range(300)]
    result = classify_values("contact_info", values)
    assert result.classification == "free_text"


def test_a_single_stray_span_does_not_classify() -> None:
    values = ["user1@example.com"] + ["n/a"] * 299
    assert classify_values("remarks", values).classification is None
