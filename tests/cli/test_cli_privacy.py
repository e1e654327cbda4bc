"""The privacy commands through the real console script: `scan` on CSV, Parquet and JSONL,
`mask` with rules and `--auto`, `redact` (files and standard streams), `keys list/rotate`, the
key file `init` creates, and one-line errors."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.cli.helpers import LOCKGATE, _env, lockgate, lockgate_all, one_line_error, write

from lockgate.config import Project
from lockgate.io.formats import read_table, write_table
from lockgate.model.classification import is_raw, tag_of
from lockgate.privacy.keys import ensure_key_file, keys_file_of

ROWS = 120


def _card(i: int) -> str:
    """A Visa-shaped 16-digit number that passes the Luhn check."""
    body = [4, 5, 3, 9] + [int(d) for d in f"{i:011d}"]
    total = 0
    for pos, digit in enumerate(reversed(body)):
        d = digit * 2 if pos % 2 == 0 else digit
        total += d - 9 if d > 9 else d
    return "".join(map(str, body)) + str((10 - total % 10) % 10)


def customers(rows: int = ROWS) -> pa.Table:
    """A customer table with clear PII columns and two that are not PII."""
    return pa.table(
        {
            "customer_id": [f"C{i:05d}" for i in range(rows)],
            "email": [f"user{i}.name@example{i % 7}.com" for i in range(rows)],
            "ssn": [f"{100 + i % 500:03d}-{10 + i % 80:02d}-{1000 + i:04d}" for i in range(rows)],
            "card_number": [_card(i) for i in range(rows)],
            "ip_address": [f"10.{i % 250}.{(i * 7) % 250}.{1 + i % 200}" for i in range(rows)],
            "amount": [f"{i * 3.25:.2f}" for i in range(rows)],
        }
    )


PII_COLUMNS = {
    "email": "pii.email",
    "ssn": "pii.ssn",
    "card_number": "pci.pan",
    "ip_address": "pii.ip",
}

RULES = """
rules:
  - column: email
    op: tokenize
    classification: pii.email
  - column: ssn
    op: redact
  - column: card_number
    op: mask
    options: {keep_last: 4}
