"""A loaded Airflow DAG (the shim's objects) as a lockgate `Pipeline` (origin "airflow")."""

from __future__ import annotations

import functools
import inspect
import os
import types
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from lockgate.authoring.airflow.context import DagView, Graph, TaskView, get_current_context
from lockgate.authoring.airflow.dag import DAG, DagParam, lockgate_param
from lockgate.authoring.airflow.datasets import dataset_uris
from lockgate.authoring.airflow.errors import error
from lockgate.authoring.airflow.operators import BaseOperator, BashOperator, XComArg
from lockgate.authoring.airflow.runtime import (
    Branching,
    Callback,
    Runner,
    TaskInfo,
    TemplateNames,
)
from lockgate.authoring.airflow.xcom import XRef
from lockgate.model.pipeline import Pipeline
from lockgate.model.refs import ParamRef, TaskOutput, Template
from lockgate.model.settings import make_settings
from lockgate.model.task import Task, TaskKind

_RULE_ALIASES = {"dummy": "always", "none_failed_or_skipped": "none_failed_min_one_success"}


def _closure(start: str, edges: Mapping[str, list[str]]) -> list[str]:
    """Every task reachable from `start` along `edges` (in a stable order)."""
    seen: dict[str, None] = {}
    stack = list(reversed(edges[start]))
    while stack:
        tid = stack.pop()
        if tid in seen or tid == start:
            continue
        seen[tid] = None
        stack.extend(reversed(edges[tid]))
    return list(seen)


def _xrefs(value: Any) -> list[str]:
    if isinstance(value, XRef):
        return [value.task_id]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in _xrefs(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _xrefs(v)]
    return []


_PULL_NAMES = frozenset({"xcom_pull", "get_current_context"})
_TI_NAMES = frozenset({"ti", "task_instance"})


