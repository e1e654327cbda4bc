"""The Dask executor against a real `dask scheduler` and `dask worker` processes on 127.0.0.1."""

from __future__ import annotations

import os
import pickle
import signal
import threading
from pathlib import Path

import pytest
from tests.cli.helpers import lockgate, one_line_error, write
from tests.daskcluster import start_cluster

from lockgate.engine import events as ev
from lockgate.engine.context import TaskContext
from lockgate.engine.executors.dask_executor import DaskSettings, close_clusters
from lockgate.engine.executors.dask_worker import run_item
from lockgate.engine.work import FAILED, WorkItem
from lockgate.errors import ConfigError
from lockgate.model.states import RunState, TaskState

from .helpers import pid_alive, read_pid, wait_pid_gone, wait_until

FAN_OUT = """
import os
import time

from distributed import get_worker

from lockgate import pipeline, task

@task
def where(i: int) -> dict:
    time.sleep(0.2)
    return {"worker": get_worker().name, "pid": os.getpid()}

with pipeline("fan") as p:
    for i in range(16):
        where.override(id=f"t{i}")(i)
"""


def test_a_fan_out_runs_on_both_workers(run_pipeline, pipeline_file, dask_cluster) -> None:
    pipe = pipeline_file(FAN_OUT)["fan"]
    result, rec = run_pipeline(pipe, executor="dask", concurrency=16)
    assert result.state is RunState.SUCCESS, {t.id: t.error for t in result.tasks.values()}
    ran = [result.result(f"t{i}") for i in range(16)]
    assert {r["worker"] for r in ran} == {"w1", "w2"}, "each worker must have run some tasks"
    assert {r["pid"] for r in ran} == set(dask_cluster.worker_pids().values())
    assert os.getpid() not in {r["pid"] for r in ran}
    assert rec.events[0].data["executor"] == "dask"


DYING = """
import os
import time
from pathlib import Path

from distributed import get_worker

from lockgate import pipeline, task

@task(retries=1)
def victim(ctx) -> dict:
    if ctx.attempt == 1:
        Path({pid_file!r}).write_text(str(os.getpid()))
        time.sleep(60)
    return {{"worker": get_worker().name, "pid": os.getpid(), "attempt": ctx.attempt}}

with pipeline("dying") as p:
    victim()
"""


def test_a_worker_killed_mid_task_gives_a_lost_attempt_retried_elsewhere(
    make_engine, pipeline_file, tmp_path, monkeypatch
) -> None:
    cluster = start_cluster(tmp_path / "cluster")  # its own: one of its workers is killed
    try:
        monkeypatch.setenv("LOCKGATE_DASK_ADDRESS", cluster.address)
        pid_file = tmp_path / "victim.pid"
        pipe = pipeline_file(DYING.format(pid_file=str(pid_file)))["dying"]
        engine, rec = make_engine(pipe, executor="dask")
        engine.executor.settings = DaskSettings(address=cluster.address)
        killed: list[int] = []

        def kill() -> None:
            assert wait_until(pid_file.exists, 30), "the first attempt never started"
            pid = read_pid(pid_file)
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)

        killer = threading.Thread(target=kill, daemon=True)
        killer.start()
        result = engine.run()
        killer.join()
    finally:
        cluster.stop()
    task = result.tasks["victim"]
    assert result.state is RunState.SUCCESS, task.error
    assert task.attempts == 2
    [retrying] = rec.of(ev.TASK_RETRYING)
    assert retrying.data["attempt_state"] == "lost", retrying.data
    assert "the Dask worker running it died" in retrying.data["error"]
    second = result.result("victim")
    assert second["attempt"] == 2
    assert second["pid"] != killed[0], "the retry ran on the other worker"
    assert second["pid"] in cluster.worker_pids().values()


SLOW = """
import time
from lockgate import pipeline, shell, task

@task(timeout=1)
def stuck() -> None:
    time.sleep(30)

with pipeline("slow") as p:
    stuck()
"""


def test_a_python_task_past_its_timeout_fails(run_pipeline, pipeline_file) -> None:
    pipe = pipeline_file(SLOW)["slow"]
    result, _ = run_pipeline(pipe, executor="dask")
    task = result.tasks["stuck"]
    assert task.state is TaskState.FAILED
    assert "timed out after 1s" in (task.error or "")
    assert result.state is RunState.FAILED


CANCEL = """
from lockgate import pipeline, shell, task

with pipeline("cancel_me") as p:
    shell("long", 'echo $$ > "{dir}/sh.pid"; sleep 60')
"""


