"""Cancellation: engine.cancel() from another thread, and SIGTERM/SIGINT to `lockgate run`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lockgate import pipeline, shell, task
from lockgate.engine import events as ev
from lockgate.model.states import RunState, TaskState

from .helpers import ok, read_pid, wait_pid_gone, wait_until

SLEEPER = 'echo $$ > "{dir}/sh.pid"; sleep 30 & echo $! > "{dir}/child.pid"; wait'
_SCRIPT = Path(sys.executable).with_name("lockgate")
LOCKGATE = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "lockgate"]


def _cancel_when(engine, ready) -> threading.Thread:
    """Call engine.cancel() from another thread once `ready()` holds."""

    def go() -> None:
        assert wait_until(ready, 20), "the run never reached the state to cancel in"
        engine.cancel()

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread


def test_cancel_from_another_thread(make_engine, tmp_path) -> None:
    release = threading.Event()
    failures: list[int] = []

    @task
    def stuck() -> None:
        release.wait(30)

    @task(retries=5, retry_delay=30)
    def retrier() -> None:
        failures.append(1)
        raise RuntimeError("try later")

    with pipeline("cancelme") as p:
        long = shell("long", SLEEPER.format(dir=tmp_path))
        long >> ok.override(id="after_long")()
        stuck()
        retrier()
        ok.override(id="done_early")()
        long >> ok.override(id="cleanup", trigger_rule="all_done")()
    engine, rec = make_engine(p, executor="threads", concurrency=8)

    def ready() -> bool:
        return (
            (tmp_path / "child.pid").is_file()
            and engine.state["retrier"] is TaskState.UP_FOR_RETRY
            and engine.state["stuck"] is TaskState.RUNNING
            and engine.state["done_early"] is TaskState.SUCCESS
        )

    canceller = _cancel_when(engine, ready)
    started = time.monotonic()
    try:
        result = engine.run()
    finally:
        release.set()
    took = time.monotonic() - started
    canceller.join(5)

    assert result.state is RunState.CANCELLED
    states = {tid: t.state for tid, t in result.tasks.items()}
    assert states == {
        "long": TaskState.CANCELLED,
        "after_long": TaskState.CANCELLED,
        "stuck": TaskState.CANCELLED,
        "retrier": TaskState.CANCELLED,
        "done_early": TaskState.SUCCESS,
        "cleanup": TaskState.CANCELLED,
    }
    assert result.tasks["long"].error == "run cancelled"
    assert result.tasks["long"].attempts == 1
    assert result.tasks["after_long"].attempts == 0
    assert len(failures) == 1, "a cancelled run must not retry"
    assert took < 20
    child, sh = read_pid(tmp_path / "child.pid"), read_pid(tmp_path / "sh.pid")
    assert wait_pid_gone(child, 5), "the shell task's child survived the cancel"
    assert wait_pid_gone(sh, 5)
    cancelled = {e.task_id for e in rec.of(ev.TASK_CANCELLED)}
    assert cancelled == {"long", "after_long", "stuck", "retrier", "cleanup"}
    assert rec.events[-1].kind == ev.RUN_FINISHED
    assert rec.events[-1].state == RunState.CANCELLED.value


def test_cancel_interrupts_a_shell_task_of_the_inline_executor(make_engine, tmp_path) -> None:
    with pipeline("inlinecancel") as p:
        shell("long", SLEEPER.format(dir=tmp_path)) >> ok.override(id="after")()
    engine, _ = make_engine(p, executor="inline")
    canceller = _cancel_when(engine, lambda: (tmp_path / "child.pid").is_file())
    started = time.monotonic()
    result = engine.run()
    assert time.monotonic() - started < 15, "the run waited for the shell task to finish"
    canceller.join(5)
    assert result.state is RunState.CANCELLED
    assert result.tasks["long"].state is TaskState.CANCELLED
    assert result.tasks["after"].state is TaskState.CANCELLED
    assert wait_pid_gone(read_pid(tmp_path / "child.pid"), 5)
    assert wait_pid_gone(read_pid(tmp_path / "sh.pid"), 5)


def test_cancel_before_the_run_starts(make_engine) -> None:
    with pipeline("early") as p:
        ok.override(id="a")() >> ok.override(id="b")()
    engine, _ = make_engine(p, executor="threads")
    engine.cancel()
    result = engine.run()
    assert result.state is RunState.CANCELLED
    assert result.tasks["a"].state is TaskState.CANCELLED
    assert result.tasks["b"].state is TaskState.CANCELLED
    assert result.tasks["b"].attempts == 0


def test_cancel_does_not_run_compensation(make_engine) -> None:
    release = threading.Event()

    @task
    def undo() -> None:
        pass

    @task
    def stuck() -> None:
        release.wait(30)
        raise RuntimeError("too late")

    with pipeline("nocomp") as p:
        stuck.override(compensate_with=undo())()
    engine, _ = make_engine(p)
    _cancel_when(engine, lambda: engine.state["stuck"] is TaskState.RUNNING)
    try:
        result = engine.run()
    finally:
        release.set()
    assert result.state is RunState.CANCELLED
    assert result.tasks["stuck"].state is TaskState.CANCELLED
    assert result.tasks["undo"].state in (TaskState.CANCELLED, TaskState.SKIPPED)
    assert result.tasks["undo"].attempts == 0


PROCESS_CANCEL = """
import os
import time
from pathlib import Path

