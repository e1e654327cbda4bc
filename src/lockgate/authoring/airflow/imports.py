"""Airflow's import paths of the subset, as shim modules, and errors for the others.

The shim modules are never put in `sys.modules`: a DAG file's module gets `hooked_builtins()`,
whose `__import__` (`shim_import`) serves them to that module's code only."""

from __future__ import annotations

import builtins
import importlib.machinery
import threading
import traceback
import types
from typing import Any

from lockgate.authoring.airflow.errors import DOCS, SUBSET, error, is_user_file, unsupported
from lockgate.errors import did_you_mean

_OPS_PY = ("PythonOperator", "BranchPythonOperator", "ShortCircuitOperator", "get_current_context")
_SDK = (
    "DAG",
    "dag",
    "task",
    "task_group",
    "TaskGroup",
    "BaseOperator",
    "chain",
    "chain_linear",
    "cross_downstream",
    "Param",
    "get_current_context",
    "XComArg",
    "Context",
    "TriggerRule",
    "Asset",
)
_EXCEPTIONS = (
    "AirflowException",
    "AirflowSkipException",
    "AirflowFailException",
    "AirflowTaskTimeout",
)

EXPORTS: dict[str, tuple[str, ...]] = {
    "airflow": ("DAG", "XComArg"),
    "airflow.models": ("DAG", "BaseOperator", "Param", "TaskInstance", "DagRun", "XComArg"),
    "airflow.models.dag": ("DAG",),
    "airflow.models.baseoperator": ("BaseOperator", "chain", "chain_linear", "cross_downstream"),
    "airflow.models.param": ("Param",),
    "airflow.models.xcom_arg": ("XComArg",),
    "airflow.models.taskinstance": ("TaskInstance",),
    "airflow.models.dagrun": ("DagRun",),
    "airflow.operators": (),
    "airflow.operators.bash": ("BashOperator",),
    "airflow.operators.bash_operator": ("BashOperator",),
    "airflow.operators.python": _OPS_PY,
    "airflow.operators.python_operator": _OPS_PY,
    "airflow.operators.empty": ("EmptyOperator",),
    "airflow.operators.dummy": ("DummyOperator", "EmptyOperator"),
    "airflow.operators.dummy_operator": ("DummyOperator",),
    "airflow.decorators": ("dag", "task", "task_group"),
    "airflow.utils": (),
    "airflow.utils.task_group": ("TaskGroup",),
    "airflow.utils.trigger_rule": ("TriggerRule",),
    "airflow.utils.dates": ("days_ago",),
    "airflow.utils.helpers": ("chain", "cross_downstream"),
    "airflow.utils.timezone": ("utcnow", "datetime", "utc"),
    "airflow.utils.context": ("Context", "get_current_context"),
    "airflow.exceptions": _EXCEPTIONS,
    "airflow.datasets": ("Dataset",),
    "airflow.sdk": _SDK,
    "airflow.sdk.exceptions": _EXCEPTIONS,
    "airflow.providers": (),
    "airflow.providers.standard": (),
    "airflow.providers.standard.operators": (),
    "airflow.providers.standard.operators.bash": ("BashOperator",),
    "airflow.providers.standard.operators.python": _OPS_PY,
    "airflow.providers.standard.operators.empty": ("EmptyOperator",),
}