def test_cancel_stops_a_remote_shell_task(make_engine, pipeline_file, tmp_path) -> None:
    pipe = pipeline_file(CANCEL.format(dir=tmp_path))["cancel_me"]
    engine, _ = make_engine(pipe, executor="dask")
    pid_file = tmp_path / "sh.pid"

    def cancel() -> None:
        assert wait_until(pid_file.exists, 30)
        engine.cancel()

    thread = threading.Thread(target=cancel, daemon=True)
    thread.start()
    result = engine.run()
    thread.join()
    assert result.state is RunState.CANCELLED
    pid = read_pid(pid_file)
    assert wait_pid_gone(pid, 15), "the shell task's process on the worker must be stopped"
    assert not pid_alive(pid)


RESOURCES = """
from distributed import get_worker
from lockgate import pipeline, task

@task(resources={"gpu": 1})
def on_gpu() -> str:
    return get_worker().name

@task(resources={"tpu": 2})
def on_tpu() -> str:
    return get_worker().name

with pipeline("resources") as p:
    for i in range(4):
        on_gpu.override(id=f"gpu{i}")()
    on_tpu()
"""


def test_resources_are_dask_restrictions(run_pipeline, pipeline_file) -> None:
    pipe = pipeline_file(RESOURCES)["resources"]
    result, _ = run_pipeline(pipe, executor="dask")
    assert {result.result(f"gpu{i}") for i in range(4)} == {"w2"}, "only w2 offers gpu"
    error = result.tasks["on_tpu"].error or ""
    assert "no worker of the Dask scheduler at" in error
    assert "tpu=2" in error and "offered: gpu=1" in error
    assert '--resources "tpu=2"' in error


def test_the_pipeline_file_can_be_uploaded_to_the_workers(
    project, pipeline_file, dask_cluster, run_pipeline
) -> None:
    source = """
    from lockgate import pipeline, task

    @task
    def here() -> str:
        return __file__

    with pipeline("uploaded") as p:
        here()
    """
    pipe = pipeline_file(source)["uploaded"]
    (project.root / "lockgate.toml").write_text("[dask]\nupload = true\n")
    from lockgate.config import Project

    result, _ = run_pipeline(pipe, executor="dask", project=Project.load(project.root))
    where = Path(result.result("here"))
    assert where != Path(pipe.file)
    assert where.name.startswith("lockgate_") and where.name.endswith(Path(pipe.file).name)
    assert str(dask_cluster.folder) in str(where), "it runs from the worker's own folder"


def test_remote_logs_are_stored_with_the_attempt_and_redacted(tmp_path, dask_cluster) -> None:
    write(
        tmp_path,
        "pipelines/talk.py",
        """
        import logging
        import sys

        from lockgate import pipeline, shell, task, template

        @task
        def speak(ctx) -> None:
            print("printed on the worker")
            print("to stderr", file=sys.stderr)
            logging.getLogger("app").warning("logged on the worker")
            ctx.log.info("ctx log line")

        with pipeline("talk") as p:
            speak()
            shell("leak", template("echo token={{ secret('api_token') }}"))
        """,
    )
    env = {"LOCKGATE_SECRET_API_TOKEN": "s3cr3t-Dask-Value-42"}
    done = lockgate(
        tmp_path,
        "run",
        "talk",
        "--executor",
        "dask",
        "--dask-address",
        dask_cluster.address,
        "--json",
        env=env,
    )
    assert done.code == 0, done
    run_id = done.json()["run_id"]
    logs = lockgate(tmp_path, "logs", run_id, "speak", env=env)
    assert logs.code == 0, logs
    for line in ("printed on the worker", "to stderr", "logged on the worker", "ctx log line"):
        assert line in logs.out, logs
    leak = lockgate(tmp_path, "logs", run_id, "leak", env=env)
    assert "token=***" in leak.out, leak
    for folder, _, files in os.walk(tmp_path / ".lockgate"):
        for name in files:
            assert b"s3cr3t-Dask-Value-42" not in (Path(folder) / name).read_bytes(), name


ONE_TASK = """
from lockgate import pipeline, task

@task
def a() -> int:
    return 1

with pipeline("one") as p:
    a()
"""


def test_an_unreachable_scheduler_is_a_one_line_error(tmp_path) -> None:
    write(tmp_path, "lockgate.toml", "[dask]\nconnect_timeout = 1\n")
    write(tmp_path, "pipelines/one.py", ONE_TASK)
    done = lockgate(
        tmp_path, "run", "one", "--executor", "dask", "--dask-address", "tcp://127.0.0.1:9"
    )
    assert done.code == 2, done
    error = one_line_error(done)
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in error
    assert "dask scheduler" in error
    for command in (["up", "--port", "0"], ["scheduler"]):  # checked at start, not run by run
        served = lockgate(tmp_path, *command, "--dask-address", "tcp://127.0.0.1:9", timeout=60)
        assert "cannot reach the Dask scheduler" in one_line_error(served)