def can_pull(fn: Any) -> bool:
    """Whether the callable of a task may pull XComs, so that its task must be handed the
    results of all its upstream tasks: it takes `ti`, `task_instance` or `**kwargs` (and so
    receives `ti`), or its code, a function nested in it or a function of its own module that
    it calls names `xcom_pull`, `get_current_context`, `ti` or `task_instance`, or holds a
    template that reads XComs (a `@task.bash` command). What cannot be inspected may pull."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    if any(p.kind is p.VAR_KEYWORD or p.name in _TI_NAMES for p in params):
        return True
    functions = [fn, inspect.unwrap(fn)]
    if not isinstance(fn, types.FunctionType | types.MethodType):
        functions.append(fn.__call__)  # an object with a __call__ method
    codes = [
        (code, getattr(f, "__globals__", None) or {})
        for f in functions
        if isinstance(code := getattr(f, "__code__", None), types.CodeType)
    ]
    if not codes:
        return True
    seen: set[types.CodeType] = set()
    return any(_code_pulls(code, namespace, seen) for code, namespace in codes)


def _code_pulls(code: types.CodeType, namespace: Mapping[str, Any], seen: set[Any]) -> bool:
    if code in seen:
        return False
    seen.add(code)
    names = set(code.co_names)
    local = names.union(code.co_varnames, code.co_freevars, code.co_cellvars)
    if names & _PULL_NAMES or local & _TI_NAMES:
        return True
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if _code_pulls(const, namespace, seen):
                return True
        elif isinstance(const, str) and (
            "xcom_pull" in const or ("results" in const and ("{{" in const or "{%" in const))
        ):
            return True
    for name in code.co_names:  # what it calls: get_current_context under another name, ...
        target = namespace.get(name)
        if target is get_current_context:
            return True
        if (
            isinstance(target, types.FunctionType)
            and target.__globals__ is namespace
            and _code_pulls(target.__code__, namespace, seen)
        ):
            return True
    return False


def _seconds(value: Any) -> Any:
    return value.total_seconds() if isinstance(value, timedelta) else value


def _skip_codes(codes: Any) -> tuple[int, ...]:
    """`skip_on_exit_code` (None, an int or several) as exit codes."""
    return () if codes is None else ((codes,) if isinstance(codes, int) else tuple(codes))


def _settings(op: BaseOperator) -> Any:
    rule = op.trigger_rule
    rule = rule.value if hasattr(rule, "value") else rule
    rule = _RULE_ALIASES.get(rule, rule)
    backoff = op.retry_exponential_backoff
    if backoff is True:
        backoff = 2.0
    elif backoff in (False, None, 0):
        backoff = 1.0
    options = {
        "retries": op.retries,
        # Airflow's default delay (300 s) is noise on a task that never retries
        "retry_delay": op.retry_delay if op.retries else 0,
        "retry_backoff": backoff,
        "max_retry_delay": op.max_retry_delay,
        "timeout": op.execution_timeout,
        "trigger_rule": rule,
        "pool": None if op.pool in (None, "default_pool") else op.pool,
        "pool_slots": op.pool_slots,
    }
    return make_settings(options, what=f"task {op.task_id!r}", file=op.file, line=op.line)


def _callbacks(value: Any, info: TaskInfo, op: BaseOperator) -> tuple[Callback, ...]:
    if value is None:
        return ()
    items = list(value) if isinstance(value, list | tuple) else [value]
    for cb in items:
        if not callable(cb):
            raise error(f"task {op.task_id!r}: callback {cb!r} is not callable", op.file, op.line)
    return tuple(Callback(cb, info) for cb in items)


class _Converter:
    def __init__(self, dag: DAG, file: str) -> None:
        self.dag = dag
        self.file = file
        ops = dag.tasks
        self.ups = {op.task_id: [u.task_id for u in op._upstream] for op in ops}
        self.downs = {op.task_id: [d.task_id for d in op._downstream] for op in ops}
        self.ids = frozenset(self.ups)
        self.multiple = frozenset(op.task_id for op in ops if op.multiple_outputs)
        self.dag_view = DagView(
            dag_id=dag.dag_id,
            description=dag.description,
            doc_md=dag.doc_md,
            tags=tuple(dag.tags),
            owner=dag.owner,
            schedule=dag.schedule,
            params=dict(dag.params),
            task_ids=tuple(self.ups),
        )
        self.group_roots = {
            gid: tuple(t.task_id for t in group.get_roots()) for gid, group in dag._groups.items()
        }
        self._descendants: dict[str, frozenset[str]] = {}

    def descendants(self) -> dict[str, frozenset[str]]:
        if not self._descendants:
            self._descendants = {tid: frozenset(_closure(tid, self.downs)) for tid in self.ids}
        return self._descendants

    def info(self, op: BaseOperator) -> TaskInfo:
        rule = op.trigger_rule
        view = TaskView(
            task_id=op.task_id,
            dag_id=self.dag.dag_id,
            task_type=type(op).__name__,
            owner=str(op.owner),
            email=op.email,
            retries=op.retries if isinstance(op.retries, int) else 0,
            trigger_rule=str(rule.value if hasattr(rule, "value") else rule),
            doc_md=op.doc_md,
            upstream_task_ids=frozenset(self.ups[op.task_id]),
            downstream_task_ids=frozenset(self.downs[op.task_id]),
        )
        graph = Graph(op.task_id, self.ids, self.ups, self.multiple)
        return TaskInfo(
            dag=self.dag_view,
            task=view,
            graph=graph,
            retries=view.retries,
            macros=self.dag.user_defined_macros,
            filters=self.dag.user_defined_filters,
        )

    def template(
        self, value: Any, op: BaseOperator, names: TemplateNames, field: str, mode: str = "text"
    ) -> Any:
        from lockgate.templating import compile_template, has_template

        if not has_template(value):
            return value
        return compile_template(
            value,
            mode=mode,
            file=op.file,
            line=op.line,
            where=f"task {op.task_id!r}: {field}",
            extra=names,
            filters=self.dag.user_defined_filters,
        )

    def task(self, op: BaseOperator) -> Task:
        tid = op.task_id
        info = self.info(op)
        names = TemplateNames(info)
        common: dict[str, Any] = {
            "id": tid,
            "upstream": tuple(self.ups[tid]),
            "settings": _settings(op),
            "on_success": _callbacks(op.on_success_callback, info, op),
            "on_failure": _callbacks(op.on_failure_callback, info, op),
            "on_retry": _callbacks(op.on_retry_callback, info, op),
            "description": self.description(op),
            "produces": self.produces(op),
            "file": op.file,
            "line": op.line,
        }
        if isinstance(op, BashOperator):
            return self.bash_task(op, names, common)
        return self.python_task(op, info, names, common)

    def produces(self, op: BaseOperator) -> tuple[str, ...]:
        """The URIs of the task's `outlets` (Datasets or Assets)."""
        if op.outlets is None or (isinstance(op.outlets, list | tuple) and not op.outlets):
            return ()
        return dataset_uris(op.outlets, f"task {op.task_id!r}: outlets", op.file, op.line)

    def description(self, op: BaseOperator) -> str | None:
        doc = op.doc_md or op.doc
        if not doc:
            fn = getattr(op, "python_callable", None)
            doc = (
                getattr(fn, "__doc__", None)
                if op.kind == "python" and type(op).__name__ == "PythonOperator"
                else None
            )
        if not doc:
            return None
        lines = [ln.strip() for ln in str(doc).strip().splitlines() if ln.strip()]
        return lines[0].lstrip("# ") if lines else None

    # -- shell ------------------------------------------------------------------------------------
    def _template_file(self, name: str, op: BaseOperator) -> str:
        folders = [self.dag.folder, *self.dag.template_searchpath]
        for folder in folders:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as fh:
                    return fh.read()
        raise error(
            f"task {op.task_id!r}: bash_command {name!r} ends in .sh/.bash, so Airflow reads it "
            f"as a template file, which is not in {', '.join(folders)} (add a space at the end "
            "to run it as a command)",
            op.file,
            op.line,
        )

    def bash_task(self, op: BashOperator, names: TemplateNames, common: dict[str, Any]) -> Task:
        command = op.bash_command
        if isinstance(command, XComArg):
            command = str(command)
        if not isinstance(command, str) or not command.strip():
            raise error(
                f"task {op.task_id!r}: bash_command must be a non-empty string, got {command!r}",
                op.file,
                op.line,
            )
        if command.endswith(BashOperator.template_ext):
            command = self._template_file(command, op)
        argv = self.template(["bash", "-c", command], op, names, "bash_command")
        if not isinstance(argv, Template):
            argv = tuple(argv)
        env: dict[str, Any] = {
            "AIRFLOW_CTX_DAG_ID": self.dag.dag_id,
            "AIRFLOW_CTX_TASK_ID": op.task_id,
            "AIRFLOW_CTX_DAG_OWNER": str(op.owner),
        }
        for key, text in (
            ("AIRFLOW_CTX_LOGICAL_DATE", "{{ ts }}"),
            ("AIRFLOW_CTX_EXECUTION_DATE", "{{ ts }}"),
            ("AIRFLOW_CTX_DAG_RUN_ID", "{{ run_id }}"),
            ("AIRFLOW_CTX_TRY_NUMBER", "{{ attempt }}"),
        ):
            env[key] = Template(text, "text", (), names, self.dag.user_defined_filters)
        if op.env is not None and not isinstance(op.env, Mapping):
            raise error(
                f"task {op.task_id!r}: env must be a dict, got {op.env!r}", op.file, op.line
            )
        for key, value in (op.env or {}).items():
            if isinstance(value, XComArg):
                value = str(value)
            if isinstance(value, DagParam):
                env[key] = ParamRef(value.name)
            else:
                env[key] = self.template(value, op, names, f"env {key!r}")
        cwd = op.cwd
        if cwd is not None:
            cwd = self.template(cwd, op, names, "cwd")
        return Task(
            kind=TaskKind.SHELL,
            command=argv,
            env=env,
            cwd=cwd,
            skip_exit_codes=_skip_codes(op.skip_on_exit_code),
            # as in Airflow: `env` replaces the environment unless append_env=True
            inherit_env=op.env is None or op.append_env,
            output_result=bool(op.do_xcom_push),
            **common,
        )

    # -- python -----------------------------------------------------------------------------------
    def python_task(
        self,
        op: BaseOperator,
        info: TaskInfo,
        names: TemplateNames,
        common: dict[str, Any],
    ) -> Task:
        kind = op.kind
        if kind == "empty":
            runner = Runner(kind="empty", info=info, fn=None, module=self.module_name())
            return Task(kind=TaskKind.PYTHON, fn=runner, wants_context=True, **common)
        op_args, op_kwargs = op.frozen_args()  # type: ignore[attr-defined]
        templates_dict = op.templates_dict  # type: ignore[attr-defined]
        mode = "native" if self.dag.render_template_as_native_obj else "text"
        kwargs: dict[str, Any] = {}
        fn = op.python_callable  # type: ignore[attr-defined]
        rule = common["settings"].trigger_rule.value
        # a task is handed the results of all its upstream tasks only if it may pull XComs
        # (else a chain of N tasks would carry N*N results); "always" tasks may start before
        # their upstream tasks have results, so they get only those their arguments use
        pulls = rule != "always" and can_pull(fn)
        sources = _closure(op.task_id, self.ups) if pulls else _xrefs([op_args, op_kwargs])
        for tid in dict.fromkeys(sources):
            kwargs[f"xcom:{tid}"] = TaskOutput(tid)
        for field, value in (
            ("op_args", op_args),
            ("op_kwargs", op_kwargs),
            ("templates_dict", templates_dict),
        ):
            rendered = self.template(value, op, names, field, mode)
            if isinstance(rendered, Template):
                kwargs[field] = rendered
        bash: dict[str, Any] = {}
        if kind == "bash":
            env = getattr(op, "env", None)
            if env is not None:
                env = {k: str(v) if isinstance(v, XComArg) else v for k, v in env.items()}
            bash = {
                "env": env,
                "inherit_env": env is None or bool(getattr(op, "append_env", False)),
                "cwd": getattr(op, "cwd", None),
                "skip_codes": _skip_codes(getattr(op, "skip_on_exit_code", 99)),
            }
            for field in ("env", "cwd"):
                rendered = self.template(bash[field], op, names, field)
                if isinstance(rendered, Template):
                    kwargs[field] = rendered
        downstream = tuple(self.downs[op.task_id])
        branching = None
        if kind in ("branch", "short_circuit") and downstream:
            branching = Branching(downstream, self.ids, self.group_roots, self.descendants())
        runner = Runner(
            kind=kind,
            info=info,
            fn=fn,
            op_args=op_args,
            op_kwargs=op_kwargs,
            templates_dict=templates_dict,
            multiple_outputs=op.multiple_outputs,
            do_xcom_push=bool(op.do_xcom_push),
            branching=branching,
            bash=bash,
            handed_all=pulls or rule == "always",
        )
        return Task(
            kind=TaskKind.PYTHON,
            fn=runner,
            kwargs=kwargs,
            wants_context=True,
            branch=branching is not None,
            **common,
        )

    def module_name(self) -> str:
        from pathlib import Path

        from lockgate.authoring.discovery import module_name_for

        return module_name_for(Path(self.file))

    def pipeline(self, source: str | None) -> Pipeline:
        dag = self.dag
        tasks = {op.task_id: self.task(op) for op in dag.tasks}
        params = {
            name: lockgate_param(dag.dag_id, name, value, dag.file, dag.line)
            for name, value in dag.params.items()
        }
        line = dag.line if dag.file == self.file else None
        return Pipeline(
            id=dag.dag_id,
            tasks=tasks,
            description=dag.description or _first_line(dag.doc_md),
            tags=tuple(str(t) for t in dag.tags),
            schedule=dag.schedule,
            datasets=dag.datasets,
            params=params,
            max_active_tasks=dag.max_active_tasks,
            start_date=dag.start_date,
            end_date=dag.end_date,
            timezone=dag.timezone,
            catchup=dag.catchup,
            max_active_runs=dag.max_active_runs,
            run_timeout=_seconds(dag.run_timeout),
            origin="airflow",
            file=self.file,
            line=line,
            source=source,
        )


def _first_line(text: str | None) -> str | None:
    if not text:
        return None
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip().lstrip("# ").strip() or None
    return None


def to_pipeline(dag: DAG, file: str, source: str | None) -> Pipeline:
    """The lockgate pipeline of `dag`, defined in `file` (whose text is `source`)."""
    return _Converter(dag, file).pipeline(source)