_ENV = "runs Python in another environment, which lockgate does not do"
_DATASETS = (
    "dataset aliases, conditions and metadata are not supported; schedule a DAG on a list of "
    "Dataset (airflow.datasets) or Asset (airflow.sdk) objects"
)
_DATASET_HOME = "import Dataset from airflow.datasets (Airflow 2) or Asset from airflow.sdk"
_SENSORS = "sensors are not supported; poll in a PythonOperator with retries instead"
UNSUPPORTED_NAMES: dict[str, str] = {
    "PythonVirtualenvOperator": _ENV,
    "BranchPythonVirtualenvOperator": _ENV,
    "ExternalPythonOperator": _ENV,
    "BranchExternalPythonOperator": _ENV,
    "Variable": "Airflow Variables are not supported; use DAG params or environment variables",
    "Connection": "Airflow connections are not supported",
    "BaseHook": "hooks and Airflow connections are not supported",
    "XCom": "the XCom model is not supported; use ti.xcom_push and ti.xcom_pull",
    "Dataset": _DATASET_HOME,
    "DatasetAlias": _DATASETS,
    "Asset": _DATASET_HOME,
    "AssetAlias": _DATASETS,
    "AssetAll": _DATASETS,
    "AssetAny": _DATASETS,
    "Metadata": _DATASETS,
    "BaseSensorOperator": _SENSORS,
    "PokeReturnValue": _SENSORS,
    "Label": "edge labels are not supported",
    "EdgeModifier": "edge labels are not supported",
    "setup": "setup/teardown tasks are not supported",
    "teardown": "setup/teardown tasks are not supported",
    "BaseBranchOperator": "custom operators are not supported",
    "BaseNotifier": "notifiers are not supported; use on_failure_callback",
    "ObjectStoragePath": "object storage paths are not supported",
    "TriggerDagRunOperator": "triggering other DAGs is not supported",
    "LatestOnlyOperator": "LatestOnlyOperator is not supported",
    "SubDagOperator": "SubDAGs are not supported; use a TaskGroup",
    "EmailOperator": "EmailOperator is not supported",
    "dag_run": "DagRun models are not supported",
    "conf": "Airflow's configuration (airflow.configuration.conf) is not available",
    "settings": "Airflow's settings module is not available",
}

_MODULE_REASONS: tuple[tuple[str, str], ...] = (
    ("sensors", _SENSORS),
    ("airflow.providers.", "provider operators are not supported"),
    ("airflow.hooks", "hooks and Airflow connections are not supported"),
    ("airflow.models.variable", UNSUPPORTED_NAMES["Variable"]),
    ("airflow.models.connection", UNSUPPORTED_NAMES["Connection"]),
    ("airflow.models.xcom", UNSUPPORTED_NAMES["XCom"]),
    ("airflow.datasets", _DATASETS),
    ("airflow.assets", _DATASETS),
    ("airflow.sdk.definitions.asset", _DATASETS),
    (
        "airflow.timetables",
        "custom timetables are not supported; use a cron string, a preset "
        "such as @daily, a timedelta or None",
    ),
    ("airflow.configuration", UNSUPPORTED_NAMES["conf"]),
    ("airflow.settings", UNSUPPORTED_NAMES["settings"]),
    (
        "airflow.executors",
        "executor settings are not supported; choose lockgate's executor with --executor",
    ),
    ("airflow.kubernetes", "Kubernetes settings are not supported"),
    ("airflow.operators.", "this operator is not supported"),
    ("airflow.providers.standard.operators.", "this operator is not supported"),
    ("airflow.notifications", UNSUPPORTED_NAMES["BaseNotifier"]),
    ("airflow.models.", "this Airflow model is not supported"),
)


def module_error(name: str) -> Exception:
    """The error for importing an `airflow` module outside the subset."""
    reason = "it is not part of the subset"
    for marker, why in _MODULE_REASONS:
        if marker in name if marker == "sensors" else name.startswith(marker):
            reason = why
            break
    return unsupported(name, f"{reason}; {SUBSET}")


def name_error(module: str, name: str) -> Exception:
    """The error for `from <module> import <name>` of a name the shim does not provide."""
    why = UNSUPPORTED_NAMES.get(name)
    if why is None:
        known = [n for n in EXPORTS.get(module, ()) if not n.startswith("_")]
        if not known:  # a package: the name would be a submodule
            return module_error(f"{module}.{name}")
        why = "not part of the subset" + did_you_mean(name, known, f"{module} provides")
    return unsupported(f"{name} (from {module})", why)