def test_a_worker_of_another_lockgate_version_is_refused(dask_cluster, monkeypatch) -> None:
    import lockgate.engine.executors.dask_executor as dask_executor

    monkeypatch.setattr(dask_executor, "__version__", "0.0.0-other")
    settings = DaskSettings(address=dask_cluster.address, connect_timeout=5.5)
    try:
        with pytest.raises(ConfigError, match="lockgate versions differ") as caught:
            dask_executor.cluster_for(settings, 4)
        assert "coordinator (0.0.0-other)" in str(caught.value)
        assert "install lockgate 0.0.0-other on them" in str(caught.value)
    finally:
        close_clusters()


def test_the_worker_side_checks_the_version_before_unpickling() -> None:
    item = WorkItem("a", 1, "python", TaskContext("r", "p", "a", 1))
    returned = run_item("0.0.0-other", "a", 1, pickle.dumps(("/nowhere.py", item)), None)
    assert returned.outcome.state == FAILED
    assert returned.outcome.final, "another attempt on the same worker cannot fix it"
    assert "coordinator runs 0.0.0-other" in (returned.outcome.error or "")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"address": "tcp://10.1.2.3:8786"}, "without encryption"),
        ({"address": "http://127.0.0.1:8786"}, "is not tcp://HOST:PORT"),
        ({"address": "tcp://127.0.0.1"}, "is not tcp://HOST:PORT"),
        ({"address": "tls://10.1.2.3:8786"}, "set [dask] tls_ca_file, tls_cert and tls_key"),
        ({"adress": "tcp://127.0.0.1:8786"}, "unknown setting 'adress'"),
        ({"upload": "yes"}, "upload must be true or false"),
        ({"workers": 0}, "workers must be a whole number >= 1"),
        ({"tls_cert": "missing.pem"}, "no such file"),
        ({"worker_resources": {"gpu": -1}}, "worker_resources"),
    ],
)
def test_bad_dask_settings_are_named(table, message, tmp_path) -> None:
    with pytest.raises(ConfigError) as caught:
        DaskSettings.of(table, tmp_path)
    assert message in str(caught.value)


def test_plaintext_on_a_private_network_is_an_explicit_choice(monkeypatch) -> None:
    address = "tcp://dask-scheduler:8786"
    assert DaskSettings.of({"address": address, "allow_plaintext": True}).address == address
    monkeypatch.setenv("LOCKGATE_DASK_ALLOW_PLAINTEXT", "1")
    assert DaskSettings.of({"address": address}).allow_plaintext
    monkeypatch.setenv("LOCKGATE_DASK_ADDRESS", "tcp://127.0.0.1:8786")
    assert DaskSettings.of({"address": address}).address == "tcp://127.0.0.1:8786"


QUICK = """
from distributed import get_worker

from lockgate import pipeline, task

@task
def quick(i: int) -> str:
    print(f"quick task {i} speaking")
    return get_worker().get_current_task()

@task(timeout=30)
def timed(i: int) -> str:
    return get_worker().get_current_task()

with pipeline("quick") as p:
    for i in range(300):
        quick.override(id=f"q{i}")(i)
    for i in range(20):
        timed.override(id=f"t{i}")(i)
"""


def test_quick_attempts_share_dask_tasks_and_keep_their_own_outcome_and_log(
    run_pipeline, pipeline_file, project
) -> None:
    pipe = pipeline_file(QUICK)["quick"]
    result, _ = run_pipeline(pipe, executor="dask", concurrency=64)
    assert result.state is RunState.SUCCESS
    keys = [result.result(f"q{i}") for i in range(300)]
    assert len(set(keys)) < 300, "quick attempts are packed once they are known to be quick"
    assert any("-pack" in key for key in keys)
    for i in (0, 150, 299):  # each attempt's log holds its own output only
        log = (project.logs_dir / "quick" / result.run_id / f"q{i}" / "attempt-1.log").read_text()
        assert log.strip().endswith(f"quick task {i} speaking")
        assert log.count("speaking") == 1
    timed = [result.result(f"t{i}") for i in range(20)]
    assert all("-pack" not in key for key in timed), "an attempt with a timeout runs alone"


