"""OpenLineage from `lockgate run` itself, as lockgate.toml's `[lineage]` table configures it:
every run emits (valid events, one START and one end per run and per data task), a project
without the table emits nothing, and a lineage server that is down never fails the run."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.cli.helpers import lockgate, write

from .test_openlineage import Spec

FLOW = """
from lockgate import copy, pipeline, shell

with pipeline("nightly") as p:
    copy("ingest", source="data/raw.csv", target="out/raw.parquet") >> shell("done", "true")
"""


def _project(root: Path, lineage: str) -> None:
    assert lockgate(root, "init").code == 0
    with (root / "lockgate.toml").open("a", encoding="utf-8") as toml:
        toml.write("\n" + lineage)
    write(root / "pipelines", "nightly.py", FLOW)
    (root / "data").mkdir()
    (root / "data" / "raw.csv").write_text("id,email\n1,a@example.org\n2,b@example.org\n")


def test_lockgate_run_emits_the_events_lineage_is_configured_for(tmp_path: Path) -> None:
    _project(tmp_path, '[lineage]\ntransport = "file"\nnamespace = "ops"\n')
    for _ in range(2):
        ran = lockgate(tmp_path, "run", "nightly", "--json")
        assert ran.code == 0, ran
    lines = (tmp_path / ".lockgate" / "lineage" / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    spec = Spec()
    for event in events:
        spec.validate(event)
    # per run: the pipeline's START and COMPLETE, and the copy's (the shell task reads no data)
    assert len(events) == 8
    assert {e["job"]["name"] for e in events} == {"nightly", "nightly.ingest"}
    assert {e["job"]["namespace"] for e in events} == {"ops"}
    assert len({e["run"]["runId"] for e in events if e["job"]["name"] == "nightly"}) == 2


def test_no_lineage_table_no_events_and_a_dead_server_never_fails_a_run(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    _project(quiet, "")
    assert lockgate(quiet, "run", "nightly").code == 0
    assert not (quiet / ".lockgate" / "lineage").exists()

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = tmp_path / "down"
    down.mkdir()
    _project(
        down,
        f'[lineage]\ntransport = "http"\nurl = "http://127.0.0.1:{port}"\ntimeout = 1\nretries = 0\n',
    )
    ran = lockgate(down, "run", "nightly", "--json")
    assert ran.code == 0, ran
    assert ran.json()["state"] == "success"
    assert ran.err.count("lockgate: lineage: could not send OpenLineage events") == 1, ran
