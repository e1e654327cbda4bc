"""`lockgate run/list/show/runs/logs/test/db upgrade` in one shared project (runs accumulate in
it); user errors of every command are checked concurrently, read-only, in the same project."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from .helpers import Done, lockgate, lockgate_all, one_line_error, write

PIPELINES = {
    "typed.py": """
        from lockgate import param, pipeline, task

        @task
        def show(n, flag, ratio, name, items):
            print("typed:", repr(n), repr(flag), repr(ratio), repr(name), repr(items))
            return {"n": n, "flag": flag}

        with pipeline("typed", params={"n": 1, "flag": False, "ratio": 0.5, "name": "x",
                                       "items": [1]}) as p:
            show(param("n"), param("flag"), param("ratio"), param("name"), param("items"))
    """,
    "flaky.py": """
        from lockgate import pipeline, shell

        with pipeline("flaky") as p:
            shell(
                "wobbly",
                'if [ -f "seen-$LOCKGATE_RUN_ID" ]; then echo "second attempt"; '
                'else touch "seen-$LOCKGATE_RUN_ID"; echo "first attempt"; exit 1; fi',
                retries=1,
            )
    """,
    "failing.py": """
        from lockgate import pipeline, shell

        with pipeline("failing") as p:
            shell("boom", "echo going down; exit 3") >> shell("after", "echo never")
    """,
    "data.py": """
        from lockgate import pipeline, task

        @task
        def extract() -> dict:
            return {"values": [1, 2, 3]}

        @task(retries=2, timeout=10)
        def total(values: list[int]) -> int:
            print("summing", values)
            if not values:
                raise ValueError("nothing to sum")
            return sum(values)

        with pipeline("data", description="Sums numbers.", schedule="@daily",
                      params={"limit": 10}) as p:
            total(extract()["values"])
    """,
    "quoting.py": """
        from lockgate import param, pipeline, shell

        with pipeline("quoting", params={"value": "harmless"}) as p:
            shell("echo", 'printf "%s" "$VALUE" > value.txt', env={"VALUE": param("value")})
    """,
}


@pytest.fixture(scope="module")
def proj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cliproj")
    done = lockgate(root, "init")
    assert done.code == 0, done
    for name, source in PIPELINES.items():
        write(root / "pipelines", name, source)
    return root


def run_json(proj: Path, *args: str) -> dict:
    done = lockgate(proj, "run", *args, "--json")
    doc = done.json()
    assert done.code == (0 if doc["state"] == "success" else 1), done
    assert done.err == "", done
    return doc


@pytest.fixture(scope="module")
def hello_run(proj: Path) -> str:
    return run_json(proj, "hello")["run_id"]


@pytest.fixture(scope="module")
def failing_run(proj: Path) -> dict:
    return run_json(proj, "failing")


@pytest.fixture(scope="module")
def flaky_run(proj: Path) -> dict:
    return run_json(proj, "flaky")


# -- user errors: exit code 2 and one line on stderr, for every command -------------------------

USER_ERRORS = {
    "unknown pipeline": (["run", "nope"], "error: no pipeline 'nope' in "),
    "misspelt pipeline": (
        ["run", "helo"],
        "error: no pipeline 'helo'; did you mean 'hello'? (looked in ",
    ),
    "param without =": (["run", "typed", "-p", "n"], "error: --param 'n' must look like KEY=VALUE"),
    "unknown param": (
        ["run", "typed", "-p", "m=1"],
        "error: pipeline 'typed': unknown param 'm'; declared params: flag, items, n, name, ratio",
    ),
    "not an int": (
        ["run", "typed", "-p", "n=abc"],
        "error: pipeline 'typed': param 'n': expected an integer, got 'abc'",
    ),
    "not a bool": (
        ["run", "typed", "-p", "flag=maybe"],
        "error: pipeline 'typed': param 'flag': expected true or false",
    ),
    "missing file": (["run", "missing.py"], "error: pipeline file 'missing.py' does not exist"),
    "unknown executor": (["run", "hello", "-e", "warp"], "error: "),
    "show unknown": (["show", "nope"], "error: no pipeline 'nope'"),
    "runs bad state": (["runs", "--state", "faild"], "error: --state 'faild' is not a run state"),
    "logs unknown run": (
        ["logs", "19990101T000000-abcdef"],
        "error: no run '19990101T000000-abcdef'; list runs with `lockgate runs`",
    ),
    "logs unknown task": (["logs", "{hello}", "nope"], "error: run {hello} has no attempt of task"),
    "logs unknown attempt": (
        ["logs", "{hello}", "load", "--attempt", "3"],
        "error: task 'load' has no attempt 3 in run {hello}",
    ),
    "test missing input": (
        ["test", "data", "total"],
        "error: task 'total' uses the result of 'extract': give it with --input extract=JSON",
    ),
    "test bad json": (["test", "data", "total", "-i", "extract={"], "error: --input extract: '{'"),
    "test not upstream": (
        ["test", "data", "total", "-i", "other=1"],
        "error: --input other: not an upstream task of 'total' (upstream: extract)",
    ),
    "test unknown task": (
        ["test", "data", "nope"],
        "error: pipeline 'data' has no task 'nope'; tasks: extract, total",
    ),
    "resume unknown run": (["resume", "nope"], "error: no run 'nope'"),
}


@pytest.fixture(scope="module")
def user_errors(proj: Path, hello_run: str) -> dict[str, Done]:
    commands = [[a.replace("{hello}", hello_run) for a in args] for args, _ in USER_ERRORS.values()]
    return dict(zip(USER_ERRORS, lockgate_all(proj, commands), strict=True))


@pytest.mark.parametrize("case", list(USER_ERRORS))
def test_user_errors_exit_2_with_one_line(user_errors: dict[str, Done], hello_run: str, case):
    line = one_line_error(user_errors[case])
    assert line.startswith(USER_ERRORS[case][1].replace("{hello}", hello_run)), line


# -- run ---------------------------------------------------------------------------------------


def test_run_succeeds_with_exit_code_0(proj: Path):
    done = lockgate(proj, "run", "hello")
    assert done.code == 0, done
    assert re.search(r"^run \S+ of hello: 3 task\(s\)$", done.out, re.M), done
    assert re.search(r"^\d\d:\d\d:\d\d ok +load \d+\.\d\ds$", done.out, re.M), done
    assert re.search(r"^run \S+: success in \d+\.\d\ds  \(3 success\)$", done.out, re.M), done
    assert "logs: lockgate logs " in done.out
    assert done.err == ""


def test_failed_run_exits_1(proj: Path):
    done = lockgate(proj, "run", "failing")
    assert done.code == 1, done
    assert re.search(r"^boom +failed +1 +command exited with code 3", done.out, re.M), done
    assert re.search(r"^after +upstream_failed +0", done.out, re.M), done
    assert done.err == ""


def test_run_json_document(proj: Path):
    done = lockgate(proj, "run", "pipelines/data.py:data", "--json")
    assert done.code == 0, done
    doc = done.json()
    assert set(doc) == {
        "run_id",
        "pipeline",
        "state",
        "started_at",
        "ended_at",
        "duration_s",
        "error",
        "tasks",
    }
    assert (doc["pipeline"], doc["state"]) == ("data", "success")
    assert doc["tasks"] == [
        {"id": "extract", "state": "success", "attempts": 1, "error": None},
        {"id": "total", "state": "success", "attempts": 1, "error": None},
    ]
    assert doc["ended_at"] >= doc["started_at"] and doc["duration_s"] >= 0
    assert done.err == ""


def test_failed_run_json(failing_run: dict):
    assert failing_run["state"] == "failed"
    assert [(t["id"], t["state"], t["attempts"]) for t in failing_run["tasks"]] == [
        ("boom", "failed", 1),
        ("after", "upstream_failed", 0),
    ]
    assert failing_run["tasks"][0]["error"] == "command exited with code 3"


def test_params_are_typed_by_their_default(proj: Path):
    doc = run_json(
        proj,
        "typed",
        "-p",
        "n=7",
        "--param",
        "flag=yes",
        "-p",
        "ratio=2",
        "-p",
        "name=42",
        "-p",
        "items=[2, 3]",
    )
    assert doc["state"] == "success"
    # a unique prefix is enough (the id minus its last hex digit is unique in practice)
    logs = lockgate(proj, "logs", doc["run_id"][:-1], "show")
    assert logs.code == 0, logs
    assert "typed: 7 True 2.0 '42' [2, 3]" in logs.out, logs
    tested = lockgate(proj, "test", "typed", "show", "-p", "flag=0")
    assert tested.out.startswith("typed: 1 False 0.5 'x' [1]\n"), tested


def test_values_with_shell_metacharacters_are_not_executed(proj: Path):
    evil = "$(touch pwned); rm -rf pipelines `touch pwned2`"
    assert run_json(proj, "quoting", "-p", f"value={evil}")["state"] == "success"
    assert (proj / "value.txt").read_text() == evil
    assert not list(proj.glob("pwned*"))
    assert (proj / "pipelines" / "hello.py").is_file()


# -- list, show --------------------------------------------------------------------------------


def test_list(proj: Path, hello_run: str):
    done = lockgate(proj, "list")
    assert done.code == 0, done
    lines = done.out.splitlines()
    assert lines[0].split() == [
        "pipeline",
        "tasks",
        "schedule",
        "last",
        "run",
        "state",
        "file",
        "form",
    ]
    assert sorted(line.split()[0] for line in lines[1:]) == [
        "data",
        "failing",
        "flaky",
        "hello",
        "quoting",
        "typed",
    ]
    assert re.search(r"^data +2 +@daily +", done.out, re.M), done
    assert re.search(
        r"^hello +3 +- +\d{4}-\d\d-\d\d \d\d:\d\d +success +pipelines/hello\.py +Python$",
        done.out,
        re.M,
    ), done
    doc = lockgate(proj, "list", "--json").json()
    assert doc["errors"] == []
    data = next(p for p in doc["pipelines"] if p["id"] == "data")
    assert data == {
        "id": "data",
        "file": str(proj.resolve() / "pipelines" / "data.py"),
        "origin": "python",
        "tasks": 2,
        "schedule": "@daily",
        "datasets": [],
        "timezone": "UTC",
        "paused": False,
        "last_run": data["last_run"],
        "last_state": data["last_state"],
    }
    hello = next(p for p in doc["pipelines"] if p["id"] == "hello")
    assert hello["last_state"] == "success" and hello["last_run"] is not None


def test_show(proj: Path):
    done = lockgate(proj, "show", "data")
    assert done.code == 0, done
    lines = done.out.splitlines()
    source = (proj / "pipelines" / "data.py").read_text().splitlines()
    line = 1 + next(i for i, text in enumerate(source) if text.startswith("with pipeline"))
    assert lines[0].split() == [
        "data",
        "2",
        "task(s)",
        "schedule:",
        "@daily",
        "defined",
        "at",
        f"pipelines/data.py:{line}",
        "(Python)",
    ]
    assert lines[1] == "Sums numbers."
    assert lines[2] == "catchup off"
    # the next daily interval: it ends at the coming midnight, UTC
    assert re.fullmatch(
        r"next interval: \d{4}-\d\d-\d\d 00:00:00 -> \d{4}-\d\d-\d\d 00:00:00 UTC, "
        r"due in \w+",
        lines[3],
    ), lines[3]
    assert lines[4].split() == ["param", "type", "default", "description"]
    assert lines[5].split() == ["limit", "integer", "10"]
    assert re.search(r"^extract +python +- +extract\(\) +- *$", done.out, re.M), done
    assert re.search(
        r"^  total +python +extract +total\(\) +retries=2 timeout=10s *$", done.out, re.M
    ), done


# -- runs, logs --------------------------------------------------------------------------------


def test_runs_json(proj: Path, hello_run: str, failing_run: dict):
    doc = lockgate(proj, "runs", "--json").json()
    assert set(doc) == {"runs"}
    ids = [r["id"] for r in doc["runs"]]
    assert hello_run in ids and failing_run["run_id"] in ids
    created = [r["created_at"] for r in doc["runs"]]
    assert created == sorted(created, reverse=True)  # newest first
    row = doc["runs"][ids.index(failing_run["run_id"])]
    assert set(row) == {
        "id",
        "pipeline",
        "state",
        "trigger",
        "executor",
        "created_at",
        "started_at",
        "ended_at",
        "error",
        "run_id",
        "logical_date",
        "data_interval_start",
        "data_interval_end",
        "checks",
    }
    assert row["run_id"] == row["id"]
    assert row["checks"] == {"total": 0, "failed": 0}
    assert (row["pipeline"], row["state"], row["trigger"], row["executor"]) == (
        "failing",
        "failed",
        "manual",
        "threads",
    )
    # ISO 8601 with an offset
    assert datetime.fromisoformat(row["logical_date"]).utcoffset() is not None
    assert row["created_at"] <= row["started_at"] <= row["ended_at"]
    failed = lockgate(proj, "runs", "--json", "--state", "failed", "--pipeline", "failing")
    assert failing_run["run_id"] in [r["id"] for r in failed.json()["runs"]]
    assert {(r["pipeline"], r["state"]) for r in failed.json()["runs"]} == {("failing", "failed")}


def test_runs_table(proj: Path, hello_run: str):
    done = lockgate(proj, "runs", "--pipeline", "hello", "-n", "500")
    assert done.code == 0, done
    lines = done.out.splitlines()
    assert lines[0].split() == ["run", "pipeline", "state", "trigger", "created", "took", "error"]
    rows = [line.split()[:3] for line in lines[1:]]
    assert [hello_run, "hello", "success"] in rows
    assert {row[1] for row in rows} == {"hello"}
    assert lockgate(proj, "runs", "--pipeline", "nothing").out == "no runs match\n"


def test_logs_of_a_run(proj: Path, hello_run: str):
    done = lockgate(proj, "logs", hello_run)
    assert done.code == 0, done
    assert done.out == (
        "=== extract · attempt 1 · success ===\nExtracting data\n"
        "=== transform · attempt 1 · success ===\nTransforming data\n"
        "=== load · attempt 1 · success ===\nLoading data\n"
    )


def test_logs_of_each_attempt(proj: Path, flaky_run: dict):
    # a success after a retry carries no error
    assert flaky_run["tasks"] == [
        {"id": "wobbly", "state": "success", "attempts": 2, "error": None}
    ]
    run_id = flaky_run["run_id"]
    first, second, latest = lockgate_all(
        proj,
        [
            ["logs", run_id, "wobbly", "--attempt", "1"],
            ["logs", run_id, "wobbly", "-a", "2"],
            ["logs", run_id, "wobbly"],
        ],
    )
    assert first.out == (
        "=== wobbly · attempt 1 · failed ===\nfirst attempt\nerror: command exited with code 1\n"
    ), first
    assert second.out == "=== wobbly · attempt 2 · success ===\nsecond attempt\n", second
    assert latest.out == second.out, latest


# -- test --------------------------------------------------------------------------------------


def test_test_one_task_with_inputs(proj: Path, hello_run: str):
    before = lockgate(proj, "runs", "--json").json()["runs"]
    done = lockgate(proj, "test", "data", "total", "--input", 'extract={"values": [4, 5]}')
    assert (done.code, done.out) == (0, "summing [4, 5]\ntotal: success\nresult: 9\n"), done
    root, failed = lockgate_all(
        proj,
        [
            ["test", "pipelines/data.py", "extract"],
            ["test", "data", "total", "-i", 'extract={"values": []}'],
        ],
    )
    assert root.out == 'extract: success\nresult: {"values":[1,2,3]}\n', root
    assert failed.code == 1, failed
    assert "total: failed  ValueError: nothing to sum" in failed.out
    assert "Traceback" in failed.out  # the task's log, not lockgate's
    assert lockgate(proj, "runs", "--json").json()["runs"] == before  # nothing recorded


# -- db upgrade --------------------------------------------------------------------------------


def test_db_upgrade(proj: Path):
    done = lockgate(proj, "db", "upgrade")
    assert done.code == 0, done
    assert re.fullmatch(
        r"sqlite:///\S+/\.lockgate/lockgate\.db: already at revision \w+\n", done.out
    ), done
