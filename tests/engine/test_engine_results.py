"""Task results: JSON round trip, non-JSON values, the size limit, and input resolution."""

from __future__ import annotations

import json
import math

import pytest

from lockgate import param, pipeline, shell, task
from lockgate.config import Project
from lockgate.engine import events as ev
from lockgate.engine.work import encode_result
from lockgate.model.states import RunState, TaskState

from .conftest import EXECUTORS

VALUE = {
    "text": 'héllo \u2603 "quoted" \n newline',
    "ints": [0, -1, 2**53, 10**30],
    "floats": [0.1, -2.5, 1e-300, 1.7976931348623157e308],
    "flags": [True, False, None],
    "nested": {"a": {"b": [[], {}, [1, [2, [3]]]]}},
    "empty": "",
}


@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_results_round_trip_through_json(run_pipeline, executor) -> None:
    received: list[object] = []

    @task
    def produce() -> dict:
        return VALUE

    @task
    def consume(value: dict, text: str, deep: list) -> bool:
        received.append((value, text, deep))
        return value == VALUE

    with pipeline("roundtrip") as p:
        v = produce()
        consume(v, v["text"], v["ints"])
    result, rec = run_pipeline(p, executor=executor)
    assert result.state is RunState.SUCCESS
    assert result.result("produce") == VALUE
    assert json.loads(result.tasks["produce"].result_json) == VALUE
    assert result.result("consume") is True
    [(value, text, deep)] = received
    assert value == VALUE and value is not VALUE, "downstream tasks get a decoded copy"
    assert text == VALUE["text"]
    assert deep == VALUE["ints"]
    [succeeded] = rec.of(ev.TASK_SUCCEEDED, "produce")
    assert json.loads(succeeded.data["result_json"]) == VALUE


def test_json_conversions_are_visible_downstream(run_pipeline) -> None:
    @task
    def produce() -> object:
        return {"tuple": (1, 2), 3: "int key"}

    @task
    def consume(value: dict) -> list:
        return [type(value["tuple"]).__name__, sorted(value)]

    with pipeline("conversions") as p:
        consume(produce())
    result, _ = run_pipeline(p)
    assert result.result("consume") == ["list", ["3", "tuple"]]


def test_none_and_falsy_results(run_pipeline) -> None:
    with pipeline("falsy") as p:
        task(lambda: None).override(id="none")()
        task(lambda: 0).override(id="zero")()
        task(lambda: "").override(id="empty")()
        task(lambda: []).override(id="nothing")()
    result, _ = run_pipeline(p)
    assert result.tasks["none"].result_json is None
    assert result.result("none") is None
    assert result.tasks["zero"].result_json == "0"
    assert result.tasks["empty"].result_json == '""'
    assert result.tasks["nothing"].result_json == "[]"


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (object(), "not JSON serializable"),
        ({1, 2}, "not JSON serializable"),
        (b"bytes", "not JSON serializable"),
        (math.nan, "Out of range float values are not JSON compliant"),
        ([math.inf], "Out of range float values are not JSON compliant"),
        ({(1, 2): "tuple key"}, "keys must be str"),
    ],
)
def test_non_json_result_fails_the_task(run_pipeline, value, detail) -> None:
    @task
    def bad() -> object:
        return value

    with pipeline("nonjson") as p:
        bad() >> task(lambda: 1).override(id="after")()
    result, _ = run_pipeline(p)
    t = result.tasks["bad"]
    assert t.state is TaskState.FAILED
    assert "task 'bad' returned a value that is not JSON" in t.error
    assert detail in t.error
    assert t.result_json is None
    assert result.tasks["after"].state is TaskState.UPSTREAM_FAILED
    assert result.state is RunState.FAILED


def test_non_json_result_is_not_retried(run_pipeline) -> None:
    with pipeline("nonjsonretry") as p:
        task(lambda: {1, 2}).override(id="bad", retries=1)()
    result, _ = run_pipeline(p)
    assert result.tasks["bad"].attempts == 1, "the same value would come back on a retry"
    assert result.tasks["bad"].state is TaskState.FAILED


@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_result_size_limit_of_the_engine(make_engine, executor) -> None:
    with pipeline("size") as p:
        task(lambda: "x" * 98).override(id="fits")()  # 100 bytes of JSON with the quotes
        task(lambda: "x" * 99).override(id="too_big")()  # 101 bytes
    engine, _ = make_engine(p, executor=executor, result_max_bytes=100)
    result = engine.run()
    assert result.tasks["fits"].state is TaskState.SUCCESS
    assert result.result("fits") == "x" * 98
    t = result.tasks["too_big"]
    assert t.state is TaskState.FAILED
    assert "returned 101 bytes of JSON, more than the 100-byte limit" in t.error
    assert "result_max_bytes" in t.error