def _objects() -> dict[str, Any]:
    from lockgate.authoring.airflow import context, dag, datasets, exceptions, operators, taskflow

    return {
        "Dataset": datasets.Dataset,
        "Asset": datasets.Asset,
        "DAG": dag.DAG,
        "dag": dag.dag,
        "task": taskflow.task,
        "task_group": dag.task_group,
        "TaskGroup": dag.TaskGroup,
        "Param": dag.Param,
        "days_ago": dag.days_ago,
        "utcnow": dag.utcnow,
        "datetime": dag.tz_datetime,
        "utc": dag.UTC_TZ,
        "BaseOperator": operators.BaseOperator,
        "BashOperator": operators.BashOperator,
        "PythonOperator": operators.PythonOperator,
        "BranchPythonOperator": operators.BranchPythonOperator,
        "ShortCircuitOperator": operators.ShortCircuitOperator,
        "EmptyOperator": operators.EmptyOperator,
        "DummyOperator": operators.EmptyOperator,
        "XComArg": operators.XComArg,
        "chain": operators.chain,
        "chain_linear": operators.chain_linear,
        "cross_downstream": operators.cross_downstream,
        "TriggerRule": operators.TriggerRule,
        "get_current_context": context.get_current_context,
        "Context": context.Context,
        "TaskInstance": context.TaskInstance,
        "DagRun": context.DagRun,
        "AirflowException": exceptions.AirflowException,
        "AirflowSkipException": exceptions.AirflowSkipException,
        "AirflowFailException": exceptions.AirflowFailException,
        "AirflowTaskTimeout": exceptions.AirflowTaskTimeout,
    }


_modules: dict[str, types.ModuleType] | None = None
_build_lock = threading.Lock()


def _make_module(
    name: str, names: tuple[str, ...], objects: dict[str, Any], package: bool
) -> types.ModuleType:
    module = types.ModuleType(name, f"lockgate's stand-in for {name} (Airflow compatibility)")
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=package)
    if package:
        module.__path__ = []
    module.__lockgate_shim__ = True  # type: ignore[attr-defined]
    module.__all__ = list(names)  # type: ignore[attr-defined]
    for item in names:
        setattr(module, item, objects[item])

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        raise name_error(name, attr)

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def shim_modules() -> dict[str, types.ModuleType]:
    """The shim modules by name (made once per process; never put in `sys.modules`)."""
    global _modules
    if _modules is None:
        with _build_lock:
            if _modules is None:
                objects = _objects()
                packages = {n.rsplit(".", 1)[0] for n in EXPORTS if "." in n}
                built = {
                    name: _make_module(name, names, objects, name in packages)
                    for name, names in EXPORTS.items()
                }
                for name, module in built.items():
                    if "." in name:
                        parent, _, child = name.rpartition(".")
                        setattr(built[parent], child, module)
                _modules = built
    return _modules


def _is_airflow(name: str) -> bool:
    return name == "airflow" or name.startswith("airflow.")


def shim_import(
    name: str,
    globals: Any = None,
    locals: Any = None,
    fromlist: Any = (),
    level: int = 0,
) -> Any:
    """`__import__` of a DAG file's module: `airflow` names resolve to the shim, at load time
    and when its task functions run later; everything else imports as usual (so a module the
    DAG file imports gets a real Airflow, if one is installed, for its own `airflow` imports)."""
    if level == 0 and _is_airflow(name):
        modules = shim_modules()
        module = modules.get(name)
        if module is None:
            raise module_error(name)
        if fromlist:
            return module
        return modules["airflow"]
    try:
        return builtins.__import__(name, globals, locals, fromlist, level)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if not _is_airflow(missing):
            raise
        where = _importer(exc)
        if where is None:
            raise
        raise error(
            f"{where} imports {missing}, which is not installed: only DAG files themselves are "
            f"served lockgate's Airflow layer, not the modules they import (import the Airflow "
            f"names in the DAG file and pass them to {name}, or move that code into it; {DOCS})"
        ) from None


def _importer(exc: BaseException) -> str | None:
    """`file:line` of the user's code that ran the failed import (the deepest such frame)."""
    found = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if is_user_file(frame.f_code.co_filename):
            found = f"{frame.f_code.co_filename}:{lineno}"
    return found


_hooked: dict[str, Any] | None = None


def hooked_builtins() -> dict[str, Any]:
    """The `__builtins__` of a DAG file's module: the builtins, with `shim_import`."""
    global _hooked
    if _hooked is None:
        _hooked = dict(builtins.__dict__, __import__=shim_import)
    return _hooked
