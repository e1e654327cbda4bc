"""The shipped policy packs on realistic tables: each table is masked with lockgate's own
operations (so the tags are the ones a pipeline produces) and judged by the gate's decision
function, exactly as a write into the zone would be."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from lockgate.errors import ConfigError
from lockgate.governance.gate import Governance, decide
from lockgate.governance.policy import evaluate, load_policy, parse_pack, shipped_pack
from lockgate.governance.zones import load_zones
from lockgate.io.dataset import Dataset
from lockgate.model.classification import with_tag
from lockgate.privacy.keys import Keyring
from lockgate.privacy.masking import mask_table, rules_from

KEYS = Keyring.generate()


def _gov(tables: dict | None = None, root: Path = Path("/p")) -> Governance:
    tables = tables or {}
    return Governance(root, load_zones(tables, root), load_policy(tables, root), "sqlite://")


def _tagged(columns: dict[str, list], tags: dict[str, str]) -> pa.Table:
    table = pa.table(columns)
    return table.cast(pa.schema([with_tag(f, tags.get(f.name)) for f in table.schema]))


def _judge(
    table: pa.Table, zone: str, source_zone: str = "prod", tables: dict | None = None
) -> dict[str, set[str]]:
    """{rule id: columns it refuses} for writing `table` into `zone` from `source_zone`."""
    gov = _gov(tables)
    decision, checks = decide(
        gov,
        Dataset("/p/out.parquet", zone=zone),
        table.schema,
        [Dataset("/p/in.parquet", zone=source_zone)],
        sample=table,
    )
    out: dict[str, set[str]] = {}
    for v in decision.violations:
        out.setdefault(v.rule, set()).add(v.column or "*")
    from lockgate.governance.gate import _mismatches

    for check in checks:
        if _mismatches(table, check):
            out.setdefault(check.rule, set()).add(check.column)
    return out


def _mask(table: pa.Table, rules: list[dict]) -> pa.Table:
    return mask_table(table, rules_from(rules), KEYS)


# -- GDPR ---------------------------------------------------------------------------------------
CUSTOMERS = _tagged(
    {
        "customer_id": [101, 102, 103],
        "full_name": ["Ann Lee", "Bob Stone", "Carla Diaz"],
        "email": ["ann@example.org", "bob@example.net", "carla@example.com"],
        "phone": ["+49 30 1234567", "+33 1 23 45 67 89", "+1 212 555 0199"],
        "ssn": ["123-45-6789", "234-56-7890", "345-67-8901"],
        "iban": ["DE89370400440532013000", "FR1420041010050500013M02606", "GB82WEST12345698765432"],
        "date_of_birth": ["1984-02-11", "1979-12-01", "1990-07-30"],
        "notes": ["call Ann at +49 30 1234567", "VIP", "prefers email"],
        "country": ["DE", "FR", "US"],
    },
    {
        "full_name": "pii.name",
        "email": "pii.email",
        "phone": "pii.phone",
        "ssn": "pii.ssn",
        "iban": "pii.iban",
        "date_of_birth": "pii.dob",
        "notes": "free_text",
    },
)
GDPR_MASKING = [
    {"column": "full_name", "op": "tokenize"},
    {"column": "email", "op": "tokenize"},
    {"column": "phone", "op": "tokenize"},
    {"column": "ssn", "op": "redact"},
    {"column": "iban", "op": "mask", "options": {"keep_last": 4, "format": "alphanumeric"}},
    {"column": "date_of_birth", "op": "generalize", "options": {"to": "year", "as_text": True}},
    {"column": "notes", "op": "redact_text"},
]


def test_gdpr_refuses_raw_personal_data_outside_prod() -> None:
    found = _judge(CUSTOMERS, "staging")
    assert found["gdpr.pseudonymise"] == {
        "full_name",
        "email",
        "phone",
        "ssn",
        "iban",
        "date_of_birth",
    }
    assert found["gdpr.minimise-identifiers"] == {"ssn", "iban"}
    assert found["gdpr.free-text"] == {"notes"}
    assert "country" not in set().union(*found.values())


def test_gdpr_admits_the_masked_table_and_prod_admits_the_raw_one() -> None:
    masked = _mask(CUSTOMERS, GDPR_MASKING)
    assert _judge(masked, "staging") == {}
    assert _judge(CUSTOMERS, "prod") == {}


def test_gdpr_minimisation_removes_identifiers_rather_than_hash_them() -> None:
    hashed = _mask(
        CUSTOMERS, [*GDPR_MASKING[:3], {"column": "ssn", "op": "hash"}, *GDPR_MASKING[4:]]
    )
    assert _judge(hashed, "ci") == {"gdpr.minimise-identifiers": {"ssn"}}


def test_gdpr_warns_about_wide_personal_tables_without_refusing_them() -> None:
    wide = _tagged(
        {f"c{i}": ["x"] for i in range(10)}, {f"c{i}": "pii.name/tokenized" for i in range(10)}
    )
    gov = _gov()
    decision, _ = decide(gov, Dataset("/p/o.parquet", zone="analytics"), wide.schema, [])
    assert [(v.rule, v.severity) for v in decision.violations] == [
        ("gdpr.max-personal-columns", "warn")
    ]
    assert decision.outcome == "allow"


# -- HIPAA --------------------------------------------------------------------------------------
PATIENTS = _tagged(
    {
        "mrn": ["MRN-0001", "MRN-0002", "MRN-0003"],
        "name": ["Ann Lee", "Bob Stone", "Carla Diaz"],
        "zip": ["02134", "10001", "03601"],
        "dob": ["1984-02-11", "1979-12-01", "1990-07-30"],
        "email": ["ann@example.org", "bob@example.net", "carla@example.com"],
        "ip": ["203.0.113.7", "198.51.100.4", "192.0.2.10"],
        "diagnosis": ["J45", "E11", "I10"],
    },
    {
        "mrn": "phi.mrn",
        "name": "pii.name",
        "zip": "pii.zip",
        "dob": "pii.dob",
        "email": "pii.email",
        "ip": "pii.ip",
    },
)
SAFE_HARBOR = [
    {"column": "mrn", "op": "redact"},
    {"column": "name", "op": "nullify"},
    {"column": "zip", "op": "generalize", "options": {"to": "zip3"}},
    {"column": "dob", "op": "generalize", "options": {"to": "year", "as_text": True}},
    {"column": "email", "op": "redact"},
    {"column": "ip", "op": "redact"},
]


def test_hipaa_safe_harbor_outside_the_phi_zone() -> None:
    found = _judge(PATIENTS, "analytics", source_zone="phi")
    assert found["hipaa.numbers"] == {"mrn"}
    assert found["hipaa.names"] == {"name"}
    assert found["hipaa.zip"] == {"zip"}
    assert found["hipaa.dates"] == {"dob"}
    assert found["hipaa.contact"] == {"email"}
    assert found["hipaa.network"] == {"ip"}

    deidentified = _mask(PATIENTS, SAFE_HARBOR)
    assert deidentified.column("zip").to_pylist() == ["021", "100", "000"]  # 036: < 20,000 people
    hipaa = {k: v for k, v in _judge(deidentified, "analytics", source_zone="phi").items()}
    assert not any(rule.startswith("hipaa.") for rule in hipaa), hipaa


def test_hipaa_refuses_tokens_which_are_not_safe_harbor() -> None:
    tokenized = _mask(
        PATIENTS, [*SAFE_HARBOR[:4], {"column": "email", "op": "tokenize"}, SAFE_HARBOR[5]]
    )
    assert _judge(tokenized, "analytics", source_zone="phi")["hipaa.contact"] == {"email"}


def test_hipaa_checks_the_generalised_values_themselves() -> None:
    to_month = {"column": "dob", "op": "generalize", "options": {"to": "month", "as_text": True}}
    months = _mask(PATIENTS, [*SAFE_HARBOR[:3], to_month, *SAFE_HARBOR[4:]])
    # "1984-02" keeps the month: the tag says generalized, the values say too precise
    assert months.column("dob").to_pylist()[0] == "1984-02"
    assert _judge(months, "analytics", source_zone="phi") == {"hipaa.dates": {"dob"}}
    five_digits = _tagged({"zip": ["02134"]}, {"zip": "pii.zip/generalized"})
    assert _judge(five_digits, "analytics", source_zone="phi") == {"hipaa.zip": {"zip"}}
    # removed values have nothing left to check: a redacted ZIP passes
    redacted = _tagged({"zip": ["[REDACTED]"]}, {"zip": "pii.zip/redacted"})
    assert _judge(redacted, "analytics", source_zone="phi") == {}


def test_hipaa_applies_only_to_data_from_the_phi_zone() -> None:
    found = _judge(PATIENTS, "analytics", source_zone="prod")
    assert not any(rule.startswith("hipaa.") for rule in found)


# -- PCI DSS ------------------------------------------------------------------------------------
PAYMENTS = _tagged(
    {
        "payment_id": [1, 2, 3],
        "pan": ["4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009"],
        "cvv": ["123", "456", "7890"],
        "amount": [10.5, 99.0, 1200.0],
    },
    {"pan": "pci.pan", "cvv": "pci.cvv"},
)


@pytest.mark.parametrize(
    "rule",
    [
        {"column": "pan", "op": "truncate"},
        {"column": "pan", "op": "tokenize"},
        {"column": "pan", "op": "mask", "options": {"keep_last": 4}},
        {"column": "pan", "op": "encrypt"},
    ],
    ids=["truncated", "tokenized", "masked", "encrypted"],
)
def test_pci_admits_protected_card_numbers_outside_the_cde(rule: dict) -> None:
    table = _mask(PAYMENTS, [rule, {"column": "cvv", "op": "nullify"}])
    assert _judge(table, "staging") == {}


def test_pci_refuses_raw_card_numbers_outside_the_cde_and_cvv_anywhere() -> None:
    assert _judge(PAYMENTS, "staging") == {
        "pci.pan-outside-cde": {"pan"},
        "pci.sensitive-authentication-data": {"cvv"},
    }
    # inside the cardholder-data environment the PAN may be raw; the CVV never is
    assert _judge(PAYMENTS, "cde", source_zone="cde") == {
        "pci.sensitive-authentication-data": {"cvv"}
    }


# -- SOC 2 --------------------------------------------------------------------------------------
def test_soc2_keeps_credentials_out_of_lower_zones() -> None:
    table = _tagged(
        {"service": ["billing"], "api_key": ["AKIAIOSFODNN7EXAMPLE"]},
        {"api_key": "secret.aws_access_key_id"},
    )
    assert _judge(table, "ci") == {"soc2.no-credentials-in-data": {"api_key"}}
    redacted = _mask(table, [{"column": "api_key", "op": "redact"}])
    assert _judge(redacted, "ci") == {}
    assert shipped_pack("soc2").evidence == (
        "changes",
        "access",
        "decisions",
        "waivers",
        "secrets",
        "audit",
    )


# -- packs as data ------------------------------------------------------------------------------
def test_a_project_pack_extends_and_overrides_the_shipped_ones(tmp_path: Path) -> None:
    (tmp_path / "ours.yaml").write_text(
        "name: ours\nrules:\n"
        "  - id: ours.no-phones-in-public\n    classes: [pii.phone]\n    where: {zones: [public]}\n"
        "    allow: [removed]\n"
        # replaces the shipped rule of the same id: hashing the SSN is fine for us
        "  - id: gdpr.minimise-identifiers\n    classes: [pii.ssn]\n    where: {below: prod}\n"
        "    allow: [removed, hashed]\n"
    )
    tables = {"policy": {"files": ["ours.yaml"], "disable": ["gdpr.max-personal-columns"]}}
    policy = load_policy(tables, tmp_path)
    ids = [r.id for r in policy.rules]
    assert ids.count("gdpr.minimise-identifiers") == 1
    assert "ours.no-phones-in-public" in ids and "gdpr.max-personal-columns" not in ids
    zones = load_zones(tables, tmp_path)
    result = evaluate(
        policy,
        zones,
        "public",
        ["prod"],
        [("phone", "pii.phone/tokenized"), ("ssn", "pii.ssn/hashed")],
    )
    assert [(v.rule, v.column) for v in result.violations] == [
        ("ours.no-phones-in-public", "phone")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\nrules: [{id: x.a, classes: [pii.*], allow: [tokenised]}]",
            "unknown form 'tokenised'; did you mean 'tokenized'?",
        ),
        ("name: x\nrules: [{id: x.a, allow: [removed]}]", "classes must list classifications"),
        (
            "name: x\nrules: [{id: x.a, classes: [pii.*], wher: {below: prod}}]",
            "unknown key 'wher'",
        ),
        (
            "name: x\nrules: [{id: x.a, classes: [pii.*], values: '([a-z'}]",
            "not a valid regular expression",
        ),
        (
            "name: x\nrules:\n  - id: x.a\n    classes: [a]\n  - id: x.a\n    classes: [b]\n",
            "rule id 'x.a' is used twice",
        ),
        ("name: x\nrules: [\n", "x.yaml:3: invalid YAML"),
        ("rules: []", "name must be a short lower-case word"),
        (
            "name: x\nrules: [{id: x.a, classes: [pii.zip], values: '^(?=0)[0-9]{3}$'}]",
            "no look-around or back-references",
        ),
    ],
)
def test_malformed_packs_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(
        ConfigError, match=message.replace("?", r"\?").replace("(", r"\(").replace("[", r"\[")
    ):
        parse_pack(text, "x.yaml")


def test_a_rule_naming_an_unknown_zone_is_refused(tmp_path: Path) -> None:
    from lockgate.governance.policy import check_zones

    (tmp_path / "ours.yaml").write_text(
        "name: ours\nrules: [{id: ours.a, classes: [pii.*], where: {below: prodd}, allow: [removed]}]\n"
    )
    tables = {"policy": {"files": ["ours.yaml"]}}
    with pytest.raises(ConfigError, match="names zone 'prodd'.*did you mean 'prod'"):
        check_zones(load_policy(tables, tmp_path), load_zones(tables, tmp_path))


def test_zone_patterns_match_server_datasets_however_their_url_is_spelt() -> None:
    tables = {
        "zones": {
            "staging": {"datasets": ["postgresql://staging.internal/shop#*"]},
            "ci": {"datasets": ["postgresql://staging.internal/shop#public.fixtures"]},
        }
    }
    zones = load_zones(tables, Path("/p"))
    key = "postgresql://app:***@Staging.Internal:5432/shop?sslmode=require#public.customers"
    assert zones.place(key).zone == "staging"
    # claimed by two zones: the less trusted one
    assert zones.place(key.replace("customers", "fixtures")).zone == "ci"
    assert zones.place("postgresql://prod.internal/shop#public.customers").zone == "prod"
