"""Behaviour found by trying lockgate as a new user: each case fails clearly, or is captured."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import lockgate
from lockgate import pipeline, shell, task
from lockgate.config import Project
from lockgate.errors import ConfigError, DefinitionError
from lockgate.store.db import create_db_engine


def test_inline_executor_fails_a_python_task_that_ran_past_its_timeout(project: Project) -> None:
    @task(timeout=0.2)
    def slow() -> str:
        time.sleep(0.4)
        return "late"

    with pipeline("slow_inline") as p:
        slow()
    result = lockgate.run(p, store=False, executor="inline", project=project)
    summary = result.tasks["slow"]
    assert summary.state.value == "failed"
    assert summary.error is not None and summary.error.startswith("timed out after 0.2s")
    assert summary.result_json is None


def test_callback_output_and_failures_go_to_the_attempt_log(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    def chatty(ctx: lockgate.TaskContext) -> None:
        print("CALLBACK SAYS HI")
        ctx.log.info("callback logged")

    def broken(ctx: lockgate.TaskContext) -> None:
        raise RuntimeError("callback bug")

    @task(on_success=[chatty, broken])
    def work() -> int:
        return 1

    with pipeline("callbacks_log") as p:
        work()
    result = lockgate.run(p, store=False, project=project)
    assert result.ok
    assert "CALLBACK SAYS HI" not in capsys.readouterr().out
    log = next(project.logs_dir.rglob("attempt-1.log")).read_text()
    assert "CALLBACK SAYS HI" in log and "callback logged" in log
    assert "RuntimeError: callback bug" in log


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused_up_front(url: str) -> None:
    with pytest.raises(ConfigError, match="in-memory SQLite"):
        create_db_engine(url)


def test_formatting_a_task_result_into_a_command_is_a_definition_error() -> None:
    @task
    def value() -> int:
        return 1

    with pytest.raises(DefinitionError, match="only known when the run reaches it"):  # noqa: SIM117
        with pipeline("fmt"):
            r = value()
            shell("show", f"echo {r}")


def test_unknown_pipeline_option_suggests_the_right_one() -> None:
    with pytest.raises(
        DefinitionError, match="unknown pipeline option 'schedul'; did you mean 'schedule'"
    ):  # noqa: E501
        pipeline("x", schedul="@daily")


def test_unwritable_log_folder_fails_before_any_task(project: Project, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    project.logs_dir = blocker / "logs"
    ran: list[int] = []

    @task
    def work() -> None:
        ran.append(1)

    with pipeline("nologs") as p:
        work()
    with pytest.raises(ConfigError, match="cannot create the log folder"):
        lockgate.run(p, store=False, project=project)
    assert ran == []


def test_running_an_id_defined_in_two_files_is_an_error(tmp_path: Path) -> None:
    from lockgate.authoring.discovery import find_pipeline

    body = 'from lockgate import pipeline, shell\nwith pipeline("twin"):\n    shell("a", "true")\n'
    (tmp_path / "one.py").write_text(body)
    (tmp_path / "two.py").write_text(body)
    with pytest.raises(DefinitionError, match="pipeline id 'twin' is defined twice"):
        find_pipeline("twin", tmp_path)


def test_a_shell_compensation_learns_which_task_failed_and_why(project: Project) -> None:
    with pipeline("comp_env") as p:
        undo = shell("undo", 'echo "undoing $LOCKGATE_FAILED_TASK: $LOCKGATE_FAILED_ERROR"')
        shell("risky", "exit 3", compensate_with=undo)
    result = lockgate.run(p, store=False, project=project)
    assert result.tasks["undo"].state.value == "success"
    log = next(project.logs_dir.rglob("undo/attempt-1.log")).read_text()
    assert log.strip() == "undoing risky: command exited with code 3"


def test_a_task_traceback_starts_at_the_users_code(project: Project) -> None:
    @task
    def explode() -> None:
        raise ValueError("boom")

    with pipeline("tb") as p:
        explode()
    lockgate.run(p, store=False, project=project)
    log = next(project.logs_dir.rglob("explode/attempt-1.log")).read_text()
    assert "ValueError: boom" in log and "in explode" in log
    assert "lockgate/engine/work.py" not in log


def test_a_shell_task_that_cannot_start_fails_instead_of_hanging(project: Project) -> None:
    @task
    def nul() -> str:
        return "a\u0000b"  # a NUL byte cannot go into an environment variable

    with pipeline("nul_env") as p:
        shell("show", 'echo "$V"', env={"V": nul()})
    result = lockgate.run(p, store=False, project=project)
    assert result.tasks["show"].state.value == "failed"
    assert "cannot start command" in (result.tasks["show"].error or "")


def test_params_must_be_json_and_identifiers() -> None:
    import datetime

    with pytest.raises(DefinitionError, match="param 'day'.* is not JSON"):  # noqa: SIM117
        with pipeline("p1", params={"day": datetime.date(2026, 1, 1)}):
            shell("a", "true")
    with pytest.raises(DefinitionError, match="must be an identifier"):  # noqa: SIM117
        with pipeline("p2", params={"a=b": 1}):
            shell("a", "true")


def test_a_run_cannot_be_claimed_twice(project: Project) -> None:
    store = lockgate.api.open_store(project)
    store.create_run("claimed-1", "p", None, {}, "threads")
    store.release_run("claimed-1")
    with store.db.transaction() as cur:
        cur.execute("UPDATE runs SET state = 'lost' WHERE id = ?", ("claimed-1",))
    store.claim_run("claimed-1", "threads")
    with pytest.raises(ConfigError, match="cannot be resumed now"):
        store.claim_run("claimed-1", "threads")


def test_the_writer_beats_while_a_run_is_busy(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lockgate.store import writer

    monkeypatch.setattr(writer, "HEARTBEAT_S", 0.05)
    store = lockgate.api.open_store(project)
    beats: list[float] = []
    heartbeat = store.heartbeat
    monkeypatch.setattr(store, "heartbeat", lambda: (beats.append(time.time()), heartbeat()))

    @task
    def tick(i: int) -> int:
        time.sleep(0.02)
        return i

    with pipeline("busy_beats", max_active_tasks=1) as p:
        for i in range(15):  # an event every ~20 ms: never idle for a whole beat interval
            tick.override(id=f"t{i}")(i)
    assert lockgate.run(p, project=project, store=store).ok
    assert len(beats) >= 2


def test_processes_executor_captures_output_of_subprocesses(
    project: Project, tmp_path: Path
) -> None:
    from lockgate.authoring.discovery import load_file

    file = tmp_path / "child_output.py"
    file.write_text(
        "import subprocess\n"
        "from lockgate import pipeline, task\n\n"
        "@task\n"
        "def spawn() -> None:\n"
        "    print('from python')\n"
        "    subprocess.run(['echo', 'from a child process'], check=True)\n\n"
        "with pipeline('child_output'):\n"
        "    spawn()\n"
    )
    [pipe] = load_file(file)
    result = lockgate.run(pipe, store=False, executor="processes", project=project)
    assert result.ok, result.tasks
    log = next(project.logs_dir.rglob("spawn/attempt-1.log")).read_text()
    assert "from python" in log and "from a child process" in log
