"""Timeouts that really stop the work: shell process groups, abandoned threads, killed workers."""

from __future__ import annotations

import os
import threading
import time

import pytest

from lockgate import pipeline, shell, task
from lockgate.engine import events as ev
from lockgate.model.states import RunState, TaskState

from .conftest import EXECUTORS
from .helpers import ok, pid_alive, read_pid, wait_pid_gone

# a shell whose background child sleeps; the shell waits for it
SLEEPER = 'echo $$ > "{dir}/sh.pid"; sleep 30 & echo $! > "{dir}/child.pid"; wait'


SHELL_TIMEOUT = """
from lockgate import pipeline, shell, task

@task(trigger_rule="all_done")
def after() -> str:
    return "ok"

with pipeline("shelltimeout") as p:
    shell("slow", {script!r}, timeout=0.5) >> after()
"""


@pytest.mark.parametrize("executor", EXECUTORS)
def test_shell_timeout_kills_the_process_group(
    run_pipeline, pipeline_file, tmp_path, executor
) -> None:
    script = SLEEPER.format(dir=tmp_path)
    p = pipeline_file(SHELL_TIMEOUT.format(script=script))["shelltimeout"]
    started = time.monotonic()
    result, rec = run_pipeline(p, executor=executor)
    took = time.monotonic() - started
    t = result.tasks["slow"]
    assert t.state is TaskState.FAILED
    assert t.error == "timed out after 0.5s"
    assert t.attempts == 1
    assert result.tasks["after"].state is TaskState.SUCCESS
    assert result.state is RunState.FAILED
    assert took >= 0.5
    assert took < 15, "the shell was not stopped at its timeout"
    child, sh = read_pid(tmp_path / "child.pid"), read_pid(tmp_path / "sh.pid")
    assert wait_pid_gone(child, 5), f"background child {child} survived the timeout"
    assert wait_pid_gone(sh, 5), f"shell {sh} survived the timeout"
    [failed] = rec.of(ev.TASK_FAILED, "slow")
    assert failed.data["error"] == "timed out after 0.5s"


def test_shell_timeout_kills_children_that_ignore_sigterm(run_pipeline, tmp_path) -> None:
    script = "trap '' TERM; " + SLEEPER.format(dir=tmp_path)
    with pipeline("stubborn") as p:
        shell("stubborn", script, timeout=0.3)
    result, _ = run_pipeline(p)
    assert result.tasks["stubborn"].state is TaskState.FAILED
    assert "timed out" in (result.tasks["stubborn"].error or "")
    child = read_pid(tmp_path / "child.pid")
    assert wait_pid_gone(child, 10), "a child ignoring SIGTERM must get SIGKILL"
    assert wait_pid_gone(read_pid(tmp_path / "sh.pid"), 10)


def test_shell_task_within_its_timeout_succeeds(run_pipeline) -> None:
    with pipeline("intime") as p:
        shell("quick", "sleep 0.05", timeout=10)
    result, _ = run_pipeline(p)
    assert result.tasks["quick"].state is TaskState.SUCCESS


def test_python_timeout_in_threads_abandons_the_attempt(run_pipeline) -> None:
    release = threading.Event()
    finished = threading.Event()

    @task(timeout=0.3)
    def stuck() -> str:
        release.wait(30)
        finished.set()
        return "late"

    with pipeline("pytimeout") as p:
        s = stuck()
        s >> ok.override(id="after", trigger_rule="all_done")()
        ok.override(id="independent")()
    started = time.monotonic()
    try:
        result, rec = run_pipeline(p, executor="threads")
        took = time.monotonic() - started
        assert not finished.is_set(), "the run waited for the stuck task"
    finally:
        release.set()
    t = result.tasks["stuck"]
    assert t.state is TaskState.FAILED
    assert t.error == "timed out after 0.3s"
    assert t.result_json is None
    assert result.tasks["after"].state is TaskState.SUCCESS
    assert result.tasks["independent"].state is TaskState.SUCCESS
    assert result.state is RunState.FAILED
    assert 0.3 <= took < 15
    assert rec.events[-1].kind == ev.RUN_FINISHED
    # the abandoned attempt finishing later changes nothing
    assert finished.wait(10)
    time.sleep(0.05)
    assert result.tasks["stuck"].state is TaskState.FAILED


