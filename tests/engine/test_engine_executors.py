"""The inline, threads and processes executors run the same pipeline to the same results."""

from __future__ import annotations

import os
import threading

import pytest

from lockgate import pipeline, task
from lockgate.engine import events as ev
from lockgate.model.pipeline import Pipeline
from lockgate.model.states import RunState, TaskState
from lockgate.model.task import Task, TaskKind

from .conftest import EXECUTORS

DATA_PIPELINE = """
import os
import threading

from lockgate import param, pipeline, shell, task


@task
def extract() -> dict:
    return {"values": [3, 1, 2], "label": "nums", "nested": {"a": [1.5, None, True, "é"]}}


@task
def total(values: list, factor: int) -> int:
    return sum(values) * factor


@task
def describe(label: str, amount: int, ctx) -> str:
    return f"{label}:{amount}:{ctx.params['region']}:{ctx.task_id}:{ctx.attempt}"


@task
def combine(everything: dict, amount: int, text: str) -> dict:
    return {"everything": everything, "amount": amount, "text": text, "pair": (1, 2)}


@task
def where() -> list:
    return [os.getpid(), threading.get_ident()]


with pipeline("datapipe", params={"factor": 2, "region": "eu", "out": ""}) as p:
    e = extract()
    t = total(e["values"], param("factor"))
    d = describe(e["label"], t)
    s = shell("write", 'printf "%s|%s|%s" "$AMOUNT" "$TEXT" "$REGION" > "$OUT"',
              env={"AMOUNT": t, "TEXT": d, "OUT": param("out"),
                   "REGION": param("region")})
    c = combine(e, t, d)
    s >> c
    where()
"""


@pytest.fixture
def data_pipeline(pipeline_file) -> Pipeline:
    return pipeline_file(DATA_PIPELINE, name="datapipe")["datapipe"]


def test_executors_give_the_same_results(run_pipeline, data_pipeline, tmp_path) -> None:
    results = {}
    outputs = {}
    for name in EXECUTORS:
        out = tmp_path / f"{name}.txt"
        result, rec = run_pipeline(data_pipeline, executor=name, params={"out": str(out)})
        assert result.state is RunState.SUCCESS, {t.id: t.error for t in result.tasks.values()}
        assert rec.events[0].data["executor"] == name
        results[name] = {tid: t.result_json for tid, t in result.tasks.items() if tid != "where"}
        outputs[name] = out.read_text()
        assert result.result("combine") == {
            "everything": {
                "values": [3, 1, 2],
                "label": "nums",
                "nested": {"a": [1.5, None, True, "é"]},
            },
            "amount": 12,
            "text": "nums:12:eu:describe:1",
            "pair": [1, 2],
        }
    assert results["inline"] == results["threads"] == results["processes"] == results["dask"]
    assert set(outputs.values()) == {"12|nums:12:eu:describe:1|eu"}


def test_where_each_executor_runs_python_tasks(run_pipeline, data_pipeline, tmp_path) -> None:
    here = [os.getpid(), threading.get_ident()]
    seen = {}
    for name in EXECUTORS:
        result, _ = run_pipeline(
            data_pipeline, executor=name, params={"out": str(tmp_path / "x.txt")}
        )
        seen[name] = result.result("where")
    assert seen["inline"] == here, "inline runs in the engine's own thread"
    assert seen["threads"][0] == os.getpid()
    assert seen["threads"][1] != threading.get_ident()
    assert seen["processes"][0] != os.getpid(), "processes must run Python tasks elsewhere"
    assert seen["dask"][0] not in (os.getpid(), seen["processes"][0]), "dask runs them on workers"


def test_processes_executor_uses_several_workers(run_pipeline, pipeline_file) -> None:
    source = """
    import os
    import time

    from lockgate import pipeline, task

    @task
    def pid() -> int:
        time.sleep(0.3)
        return os.getpid()

    with pipeline("pids") as p:
        for i in range(3):
            pid.override(id=f"p{i}")()
    """
    pipe = pipeline_file(source)["pids"]
    result, _ = run_pipeline(pipe, executor="processes", concurrency=3)
    pids = {result.result(f"p{i}") for i in range(3)}
    assert len(pids) == 3
    assert os.getpid() not in pids


