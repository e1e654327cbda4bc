"""Per-attempt logs: print, logging, ctx.log, and shell output land in that attempt's file."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest

from lockgate import pipeline, shell, task
from lockgate.model.states import RunState

from .conftest import EXECUTORS


def _log(project, result, task_id: str, attempt: int = 1) -> str:
    path = Path(
        project.logs_dir, result.pipeline_id, result.run_id, task_id, f"attempt-{attempt}.log"
    )
    assert path.is_file(), f"no log file {path}"
    return path.read_text()


def test_python_output_goes_to_its_own_attempt_log(run_pipeline, project) -> None:
    barrier = threading.Barrier(2, timeout=10)

    def body(name: str):
        def run(ctx) -> None:
            barrier.wait()  # both tasks are running at once from here
            for i in range(50):
                print(f"print-{name}-{i}")
            sys.stderr.write(f"stderr-{name}\n")
            ctx.log.info("ctxlog-%s", name)
            logging.getLogger("some.library").warning("logging-%s", name)
            barrier.wait()

        return run

    with pipeline("logs") as p:
        task(body("left")).override(id="left")()
        task(body("right")).override(id="right")()
    result, _ = run_pipeline(p, executor="threads", concurrency=2)
    assert result.state is RunState.SUCCESS, result.tasks
    for mine, other in (("left", "right"), ("right", "left")):
        text = _log(project, result, mine)
        for i in range(50):
            assert f"print-{mine}-{i}\n" in text
        assert f"stderr-{mine}" in text
        assert f"ctxlog-{mine}" in text
        assert "INFO lockgate.task." + mine + " - " in text
        assert f"logging-{mine}" in text
        assert "WARNING some.library" in text
        assert other not in text, f"{other}'s output leaked into {mine}'s log"


def test_shell_stdout_and_stderr_go_to_its_attempt_log(run_pipeline, project) -> None:
    script = (
        'for i in 1 2 3 4 5; do echo "out-{n}-$i"; echo "err-{n}-$i" >&2; sleep 0.02; done; '
        'echo "task=$LOCKGATE_TASK attempt=$LOCKGATE_ATTEMPT"'
    )
    with pipeline("shelllogs") as p:
        shell("one", script.format(n="one"))
        shell("two", script.format(n="two"))
    result, _ = run_pipeline(p, executor="threads", concurrency=2)
    assert result.state is RunState.SUCCESS
    for mine, other in (("one", "two"), ("two", "one")):
        text = _log(project, result, mine)
        for i in range(1, 6):
            assert f"out-{mine}-{i}" in text
            assert f"err-{mine}-{i}" in text
        assert f"task={mine} attempt=1" in text
        assert other not in text


def test_each_attempt_has_its_own_log(run_pipeline, project) -> None:
    @task(retries=2)
    def flaky(ctx) -> None:
        print(f"this is attempt {ctx.attempt}")
        if ctx.attempt < 3:
            raise ValueError(f"failed attempt {ctx.attempt}")

    with pipeline("attemptlogs") as p:
        flaky()
        shell(
            "sh", 'echo "shell attempt $LOCKGATE_ATTEMPT"; [ "$LOCKGATE_ATTEMPT" = 2 ]', retries=1
        )
    result, _ = run_pipeline(p)
    assert result.state is RunState.SUCCESS
    for attempt in (1, 2, 3):
        text = _log(project, result, "flaky", attempt)
        assert f"this is attempt {attempt}" in text
        others = {1, 2, 3} - {attempt}
        assert not any(f"this is attempt {o}" in text for o in others)
        if attempt < 3:
            assert "Traceback" in text and f"ValueError: failed attempt {attempt}" in text
        else:
            assert "Traceback" not in text
    assert "shell attempt 1" in _log(project, result, "sh", 1)
    assert "shell attempt 2" not in _log(project, result, "sh", 1)
    assert "shell attempt 2" in _log(project, result, "sh", 2)


def test_skip_reason_is_logged(run_pipeline, project) -> None:
    @task
    def skipper(ctx) -> None:
        ctx.skip("nothing new")

    with pipeline("skiplog") as p:
        skipper()
    result, _ = run_pipeline(p)
    assert "task skipped: nothing new" in _log(project, result, "skipper")


def test_output_outside_tasks_is_not_captured(run_pipeline, project, capsys) -> None:
    @task
    def talk() -> None:
        print("inside the task")

    with pipeline("outside") as p:
        talk()
    result, _ = run_pipeline(p)
    print("outside any task")
    assert "outside any task" in capsys.readouterr().out
    text = _log(project, result, "talk")
    assert "inside the task" in text and "outside" not in text.replace("inside", "")


def test_quiet_task_has_no_log_file(run_pipeline, project) -> None:
    with pipeline("quiet") as p:
        task(lambda: 1).override(id="silent")()
    result, _ = run_pipeline(p)
    path = Path(project.logs_dir, "quiet", result.run_id, "silent", "attempt-1.log")
    assert not path.exists()


@pytest.mark.parametrize("executor", EXECUTORS)
def test_logs_with_every_executor(run_pipeline, pipeline_file, project, executor) -> None:
    pipe = pipeline_file("""
    import logging
    import sys

    from lockgate import pipeline, shell, task

    @task
    def talk(ctx) -> None:
        print("printed", ctx.task_id)
        print("to stderr", file=sys.stderr)
        ctx.log.warning("ctx warning")
        logging.getLogger("lib").error("library error")

    @task
    def fail() -> None:
        print("before failing")
        raise RuntimeError("the failure")

    with pipeline("everylog") as p:
        talk()
        fail()
        shell("sh", "echo shell-out; echo shell-err >&2")
    """)["everylog"]
    result, _ = run_pipeline(pipe, executor=executor)
    talk = _log(project, result, "talk")
    assert "printed talk" in talk
    assert "to stderr" in talk
    assert "WARNING lockgate.task.talk - ctx warning" in talk
    assert "ERROR lib - library error" in talk
    fail = _log(project, result, "fail")
    assert "before failing" in fail
    assert "RuntimeError: the failure" in fail
    assert "printed" not in fail
    sh = _log(project, result, "sh")
    assert "shell-out" in sh and "shell-err" in sh