def test_timed_out_thread_does_not_use_up_capacity(run_pipeline) -> None:
    release = threading.Event()

    @task(timeout=0.2)
    def stuck() -> None:
        release.wait(30)

    with pipeline("capacity") as p:
        s = stuck()
        for i in range(3):
            s >> ok.override(id=f"next{i}", trigger_rule="all_done")()
    try:
        result, _ = run_pipeline(p, executor="threads", concurrency=1)
    finally:
        release.set()
    assert result.tasks["stuck"].state is TaskState.FAILED
    for i in range(3):
        assert result.tasks[f"next{i}"].state is TaskState.SUCCESS


PROCESS_TIMEOUT = """
import os
import subprocess
import time
from pathlib import Path

from lockgate import pipeline, task


@task(timeout=2)  # generous: a new worker process must start and load this file first
def stuck(pidfile: str) -> None:
    child = subprocess.Popen(["sleep", "30"])
    Path(pidfile + ".tmp").write_text(f"{{os.getpid()}} {{child.pid}}")
    os.rename(pidfile + ".tmp", pidfile)
    time.sleep(30)


@task(trigger_rule="all_done")
def after() -> int:
    return os.getpid()


with pipeline("ptimeout") as p:
    stuck({pidfile!r}) >> after()
"""


def test_python_timeout_in_processes_kills_the_worker(
    run_pipeline, pipeline_file, tmp_path
) -> None:
    pidfile = tmp_path / "worker.pid"
    pipe = pipeline_file(PROCESS_TIMEOUT.format(pidfile=str(pidfile)))["ptimeout"]
    started = time.monotonic()
    result, _ = run_pipeline(pipe, executor="processes")
    took = time.monotonic() - started
    t = result.tasks["stuck"]
    assert t.state is TaskState.FAILED
    assert t.error == "timed out after 2s"
    assert result.tasks["after"].state is TaskState.SUCCESS
    assert result.result("after") != os.getpid()
    assert 2 <= took < 25
    worker, child = (int(x) for x in pidfile.read_text().split())
    assert worker != os.getpid()
    assert wait_pid_gone(worker, 5), f"worker process {worker} survived the timeout"
    assert wait_pid_gone(child, 5), f"the task's child process {child} survived the timeout"


def test_shell_timeout_with_retries(run_pipeline, tmp_path) -> None:
    with pipeline("shellretry") as p:
        shell("slow", f'echo $$ >> "{tmp_path}/pids"; exec sleep 30', timeout=0.3, retries=2)
    started = time.monotonic()
    result, rec = run_pipeline(p)
    took = time.monotonic() - started
    t = result.tasks["slow"]
    assert t.state is TaskState.FAILED
    assert t.attempts == 3
    assert t.error == "timed out after 0.3s"
    retrying = rec.of(ev.TASK_RETRYING, "slow")
    assert [e.data["error"] for e in retrying] == ["timed out after 0.3s"] * 2
    assert took >= 0.9
    pids = [int(x) for x in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 3
    for pid in pids:
        assert wait_pid_gone(pid, 5)


RETRY_TIMEOUT = """
import time
from lockgate import pipeline, task

@task(timeout={timeout}, retries=2)
def sometimes_stuck(ctx) -> int:
    if ctx.attempt == 1:
        time.sleep(10)
    return ctx.attempt

with pipeline("retrytimeout") as p:
    sometimes_stuck()
"""


# a new worker process (started after the stuck one was killed) needs some time to start and
# load the pipeline file, which counts against the timeout: give it a generous one
@pytest.mark.parametrize(("executor", "timeout"), [("threads", 0.3), ("processes", 2.5)])
def test_python_timeout_then_success_on_retry(
    run_pipeline, pipeline_file, executor, timeout
) -> None:
    pipe = pipeline_file(RETRY_TIMEOUT.format(timeout=timeout))["retrytimeout"]
    result, rec = run_pipeline(pipe, executor=executor)
    t = result.tasks["sometimes_stuck"]
    assert t.state is TaskState.SUCCESS, t
    assert t.attempts == 2
    assert result.result("sometimes_stuck") == 2
    [retrying] = rec.of(ev.TASK_RETRYING)
    assert retrying.data["error"] == f"timed out after {timeout:g}s"
    assert result.state is RunState.SUCCESS


@pytest.mark.parametrize("timeout", [1e12, float("inf")])
def test_enormous_timeout_is_no_timeout(run_pipeline, timeout) -> None:
    @task(timeout=timeout)
    def quick() -> int:
        time.sleep(0.05)
        return 1

    with pipeline("huge") as p:
        quick()
        shell("sh", "sleep 0.05", timeout=timeout)
    result, _ = run_pipeline(p)
    assert result.state is RunState.SUCCESS, result.tasks


def test_pid_alive_helper_sees_a_live_process() -> None:
    assert pid_alive(os.getpid())