def test_result_size_limit_from_the_project(tmp_path, run_pipeline) -> None:
    (tmp_path / "lockgate.toml").write_text("[lockgate]\nresult_max_bytes = 64\n")
    project = Project.load(tmp_path)
    assert project.result_max_bytes == 64
    with pipeline("projsize") as p:
        task(lambda: list(range(100))).override(id="big")()
        task(lambda: [1, 2, 3]).override(id="small")()
    result, _ = run_pipeline(p, project=project)
    assert result.tasks["big"].state is TaskState.FAILED
    assert "more than the 64-byte limit" in result.tasks["big"].error
    assert result.tasks["small"].state is TaskState.SUCCESS


def test_result_size_limit_in_the_processes_executor(tmp_path, run_pipeline, pipeline_file) -> None:
    (tmp_path / "lockgate.toml").write_text("[lockgate]\nresult_max_bytes = 64\n")
    pipe = pipeline_file("""
    from lockgate import pipeline, task

    @task
    def big() -> list:
        return list(range(100))

    @task
    def odd() -> object:
        return {1, 2}

    with pipeline("procsize") as p:
        big()
        odd()
    """)["procsize"]
    result, _ = run_pipeline(pipe, executor="processes", project=Project.load(tmp_path))
    assert "more than the 64-byte limit" in result.tasks["big"].error
    assert "returned a value that is not JSON" in result.tasks["odd"].error


def test_encode_result_counts_bytes() -> None:
    text = encode_result("\u2603" * 10, "t", 1000)
    assert text is not None and len(text.encode()) == len(text)
    with pytest.raises(ValueError, match="more than the 61-byte limit"):
        encode_result("\u2603" * 10, "t", 61)  # 10 × \\u2603 (6 chars) + quotes = 62


# -- inputs ---------------------------------------------------------------------------------


def test_missing_item_of_an_upstream_result_fails_the_downstream(run_pipeline) -> None:
    @task
    def produce() -> dict:
        return {"present": 1}

    @task
    def consume(value: object) -> object:
        return value

    with pipeline("missing") as p:
        v = produce()
        consume.override(id="ok")(v["present"])
        consume.override(id="missing")(v["absent"])
    result, rec = run_pipeline(p)
    assert result.result("ok") == 1
    t = result.tasks["missing"]
    assert t.state is TaskState.FAILED
    assert t.attempts == 1
    assert "cannot resolve inputs" in t.error
    assert "has no item 'absent'" in t.error
    assert rec.kinds("missing") == [ev.TASK_QUEUED, ev.TASK_STARTED, ev.TASK_FAILED]


def test_params_reach_python_and_shell_tasks(run_pipeline, tmp_path) -> None:
    out = tmp_path / "env.txt"

    @task
    def show(region: str, ctx) -> list:
        return [region, ctx.params["limit"]]

    with pipeline("params", params={"region": "eu", "limit": 5, "tags": ["a", "b"]}) as p:
        show(param("region"))
        shell(
            "env",
            'printf "%s|%s|%s|%s|%s" "$LOCKGATE_PARAM_REGION" "$LOCKGATE_PARAM_TAGS" '
            '"$WHO" "$LOCKGATE_TASK" "$LOCKGATE_ATTEMPT" > "$OUT"',
            env={"WHO": param("region"), "OUT": str(out)},
        )
    result, _ = run_pipeline(p, params={"region": "us"})
    assert result.result("show") == ["us", 5]
    assert out.read_text() == 'us|["a", "b"]|us|env|1'


def test_shell_env_values_are_never_interpolated(run_pipeline, tmp_path) -> None:
    out = tmp_path / "out.txt"
    marker = tmp_path / "pwned"

    @task
    def evil() -> str:
        return f"$(touch {marker}); `touch {marker}`"

    with pipeline("noinject") as p:
        shell("echo", 'printf "%s" "$VALUE" > "$OUT"', env={"VALUE": evil(), "OUT": str(out)})
    result, _ = run_pipeline(p)
    assert result.state is RunState.SUCCESS
    assert out.read_text() == f"$(touch {marker}); `touch {marker}`"
    assert not marker.exists()


NESTED = """
from lockgate import param, pipeline, task

@task
def one(i: int) -> int:
    return i

@task
def total(values: list, named: dict, pair: tuple) -> dict:
    return {"sum": sum(values), "named": named, "pair": list(pair)}

with pipeline("nested", params={"k": 5}) as p:
    refs = [one.override(id=f"one_{i}")(i) for i in range(4)]
    total(refs, {"first": refs[0], "k": param("k")}, (refs[1], 7))
"""


@pytest.mark.parametrize("executor", EXECUTORS)
def test_results_inside_lists_and_dicts_are_dependencies_and_values(
    run_pipeline, pipeline_file, executor
) -> None:
    pipe = pipeline_file(NESTED)["nested"]
    assert set(pipe.tasks["total"].upstream) == {"one_0", "one_1", "one_2", "one_3"}
    result, _ = run_pipeline(pipe, executor=executor)
    assert result.result("total") == {"sum": 6, "named": {"first": 0, "k": 5}, "pair": [1, 7]}
