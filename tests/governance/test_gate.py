"""The policy gate at every write: a prod table with raw emails and card numbers copied to a
`staging` sink is refused and nothing is written; masked first, it goes through with the
transformed tags; a waiver lets one column through and is audited; untagged data going to a
lower zone is scanned (or blocked, or allowed); values rules check every batch."""

from __future__ import annotations

import json
import sqlite3
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lockgate
from lockgate.api import open_store
from lockgate.authoring.discovery import load_file
from lockgate.config import Project
from lockgate.errors import ConfigError, PolicyViolationError
from lockgate.io.copy import copy
from lockgate.io.dataset import Dataset
from lockgate.model import events as ev
from lockgate.model.classification import tag_of, with_tag

from .helpers import CUSTOMERS, MASK, TOML, make_prod, pipeline_text, provision


@pytest.fixture
def prod(project: Project) -> Project:
    """A project with a prod SQLite database of customers and a staging zone."""
    return make_prod(project)


def _tables(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]


def test_raw_pii_to_staging_is_refused_and_nothing_is_written(prod: Project) -> None:
    result = lockgate.run(provision(prod, masked=False), project=prod)

    assert not result.ok
    load = result.tasks["load"]
    assert load.state == "failed"
    assert "PolicyViolationError" in (load.error or "")
    assert "zone staging" in (load.error or "") and "gdpr.pseudonymise" in (load.error or "")
    assert _tables(prod.root / "staging.db") == []  # not a byte: not even the database file

    store = open_store(prod)
    kinds = [e["kind"] for e in store.events(result.run_id, limit=10_000)]
    assert ev.POLICY_VIOLATION in kinds
    [violation] = [
        json.loads(e["data"])
        for e in store.events(result.run_id, limit=10_000)
        if e["kind"] == ev.POLICY_VIOLATION
    ]
    assert violation["zone"] == "staging" and violation["source_zones"] == ["prod"]
    found = {(v["column"], v["class"], v["rule"]) for v in violation["violations"]}
    assert found == {
        ("email", "pii.email", "gdpr.pseudonymise"),
        ("card", "pci.pan", "pci.pan-outside-cde"),
    }
    extract, load_decision = sorted(
        store.policy_decisions(run_id=result.run_id), key=lambda d: d["id"]
    )
    assert (extract["zone"], extract["decision"]) == ("prod", "allow")  # prod to prod
    decision = load_decision
    assert decision["decision"] == "deny" and decision["zone"] == "staging"
    assert decision["dataset"] == f"sqlite:///{prod.root / 'staging.db'}#customers"


