"""Airflow 2 and Airflow 3 import paths of every supported operator and decorator; the shim
is served only to the DAG file's own module, and a real Airflow is left alone."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.authoring.discovery import discover, load_file
from lockgate.config import Project

AIRFLOW2 = """
from airflow import DAG
from airflow.decorators import dag, task, task_group
from airflow.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.models import DAG as ModelsDAG
from airflow.models.baseoperator import chain, cross_downstream
from airflow.models.dag import DAG as DagModuleDAG
from airflow.models.param import Param
from airflow.operators.bash import BashOperator
from airflow.operators.dummy import DummyOperator
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import (
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
    get_current_context,
)
from airflow.utils.dates import days_ago
from airflow.utils.helpers import chain as helpers_chain
from airflow.utils.task_group import TaskGroup
from airflow.utils.trigger_rule import TriggerRule

assert ModelsDAG is DAG and DagModuleDAG is DAG and helpers_chain is chain
assert issubclass(AirflowFailException, AirflowException)
assert days_ago(1) < datetime.now(UTC)
Filler = DummyOperator
"""

AIRFLOW3 = """
from airflow.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import (
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
)
from airflow.sdk import (
    DAG,
    Param,
    TaskGroup,
    TriggerRule,
    chain,
    cross_downstream,
    dag,
    get_current_context,
    task,
    task_group,
)

Filler = EmptyOperator
"""

BODY = """

def skip_me():
    raise AirflowSkipException("not today")


def read_param():
    return get_current_context()["params"]["n"]


with DAG(
    "classic",
    start_date=datetime(2024, 1, 1),
    schedule="@daily",
    params={"n": Param(3, type="integer", minimum=1)},
) as classic:
    a = BashOperator(task_id="a", bash_command="echo a")
    b = PythonOperator(task_id="b", python_callable=read_param)
    br = BranchPythonOperator(task_id="br", python_callable=lambda: "c")
    c = EmptyOperator(task_id="c")
    d = Filler(task_id="d")
    sc = ShortCircuitOperator(task_id="sc", python_callable=lambda: False)
    after_sc = EmptyOperator(task_id="after_sc")
    s = PythonOperator(task_id="s", python_callable=skip_me)
    with TaskGroup("tg") as tg:
        EmptyOperator(task_id="x")
    end = EmptyOperator(task_id="end", trigger_rule=TriggerRule.ALL_DONE)
    chain(a, b, br, [c, d])
    cross_downstream([a, b], [sc, s])
    sc >> after_sc
    [after_sc, s, c, d] >> tg >> end


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def flow():
    @task
    def one():
        return 1

    @task.bash
    def echo(x):
        return f"echo bash {x} {{{{ ds }}}}"

    @task.branch
    def pick():
        return "e"

    @task.short_circuit
    def go():
        return True

    e = EmptyOperator(task_id="e")
    f = EmptyOperator(task_id="f")

    @task_group
    def grp():
        g1 = EmptyOperator(task_id="g1")
        g2 = EmptyOperator(task_id="g2")
        g1 >> g2

    echo(one()) >> pick() >> [e, f]
    go() >> grp()