def test_processes_needs_a_pipeline_file(run_pipeline) -> None:
    def fn() -> int:
        return 1

    pipe = Pipeline(id="nofile", tasks={"t": Task(id="t", kind=TaskKind.PYTHON, fn=fn)})
    assert pipe.file is None
    result, _ = run_pipeline(pipe, executor="processes")
    t = result.tasks["t"]
    assert t.state is TaskState.FAILED
    assert "cannot run in the processes executor" in t.error
    assert "not loaded from a file" in t.error
    assert "--executor threads" in t.error
    assert result.state is RunState.FAILED
    # the same pipeline is fine on threads
    result, _ = run_pipeline(pipe, executor="threads")
    assert result.state is RunState.SUCCESS


def test_processes_needs_the_pipeline_at_module_level(run_pipeline, tmp_path) -> None:
    import sys
    import textwrap

    from lockgate.authoring.discovery import load_file, module_name_for

    path = tmp_path / "factory.py"
    path.write_text(
        textwrap.dedent("""
        from lockgate import pipeline, task

        @task
        def a() -> int:
            return 1

        def make():  # builds a pipeline only when called: the file defines none by itself
            with pipeline("inner") as p:
                a()
            return p
    """)
    )
    assert load_file(path) == []
    pipe = sys.modules[module_name_for(path.resolve())].make().build()
    assert pipe.file == str(path.resolve())
    result, _ = run_pipeline(pipe, executor="processes")
    t = result.tasks["a"]
    assert t.state is TaskState.FAILED
    assert "could not load task 'a'" in t.error
    assert "no pipeline 'inner'" in t.error
    assert "module level" in t.error
    result, _ = run_pipeline(pipe, executor="threads")
    assert result.state is RunState.SUCCESS


def test_processes_with_an_unpicklable_argument(run_pipeline, pipeline_file) -> None:
    source = """
    from lockgate import pipeline, task

    @task
    def use(fn) -> int:
        return fn()

    with pipeline("unpicklable") as p:
        use(lambda: 1)
    """
    pipe = pipeline_file(source)["unpicklable"]
    result, _ = run_pipeline(pipe, executor="processes")
    t = result.tasks["use"]
    assert t.state is TaskState.FAILED
    assert "cannot run in the processes executor" in t.error
    assert "picklable" in t.error
    result, _ = run_pipeline(pipe, executor="threads")
    assert result.result("use") == 1


DYING = """
import os
from pathlib import Path

from lockgate import pipeline, task


@task(retries={retries})
def dies_once(marker: str) -> str:
    if not Path(marker).exists():
        Path(marker).write_text("x")
        os._exit(3)
    return "second time lucky"


with pipeline("dying") as p:
    dies_once({marker!r})
"""


def test_worker_death_is_a_lost_attempt_that_is_retried(
    run_pipeline, pipeline_file, tmp_path
) -> None:
    pipe = pipeline_file(DYING.format(retries=1, marker=str(tmp_path / "m1")))["dying"]
    result, rec = run_pipeline(pipe, executor="processes")
    t = result.tasks["dies_once"]
    assert t.state is TaskState.SUCCESS
    assert t.attempts == 2
    assert result.result("dies_once") == "second time lucky"
    [retrying] = rec.of(ev.TASK_RETRYING)
    assert retrying.data["attempt_state"] == "lost"
    assert retrying.data["error"] == "worker process died (exit code 3) while running the task"


def test_worker_death_without_retries_fails_the_task(run_pipeline, pipeline_file, tmp_path) -> None:
    pipe = pipeline_file(DYING.format(retries=0, marker=str(tmp_path / "m2")))["dying"]
    result, _ = run_pipeline(pipe, executor="processes")
    t = result.tasks["dies_once"]
    assert t.state is TaskState.FAILED
    assert "worker process died (exit code 3)" in t.error
    assert result.state is RunState.FAILED


@pytest.mark.parametrize("executor", EXECUTORS)
def test_failure_message_and_exception_type(run_pipeline, pipeline_file, executor) -> None:
    source = """
    from lockgate import pipeline, task

    class Custom(Exception):
        pass

    @task
    def bad() -> None:
        raise Custom("it broke")

    @task
    def silent() -> None:
        raise KeyboardInterrupt

    with pipeline("bad") as p:
        bad()
        silent()
    """
    pipe = pipeline_file(source)["bad"]
    result, _ = run_pipeline(pipe, executor=executor)
    assert result.tasks["bad"].error == "Custom: it broke"
    assert result.tasks["silent"].error == "KeyboardInterrupt"
    assert result.state is RunState.FAILED


def test_unknown_executor_is_a_config_error(run_pipeline) -> None:
    from lockgate.errors import ConfigError

    with pipeline("x") as p:
        task(lambda: 1).override(id="a")()
    with pytest.raises(ConfigError, match="unknown executor 'ray'"):
        run_pipeline(p, executor="ray")