from lockgate import pipeline, shell, task


@task
def stuck(pidfile: str) -> None:
    Path(pidfile + ".tmp").write_text(str(os.getpid()))
    os.rename(pidfile + ".tmp", pidfile)
    time.sleep(30)


with pipeline("pcancel") as p:
    stuck({pidfile!r})
    shell("long", {script!r})
"""


def test_cancel_kills_the_worker_process(make_engine, pipeline_file, tmp_path) -> None:
    pidfile = tmp_path / "worker.pid"
    source = PROCESS_CANCEL.format(pidfile=str(pidfile), script=SLEEPER.format(dir=tmp_path))
    pipe = pipeline_file(source)["pcancel"]
    engine, _ = make_engine(pipe, executor="processes", concurrency=4)
    _cancel_when(engine, lambda: pidfile.is_file() and (tmp_path / "child.pid").is_file())
    started = time.monotonic()
    result = engine.run()
    assert time.monotonic() - started < 20
    assert result.state is RunState.CANCELLED
    assert result.tasks["stuck"].state is TaskState.CANCELLED
    assert result.tasks["long"].state is TaskState.CANCELLED
    worker = read_pid(pidfile)
    assert worker != os.getpid()
    assert wait_pid_gone(worker, 5), "the worker running a cancelled task survived"
    assert wait_pid_gone(read_pid(tmp_path / "child.pid"), 5)


# -- signals to the real command line -----------------------------------------------------------

CLI_PIPELINE = """
from lockgate import pipeline, shell

with pipeline("sig") as p:
    shell("sleeper", {script!r}) >> shell("after", "echo after")
"""


def _cli(args: list[str], cwd: Path, **kwargs) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    return subprocess.Popen(
        [*LOCKGATE, *args],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


@pytest.mark.parametrize("executor", ["threads", "inline"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_cancels_a_cli_run(project, tmp_path, sig, executor) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "flow.py").write_text(CLI_PIPELINE.format(script=SLEEPER.format(dir=work)))
    proc = _cli(["run", "work/flow.py", "--json", "-e", executor], cwd=tmp_path)
    try:
        if not wait_until(lambda: (work / "child.pid").is_file() or proc.poll() is not None, 30):
            pytest.fail("the shell task never started")
        assert proc.poll() is None, proc.communicate()
        child, sh = read_pid(work / "child.pid"), read_pid(work / "sh.pid")
        proc.send_signal(sig)
        signalled = time.monotonic()
        out, err = proc.communicate(timeout=30)
        # the shell task sleeps 30 s: the run must not have waited for it
        assert time.monotonic() - signalled < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    assert proc.returncode == 1, err
    doc = json.loads(out)
    assert doc["state"] == "cancelled"
    assert {t["id"]: t["state"] for t in doc["tasks"]} == {
        "sleeper": "cancelled",
        "after": "cancelled",
    }
    assert wait_pid_gone(child, 5), "the shell task's process survived the signal"
    assert wait_pid_gone(sh, 5)

    runs = subprocess.run(
        [*LOCKGATE, "runs", "--json"],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")},
    )
    assert runs.returncode == 0, runs.stderr
    [run] = json.loads(runs.stdout)["runs"]
    assert run["id"] == doc["run_id"]
    assert run["state"] == "cancelled"
    assert run["pipeline"] == "sig"