flow()
"""

STATES = {
    "classic": {
        "a": "success",
        "b": "success",
        "br": "success",
        "c": "success",
        "d": "skipped",
        "sc": "success",
        "after_sc": "skipped",
        "s": "skipped",
        "tg.x": "skipped",
        "end": "success",
    },
    "flow": {
        "one": "success",
        "echo": "success",
        "pick": "success",
        "e": "success",
        "f": "skipped",
        "go": "success",
        "grp.g1": "success",
        "grp.g2": "success",
    },
}


def no_airflow_modules() -> list[str]:
    return [m for m in sys.modules if m == "airflow" or m.startswith("airflow.")]


@pytest.mark.parametrize("header", [AIRFLOW2, AIRFLOW3], ids=["airflow2", "airflow3"])
def test_every_supported_operator_and_decorator(tmp_path: Path, project: Project, header: str):
    path = tmp_path / "dags" / "all_ops.py"
    path.parent.mkdir()
    path.write_text("from datetime import UTC, datetime\n" + textwrap.dedent(header) + BODY)
    pipes = {p.id: p for p in load_file(path)}
    assert set(pipes) == {"classic", "flow"}
    assert all(p.origin == "airflow" for p in pipes.values())
    assert not no_airflow_modules()
    for pid, expected in STATES.items():
        result = lockgate.run(
            pipes[pid],
            executor="threads",
            store=False,
            project=project,
            logical_date=datetime(2024, 1, 31, tzinfo=UTC),
        )
        states = {tid: s.state.value for tid, s in result.tasks.items()}
        assert states == expected, (pid, states, {t: s.error for t, s in result.tasks.items()})
    assert result.result("echo") == "bash 1 2024-01-31"
    assert result.result("pick") == ["e"]


@pytest.fixture
def stand_in_airflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A third-party `airflow` package on sys.path (not imported yet); removed afterwards."""
    real = tmp_path / "site" / "airflow"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("MARKER = 'the real one'\n")
    (real / "operators.py").write_text("MARKER = 'real operators'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in no_airflow_modules():
        monkeypatch.delitem(sys.modules, name)
    try:
        yield real
    finally:
        for name in no_airflow_modules():
            del sys.modules[name]


def test_a_real_airflow_is_never_touched(tmp_path: Path, stand_in_airflow: Path):
    """A third-party `airflow` package stays what `import airflow` gives, before, during and
    after a load: only the DAG file's own imports are served the shim; a module it imports
    gets the real one."""
    import airflow  # type: ignore[import-not-found]
    import airflow.operators  # type: ignore[import-not-found]

    before = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "airflow"}
    finders = list(sys.meta_path)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "uses_real_airflow.py").write_text(
        "import airflow\nimport airflow.operators\nKIND = airflow.operators.MARKER\n"
    )
    dag = dags / "d.py"
    dag.write_text(
        "from datetime import datetime\n"
        "from airflow import DAG\n"
        "from airflow.operators.bash import BashOperator\n"
        "import airflow\n"
        "import sys\n"
        "import uses_real_airflow\n"
        "assert airflow.__lockgate_shim__\n"
        "assert uses_real_airflow.KIND == 'real operators'\n"
        "assert sys.modules['airflow'].MARKER == 'the real one'\n"
        "with DAG('d', start_date=datetime(2024, 1, 1)):\n"
        "    BashOperator(task_id='t', bash_command='echo hi')\n"
    )
    (pipe,) = load_file(dag)
    assert pipe.id == "d"
    after = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "airflow"}
    assert after == before  # the very same module objects, and nothing else
    assert sys.modules["airflow"] is airflow and airflow.MARKER == "the real one"
    assert sys.modules["airflow"].operators.MARKER == "real operators"
    assert not any(getattr(m, "__lockgate_shim__", False) for m in after.values())
    assert sys.meta_path == finders
    # a failing load leaves it alone too
    bad = dags / "bad.py"
    bad.write_text("from airflow.sensors.base import BaseSensorOperator\n")
    with pytest.raises(lockgate.LockgateError, match="sensors are not supported"):
        load_file(bad)
    assert {k: v for k, v in sys.modules.items() if k.split(".")[0] == "airflow"} == before
    assert sys.meta_path == finders


def test_another_thread_imports_the_real_airflow_during_a_load(
    tmp_path: Path, stand_in_airflow: Path
):
    """While one thread loads a (slow) DAG file, `import airflow` elsewhere gives the real
    package, and the DAG file still gets the shim before and after."""
    import threading
    import types

    gate = types.ModuleType("lockgate_test_airflow_gate")
    gate.started = threading.Event()  # type: ignore[attr-defined]
    gate.release = threading.Event()  # type: ignore[attr-defined]
    sys.modules[gate.__name__] = gate
    dag = tmp_path / "slow.py"
    dag.write_text(
        "from datetime import datetime\n"
        "from airflow import DAG\n"
        "import lockgate_test_airflow_gate as gate\n"
        "gate.started.set()\n"
        "assert gate.release.wait(10), 'the other thread never released the load'\n"
        "import airflow\n"
        "from airflow.operators.empty import EmptyOperator\n"
        "assert airflow.__lockgate_shim__\n"
        "with DAG('slow', start_date=datetime(2024, 1, 1)):\n"
        "    EmptyOperator(task_id='t')\n"
    )
    loaded: list[Any] = []
    loader = threading.Thread(target=lambda: loaded.append(load_file(dag)))
    try:
        loader.start()
        assert gate.started.wait(10)  # type: ignore[attr-defined]
        import airflow  # type: ignore[import-not-found]
        import airflow.operators  # type: ignore[import-not-found]

        assert airflow.MARKER == "the real one" and airflow.operators.MARKER == "real operators"
        assert not getattr(airflow, "__lockgate_shim__", False)
    finally:
        gate.release.set()  # type: ignore[attr-defined]
        loader.join(20)
        del sys.modules[gate.__name__]
    assert [[p.id for p in pipes] for pipes in loaded] == [["slow"]]
    assert sys.modules["airflow"] is airflow


