"""`lockgate policy ...` as a user and CI run it: the static check of a pipeline (exit codes,
declared tags, local schemas, masking, waivers), the packs and zones, waivers and decisions."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from cli.helpers import lockgate, one_line_error
from lockgate.config import Project

from .helpers import MASK, make_prod, pipeline_text


@pytest.fixture
def proj(project: Project) -> Path:
    make_prod(project)
    pipes = project.root / "pipelines"
    (pipes / "raw.yaml").write_text(
        textwrap.dedent(pipeline_text("", "extract", "work/customers.parquet")).replace(
            "id: provision", "id: raw"
        )
    )
    (pipes / "masked.yaml").write_text(
        textwrap.dedent(pipeline_text(MASK, "mask", "work/masked.parquet")).replace(
            "id: provision", "id: masked"
        )
    )
    (pipes / "direct.yaml").write_text(
        "id: direct\ntasks:\n  c:\n    copy:\n"
        "      source: sqlite:///prod.db#customers\n"
        "      target: sqlite:///staging.db#direct\n"
    )
    return project.root


def test_check_refuses_raw_pii_to_staging_before_anything_runs(proj: Path) -> None:
    done = lockgate(proj, "policy", "check", "raw")
    assert done.code == 1, done
    assert "DENY     load: copy -> sqlite:///" in done.out
    assert "gdpr.pseudonymise" in done.out and "pci.pan-outside-cde" in done.out
    assert "raw: 2 write(s) checked; 1 would be refused" in done.out
    assert not (proj / "staging.db").exists()
    assert not (proj / ".lockgate" / "lockgate.db").exists()  # checking records nothing


def test_check_follows_the_tags_masking_leaves(proj: Path) -> None:
    done = lockgate(proj, "policy", "check", "masked", "--json")
    assert done.code == 0, done
    doc = json.loads(done.out)
    load = next(w for w in doc["writes"] if w["task"] == "load")
    assert load["verdict"] == "unknown"  # id and country carry no tag: the gate scans them
    assert {c["name"]: c["tag"] for c in load["columns"]}["email"] == "pii.email/tokenized"
    assert {c["name"]: c["tag"] for c in load["columns"]}["card"] == "pci.pan/truncated"
    assert lockgate(proj, "policy", "check", "masked", "--strict").code == 1


def test_check_reads_a_local_tables_schema_and_applies_waivers(proj: Path) -> None:
    done = lockgate(proj, "policy", "check", "direct")
    assert done.code == 0 and "run-time c: copy" in done.out, done  # untagged: scanned later
    assert "untagged columns are scanned when it runs: id, email, card, country" in done.out

    waive = lockgate(
        proj,
        "policy", "waive", "--rule", "pci.pan-outside-cde", "--dataset",
        "sqlite:///staging.db#customers", "--column", "card", "--owner", "payments",
        "--reason", "test cards", "--expires", "7d",
    )  # fmt: skip
    assert waive.code == 0, waive
    waiver_id = waive.out.split()[1].rstrip(":")
    masked_email_only = MASK.replace("        - {column: card, op: truncate}\n", "")
    (proj / "pipelines" / "masked.yaml").write_text(
        textwrap.dedent(pipeline_text(masked_email_only, "mask", "work/masked.parquet")).replace(
            "id: provision", "id: masked"
        )
    )
    done = lockgate(proj, "policy", "check", "masked")
    assert done.code == 0, done
    assert f"pci.pan-outside-cde on 'card' waived by {waiver_id}" in done.out

    listed = lockgate(proj, "policy", "waivers")
    assert f"{waiver_id}  active" in listed.out and "owner payments" in listed.out
    assert lockgate(proj, "policy", "revoke", waiver_id).code == 0
    assert lockgate(proj, "policy", "check", "masked").code == 1
    assert f"{waiver_id}  revoked" in lockgate(proj, "policy", "waivers", "--all").out


def test_show_zones_and_decisions(proj: Path) -> None:
    shown = lockgate(proj, "policy", "show", "pci")
    assert "pci.pan-outside-cde (error): pci.pan in zones below cde" in shown.out, shown
    packs = json.loads(lockgate(proj, "policy", "show", "--json").out)
    assert [p["name"] for p in packs] == ["gdpr", "hipaa", "pci", "soc2"]
    zones = lockgate(proj, "policy", "zones")
    assert "staging    trust   60: sqlite:///" in zones.out, zones
    assert "prod       trust  100 (default for undeclared datasets)" in zones.out

    assert lockgate(proj, "run", "raw").code == 1
    decisions = lockgate(proj, "policy", "decisions", "--denied")
    assert "deny" in decisions.out and "(zone staging)" in decisions.out, decisions
    assert "error: column 'email' holds pii.email (raw)" in decisions.out
    rows = json.loads(lockgate(proj, "policy", "decisions", "--json").out)
    assert [r["decision"] for r in rows] == ["deny", "allow"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "pcii"], "no policy pack 'pcii' is enabled; did you mean 'pci'?"),
        (
            ["waive", "--rule", "gdpr.pseudonymize", "--dataset", "x.csv", "--owner", "o",
             "--reason", "r", "--expires", "7d"],
            "is not a rule id, nor a pack's rules (pci.*); did you mean 'gdpr.pseudonymise'?",
        ),
        (
            ["waive", "--rule", "*", "--dataset", "x.csv", "--owner", "o", "--reason", "r",
             "--expires", "7d"],
            "--rule '*' is not a rule id",
        ),
        (
            ["waive", "--rule", "pci.*", "--dataset", "*://*", "--owner", "o", "--reason", "r",
             "--expires", "7d"],
            "--dataset '*://*' covers too much",
        ),
        (
            ["waive", "--rule", "pci.*", "--dataset", "/srv/*/exports.csv", "--owner", "o",
             "--reason", "r", "--expires", "7d"],
            "covers too much",
        ),
        (
            ["waive", "--rule", "pci.*", "--dataset", "x.csv", "--owner", "o", "--reason", "r",
             "--expires", "400d"],
            "a waiver lasts at most 366 days",
        ),
        (
            ["waive", "--rule", "pci.*", "--dataset", "x.csv", "--owner", "o", "--reason", "r",
             "--expires", "next week"],
            "neither a date (2026-12-31) nor a duration (30d)",
        ),
        (
            ["waive", "--rule", "pci.*", "--dataset", "x.csv", "--owner", "o", "--reason", "r",
             "--expires", "7d", "--zone", "stagign"],
            "unknown zone 'stagign'; did you mean 'staging'?",
        ),
        (["revoke", "w-nope"], "no waiver 'w-nope' in force"),
    ],
)  # fmt: skip
def test_policy_mistakes_are_one_line_errors(proj: Path, args: list[str], message: str) -> None:
    assert message in one_line_error(lockgate(proj, "policy", *args))
