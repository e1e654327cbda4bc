"""The Python API: `@task` functions, `shell()` tasks and the `Pipeline` builder.

Inside a `with pipeline(...)` block (or a `@pipeline` function), calling a `@task` function
adds a task and returns a `TaskRef`; passing a `TaskRef` to another task makes a data dependency,
and `a >> b` an ordering one. Outside a pipeline, a `@task` function is a plain function.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, overload

from lockgate.errors import DefinitionError, LockgateError, did_you_mean
from lockgate.model.datasets import check_uris
from lockgate.model.durations import parse_duration
from lockgate.model.pipeline import Pipeline
from lockgate.model.refs import ParamRef, TaskOutput, Template
from lockgate.model.settings import SETTING_NAMES as _SETTING_KEYS
from lockgate.model.settings import check_setting_names, make_settings
from lockgate.model.task import Callback, Task, TaskKind

P = ParamSpec("P")
R = TypeVar("R")

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_local = threading.local()


def _caller_location() -> tuple[str | None, int | None]:
    """File and line of the first frame outside lockgate (where the user wrote the call)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep):
            return filename, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None, None


def unique_id(wanted: str, taken: Callable[[str], bool]) -> str:
    """`wanted`, or the first free `wanted__1`, `wanted__2`, ... (Airflow names repeats so too)."""
    if not taken(wanted):
        return wanted
    n = 1
    while taken(f"{wanted}__{n}"):
        n += 1
    return f"{wanted}__{n}"


def _current() -> PipelineBuilder | None:
    stack: list[PipelineBuilder] = getattr(_local, "stack", [])
    return stack[-1] if stack else None


def param(name: str) -> ParamRef:
    """A run parameter, usable as a task argument or a shell environment value."""
    return ParamRef(name)


class TaskRef:
    """A task inside a pipeline being built: use it for `>>` ordering and as data."""

    __slots__ = ("builder", "task_id", "key")

    def __init__(self, builder: PipelineBuilder, task_id: str, key: str | int | None = None):
        self.builder = builder
        self.task_id = task_id
        self.key = key

    def __getitem__(self, key: str | int) -> TaskRef:
        """The item `key` of this task's result, as an argument for another task."""
        if self.key is not None:  # TaskOutput holds one key: `ref[a][b]` would silently be `ref[b]`
            raise DefinitionError(
                f"result of task {self.task_id!r}: only one subscript is supported "
                f"(got [{self.key!r}][{key!r}]); return the inner value from a task instead",
                *_caller_location(),
            )
        return TaskRef(self.builder, self.task_id, key)

    def output(self) -> TaskOutput:
        return TaskOutput(self.task_id, self.key)

    def __rshift__(self, other: TaskRef | Sequence[TaskRef]) -> TaskRef | Sequence[TaskRef]:
        for o in _as_refs(other, self.builder):
            self.builder._add_edge(self.task_id, o.task_id)
        return other

    def __lshift__(self, other: TaskRef | Sequence[TaskRef]) -> TaskRef | Sequence[TaskRef]:
        for o in _as_refs(other, self.builder):
            self.builder._add_edge(o.task_id, self.task_id)
        return other

    def __rrshift__(self, other: Sequence[TaskRef]) -> TaskRef:
        for o in _as_refs(other, self.builder):
            self.builder._add_edge(o.task_id, self.task_id)
        return self

    def __rlshift__(self, other: Sequence[TaskRef]) -> TaskRef:
        for o in _as_refs(other, self.builder):
            self.builder._add_edge(self.task_id, o.task_id)
        return self

    def __repr__(self) -> str:
        return f"TaskRef({self.task_id!r})"

    def _not_yet(self, *_: Any) -> Any:
        raise DefinitionError(
            f"the result of task {self.task_id!r} is only known when the run reaches it: pass it "
            "to another task as an argument (or to a shell task through env=), do not format it "
            "into a string or test it here",
            *_caller_location(),
        )

    __str__ = __format__ = __bool__ = __iter__ = _not_yet