def test_masked_first_it_goes_through_with_the_transformed_tags(prod: Project) -> None:
    result = lockgate.run(provision(prod, masked=True), project=prod)
    assert result.ok, {t.id: t.error for t in result.tasks.values()}

    with sqlite3.connect(prod.root / "staging.db") as conn:
        rows = conn.execute("SELECT id, email, card FROM customers ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3]
    assert all("@" not in r[1] for r in rows)  # tokens, not e-mails
    assert [r[2] for r in rows] == ["1111", "0004", "0009"]

    store = open_store(prod)
    entry = store.dataset(f"sqlite:///{prod.root / 'staging.db'}#customers")
    assert entry is not None
    tags = {f["name"]: f["tag"] for f in entry["schema"]}
    assert tags["email"] == "pii.email/tokenized"
    assert tags["card"] == "pci.pan/truncated"
    decisions = store.policy_decisions(run_id=result.run_id)
    staging = [d for d in decisions if d["zone"] == "staging"]
    assert [d["decision"] for d in staging] == ["allow"]
    assert set(staging[0]["detail"]["rules"]) >= {"gdpr.pseudonymise", "pci.pan-outside-cde"}


def test_a_waiver_lets_one_column_through_and_is_audited(prod: Project) -> None:
    store = open_store(prod)
    waiver = store.add_waiver(
        rule="pci.pan-outside-cde",
        dataset=f"sqlite:///{prod.root / 'staging.db'}#customers",
        columns=["card"],
        zone="staging",
        owner="payments-team",
        reason="card-network certification tests need real test PANs until 2027",
        expires_at=time.time() + 86400,
        actor="alice@laptop",
    )
    # only the email is masked: the raw card goes through under the waiver
    masked_email_only = MASK.replace("        - {column: card, op: truncate}\n", "")
    text = pipeline_text(masked_email_only, "mask", "work/masked.parquet")
    file = prod.root / "pipelines" / "provision.yaml"
    file.write_text(textwrap.dedent(text), encoding="utf-8")
    [pipe] = load_file(file)

    result = lockgate.run(pipe, project=prod)
    assert result.ok, {t.id: t.error for t in result.tasks.values()}
    with sqlite3.connect(prod.root / "staging.db") as conn:
        cards = [r[0] for r in conn.execute("SELECT card FROM customers ORDER BY id")]
    assert cards == [c[2] for c in CUSTOMERS]

    [decision] = [d for d in store.policy_decisions(run_id=result.run_id) if d["zone"] == "staging"]
    assert decision["decision"] == "waived"
    assert decision["detail"]["waivers"] == [waiver["id"]]
    assert [v["column"] for v in decision["detail"]["waived"]] == ["card"]

    audit = [r for r in store.audit_records(limit=10_000) if r.action == "waiver.create"]
    assert [r.target for r in audit] == [waiver["id"]]
    assert audit[0].actor == "alice@laptop"
    assert "card-network certification" in (audit[0].detail or "")

    # the waiver covers the card only: a raw email is still refused
    store.revoke_waiver(waiver["id"], "alice@laptop")
    result = lockgate.run(provision(prod, masked=False), project=prod)
    assert result.tasks["load"].state == "failed"


def _untagged(project: Project) -> Path:
    path = project.root / "contacts.parquet"
    pq.write_table(
        pa.table(
            {
                "id": list(range(50)),
                "contact": [f"user{i}@example.org" for i in range(50)],
                "plan": ["basic"] * 50,
            }
        ),
        path,
    )
    return path


@pytest.mark.parametrize(
    ("mode", "refused"), [("scan", "pii.email"), ("block", "contact: untagged")]
)
def test_untagged_data_to_a_lower_zone_is_scanned_or_blocked(
    prod: Project, monkeypatch: pytest.MonkeyPatch, mode: str, refused: str
) -> None:
    (prod.root / "lockgate.toml").write_text(TOML + f'\n[policy]\nuntagged = "{mode}"\n')
    monkeypatch.chdir(prod.root)
    source = _untagged(prod)
    target = Dataset(f"sqlite:///{prod.root / 'staging.db'}#contacts")
    with pytest.raises(PolicyViolationError, match=refused):
        copy(Dataset(str(source)), target)
    assert _tables(prod.root / "staging.db") == []
    [decision] = open_store(Project.load(prod.root)).policy_decisions()
    assert decision["decision"] == "deny" and decision["run_id"] is None


def test_untagged_data_is_allowed_when_the_policy_says_so(
    prod: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    (prod.root / "lockgate.toml").write_text(TOML + '\n[policy]\nuntagged = "allow"\n')
    monkeypatch.chdir(prod.root)
    done = copy(
        Dataset(str(_untagged(prod))), Dataset(f"sqlite:///{prod.root / 'staging.db'}#contacts")
    )
    assert done.rows == 50


def test_writes_within_a_zone_are_not_scanned(
    prod: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(prod.root)
    done = copy(Dataset(str(_untagged(prod))), Dataset(str(prod.root / "copy.csv")))
    assert done.rows == 50
    [decision] = open_store(prod).policy_decisions()
    assert decision["decision"] == "allow" and decision["detail"]["scanned"] == {}


def _patients(zip_codes: list[str], years: list[str]) -> pa.Table:
    table = pa.table({"zip": zip_codes, "born": years, "visits": [1, 2, 3]})
    fields = [
        with_tag(table.schema.field("zip"), "pii.zip/generalized"),
        with_tag(table.schema.field("born"), "pii.dob/generalized"),
        table.schema.field("visits"),
    ]
    return table.cast(pa.schema(fields))


def test_values_rules_check_the_data_itself(prod: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    (prod.root / "lockgate.toml").write_text(
        '[zones.phi]\ndatasets = ["clinic/**"]\n\n[zones.analytics]\ndatasets = ["lake/**"]\n'
    )
    monkeypatch.chdir(prod.root)
    (prod.root / "clinic").mkdir()
    good = prod.root / "clinic" / "good.parquet"
    pq.write_table(_patients(["021", "100", "000"], ["1980", "1975", "2001"]), good)
    assert copy(Dataset(str(good)), Dataset(str(prod.root / "lake" / "good.parquet"))).rows == 3

    # "generalized", but to 4 digits: HIPAA Safe Harbor wants 3
    bad = prod.root / "clinic" / "bad.parquet"
    pq.write_table(_patients(["0213", "100", "000"], ["1980", "1975", "2001"]), bad)
    with pytest.raises(PolicyViolationError, match="hipaa.zip"):
        copy(Dataset(str(bad)), Dataset(str(prod.root / "lake" / "bad.parquet")))
    assert not (prod.root / "lake" / "bad.parquet").exists()
    written = pq.read_schema(prod.root / "lake" / "good.parquet")
    assert tag_of(written.field("zip")) == "pii.zip/generalized"


def test_an_unknown_zone_is_a_one_line_error(
    prod: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(prod.root)
    with pytest.raises(ConfigError, match=r"unknown zone 'stagign'; did you mean 'staging'\?"):
        copy(
            Dataset(str(_untagged(prod))),
            Dataset(str(prod.root / "x.parquet"), zone="stagign"),
        )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[zones.qa]\ndatasets = ['qa/**']\n", "a new zone needs a trust level"),
        ("[zones.staging]\ntrust = 'high'\n", "trust must be a whole number"),
        ("[zones.staging]\nuntaged = 'scan'\n", "unknown key 'untaged'"),
        ("[policy]\npacks = ['gdrp']\n", "no shipped pack 'gdrp'; did you mean 'gdpr'?"),
        ("[policy]\ndisable = ['pci.pan']\n", "disable names no enabled rule"),
        ("[policy]\ndefault_zone = 'prd'\n", "did you mean 'prod'?"),
        ("[policy]\nuntagged = 'ignore'\n", "untagged must be one of scan, block, allow"),
    ],
)
def test_bad_governance_settings_are_one_line_errors(
    prod: Project, monkeypatch: pytest.MonkeyPatch, toml: str, message: str
) -> None:
    (prod.root / "lockgate.toml").write_text(toml)
    monkeypatch.chdir(prod.root)
    with pytest.raises(ConfigError, match=message) as caught:
        copy(Dataset(str(_untagged(prod))), Dataset(str(prod.root / "x.csv")))
    assert "\n" not in str(caught.value)


def test_waivers_written_or_changed_behind_lockgates_back_are_ignored(prod: Project) -> None:
    store = open_store(prod)
    target = f"sqlite:///{prod.root / 'staging.db'}#customers"
    real = store.add_waiver(
        rule="*",
        dataset=target,
        columns=None,
        zone=None,
        owner="ops",
        reason="migration test",
        expires_at=time.time() + 3600,
        actor="alice@laptop",
    )
    store.revoke_waiver(real["id"], "alice@laptop")
    db = prod.root / ".lockgate" / "lockgate.db"
    with sqlite3.connect(db) as conn:
        # undo the revocation, and forge a new ten-year waiver copying a real row's MAC
        conn.execute("UPDATE waivers SET revoked_at = NULL, revoked_by = NULL")
        conn.execute(
            "INSERT INTO waivers SELECT 'w-forged000000', rule, dataset, columns, zone, owner, "
            "reason, created_by, created_at, expires_at + 315360000, NULL, NULL, mac FROM waivers"
        )
    assert {w["id"]: w["verified"] for w in store.waivers()} == {
        real["id"]: False,
        "w-forged000000": False,
    }
    result = lockgate.run(provision(prod, masked=False), project=prod)
    assert result.tasks["load"].state == "failed"
    assert _tables(prod.root / "staging.db") == []
    denied = [d for d in store.policy_decisions(run_id=result.run_id) if d["zone"] == "staging"]
    assert denied[0]["detail"]["ignored_waivers"] == [real["id"], "w-forged000000"]
    log = (prod.logs_dir / "provision" / result.run_id / "load").rglob("*")
    assert any("ignoring waiver(s)" in p.read_text() for p in log if p.is_file())


def test_what_the_scan_found_stays_with_a_waived_write(
    prod: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(prod.root)
    (prod.root / "lake").mkdir()
    (prod.root / "lockgate.toml").write_text(TOML + '\n[zones.ci]\ndatasets = ["lake/**"]\n')
    store = open_store(Project.load(prod.root))
    store.add_waiver(
        rule="gdpr.pseudonymise",
        dataset="lake/contacts.parquet",
        columns=["contact"],
        zone=None,
        owner="qa",
        reason="fixture for the mail-relay test",
        expires_at=time.time() + 3600,
        actor="alice@laptop",
    )
    done = copy(
        Dataset(str(_untagged(prod))), Dataset(str(prod.root / "lake" / "contacts.parquet"))
    )
    assert {f["name"]: f["tag"] for f in done.schema}["contact"] == "pii.email"
    written = pq.read_schema(prod.root / "lake" / "contacts.parquet")
    assert tag_of(written.field("contact")) == "pii.email"  # the file says so too
    assert tag_of(written.field("plan")) is None


def test_a_pipeline_cannot_declassify_its_way_through_the_gate(
    prod: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(prod.root)
    staging = prod.root / "staging.db"
    source = prod.root / "customers.parquet"
    table = pa.table({"email": [c[1] for c in CUSTOMERS], "country": [c[3] for c in CUSTOMERS]})
    pq.write_table(
        table.cast(
            pa.schema(
                [with_tag(table.schema.field("email"), "pii.email"), table.schema.field("country")]
            )
        ),
        source,
    )
    # declaring the raw column clean, or already tokenized, is judged as what it was
    for tag in ("none", "pii.email/tokenized"):
        with pytest.raises(PolicyViolationError, match="gdpr.pseudonymise"):
            copy(Dataset(str(source)), Dataset(f"sqlite:///{staging}#c", tags={"email": tag}))
    # nor can the pipeline move the staging database into prod
    with pytest.raises(ConfigError, match="zone prod is more trusted than where lockgate.toml"):
        copy(Dataset(str(source)), Dataset(f"sqlite:///{staging}#c", zone="prod"))
    assert _tables(staging) == []
    # a zone less trusted than lockgate.toml's is fine (and stricter)
    with pytest.raises(PolicyViolationError, match=r"zone ci"):
        copy(Dataset(str(source)), Dataset(f"sqlite:///{staging}#c", zone="ci"))


def test_the_gate_uses_the_runs_project_wherever_the_process_is(
    prod: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # no lockgate.toml here
    result = lockgate.run(provision(prod, masked=False), project=prod)
    assert result.tasks["load"].state == "failed"
    assert "zone staging" in (result.tasks["load"].error or "")
    assert _tables(prod.root / "staging.db") == []


def test_a_mask_task_given_a_table_says_what_to_do(prod: Project) -> None:
    from lockgate.errors import PrivacyError
    from lockgate.privacy.tasks import mask_task

    with pytest.raises(PrivacyError, match="sqlite:// is not a file: mask reads and writes"):
        mask_task("sqlite:///prod.db#customers", "sqlite:///staging.db#customers", auto=True)
    assert not (prod.root / "sqlite:").exists()


def test_where_data_came_from_follows_it_through_an_intermediate_file(
    prod: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    (prod.root / "lockgate.toml").write_text(
        '[zones.phi]\ndatasets = ["clinic/**"]\n\n[zones.analytics]\ndatasets = ["lake/**"]\n'
    )
    monkeypatch.chdir(prod.root)
    (prod.root / "clinic").mkdir()
    patients = prod.root / "clinic" / "patients.parquet"
    table = pa.table({"name": ["Ann Lee", "Bob Stone"], "visits": [1, 2]})
    pq.write_table(
        table.cast(
            pa.schema(
                [with_tag(table.schema.field("name"), "pii.name"), table.schema.field("visits")]
            )
        ),
        patients,
    )
    # phi -> an undeclared work file (prod by default, so allowed) -> analytics
    work = prod.root / "work" / "patients.parquet"
    copy(Dataset(str(patients)), Dataset(str(work)))
    # work's own zone is prod; only its recorded origin makes HIPAA's `from: [phi]` rules apply
    with pytest.raises(PolicyViolationError, match="hipaa.names"):
        copy(Dataset(str(work)), Dataset(str(prod.root / "lake" / "patients.parquet")))
