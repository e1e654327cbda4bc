"""What the API shows of a task's log and of a pipeline's definition cannot be cut so as to
slip past redaction: log reads give whole lines only, whatever offset and length are asked
for (a secret read a byte at a time is no longer recognised), a line too long to show whole is
withheld, and dataset URIs and files in a pipeline's answer hide passwords and server paths."""

from __future__ import annotations

from pathlib import Path

from lockgate import api

from .conftest import Server

SECRETS = ("alice.smith@example.com", "hunter2secretvalue", "AKIAIOSFODNN7EXAMPLE")
LEAKY = """\
description: Prints what it should not.
schedule: ["postgresql://etl:hunter2secretvalue@db.internal/shop#orders"]
tasks:
  spill:
    shell: |
      echo "first line"
      echo "contact alice.smith@example.com password=hunter2secretvalue token AKIAIOSFODNN7EXAMPLE"
      echo "last line"
"""


def _leaky_run(server: Server) -> str:
    (server.project.pipelines_dir / "leaky.yaml").write_text(LEAKY, encoding="utf-8")
    server.state._loaded_at = 0.0  # load the folder again now
    run_id = server.trigger("leaky")
    api.resume(run_id, project=server.project)
    return run_id


def _clean(text: str) -> None:
    for secret in SECRETS:
        for part in (secret[:6], secret[-6:]):
            assert part not in text, (part, text)


def test_log_reads_at_any_offset_and_length_show_only_whole_redacted_lines(
    fresh_server: Server,
) -> None:
    server = fresh_server
    run_id = _leaky_run(server)
    url = f"/api/v1/runs/{run_id}/tasks/spill/attempts/1/log"
    whole = server.call("viewer", "GET", url).json()
    assert whole["complete"] and "[EMAIL]" in whole["text"] and "last line" in whole["text"]
    _clean(whole["text"])
    size = whole["size"]
    seen = ""
    for offset in range(size + 1):
        for length in (1, 5, 40):
            part = server.call(
                "viewer", "GET", url, params={"offset": offset, "length": length}
            ).json()
            _clean(part["text"])
            assert part["text"] == "" or part["text"].endswith("\n")
            seen += part["text"]
    assert "first line" in seen and "[EMAIL]" in seen
    for offset in (9, 25, 50, 73):  # inside the secret-bearing line: it starts after it
        stream = server.call("viewer", "GET", url + "/stream", params={"offset": offset}).text
        _clean(stream)
        assert "event: end" in stream


def test_a_line_too_long_to_show_whole_is_withheld(fresh_server: Server) -> None:
    from lockgate.server.api import runs

    log = Path(fresh_server.project.logs_dir) / "long.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    secret = "password=hunter2secretvalue"
    log.write_bytes(b"x" * (runs.LOG_CHUNK - 10) + secret.encode() + b"\nshort line\n")
    text, nxt, size = runs.read_log(log, 0, runs.LOG_CHUNK, ended=True)
    assert text == runs.WITHHELD and 0 < nxt < size
    rest, end, _ = runs.read_log(log, nxt, runs.LOG_CHUNK, ended=True)
    assert rest == "short line\n" and end == size  # went on from the next whole line


def test_a_pipeline_answer_hides_dataset_passwords_and_server_paths(fresh_server: Server) -> None:
    server = fresh_server
    _leaky_run(server)
    shown = server.call("viewer", "GET", "/api/v1/pipelines/leaky")
    assert shown.status_code == 200
    assert "hunter2secretvalue" not in shown.text
    assert str(server.project.root) not in shown.text
    versions = shown.json()["versions"]
    assert versions and versions[0]["file"] == "pipelines/leaky.yaml"