def _as_refs(value: Any, builder: PipelineBuilder) -> list[TaskRef]:
    items = value if isinstance(value, list | tuple | set) else [value]
    out = []
    for item in items:
        if not isinstance(item, TaskRef):
            raise DefinitionError(
                f"'>>' and '<<' link tasks, got {type(item).__name__} {item!r}", *_caller_location()
            )
        builder._check_same(item, *_caller_location())
        out.append(item)
    return out


def _to_model_value(value: Any) -> Any:
    """A task's argument for the model: task references (also inside lists, tuples and dicts,
    e.g. `total([a(), b()])`) become `TaskOutput`s, resolved when the task starts."""
    if isinstance(value, TaskRef):
        return value.output()
    if isinstance(value, list | tuple) and _nested_refs(value):
        return type(value)(_to_model_value(v) for v in value)
    if isinstance(value, dict) and _nested_refs(value):
        return {k: _to_model_value(v) for k, v in value.items()}
    return value


def _nested_refs(value: Any) -> list[TaskRef]:
    """The task references in `value` and in the lists, tuples and dict values inside it."""
    if isinstance(value, TaskRef):
        return [value]
    if isinstance(value, list | tuple):
        return [ref for v in value for ref in _nested_refs(v)]
    if isinstance(value, dict):
        return [ref for v in value.values() for ref in _nested_refs(v)]
    return []


class _Spec:
    """Options common to python and shell tasks, as given by the author."""

    def __init__(
        self,
        *,
        id: str | None,
        settings: Mapping[str, Any],
        on_success: Callback | Iterable[Callback] | None,
        on_failure: Callback | Iterable[Callback] | None,
        on_retry: Callback | Iterable[Callback] | None,
        compensate_with: TaskRef | str | None,
        depends_on: Iterable[TaskRef | str] | None,
        tags: Iterable[str],
        description: str | None,
        produces: Iterable[str] | str = (),
    ) -> None:
        self.id = id
        self.settings = dict(settings)
        self.callbacks = {
            "on_success": _callbacks(on_success),
            "on_failure": _callbacks(on_failure),
            "on_retry": _callbacks(on_retry),
        }
        self.compensate_with = compensate_with
        self.depends_on = list(depends_on or ())
        self.tags = tuple(tags)
        self.description = description
        try:
            self.produces = check_uris((produces,) if isinstance(produces, str) else produces)
        except ValueError as exc:
            raise ValueError(f"produces: {exc}") from None


def _callbacks(value: Callback | Iterable[Callback] | None) -> tuple[Callback, ...]:
    if value is None:
        return ()
    if callable(value):
        return (value,)
    items = tuple(value)
    for cb in items:
        if not callable(cb):
            raise DefinitionError(f"callback {cb!r} is not callable", *_caller_location())
    return items