"""


@pytest.fixture
def proj(project: Project) -> Path:
    """A project with a key file (as `lockgate init` makes it) and customers.csv."""
    ensure_key_file(keys_file_of(project))
    write_table(project.root / "customers.csv", customers())
    return project.root


def _key_material(root: Path) -> list[str]:
    doc = json.loads((root / ".lockgate" / "keys.json").read_text())
    return [k["key"] for k in doc["keys"]]


# -- init and keys ------------------------------------------------------------------------------
def test_init_creates_an_owner_only_key_file_once(tmp_path: Path):
    done = lockgate(tmp_path, "init", "proj")
    assert done.code == 0, done
    keys = tmp_path / "proj" / ".lockgate" / "keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert "created .lockgate/keys.json" in done.out
    material = _key_material(tmp_path / "proj")
    assert len(material) == 1 and material[0] not in done.out + done.err
    before = keys.read_bytes()
    again = lockgate(tmp_path, "init", "proj")
    assert again.code == 0 and "keys.json" not in again.out, again
    assert keys.read_bytes() == before


def test_keys_list_and_rotate_never_show_key_material(proj: Path):
    listed = lockgate(proj, "keys", "list", "--json").json()
    assert [(k["id"], k["current"], k["source"]) for k in listed["keys"]] == [("k1", True, "file")]
    assert listed["keys"][0]["created"]
    rotated = lockgate(proj, "keys", "rotate")
    assert rotated.code == 0 and "new current key k2" in rotated.out, rotated
    table = lockgate(proj, "keys", "list")
    assert table.code == 0, table
    rows = [line.split() for line in table.out.splitlines()[1:]]
    assert [(r[0], r[-1] if len(r) == 4 else "") for r in rows] == [("k1", ""), ("k2", "*")]
    keys = proj / ".lockgate" / "keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    outputs = listed, rotated, table
    for secret in _key_material(proj):
        assert all(secret not in d.out + d.err for d in outputs[1:])
        assert secret not in json.dumps(listed["keys"])


def test_keys_without_a_key_file_say_how_to_make_one(project: Project):
    line = one_line_error(lockgate(project.root, "keys", "list"))
    assert "lockgate init" in line, line


# -- scan ---------------------------------------------------------------------------------------
def test_scan_json_on_csv_parquet_and_jsonl(project: Project):
    table = customers()
    for name in ("c.csv", "c.parquet", "c.jsonl"):
        write_table(project.root / name, table)
    done = lockgate_all(
        project.root,
        [["scan", name, "--json"] for name in ("c.csv", "c.parquet", "c.jsonl")],
    )
    classes = []
    for d in done:
        doc = d.json()
        assert d.code == 0 and d.err == "", d
        assert doc["rows_sampled"] == ROWS and doc["source"].startswith("c.")
        for col in doc["columns"]:
            assert set(col) == {"name", "classification", "confidence"}, col
            assert 0.0 <= col["confidence"] <= 1.0
        classes.append({c["name"]: c["classification"] for c in doc["columns"]})
    expected = {**PII_COLUMNS, "customer_id": None, "amount": None}
    assert classes == [expected] * 3


def test_scan_prints_a_table_and_samples_deterministically(proj: Path):
    text, small_a, small_b = lockgate_all(
        proj,
        [
            ["scan", "customers.csv"],
            ["scan", "customers.csv", "--sample-size", "10", "--seed", "3", "--json"],
            ["scan", "customers.csv", "--sample-size", "10", "--seed", "3", "--json"],
        ],
    )
    assert text.code == 0, text
    lines = text.out.splitlines()
    assert lines[0].split() == ["column", "classification", "confidence"]
    email = next(line.split() for line in lines if line.startswith("email"))
    assert email[1] == "pii.email" and float(email[2]) > 0.5
    amount = next(line.split() for line in lines if line.startswith("amount"))
    assert amount[1] == "-"
    assert lines[-1] == f"4 of 6 column(s) classified, from {ROWS} sampled row(s)"
    assert small_a.json() == small_b.json() and small_a.json()["rows_sampled"] == 10


# -- mask ---------------------------------------------------------------------------------------
def test_mask_with_rules_writes_masked_tagged_parquet(proj: Path):
    write(proj, "rules.yaml", RULES)
    first, second = lockgate_all(
        proj,
        [
            ["mask", "customers.csv", "a.parquet", "--rules", "rules.yaml"],
            ["mask", "customers.csv", "b.parquet", "-r", "rules.yaml"],
        ],
    )
    assert first.code == 0, first
    assert f"wrote a.parquet: {ROWS} row(s), 3 column(s) transformed" in first.out
    assert "email (pii.email/tokenized)" in first.out, first.out
    raw = customers()
    out = pq.read_table(proj / "a.parquet")
    assert out.column_names == raw.column_names and out.num_rows == ROWS
    emails = out.column("email").to_pylist()
    assert not set(emails) & set(raw.column("email").to_pylist())
    assert pq.read_table(proj / "b.parquet").column("email").to_pylist() == emails  # keyed, stable
    assert set(out.column("ssn").to_pylist()) != set(raw.column("ssn").to_pylist())
    cards = out.column("card_number").to_pylist()
    assert [c[-4:] for c in cards] == [c[-4:] for c in raw.column("card_number").to_pylist()]
    assert all(not any(ch.isdigit() for ch in c[:-4]) for c in cards)
    assert out.column("amount").to_pylist() == raw.column("amount").to_pylist()
    # CSV has no tags: the class comes from the rule (email) or a scan of the ruled columns
    tags = {f.name: tag_of(f) for f in out.schema}
    assert tags == dict.fromkeys(raw.column_names) | {
        "email": "pii.email/tokenized",
        "ssn": "pii.ssn/redacted",
        "card_number": "pci.pan/masked",
    }


def test_mask_auto_leaves_no_raw_pii_for_scan_to_find(proj: Path):
    done = lockgate(proj, "mask", "customers.csv", "masked.parquet", "--auto")
    assert done.code == 0, done
    assert "4 column(s) transformed" in done.out, done.out
    rescan = lockgate(proj, "scan", "masked.parquet", "--json").json()
    raw_left = [c for c in rescan["columns"] if c["classification"] and is_raw(c["classification"])]
    assert raw_left == [], rescan
    masked = read_table(proj / "masked.parquet")
    assert masked.column("customer_id").to_pylist() == customers().column("customer_id").to_pylist()


def test_mask_auto_and_rules_together_and_csv_output(proj: Path):
    write(proj, "rules.yaml", "rules:\n  - column: email\n    op: nullify\n")
    done = lockgate(proj, "mask", "customers.csv", "masked.csv", "--rules", "rules.yaml", "--auto")
    assert done.code == 0, done
    out = read_table(proj / "masked.csv")
    assert set(out.column("email").to_pylist()) == {""}  # CSV writes a null as an empty field
    assert set(out.column("ssn").to_pylist()).isdisjoint(customers().column("ssn").to_pylist())


def test_mask_list_ops_needs_no_files(project: Project):
    done = lockgate(project.root, "mask", "--list-ops")
    assert done.code == 0, done
    ops = {line.split()[0] for line in done.out.splitlines()[1:-1]}
    assert {"redact", "mask", "tokenize", "hash", "nullify"} <= ops, done.out


def test_mask_keyed_operation_without_keys_says_how_to_get_them(project: Project):
    write_table(project.root / "customers.csv", customers(5))
    write(project.root, "rules.yaml", RULES)
    done = lockgate(project.root, "mask", "customers.csv", "out.parquet", "--rules", "rules.yaml")
    assert "lockgate init" in one_line_error(done)
    assert not (project.root / "out.parquet").exists()
    unkeyed = "rules:\n  - column: ssn\n    op: redact\n"
    write(project.root, "redact.yaml", unkeyed)
    ok = lockgate(project.root, "mask", "customers.csv", "out.parquet", "--rules", "redact.yaml")
    assert ok.code == 0, ok


@pytest.mark.parametrize(
    ("rules", "args", "expected"),
    [
        (
            "rules:\n  - column: email\n    op: tokenise\n",
            [],
            "unknown operation 'tokenise'; did you mean 'tokenize'?",
        ),
        (
            "rules:\n  - column: emial\n    op: redact\n",
            [],
            "has no column 'emial'",
        ),
        (
            "rules:\n  - column: card_number\n    op: mask\n    options: {keep_lst: 4}\n",
            [],
            "unknown option 'keep_lst'",
        ),
        ("rules: [column: email\n", [], "not valid YAML"),
        (None, [], "give --rules RULES.yaml, or --auto"),
        (None, ["--rules", "missing.yaml"], "missing.yaml: no such rules file"),
    ],
)
def test_mask_errors_are_one_line(proj: Path, rules: str | None, args: list[str], expected: str):
    if rules is not None:
        write(proj, "bad.yaml", rules)
        args = ["--rules", "bad.yaml"]
    line = one_line_error(lockgate(proj, "mask", "customers.csv", "out.parquet", *args))
    assert expected in line, line
    assert not (proj / "out.parquet").exists()


def test_missing_and_unreadable_inputs_are_one_line_errors(proj: Path):
    (proj / "notes.txt").write_text("x\n")
    done = lockgate_all(
        proj,
        [
            ["scan", "nope.csv"],
            ["mask", "nope.csv", "out.parquet", "--auto"],
            ["redact", "nope.log", "out.log"],
            ["scan", "notes.txt"],
            ["redact", "notes.txt", "out.log", "--entities", "emial"],
            ["mask", "customers.csv", "customers.csv/out.parquet", "--auto"],
        ],
    )
    lines = [one_line_error(d) for d in done]
    assert "nope.csv: no such file" in lines[0]
    assert "nope.csv: no such file" in lines[1]
    assert "nope.log: no such file" in lines[2]
    assert "unknown file extension .txt" in lines[3]
    assert "unknown entity type 'emial'; did you mean 'email'?" in lines[4]
    assert "customers.csv/out.parquet: cannot write" in lines[5], lines[5]


# -- redact -------------------------------------------------------------------------------------
LOG = (
    "2024-05-01T10:00:00Z INFO login ok user=jane.doe@example.com from 203.0.113.42\r\n"
    "2024-05-01T10:00:01Z INFO release v1.2.3.4 deployed, build 42\n"
    "2024-05-01T10:00:02Z WARN retry Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789\n"
    "no newline at the end, caf\u00e9"
)


def test_redact_replaces_pii_and_keeps_everything_else(proj: Path):
    (proj / "app.log").write_bytes(LOG.encode())
    done = lockgate(proj, "redact", "app.log", "clean.log")
    assert done.code == 0, done
    assert done.out.startswith("wrote clean.log: 4 line(s), 2 changed"), done.out
    out = (proj / "clean.log").read_bytes().decode()
    lines = out.splitlines(keepends=True)
    assert lines[0] == "2024-05-01T10:00:00Z INFO login ok user=[EMAIL] from [IP]\r\n"
    assert lines[1] == LOG.splitlines(keepends=True)[1]
    assert "abcdefghijklmnopqrstuvwxyz0123456789" not in lines[2]
    assert lines[3] == "no newline at the end, caf\u00e9"


def test_redact_streams_stdin_to_stdout_and_filters_entities(proj: Path):
    proc = subprocess.run(
        [LOCKGATE, "redact", "-", "-", "--entities", "ip"],
        cwd=proj,
        env=_env(),
        input=LOG.encode(),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "[IP]" in out and "jane.doe@example.com" in out and "[EMAIL]" not in out
    assert proc.stderr == b""


# -- help ---------------------------------------------------------------------------------------
def test_help_texts_explain_each_command(project: Project):
    done = lockgate_all(
        project.root,
        [["--help"], ["scan", "-h"], ["mask", "-h"], ["redact", "-h"], ["keys", "-h"]],
    )
    top, scan_help, mask_help, redact_help, keys_help = (d.out for d in done)
    for command in ("scan", "mask", "redact", "keys"):
        assert f" {command} " in top, top
    assert "--sample-size" in scan_help and "pii.email" in scan_help
    assert "--rules" in mask_help and "--auto" in mask_help and "--list-ops" in mask_help
    assert "[EMAIL]" in redact_help and "standard input" in redact_help
    assert "rotate" in keys_help and "list" in keys_help


# -- issue 5 follow-ups: same file, folders, piped output, help -------------------------------
def test_writing_over_the_input_or_into_a_folder_is_refused(proj: Path):
    (proj / "app.log").write_bytes(LOG.encode())
    (proj / "some_dir").mkdir()
    before = (proj / "customers.csv").read_bytes()
    done = lockgate_all(
        proj,
        [
            ["mask", "customers.csv", "customers.csv", "--auto"],
            ["mask", "customers.csv", "./customers.csv", "--auto"],
            ["redact", "app.log", "app.log"],
            ["mask", "customers.csv", "some_dir", "--auto"],
        ],
    )
    lines = [one_line_error(d) for d in done]
    for line in lines[:3]:
        assert "is the input file too" in line, line
    assert "some_dir: is a folder; give a file name" in lines[3], lines[3]
    assert (proj / "customers.csv").read_bytes() == before
    assert (proj / "app.log").read_bytes() == LOG.encode()


def test_piped_summaries_are_unwrapped_and_tables_unpadded(proj: Path):
    (proj / "app.log").write_bytes(LOG.encode())
    long_name = "redacted-" + "x" * 220 + ".log"
    redacted = lockgate(proj, "redact", "app.log", long_name)
    assert redacted.code == 0, redacted
    assert len(redacted.out.splitlines()) == 1, redacted.out
    assert redacted.out.startswith(f"wrote {long_name}: 4 line(s)")
    masked = lockgate(proj, "mask", "customers.csv", "out.parquet", "--auto")
    assert masked.code == 0, masked
    lines = masked.out.splitlines()
    assert all(line == line.rstrip() for line in lines), masked.out
    assert "column(s) transformed" in lines[-1], masked.out


def test_help_names_scan_file_and_hides_flag_placeholders(project: Project):
    scan_help, mask_help = (
        d.out for d in lockgate_all(project.root, [["scan", "-h"], ["mask", "-h"]])
    )
    assert "FILE" in scan_help and "URI_OR_FILE" not in scan_help, scan_help
    for flag in ("--auto", "--list-ops"):
        line = next(line for line in mask_help.splitlines() if flag in line and "│" in line)
        assert "<bool>" not in line, mask_help
    json_line = next(line for line in scan_help.splitlines() if "--json" in line)
    assert "<bool>" not in json_line, scan_help


def test_sigterm_mid_mask_removes_the_temporary_file_and_keeps_the_old_output(proj: Path):
    import signal
    import time

    src = proj / "notes.csv"
    with src.open("w", encoding="utf-8") as out:
        out.write("id,notes\n")
        for i in range(300_000):
            out.write(f"{i},call back user{i}@example.com about order {i} on Monday\n")
    (proj / "rules.yaml").write_text(
        "rules:\n  - column: notes\n    op: redact_text\n", encoding="utf-8"
    )
    target = proj / "masked.csv"
    target.write_text("old output\n", encoding="utf-8")
    proc = subprocess.Popen(
        [LOCKGATE, "mask", "notes.csv", "masked.csv", "--rules", "rules.yaml"],
        cwd=proj,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not list(proj.glob(".masked.csv.*.tmp")):  # the output is being written
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "terminated" in err and "Traceback" not in err
    assert list(proj.glob(".*.tmp")) == []
    assert target.read_text(encoding="utf-8") == "old output\n"
