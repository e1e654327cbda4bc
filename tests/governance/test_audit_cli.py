"""`lockgate audit verify/export/checkpoint/prune/show` as a user runs them (exit codes, one-line
findings and errors, JSON lines for a SIEM, exported checkpoint files), the `[audit]` settings,
and the commands whose use is audited (trigger, pause, unpause, clear, backfill, db clean,
keys rotate)."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest
from tests.cli.helpers import Done, lockgate, one_line_error, write


def audit(cwd: Path, *args: str) -> Done:
    return lockgate(cwd, "audit", *args)


@pytest.fixture
def ran(tmp_path: Path) -> Path:
    """A project (`lockgate init`) where the example pipeline ran once."""
    assert lockgate(tmp_path, "init").code == 0
    done = lockgate(tmp_path, "run", "hello")
    assert done.code == 0, done
    return tmp_path


def _db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / ".lockgate" / "lockgate.db", isolation_level=None)


def _records(root: Path) -> int:
    """How many records the chain holds (a run's events come in one batch or a few)."""
    with _db(root) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0])


def test_verify_exit_codes_and_findings(ran: Path) -> None:
    n = _records(ran)
    done = audit(ran, "verify")
    assert done.code == 0, done
    assert done.out == f"audit chain OK: {n} record(s), 1-{n}, 0 checkpoint(s)\n"
    doc = audit(ran, "verify", "--json").json()
    assert doc["ok"] is True and doc["records"] == n and doc["seq"] is None
    with _db(ran) as conn:
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    done = audit(ran, "verify")
    assert done.code == 1, done
    assert done.out == "record 2 was edited: its fields do not match its hash\n"
    doc = audit(ran, "verify", "--json").json()
    assert (doc["ok"], doc["seq"], doc["problem"]) == (False, 2, "edited")


def test_a_run_in_a_fresh_folder_starts_a_verifiable_chain(tmp_path: Path) -> None:
    write(
        tmp_path,
        "flow.py",
        "from lockgate import pipeline, shell\n\nwith pipeline('f'):\n    shell('a', 'true')\n",
    )
    done = lockgate(tmp_path, "run", "flow.py")
    assert done.code == 0, done
    keys = tmp_path / ".lockgate" / "keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600  # made as `lockgate init` makes it
    assert audit(tmp_path, "verify").code == 0


def test_checkpoints_are_exported_and_checked(ran: Path) -> None:
    n = _records(ran)
    folder = ran / "exported"
    done = audit(ran, "checkpoint", "--export", str(folder))
    assert done.code == 0, done
    assert done.out.startswith(f"checkpoint at record {n} (hash ")
    assert f"exported 1 checkpoint(s) to {folder}\n" in done.out
    file = folder / f"checkpoint-{n:012d}.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    doc = json.loads(file.read_text())
    assert set(doc) == {"seq", "hash", "ts", "key_id", "public_key", "signature"}
    assert doc["seq"] == n and doc["key_id"] == "k1" and len(doc["signature"]) == 128
    again = audit(ran, "checkpoint", "--export", str(folder))
    assert "exported 0 checkpoint(s)" in again.out  # each goes once
    done = audit(ran, "verify", "--checkpoints", str(folder))
    assert done.code == 0 and "1 exported checkpoint(s)" in done.out, done
    # the tail dropped, the head rolled back to record 1 as it was then (saved by the
    # attacker), the database's checkpoints deleted: only the exported one tells
    with _db(ran) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq > 1")
        conn.execute("DELETE FROM audit_checkpoints")
        h, mac = conn.execute("SELECT hash, mac FROM audit_log WHERE seq = 1").fetchone()
        conn.execute("UPDATE audit_head SET seq = 1, hash = ?, mac = ?", (h, mac))
    done = audit(ran, "verify", "--checkpoints", str(folder))
    assert done.code == 1
    assert done.out.startswith(
        f"the chain ends at record 1 but the exported checkpoint at record {n}"
    )
    missing = one_line_error(audit(ran, "verify", "--checkpoints", str(ran / "nope")))
    assert "no exported checkpoints at" in missing


def test_the_audit_table_sets_the_export_destination(ran: Path) -> None:
    toml = ran / "lockgate.toml"
    toml.write_text(toml.read_text() + '\n[audit]\nexport = "audit-export"\n')
    assert audit(ran, "verify").code == 0  # nothing exported there yet: fine
    done = audit(ran, "checkpoint")
    name = f"checkpoint-{_records(ran):012d}.json"
    assert done.code == 0 and (ran / "audit-export" / name).is_file()
    assert "1 exported checkpoint(s)" in audit(ran, "verify").out
    toml.write_text(toml.read_text().replace('export = "audit-export"', "checkpoint_every = 0"))
    error = one_line_error(audit(ran, "verify"))
    assert "[audit]: checkpoint_every must be a whole number >= 1, got 0" in error
    toml.write_text(toml.read_text().replace("checkpoint_every = 0", "exports = 'x'"))
    error = one_line_error(audit(ran, "show"))
    assert "[audit]: unknown setting 'exports'; did you mean 'export'?" in error