class PipelineBuilder:
    """Collects tasks and edges; `build()` (or leaving the `with` block) validates and freezes."""

    def __init__(
        self,
        id: str,
        *,
        description: str | None = None,
        tags: Iterable[str] = (),
        schedule: str | Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
        max_active_tasks: int | None = None,
        pools: Mapping[str, int] | None = None,
        start_date: Any = None,
        end_date: Any = None,
        timezone: str = "UTC",
        catchup: bool = False,
        max_active_runs: int | None = None,
        run_timeout: Any = None,
        origin: str = "python",
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        if file is None:
            file, line = _caller_location()
        self.id = id
        self.file, self.line = file, line
        self.description = description
        self.tags = tuple(tags)
        self.schedule, datasets = _schedule_option(schedule, file, line)
        self.params = dict(params or {})
        self.defaults = make_settings(defaults or {}, what="pipeline default", file=file, line=line)
        self.max_active_tasks = max_active_tasks
        self.pools = dict(pools or {})
        self.extra: dict[str, Any] = {
            "start_date": start_date,
            "end_date": end_date,
            "timezone": timezone,
            "datasets": datasets,
            "catchup": catchup,
            "max_active_runs": max_active_runs,
            "run_timeout": _duration_option("run_timeout", run_timeout, file, line),
            "origin": origin,
        }
        self._tasks: dict[str, dict[str, Any]] = {}
        self._edges: list[tuple[str, str]] = []
        self._built: Pipeline | None = None

    # -- context manager --------------------------------------------------------------------
    def __enter__(self) -> PipelineBuilder:
        if not hasattr(_local, "stack"):
            _local.stack = []
        _local.stack.append(self)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        _local.stack.remove(self)
        if exc_type is None:
            built = self.build()
            collected = getattr(_local, "collected", None)
            if collected is not None:  # a pipeline file is being loaded: `as p` is optional
                collected.append(built)

    # -- building ---------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._built is not None:
            raise DefinitionError(
                f"pipeline {self.id!r} is already built and cannot change", *_caller_location()
            )

    def _add_task(self, fields: dict[str, Any], spec: _Spec, *, explicit_id: bool) -> TaskRef:
        self._check_open()
        file, line = _caller_location()
        tid = fields["id"]
        if tid in self._tasks:
            if explicit_id:
                first = self._tasks[tid]["line"]
                raise DefinitionError(
                    f"duplicate task id {tid!r} in pipeline {self.id!r} (first defined at line {first})",
                    file,
                    line,
                )
            tid = unique_id(tid, self._tasks.__contains__)
        settings = make_settings(spec.settings, self.defaults, file=file, line=line)
        comp = spec.compensate_with
        upstream: dict[str, None] = {}
        for value in (
            *fields.get("args", ()),
            *fields.get("kwargs", {}).values(),
            *fields.get("env", {}).values(),
            fields.get("command"),
            fields.get("cwd"),
        ):
            for ref in _nested_refs(value):  # also inside lists, tuples and dicts
                self._check_same(ref, file, line)
                upstream[ref.task_id] = None
            if isinstance(value, Template):  # `results.x` in a template: x runs first
                upstream.update(dict.fromkeys(value.refs))
        for dep in spec.depends_on:
            if isinstance(dep, TaskRef):
                self._check_same(dep, file, line)
            upstream[dep.task_id if isinstance(dep, TaskRef) else dep] = None
        self._tasks[tid] = dict(
            fields,
            id=tid,
            args=tuple(_to_model_value(a) for a in fields.get("args", ())),
            kwargs={k: _to_model_value(v) for k, v in fields.get("kwargs", {}).items()},
            env={k: _to_model_value(v) for k, v in fields.get("env", {}).items()},
            upstream=upstream,
            settings=settings,
            compensation=comp.task_id if isinstance(comp, TaskRef) else comp,
            tags=spec.tags,
            produces=spec.produces,
            description=spec.description,
            file=file,
            line=line,
            **spec.callbacks,
        )
        return TaskRef(self, tid)

    def _check_same(self, ref: TaskRef, file: str | None, line: int | None) -> None:
        if ref.builder is not self:
            raise DefinitionError(
                f"task {ref.task_id!r} belongs to pipeline {ref.builder.id!r}, not {self.id!r}",
                file,
                line,
            )

    def _add_edge(self, up: str, down: str) -> None:
        self._check_open()
        self._tasks[down]["upstream"][up] = None

    def build(self) -> Pipeline:
        """Validate and freeze; returns the same `Pipeline` on every call."""
        if self._built is None:
            source = None
            if self.file and os.path.isfile(self.file):
                with open(self.file, encoding="utf-8", errors="replace") as fh:
                    source = fh.read()
            tasks = {
                tid: Task(**dict(spec, upstream=tuple(spec["upstream"])))
                for tid, spec in self._tasks.items()
            }
            self._built = Pipeline(
                id=self.id,
                tasks=tasks,
                description=self.description,
                tags=self.tags,
                schedule=self.schedule,
                params=self.params,
                defaults=self.defaults,
                max_active_tasks=self.max_active_tasks,
                pools=self.pools,
                file=self.file,
                line=self.line,
                source=source,
                **self.extra,
            )
        return self._built

    @property
    def pipeline(self) -> Pipeline:
        return self.build()

    def __repr__(self) -> str:
        return f"PipelineBuilder({self.id!r}, tasks={len(self._tasks)})"


_PIPELINE_OPTIONS = (
    "description",
    "tags",
    "schedule",
    "params",
    "defaults",
    "max_active_tasks",
    "pools",
    "start_date",
    "end_date",
    "timezone",
    "catchup",
    "max_active_runs",
    "run_timeout",
)


def _schedule_option(value: Any, file: str | None, line: int | None) -> tuple[Any, tuple[str, ...]]:
    """`(schedule, datasets)`: text is a time schedule, a list or tuple names the datasets
    whose updates trigger the pipeline (checked by the `Pipeline`)."""
    if not isinstance(value, list | tuple):
        return value, ()
    if not value:
        raise DefinitionError(
            "schedule: an empty list names no datasets; give dataset URIs, a time schedule, "
            "or None (run only when triggered)",
            file,
            line,
        )
    return None, tuple(value)


def _duration_option(name: str, value: Any, file: str | None, line: int | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise DefinitionError(f"{name}: {exc}", file, line) from None


def template(source: str | Sequence[str] | Mapping[str, Any], *, native: bool = False) -> Template:
    """A Jinja template rendered when the task starts, for a task argument, an `env` value or a
    shell command: `shell("report", template("make-report --day {{ ds }}"))`.

    In a shell command each `{{ }}` value reaches the command as an environment variable, so
    it never becomes shell code. With `native=True` a lone
    `{{ expr }}` gives the expression's value (a list stays a list) instead of its text."""
    from lockgate.templating import compile_template

    file, line = _caller_location()
    builder = _current()  # inside a pipeline block, `params.x` must be one of its params
    return compile_template(
        source,
        mode="native" if native else "text",
        file=file,
        line=line,
        params=None if builder is None else builder.params,
    )


def pipeline(id: str | None = None, **options: Any) -> Any:
    """Start a pipeline: `with pipeline("id", ...) as p:` or decorate a function with `@pipeline`.

    The decorated form builds the pipeline at once and binds the function's name to it.
    `schedule` is a time schedule (text) or a list of dataset URIs whose updates trigger a run;
    `timezone` (an IANA name, default UTC) is the zone of the schedule, of naive start and end
    dates, and of the run dates templates see.
    """
    if callable(id):  # bare @pipeline
        return pipeline()(id)
    file, line = _caller_location()
    for key in options:
        if key not in _PIPELINE_OPTIONS:
            tip = did_you_mean(key, _PIPELINE_OPTIONS, "known:")
            raise DefinitionError(f"unknown pipeline option {key!r}{tip}", file, line)

    class _Factory:
        def __enter__(self) -> PipelineBuilder:
            self.builder = PipelineBuilder(id or "", file=file, line=line, **options)
            return self.builder.__enter__()

        def __exit__(self, *exc: Any) -> None:
            self.builder.__exit__(*exc)

        def __call__(self, fn: Callable[[], Any]) -> Pipeline:
            builder = PipelineBuilder(
                id or fn.__name__,
                file=file,
                line=line,
                **{"description": inspect.getdoc(fn), **options},
            )
            with builder:
                fn()
            return builder.build()

    return _Factory()


def _task_spec(options: dict[str, Any]) -> _Spec:
    settings = {k: options.pop(k) for k in list(options) if k in _SETTING_KEYS}
    spec = _Spec(
        id=options.pop("id", None),
        settings=settings,
        on_success=options.pop("on_success", None),
        on_failure=options.pop("on_failure", None),
        on_retry=options.pop("on_retry", None),
        compensate_with=options.pop("compensate_with", None),
        depends_on=options.pop("depends_on", None),
        tags=options.pop("tags", ()),
        description=options.pop("description", None),
        produces=options.pop("produces", ()),
    )
    if options:
        check_setting_names(options, "task")  # raises with a suggestion
    return spec


class TaskFunction(Generic[P, R]):
    """A function decorated with `@task`: a plain function outside a pipeline, a task inside."""

    def __init__(self, fn: Callable[P, R], options: dict[str, Any], branch: bool = False) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.options = options
        self.branch = branch
        params = inspect.signature(fn).parameters
        self.wants_context = "ctx" in params
        file, line = _caller_location()
        try:
            spec = _task_spec(dict(options))
        except ValueError as exc:
            raise DefinitionError(str(exc), file, line) from None
        make_settings(spec.settings, file=file, line=line)  # `@task(timeout=0)` fails right here

    def override(self, **options: Any) -> TaskFunction[P, R]:
        """A copy with some options changed, e.g. `extract.override(id="extract_eu", retries=3)`."""
        return TaskFunction(self.fn, {**self.options, **options}, self.branch)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        builder = _current()
        if builder is None:
            return self.fn(*args, **kwargs)
        options = dict(self.options)
        explicit = "id" in options
        try:
            spec = _task_spec(options)
        except ValueError as exc:
            raise DefinitionError(str(exc), *_caller_location()) from None
        if self.wants_context and "ctx" in kwargs:
            raise DefinitionError(
                f"task {self.fn.__name__!r}: 'ctx' is supplied by lockgate at run time; do not pass it",
                *_caller_location(),
            )
        try:
            bound = inspect.signature(self.fn).bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise DefinitionError(
                f"task {self.fn.__name__!r}: {exc}", *_caller_location()
            ) from None
        fields = {
            "id": spec.id or self.fn.__name__,
            "kind": TaskKind.PYTHON,
            "fn": self.fn,
            "args": bound.args,
            "kwargs": bound.kwargs,
            "branch": self.branch,
            "wants_context": self.wants_context,
        }
        if spec.description is None:
            spec.description = (inspect.getdoc(self.fn) or "").split("\n", 1)[0] or None
        return builder._add_task(fields, spec, explicit_id=explicit)

    def __repr__(self) -> str:
        return f"<task {self.fn.__module__}.{self.fn.__qualname__}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_resolve_task_function, (self.fn.__module__, self.fn.__qualname__))


def _resolve_task_function(module: str, qualname: str) -> Any:
    obj: Any = sys.modules[module]
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


@overload
def task(fn: Callable[P, R], /) -> TaskFunction[P, R]: ...
@overload
def task(**options: Any) -> Callable[[Callable[P, R]], TaskFunction[P, R]]: ...
def task(fn: Any = None, /, **options: Any) -> Any:
    """Make a function a task. Options: id, retries, retry_delay, retry_backoff, retry_jitter,
    max_retry_delay, timeout, trigger_rule, pool, pool_slots, resources (worker resources for
    the Dask executor, e.g. {"gpu": 1}), on_success, on_failure, on_retry,
    compensate_with, depends_on, tags, description, produces (the dataset URIs the task updates
    when it succeeds)."""
    if fn is not None:
        return TaskFunction(fn, {})
    return lambda f: TaskFunction(f, options)


def branch(fn: Any = None, /, **options: Any) -> Any:
    """A task that returns the id (or list of ids) of the direct downstream tasks to follow;
    the other direct downstream tasks are skipped."""
    if fn is not None:
        return TaskFunction(fn, {}, branch=True)
    return lambda f: TaskFunction(f, options, branch=True)


def shell(
    id: str,
    command: str | Sequence[str] | Template,
    *,
    env: Mapping[str, Any] | None = None,
    cwd: str | Template | None = None,
    skip_exit_codes: Iterable[int] = (),
    output_result: bool = False,
    **options: Any,
) -> TaskRef:
    """A shell task. `command` is a string run by `/bin/sh -c`, or an argv list run directly.

    Values reach the command through `env` (literals, `param("x")` or upstream results):
    `shell("greet", 'echo "$WHO"', env={"WHO": param("who")})`, or through a `template()`,
    whose values never become shell code. An exit code in `skip_exit_codes` ends the task skipped;
    with `output_result` the last line the command prints is the task's result.
    """
    builder = _current()
    if builder is None:
        raise DefinitionError(
            f"shell task {id!r} must be created inside a pipeline (`with pipeline(...)`)",
            *_caller_location(),
        )
    if isinstance(command, Template):
        # a command string's values travel as environment variables (argv items need nothing)
        cmd: str | tuple[str, ...] | Template = command
        if isinstance(command.source, str):
            from lockgate.templating import compile_template

            file, line = _caller_location()
            cmd = compile_template(
                command.source,
                mode="shell",
                file=file,
                line=line,
                where=f"shell task {id!r}",
                params=builder.params,
            )
    elif isinstance(command, str):
        cmd = command
    elif isinstance(command, Sequence) and all(isinstance(c, str) for c in command):
        cmd = tuple(command)
    else:
        raise DefinitionError(
            f"shell task {id!r}: command must be a string or a list of strings, got {command!r}",
            *_caller_location(),
        )
    for key in env or {}:
        if not isinstance(key, str) or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise DefinitionError(
                f"shell task {id!r}: environment variable name {key!r} is invalid",
                *_caller_location(),
            )
    codes = tuple(skip_exit_codes)
    if not all(isinstance(c, int) and not isinstance(c, bool) and 0 < c < 256 for c in codes):
        raise DefinitionError(
            f"shell task {id!r}: skip_exit_codes must be exit codes 1-255, got {codes!r}",
            *_caller_location(),
        )
    try:
        spec = _task_spec(dict(options, id=id))
    except ValueError as exc:
        raise DefinitionError(str(exc), *_caller_location()) from None
    fields = {
        "id": id,
        "kind": TaskKind.SHELL,
        "command": cmd,
        "env": dict(env or {}),
        "cwd": cwd,
        "skip_exit_codes": codes,
        "output_result": bool(output_result),
    }
    return builder._add_task(fields, spec, explicit_id=True)


def scan(id: str, *, input: Any, sample_size: int = 1000, seed: int = 0, **options: Any) -> TaskRef:
    """A task that classifies the columns of a file (CSV, Parquet or JSONL), as `lockgate scan`
    does; its result is the scan report (`columns`: name, classification, confidence)."""
    return _privacy_task(
        "scan", id, {"input": input, "sample_size": sample_size, "seed": seed}, options
    )


def mask(
    id: str,
    *,
    input: Any,
    output: Any,
    rules: Any = None,
    auto: bool = False,
    sample_size: int = 1000,
    **options: Any,
) -> TaskRef:
    """A task that masks a file as `lockgate mask` does: with `rules` (a rules file, or a list of
    `{"column": ..., "op": ..., "options": {...}}` mappings), with `auto=True` (every column
    that scan classifies), or both (auto covers the columns the rules leave alone). Its result
    is a summary: rows, the columns masked by each operation, the output's tags."""
    if rules is None and not auto:
        raise DefinitionError(
            f"mask task {id!r}: give rules= (a rules file or a list of rules) or auto=True",
            *_caller_location(),
        )
    values = {"input": input, "output": output, "rules": rules, "auto": auto}
    return _privacy_task("mask", id, dict(values, sample_size=sample_size), options)


def redact(
    id: str, *, input: Any, output: Any, entities: Sequence[str] | None = None, **options: Any
) -> TaskRef:
    """A task that replaces the PII and secrets of a text or log file, line by line, as
    `lockgate redact` does; `entities` limits it to some types (`["email", "ip"]`)."""
    values = {"input": input, "output": output, "entities": entities}
    return _privacy_task("redact", id, values, options)


def _privacy_task(action: str, id: str, values: dict[str, Any], options: Any) -> TaskRef:
    """A Python task calling `lockgate.privacy.tasks.<action>_task(**values)`."""
    from lockgate.privacy import tasks as privacy_tasks  # light; the engine loads when it runs

    file, line = _caller_location()
    fn = getattr(privacy_tasks, f"{action}_task")
    return _library_task(fn, action, id, values, options, file, line, text_only=True)


def _library_task(
    fn: Callable[..., Any],
    action: str,
    id: str,
    values: dict[str, Any],
    settings: Any,
    file: str | None,
    line: int | None,
    *,
    text_only: bool = False,
    raw: frozenset[str] = frozenset(),
    native: frozenset[str] = frozenset(),
) -> TaskRef:
    """A Python task calling one of lockgate's task functions with `values`. A value holding
    `{{` is a template rendered when the task starts (as Airflow renders templated fields):
    strings only with `text_only`, else also inside mappings and lists; names in `raw` are
    never templates, names in `native` keep their type (`"{{ x }}"` -> the value of x)."""
    from lockgate.templating import compile_template, has_template

    builder = _current()
    if builder is None:
        raise DefinitionError(
            f"{action} task {id!r} must be created inside a pipeline (`with pipeline(...)`)",
            file,
            line,
        )
    kwargs = {}
    for name, value in values.items():
        if value is None:
            continue
        templated = (
            isinstance(value, str) if text_only else not isinstance(value, TaskRef)
        ) and name not in raw
        if templated and has_template(value):
            value = compile_template(
                value,
                mode="native" if name in native else "text",
                file=file,
                line=line,
                where=f"{action} task {id!r}, {name}",
                params=builder.params,
            )
        kwargs[name] = value
    try:
        spec = _task_spec(dict(settings, id=id))
    except ValueError as exc:
        raise DefinitionError(str(exc), file, line) from None
    fields = {"id": id, "kind": TaskKind.PYTHON, "fn": fn, "kwargs": kwargs}
    return builder._add_task(fields, spec, explicit_id=True)


def read(
    id: str,
    *,
    source: Any,
    format: str | None = None,
    query: Any = None,
    connection: str | None = None,
    options: Mapping[str, Any] | None = None,
    column_tags: Mapping[str, str] | None = None,
    checks: Sequence[Mapping[str, Any]] | None = None,
    **settings: Any,
) -> TaskRef:
    """A task that reads a dataset (a URI, a path relative to the project folder, or a
    mapping with `uri` and options) to the end, streamed, and runs `checks` over it: a
    data-quality gate on a source. Its result: rows, schema (with tags), check results.
    `column_tags` declares the classification of columns (`{"email": "pii.email"}`)."""
    values = {
        "source": source,
        "format": format,
        "query": query,
        "connection": connection,
        "options": options,
        "tags": column_tags,
        "checks": checks,
    }
    return _data_task("read", id, values, settings)


def copy(
    id: str,
    *,
    source: Any,
    target: Any,
    mode: str = "overwrite",
    keys: Sequence[str] | str = (),
    format: str | None = None,
    target_format: str | None = None,
    query: Any = None,
    connection: str | None = None,
    target_connection: str | None = None,
    options: Mapping[str, Any] | None = None,
    target_options: Mapping[str, Any] | None = None,
    column_tags: Mapping[str, str] | None = None,
    checks: Sequence[Mapping[str, Any]] | None = None,
    **settings: Any,
) -> TaskRef:
    """A task that copies any dataset to any other (files, S3, SQLite, PostgreSQL; HTTP
    APIs as sources), streamed and atomic: `mode` is overwrite, append or upsert (on `keys`,
    SQL targets). With `checks`, the data is checked before anything is written: a failed
    `error` check writes nothing and fails the task. `column_tags` declares the
    classification of target columns."""
    values = {
        "source": source,
        "target": target,
        "mode": mode,
        "keys": [keys] if isinstance(keys, str) else list(keys) or None,
        "format": format,
        "target_format": target_format,
        "query": query,
        "connection": connection,
        "target_connection": target_connection,
        "options": options,
        "target_options": target_options,
        "tags": column_tags,
        "checks": checks,
    }
    return _data_task("copy", id, values, settings)


def sql(
    id: str,
    *,
    query: Any,
    inputs: Mapping[str, Any],
    target: Any = None,
    mode: str = "overwrite",
    keys: Sequence[str] | str = (),
    target_format: str | None = None,
    target_connection: str | None = None,
    target_options: Mapping[str, Any] | None = None,
    column_tags: Mapping[str, str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    checks: Sequence[Mapping[str, Any]] | None = None,
    **settings: Any,
) -> TaskRef:
    """A DuckDB SQL transform: `query` (one SELECT; may be a template) over `inputs` (name ->
    dataset, each streamed into DuckDB under its name), its result written into `target`
    (without one, the task's result is a preview). Output columns keep the classification of
    the input columns they come from; `column_tags` declares others. `parameters` are bound to
    `$name` placeholders (values, never SQL)."""
    if not isinstance(inputs, Mapping) or not inputs:
        raise DefinitionError(
            f"sql task {id!r}: give inputs=, a mapping of name -> dataset", *_caller_location()
        )
    values = {
        "query": query,
        "inputs": dict(inputs),
        "target": target,
        "mode": mode,
        "keys": [keys] if isinstance(keys, str) else list(keys) or None,
        "target_format": target_format,
        "target_connection": target_connection,
        "target_options": target_options,
        "tags": column_tags,
        "parameters": parameters,
        "checks": checks,
    }
    return _data_task("sql", id, values, settings)


def check(
    id: str,
    *,
    dataset: Any,
    checks: Sequence[Mapping[str, Any]],
    format: str | None = None,
    query: Any = None,
    connection: str | None = None,
    options: Mapping[str, Any] | None = None,
    **settings: Any,
) -> TaskRef:
    """A task that runs data-quality `checks` over a dataset: a failed `error` check fails
    it (and its downstream tasks do not run); `warn` results are recorded."""
    if not checks:
        raise DefinitionError(f"check task {id!r}: give checks=[...]", *_caller_location())
    values = {
        "dataset": dataset,
        "checks": checks,
        "format": format,
        "query": query,
        "connection": connection,
        "options": options,
    }
    return _data_task("check", id, values, settings)


def _data_task(action: str, id: str, values: dict[str, Any], settings: Any) -> TaskRef:
    """A Python task calling `lockgate.io.tasks.<action>_task(**values)`: text containing `{{`
    is a template rendered when the task starts (also inside mappings such as `inputs`);
    `checks` are parsed now, so a mistake fails at this line."""
    file, line = _caller_location()
    if _current() is None:
        raise DefinitionError(
            f"{action} task {id!r} must be created inside a pipeline (`with pipeline(...)`)",
            file,
            line,
        )
    from lockgate.io import tasks as io_tasks  # light; connectors load when the task runs
    from lockgate.io.dataset import check_mode

    where = f"{action} task {id!r}"
    try:
        if "mode" in values:
            check_mode(values["mode"], tuple(values.get("keys") or ()))
        if values.get("checks") is not None:
            from lockgate.quality import parse_checks

            values["checks"] = [dict(c) for c in values["checks"]]
            parse_checks(values["checks"], where=f"{where}, checks")
    except DefinitionError as exc:
        raise DefinitionError(exc.detail, file, line) from None
    except LockgateError as exc:
        raise DefinitionError(f"{where}: {exc}", file, line) from None
    fn = getattr(io_tasks, f"{action}_task")
    return _library_task(
        fn,
        action,
        id,
        values,
        settings,
        file,
        line,
        raw=frozenset({"checks"}),
        native=frozenset({"parameters", "source", "dataset", "inputs"}),
    )


@contextlib.contextmanager
def collecting() -> Iterator[list[Pipeline]]:
    """Collect the pipelines built in this thread inside the block (used to load files)."""
    previous = getattr(_local, "collected", None)
    _local.collected = out = []
    try:
        yield out
    finally:
        _local.collected = previous


def to_pipeline(obj: Pipeline | PipelineBuilder) -> Pipeline:
    """Accept either a built `Pipeline` or a builder."""
    return obj.build() if isinstance(obj, PipelineBuilder) else obj