def test_a_helper_module_that_imports_airflow_is_a_clear_error(write, load_error, line_of):
    """Without a real Airflow, only the DAG file itself is served the shim: a module it imports
    that imports `airflow` fails with a one-line error naming that module's file and line."""
    helper = write(
        "dags/af_helpers.py",
        "import os\nfrom airflow.operators.bash import BashOperator  # HELPER\n",
        header=False,
    )
    path = write(
        "dags/uses_helper.py",
        "from datetime import datetime\n"
        "from airflow import DAG\n"
        "import af_helpers  # HERE\n"
        "with DAG('h', start_date=datetime(2024, 1, 1)):\n"
        "    af_helpers.BashOperator(task_id='t', bash_command='echo hi')\n",
        header=False,
    )
    err = load_error(path)
    assert err.line == line_of(path, "# HERE"), str(err)
    assert f"{helper}:{line_of(helper, '# HELPER')} imports airflow, which is not" in str(err)
    assert "only DAG files themselves are served lockgate's Airflow layer" in str(err)
    assert "af_helpers" not in sys.modules and not no_airflow_modules()


def test_no_airflow_after_a_load(tmp_path: Path):
    dag = tmp_path / "d.py"
    dag.write_text(
        "from datetime import datetime\n"
        "from airflow.sdk import DAG\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "with DAG('d', start_date=datetime(2024, 1, 1)):\n"
        "    EmptyOperator(task_id='t')\n"
    )
    load_file(dag)
    assert not no_airflow_modules()
    with pytest.raises(ModuleNotFoundError):
        import airflow  # type: ignore[import-not-found]  # noqa: F401
    assert not any(type(f).__module__.startswith("lockgate.") for f in sys.meta_path)


def test_imports_inside_task_functions_work_at_run_time(tmp_path: Path, project: Project):
    """Airflow 2 code often imports inside the callable; that keeps working after the load."""
    dag = tmp_path / "late.py"
    dag.write_text(
        "from datetime import datetime\n"
        "from airflow import DAG\n"
        "from airflow.operators.python import PythonOperator\n"
        "def late():\n"
        "    from airflow.operators.python import get_current_context\n"
        "    from airflow.exceptions import AirflowSkipException\n"
        "    return get_current_context()['ds']\n"
        "with DAG('late', start_date=datetime(2024, 1, 1)):\n"
        "    PythonOperator(task_id='t', python_callable=late)\n"
    )
    (pipe,) = load_file(dag)
    result = lockgate.run(
        pipe,
        executor="threads",
        store=False,
        project=project,
        logical_date=datetime(2024, 1, 31, tzinfo=UTC),
    )
    assert result.result("t") == "2024-01-31"
    assert not no_airflow_modules()


def test_discovery_mixes_python_pipelines_and_dag_files(tmp_path: Path):
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "native.py").write_text(
        "from lockgate import pipeline, shell\nwith pipeline('native'):\n    shell('a', 'echo a')\n"
    )
    (folder / "legacy_dag.py").write_text(
        "from datetime import datetime\n"
        "from airflow import DAG\n"
        "from airflow.operators.bash import BashOperator\n"
        "with DAG('legacy', start_date=datetime(2024, 1, 1), schedule='@hourly'):\n"
        "    BashOperator(task_id='a', bash_command='echo a')\n"
    )
    found = discover(folder)
    assert not found.errors, found.errors
    assert {pid: p.origin for pid, p in found.pipelines.items()} == {
        "native": "python",
        "legacy": "airflow",
    }
    assert found.pipelines["legacy"].schedule == "@hourly"


def test_loads_from_several_threads_at_once(tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    paths = []
    for i in range(4):
        path = tmp_path / f"t{i}.py"
        path.write_text(
            "from datetime import datetime\n"
            "from airflow.sdk import dag, task\n"
            f"@dag(dag_id='t{i}', start_date=datetime(2024, 1, 1))\n"
            "def build():\n"
            "    @task\n"
            "    def a():\n"
            "        return 1\n"
            "    a() >> a()\n"
            "build()\n"
        )
        paths.append(path)

    def load(path: Path) -> list[str]:
        from lockgate.authoring import discovery

        discovery.sys.modules.pop(discovery.module_name_for(path.resolve()), None)
        return [p.id for p in load_file(path)]

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(load, paths * 5))
    assert ids == [[f"t{i}"] for i in range(4)] * 5
    assert not no_airflow_modules()