def test_export_writes_one_json_line_per_audited_event(ran: Path) -> None:
    done = audit(ran, "export", "--since", "1d")
    assert done.code == 0, done
    lines = [json.loads(x) for x in done.out.splitlines()]
    admin, version, created, *events = lines
    assert admin["action"] == "user.create" and admin["target"] == "admin"  # by `lockgate init`
    assert admin["seq"] == 1 and admin["detail"] == {"role": "admin"}
    assert version["action"] == "pipeline.version" and version["target"] == "hello"
    assert version["seq"] == 2 and version["detail"]["pipeline"] == "hello"
    assert created["action"] == "run.create" and created["detail"]["trigger"] == "manual"
    assert created["actor"] == version["actor"] and "@" in created["actor"]  # the OS user
    for seq in {e["seq"] for e in events}:  # a batch of events: one line each, numbered
        batch = [e["index"] for e in events if e["seq"] == seq]
        assert batch == list(range(len(batch)))
    assert events[0]["kind"] == "RunStarted" and events[-1]["kind"] == "RunFinished"
    assert events[-1]["state"] == "success" and events[-1]["action"] == "event"
    done_tasks = [e["task_id"] for e in events if e["kind"] == "TaskSucceeded"]
    assert done_tasks == ["extract", "transform", "load"]
    for line in lines:
        assert set(line) >= {"seq", "ts", "actor", "action", "run_id", "target", "detail"}
        assert line["ts"].endswith("+00:00")
    assert audit(ran, "export", "--since", "2999-01-01").out == ""
    out = ran / "siem" / "audit.jsonl"
    done = audit(ran, "export", "--until", "2999-01-01T00:00:00Z", "--out", str(out))
    assert done.code == 0 and done.err == f"wrote {len(lines)} line(s) to {out}\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [json.loads(x) for x in out.read_text().splitlines()] == lines
    error = one_line_error(audit(ran, "export", "--since", "last tuesday"))
    assert "--since 'last tuesday' is neither a date" in error


def test_prune_cuts_at_a_checkpoint_and_asks_first(ran: Path) -> None:
    done = audit(ran, "prune", "--keep", "365d")
    assert done.code == 0 and done.out.startswith("nothing to prune: no checkpoint"), done
    assert audit(ran, "checkpoint").code == 0
    n = _records(ran)
    refused = one_line_error(audit(ran, "prune", "--keep", "0s"))
    assert f"this deletes {n} audit record(s) up to record {n}; pass --yes to confirm" in refused
    done = audit(ran, "prune", "--keep", "0s", "--yes")
    assert done.code == 0, done
    assert done.out.startswith(f"deleted {n} audit record(s) up to record {n}")
    verified = audit(ran, "verify")
    assert verified.code == 0 and f"1 record(s), {n + 1}-{n + 1}" in verified.out, verified
    shown = audit(ran, "show", "--json").json()["records"]
    assert [r["action"] for r in shown] == ["audit.prune"]


def test_prune_refuses_a_chain_that_does_not_verify(ran: Path) -> None:
    assert audit(ran, "checkpoint").code == 0
    with _db(ran) as conn:
        conn.execute("UPDATE audit_log SET target = 'x' WHERE seq = 1")
    error = one_line_error(audit(ran, "prune", "--keep", "0s", "--yes"))
    assert "the audit chain does not verify (record 1 was edited" in error


def test_show_lists_the_newest_records(ran: Path) -> None:
    done = audit(ran, "show", "-n", "5")
    assert done.code == 0, done
    assert "pipeline.version" in done.out and "events" in done.out
    assert "event(s): " in done.out
    records = audit(ran, "show", "--json", "-n", "1").json()["records"]
    assert len(records) == 1 and records[0]["seq"] == _records(ran)
    assert records[0]["action"] == "events"


SCHEDULED = """
from lockgate import pipeline, shell

with pipeline("daily", schedule="@daily", start_date="2026-01-01") as p:
    shell("a", "true")
"""


def test_what_users_do_is_audited(ran: Path) -> None:
    write(ran / "pipelines", "daily.py", SCHEDULED)
    run_id = json.loads(lockgate(ran, "runs", "--json").out)["runs"][0]["id"]
    steps = [
        ("trigger", "hello"),
        ("pause", "hello"),
        ("unpause", "hello"),
        ("clear", run_id, "load"),
        ("backfill", "daily", "--start", "2026-01-01", "--end", "2026-01-01"),
        ("db", "clean", "--older-than", "30d"),
        ("keys", "rotate"),
    ]
    for args in steps:
        done = lockgate(ran, *args)
        assert done.code == 0, done
    lines = [json.loads(x) for x in audit(ran, "export").out.splitlines()]
    acted = [(x["action"], x["target"]) for x in lines if "." in x["action"] and x["actor"]]
    for expected in [
        ("run.trigger", "hello"),
        ("pipeline.pause", "hello"),
        ("pipeline.unpause", "hello"),
        ("run.clear", None),
        ("pipeline.backfill", "daily"),
        ("db.clean", None),
        ("keys.rotate", "k2"),
    ]:
        assert expected in acted, (expected, acted)
    by_action = {x["action"]: x for x in lines}
    user = by_action["run.trigger"]["actor"]
    assert "@" in user and ":" not in user  # user@host, not a process
    assert by_action["run.trigger"]["detail"]["params"] == []  # names only, never values
    assert by_action["run.clear"]["run_id"] == run_id
    assert by_action["keys.rotate"]["detail"] == {"old": "k1", "new": "k2"}
    # records from before and after the rotation both verify (the key file keeps k1)
    assert audit(ran, "verify").code == 0


def test_the_audit_commands_are_registered_on_the_cli(tmp_path: Path) -> None:
    done = lockgate(tmp_path, "audit", "--help")
    assert done.code == 0 and "verify" in done.out, done
