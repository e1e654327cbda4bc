"""Commands that need a project of their own: broken pipeline files, `db clean`, no project."""

from __future__ import annotations

import re
from pathlib import Path

from .helpers import lockgate, lockgate_all, one_line_error, write

GOOD = """
    from lockgate import pipeline, shell

    with pipeline("good") as p:
        shell("say", "echo said")
"""


def test_broken_pipeline_files(tmp_path: Path):
    write(tmp_path, "lockgate.toml", "[lockgate]\npipelines = 'flows'\n")
    write(tmp_path / "flows", "good.py", GOOD)
    write(
        tmp_path / "flows",
        "broken.py",
        """
        from lockgate import pipeline, shell

        with pipeline("broken") as p:
            a = shell("a", "true")
            a >> a
    """,
    )
    write(tmp_path / "flows", "syntax.py", "def f(:\n    pass\n")
    cycle = "error: flows/broken.py:4: cycle in pipeline 'broken': a -> a"
    syntax = "error: flows/syntax.py:1:7: syntax error: invalid syntax"
    by_id, by_path, show, other, listed, as_json = lockgate_all(
        tmp_path,
        [
            ["run", "broken"],
            ["run", "flows/syntax.py"],
            ["show", "broken"],
            ["run", "nope"],
            ["list"],
            ["list", "--json"],
        ],
    )
    assert one_line_error(by_id) == cycle
    assert one_line_error(by_path) == syntax
    assert one_line_error(show) == cycle
    line = one_line_error(other)
    assert "(found: good) (2 file(s) failed to load: run `lockgate list`)" in line

    # list shows the good pipelines, reports each broken file, and exits 2
    assert listed.code == 2, listed
    assert re.search(r"^good +1 +- +- +- +flows/good\.py +Python *$", listed.out, re.M), listed
    assert listed.err.splitlines() == [cycle, syntax]
    assert as_json.code == 2, as_json
    doc = as_json.json()
    assert [p["id"] for p in doc["pipelines"]] == ["good"]
    root = tmp_path.resolve()
    assert doc["errors"] == [
        f"{root}/flows/broken.py:4: cycle in pipeline 'broken': a -> a",
        f"{root}/flows/syntax.py:1:7: syntax error: invalid syntax",
    ]
    # the good pipeline still runs
    done = lockgate(tmp_path, "run", "good")
    assert done.code == 0, done


def test_db_clean_deletes_runs_and_their_logs(tmp_path: Path):
    write(tmp_path, "lockgate.toml", "[lockgate]\n")
    write(tmp_path / "pipelines", "good.py", GOOD)
    done = lockgate(tmp_path, "run", "good", "--json")
    assert done.code == 0, done
    run_id = done.json()["run_id"]
    logs = tmp_path / ".lockgate" / "logs" / "good"
    assert [p.name for p in logs.iterdir()] == [run_id]

    kept, dry, bad = lockgate_all(
        tmp_path,
        [
            ["db", "clean"],  # default: older than 30 days
            ["db", "clean", "--older-than", "0s", "--dry-run"],
            ["db", "clean", "--older-than", "5x"],
        ],
    )
    assert (kept.code, kept.out) == (0, "deleted 0 run(s) older than 30d\n"), kept
    assert (dry.code, dry.out) == (0, "would delete 1 run(s) older than 0s\n"), dry
    assert one_line_error(bad) == (
        "error: invalid duration '5x': use a number and a unit, e.g. 30d, 12h, 15m"
    )

    done = lockgate(tmp_path, "db", "clean", "--older-than", "0s")
    assert (done.code, done.out) == (0, "deleted 1 run(s) older than 0s\n"), done
    assert list(logs.iterdir()) == []
    runs, gone = lockgate_all(tmp_path, [["runs", "--json"], ["logs", run_id]])
    assert runs.json() == {"runs": []}
    assert one_line_error(gone).startswith(f"error: no run '{run_id}'")


def test_run_a_file_outside_any_project(tmp_path: Path):
    write(
        tmp_path,
        "job.py",
        """
        from lockgate import pipeline, task

        @task
        def hello() -> str:
            print("hi from a loose file")
            return "hi"

        with pipeline("loose"):
            hello()
    """,
    )
    done = lockgate(tmp_path, "run", "job.py", "--json")
    assert done.code == 0, done
    run_id = done.json()["run_id"]
    assert (tmp_path / ".lockgate" / "lockgate.db").is_file()
    assert (tmp_path / ".lockgate" / "logs" / "loose" / run_id).is_dir()
    assert not (tmp_path / "lockgate.toml").exists()
    runs, logs, listed = lockgate_all(tmp_path, [["runs", "--json"], ["logs", run_id], ["list"]])
    assert [r["id"] for r in runs.json()["runs"]] == [run_id]
    assert logs.out == "=== hello · attempt 1 · success ===\nhi from a loose file\n", logs
    assert listed.code == 0, listed
    assert listed.out.startswith("the pipelines folder "), listed
    assert "does not exist" in listed.out, listed


def test_bad_configuration_is_a_user_error(tmp_path: Path):
    write(tmp_path, "lockgate.toml", "[lockgate]\npipeline = 'flows'\n")
    line = one_line_error(lockgate(tmp_path, "list"))
    assert line == (
        f"error: {tmp_path.resolve()}/lockgate.toml: unknown setting 'pipeline' in [lockgate]; "
        "did you mean 'pipelines'?"
    )
    write(tmp_path, "lockgate.toml", "[lockgate]\nexecutor = 'thread'\n")
    line = one_line_error(lockgate(tmp_path, "list"))
    assert line == (
        f"error: {tmp_path.resolve()}/lockgate.toml: unknown executor 'thread'; "
        "did you mean 'threads'?"
    )