def test_a_tls_scheduler_with_a_client_certificate(tmp_path, pipeline_file) -> None:
    from tests.server.test_serve import _self_signed

    from lockgate.api import run as run_now
    from lockgate.config import Project

    cert, key = _self_signed(tmp_path)  # a CA for itself: the scheduler's, workers' and ours
    tls = ["--tls-ca-file", str(cert), "--tls-cert", str(cert), "--tls-key", str(key)]
    cluster = start_cluster(tmp_path / "cluster", workers=1, tls=tls)
    try:
        assert cluster.address.startswith("tls://")
        root = tmp_path / "proj"
        (root / "pipelines").mkdir(parents=True)
        (root / "lockgate.toml").write_text(
            f'[dask]\naddress = "{cluster.address}"\n'
            f'tls_ca_file = "{cert}"\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
        )
        pipe = pipeline_file(
            """
            from lockgate import pipeline, task

            @task
            def hello() -> str:
                return "over tls"

            with pipeline("tls") as p:
                hello()
            """
        )["tls"]
        project = Project.load(root)
        result = run_now(pipe, store=False, executor="dask", project=project)
        assert result.result("hello") == "over tls"
        assert cluster.output("w1").count("Run out-of-band function") >= 1  # version check
        (root / "lockgate.toml").write_text(f'[dask]\naddress = "{cluster.address}"\n')
        with pytest.raises(ConfigError, match="uses TLS: set \\[dask\\] tls_ca_file"):
            run_now(pipe, store=False, executor="dask", project=Project.load(root))
    finally:
        cluster.stop()


QUEUED = """
import time
from lockgate import pipeline, task

@task(timeout=1.8)
def nap(i: int) -> int:
    time.sleep(1.0)
    return i

with pipeline("queued") as p:
    for i in range(16):
        nap.override(id=f"n{i}")(i)
"""


def test_a_timeout_counts_from_the_start_on_the_worker_not_the_wait_in_dask(
    run_pipeline, pipeline_file, dask_cluster
) -> None:
    pipe = pipeline_file(QUEUED)["queued"]
    # 16 attempts in flight on 8 worker threads: half wait about 1 s in Dask's queue first
    result, _ = run_pipeline(pipe, executor="dask", concurrency=16)
    assert result.state is RunState.SUCCESS, {t.id: t.error for t in result.tasks.values()}


def test_the_log_of_a_remote_shell_task_stopped_at_its_timeout_is_kept(
    run_pipeline, pipeline_file, project
) -> None:
    source = """
    from lockgate import pipeline, shell

    with pipeline("stopped") as p:
        shell("talks", "echo before-timeout; sleep 30", timeout=1)
    """
    pipe = pipeline_file(source)["stopped"]
    result, _ = run_pipeline(pipe, executor="dask")
    assert "timed out after 1s" in (result.tasks["talks"].error or "")
    log = project.logs_dir / "stopped" / result.run_id / "talks" / "attempt-1.log"
    assert wait_until(log.exists, 10)
    assert "before-timeout" in log.read_text()


def test_a_log_that_cannot_be_stored_fails_the_attempt_instead_of_hanging(
    make_engine, pipeline_file, tmp_path
) -> None:
    source = """
    from lockgate import pipeline, task

    @task
    def talk() -> int:
        print("something to keep")
        return 1

    with pipeline("nolog") as p:
        talk()
    """
    pipe = pipeline_file(source)["nolog"]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the logs folder should be")
    engine, _ = make_engine(pipe, executor="dask", logs_dir=str(blocker / "logs"))
    result = engine.run()
    assert result.state is RunState.FAILED
    assert "lockgate could not run the task" in (result.tasks["talk"].error or "")


def test_a_client_that_lost_its_scheduler_is_replaced(dask_cluster) -> None:
    from lockgate.engine.executors.dask_executor import cluster_for

    settings = DaskSettings(address=dask_cluster.address, connect_timeout=7.5)
    try:
        first = cluster_for(settings, 4)
        first.client.close()  # what the client does when it gives up reconnecting
        second = cluster_for(settings, 4)
        assert second is not first and second.alive()
    finally:
        close_clusters()


def test_the_local_cluster_needs_its_own_credentials(monkeypatch) -> None:
    from distributed import Client
    from lockgate.engine.executors.dask_executor import cluster_for

    settings = DaskSettings(workers=1, threads_per_worker=1)
    try:
        cluster = cluster_for(settings, 1)
        address = cluster.local.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        with pytest.raises((OSError, TimeoutError)):
            Client(address.replace("tls://", "tcp://"), timeout=2, set_as_default=False)
        with pytest.raises((OSError, TimeoutError, TypeError, ValueError)):
            Client(address, timeout=2, set_as_default=False)  # TLS without a certificate
    finally:
        close_clusters()


def test_dask_address_on_the_command_line_means_the_dask_executor(tmp_path, dask_cluster) -> None:
    write(tmp_path, "pipelines/one.py", ONE_TASK)
    done = lockgate(tmp_path, "run", "one", "--dask-address", dask_cluster.address, "--json")
    assert done.code == 0, done
    runs = lockgate(tmp_path, "runs", "--json")
    assert runs.json()["runs"][0]["executor"] == "dask", runs
    wrong = lockgate(tmp_path, "run", "one", "-e", "threads", "--dask-address", "tcp://x:1")
    assert "--dask-address is for --executor dask, not threads" in one_line_error(wrong)
