"""YAML pipelines: read a file safely, keeping the line and column of every key and value,
validate it with the models of `yaml_schema`, and build the `Pipeline` it describes.

Every error is one line, `FILE:LINE:COL: FIELD.PATH: what was expected`. Reading is safe: the
events of PyYAML's SafeLoader parser (the C one when available) are composed into nodes here,
without recursion and to a bounded depth, and the nodes are converted to plain values only (no
Python tags), with no duplicate keys and a bounded alias expansion.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lockgate.authoring.yaml_schema import (
    ACTION_LIST,
    ACTIONS,
    PARAM_KEYS,
    CheckTask,
    CopyTask,
    DatasetSpec,
    MaskTask,
    ParamSpec,
    PipelineSpec,
    PythonTask,
    ReadTask,
    RedactTask,
    ScanTask,
    ShellTask,
    SqlTask,
    TaskDefaults,
    TaskSpec,
    action_model,
    show,
)
from lockgate.errors import DefinitionError, did_you_mean
from lockgate.model.params import Param
from lockgate.model.pipeline import ID_PATTERN, Pipeline
from lockgate.model.refs import Template
from lockgate.model.settings import SETTING_NAMES, TaskSettings, make_settings
from lockgate.model.task import Task, TaskKind
from lockgate.templating import compile_template, has_template

ALIAS_BUDGET = 100_000
"""Most values that aliases (`*name`) may expand to in one file: a "billion laughs" file, whose
nested aliases would expand to billions of values, fails at once instead of eating memory."""

MAX_BYTES = 256 * 1024
"""Largest YAML pipeline file: real ones are a few kilobytes; a huge one would take seconds and
hundreds of megabytes to check."""

MAX_DEPTH = 100
"""Deepest nesting of lists and mappings: deeper files are refused, not a stack overflow."""

Path_ = tuple[str | int, ...]
"""Where a value sits in the document: keys and list indices from the top."""

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NATIVE_DATA_VALUES = frozenset({"parameters", "source", "dataset", "inputs"})
"""Values of data tasks whose lone `{{ expr }}` keeps its type (see `_data`)."""
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_MAP, _SEQ, _MERGE = _CORE + "map", _CORE + "seq", _CORE + "merge"
_TEXT_TAGS = frozenset({_MERGE, _CORE + "value"})
"""Tags PyYAML gives the plain scalars `<<` and `=`: text, where not a merge key."""


def load_yaml(file: Path) -> list[Pipeline]:
    """The pipeline defined by a YAML file (a list of one, as for other pipeline files)."""
    path = str(file)
    size = Path(file).stat().st_size
    if size > MAX_BYTES:
        raise DefinitionError(
            f"the file is {size:,} bytes; a YAML pipeline file may have at most {MAX_BYTES:,} "
            "(keep data in files or datasets, not in the pipeline)",
            path,
            1,
            1,
        )
    try:
        text = Path(file).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError(
            f"the file is not UTF-8 text (byte {exc.start})", path, 1, 1
        ) from None
    doc = Document.parse(text, path)
    spec = doc.validate()
    return [_Builder(doc, spec, Path(file)).build()]


AIRFLOW_KEYS = {
    "dag_id": "id",
    "task_id": "id",
    "schedule_interval": "schedule",
    "default_args": "defaults",
    "doc_md": "description",
    "bash_command": "shell",
    "python_callable": "python",
    "op_args": "args",
    "op_kwargs": "kwargs",
    "dependencies": "depends_on",
    "upstream": "depends_on",
    "execution_timeout": "timeout",
    "retry_exponential_backoff": "retry_backoff",
    "dagrun_timeout": "run_timeout",
    "concurrency": "max_active_tasks",
}
"""Airflow's (and DAG-Factory's) names for keys of this format, for people who know those."""


def _syntax_hint(text: str, mark: Any) -> str:
    """A fix for the YAML mistakes people make most, from the character at the error."""
    if mark is None or mark.index >= len(text):
        return ""
    char = text[mark.index]
    if char == "\t":
        return " (a tab: YAML indents with spaces only)"
    if char in "@`%":
        return f' ({char!r} cannot start a plain value: put the value in quotes, e.g. "{char}...")'
    return ""


def dotted(path: Path_) -> str:
    """`tasks.load.args[0]`: a document path as people read it."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


# -- reading ------------------------------------------------------------------------------------
class Document:
    """A parsed YAML file: its data (plain Python values) and where each key and value is."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.data: Any = None
        self.values: dict[Path_, tuple[int, int]] = {}
        self.keys: dict[Path_, tuple[int, int]] = {}
        self._lines = text.splitlines()
        self._constructor = yaml.constructor.SafeConstructor()
        self._done: set[int] = set()
        self._open: set[int] = set()
        self._aliased = 0
        self._expanded = 0
        self._site: tuple[int, int] = (1, 1)

    @classmethod
    def parse(cls, text: str, file: str) -> Document:
        doc = cls(text, file)
        try:
            try:
                root = doc._compose(_Loader)
            except yaml.MarkedYAMLError as exc:
                # libyaml (PyYAML >= 6.0.4) caps nesting itself while it reads ahead, so the error
                # would name its limit and a later column; the pure-Python parser has no cap and
                # lets our own MAX_DEPTH check speak. Only this error path pays for it.
                if _Loader is yaml.SafeLoader or "nesting depth" not in str(exc.problem):
                    raise
                root = doc._compose(yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "invalid YAML"
            line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
            raise DefinitionError(
                f"YAML syntax error: {problem}{_syntax_hint(text, mark)}", file, line, col
            ) from None
        except yaml.reader.ReaderError as exc:
            before = text[: exc.position]
            line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
            raise DefinitionError(f"YAML syntax error: {exc.reason}", file, line, col) from None
        except yaml.YAMLError as exc:
            raise DefinitionError(f"YAML syntax error: {exc}", file, 1, 1) from None
        if root is None:
            raise DefinitionError(
                "the file is empty; a YAML pipeline is a mapping with at least `tasks:`",
                file,
                1,
                1,
            )
        if not isinstance(root, yaml.MappingNode) or root.tag != _MAP:
            kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
            raise DefinitionError(
                f"the top level must be a mapping (id:, schedule:, tasks:, ...), got {kind}",
                file,
                *doc._mark(root),
            )
        doc.data = doc._value(root, ())
        return doc

    def _compose(self, loader: Any) -> yaml.Node | None:
        """The node graph of the one document in the text, built from parser events with an
        explicit stack (PyYAML's own composer recurses, and crashes on very deep nesting)."""
        resolver = yaml.resolver.Resolver()
        anchors: dict[str, yaml.Node] = {}
        stack: list[list[Any]] = []  # [collection node, key node waiting for its value]
        root: yaml.Node | None = None
        documents = 0

        def syntax(problem: str, mark: Any) -> yaml.MarkedYAMLError:
            return yaml.composer.ComposerError(problem=problem, problem_mark=mark)

        def attach(node: yaml.Node) -> None:
            nonlocal root
            if not stack:
                root = node
                return
            frame = stack[-1]
            if isinstance(frame[0], yaml.SequenceNode):
                frame[0].value.append(node)
            elif frame[1] is None:
                frame[1] = node
            else:
                frame[0].value.append((frame[1], node))
                frame[1] = None

        def register(event: Any, node: yaml.Node) -> None:
            if event.anchor is not None:
                if event.anchor in anchors:
                    raise syntax(f"found duplicate anchor {event.anchor!r}", event.start_mark)
                anchors[event.anchor] = node

        for event in yaml.parse(self.text, Loader=loader):
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise syntax("expected a single document in the file", event.start_mark)
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor not in anchors:
                    raise syntax(f"found undefined alias {event.anchor!r}", event.start_mark)
                attach(anchors[event.anchor])
            elif isinstance(event, yaml.ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
                node: yaml.Node = yaml.ScalarNode(
                    tag, event.value, event.start_mark, event.end_mark, style=event.style
                )
                register(event, node)
                attach(node)
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise syntax(
                        f"lists and mappings are nested more than {MAX_DEPTH} deep",
                        event.start_mark,
                    )
                kind = (
                    yaml.SequenceNode
                    if isinstance(event, yaml.SequenceStartEvent)
                    else yaml.MappingNode
                )
                tag = event.tag
                if tag is None or tag == "!":
                    tag = resolver.resolve(kind, None, event.implicit)
                node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
                register(event, node)
                attach(node)
                stack.append([node, None])
            elif isinstance(event, yaml.CollectionEndEvent):
                stack.pop()[0].end_mark = event.end_mark
        return root

    # where things are -----------------------------------------------------------------------
    def at(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """Line and column of the value at `path` (or of its key), else of its nearest parent."""
        if key and path in self.keys:
            return self.keys[path]
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, (1, 1))

    def error(
        self, path: Path_, message: str, *, key: bool = False, shown: Path_ | None = None
    ) -> DefinitionError:
        """`FILE:LINE:COL: FIELD.PATH: message` at the value (or the key) at `path`; the field
        path shown is `path` unless `shown` says otherwise (e.g. the mapping of a bad key)."""
        where = dotted(path if shown is None else shown)
        return DefinitionError(
            f"{where}: {message}" if where else message, self.file, *self.at(path, key=key)
        )

    def first_line(self) -> int:
        return min((line for line, _ in self.keys.values()), default=1)

    def _mark(self, node: yaml.Node) -> tuple[int, int]:
        mark = node.start_mark
        line, col = mark.line + 1, mark.column + 1
        block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
        if block and line < len(self._lines):
            # a block scalar's text starts on the next line, at its indentation
            body = self._lines[line]
            line, col = line + 1, len(body) - len(body.lstrip(" ")) + 1
        return line, col

    # nodes -> values ------------------------------------------------------------------------
    def _value(self, node: yaml.Node, path: Path_) -> Any:
        ident = id(node)
        if ident in self._open:
            raise self.error(path, "a YAML alias refers to the value that contains it")
        again = ident in self._done  # reached a second time: through an alias
        if again:
            self._aliased += 1
        if self._aliased:
            self._expanded += 1
            if self._expanded > ALIAS_BUDGET:
                raise DefinitionError(
                    f"YAML aliases expand to more than {ALIAS_BUDGET:,} values; is this a "
                    "'billion laughs' file? Use fewer or smaller aliases",
                    self.file,
                    *self._site,
                )
        else:
            self._site = self._mark(node)
        self._done.add(ident)
        self.values[path] = self._mark(node)
        try:
            self._open.add(ident)
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                self._check_tag(node, _SEQ, path)
                return [self._value(item, (*path, i)) for i, item in enumerate(node.value)]
            return self._scalar(node, path)
        finally:
            self._open.discard(ident)
            if again:
                self._aliased -= 1

    def _check_tag(self, node: yaml.Node, expected: str, path: Path_) -> None:
        if node.tag != expected:
            self._bad_tag(node, path)

    def _bad_tag(self, node: yaml.Node, path: Path_) -> None:
        tag = node.tag.replace(_CORE, "!!")
        raise DefinitionError(
            f"{dotted(path) + ': ' if path else ''}YAML tag {tag!r} is not allowed: lockgate "
            "reads YAML safely, as plain values only (text, numbers, booleans, dates, null, "
            "lists and mappings)",
            self.file,
            *self._mark(node),
        )

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        if node.tag in _TEXT_TAGS:
            return str(node.value)
        if node.tag not in _SCALAR_TAGS:
            self._bad_tag(node, path)
        try:
            return self._constructor.construct_object(node)
        except Exception as exc:  # e.g. a timestamp such as 2024-13-45
            raise self.error(path, f"invalid value {node.value!r}: {exc}") from None

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        self._check_tag(node, _MAP, path)
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:  # `<<: *defaults` merges another mapping in
                here = self.values[path]
                for source in self._merge_sources(value_node, path):
                    for name, value in self._value(source, path).items():
                        merged.setdefault(name, value)
                self.values[path] = here
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.values[path] = self._mark(key_node)
                raise self.error(path, "a mapping key must be text, not a list or a mapping")
            if key_node.tag not in _SCALAR_TAGS | _TEXT_TAGS:
                self._bad_tag(key_node, (*path, str(key_node.value)))
            name = str(key_node.value)
            line, col = self._mark(key_node)
            if name in lines:
                self.keys[(*path, name)] = (line, col)
                raise self.error(
                    (*path, name),
                    f"duplicate key {name!r} (lines {lines[name]} and {line}); "
                    "a key may appear only once",
                    key=True,
                    shown=path,
                )
            lines[name] = line
            self.keys[(*path, name)] = (line, col)
            out[name] = self._value(value_node, (*path, name))
        for name, value in merged.items():
            out.setdefault(name, value)
        return out

    def _merge_sources(self, node: yaml.Node, path: Path_) -> list[yaml.MappingNode]:
        nodes = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for item in nodes:
            if not isinstance(item, yaml.MappingNode):
                self.values[path] = self._mark(item)
                raise self.error(path, "a merge key (<<) takes a mapping or a list of mappings")
        return nodes

    # validation -----------------------------------------------------------------------------
    def validate(self) -> PipelineSpec:
        """The document as a `PipelineSpec`; the error nearest the top of the file otherwise."""
        try:
            return PipelineSpec.model_validate(self.data)
        except ValidationError as exc:
            errors = exc.errors()
            found = [(err["type"] == "missing", self._translate(err)) for err in errors]
            # an unknown key often explains a missing one (`task:` for `tasks:`): it goes first
            found.sort(key=lambda e: (e[0], e[1].line or 0, e[1].column or 0))
            raise found[0][1] from None

    def _translate(self, err: Any) -> DefinitionError:
        loc = list(err["loc"])
        if len(loc) > 2 and loc[0] in ("tasks", "params") and loc[2] != "[key]":
            del loc[2]  # the union member (task type, param form) pydantic inserts
        elif len(loc) > 1 and loc[0] == "schedule":
            del loc[1]  # the schedule's form (time or datasets)
        if len(loc) > 4 and loc[0] == "tasks":  # a dataset's form (uri or full), e.g. copy.source
            loc = [
                part
                for i, part in enumerate(loc)
                if not (part in ("uri", "full") and i > 3 and _is_dataset_slot(loc, i - 1))
            ]
        kind, value = err["type"], err.get("input")
        if loc and loc[-1] == "[key]":
            path = tuple(loc[:-1])
            return self.error(path, _clean(err["msg"]), key=True, shown=path[:-1])
        path = tuple(loc)
        if kind == "extra_forbidden":
            return self.error(path, self._unknown_key(path), key=True, shown=path[:-1])
        if kind == "missing":
            parent = path[:-1]
            return self.error(parent, f"missing required key {path[-1]!r}", key=True)
        if kind == "task_action":
            if not isinstance(value, dict):
                return self.error(path, f"expected a task (a mapping with one of: {ACTION_LIST})")
            aliases = [
                f"{k!r} is {AIRFLOW_KEYS[k]!r}" for k in value if AIRFLOW_KEYS.get(k) in ACTIONS
            ]
            tip = f" ({', '.join(aliases)} here)" if aliases else ""
            return self.error(path, f"a task needs exactly one of: {ACTION_LIST}{tip}", key=True)
        while path and path not in self.values:
            path = path[:-1]
        return self.error(path, _describe(kind, err, value))

    def _unknown_key(self, path: Path_) -> str:
        name, parent = path[-1], path[:-1]
        model = self._model_at(parent)
        if model is None:
            return f"unknown key {name!r}"
        mine = next((a for a, m in ACTIONS.items() if m is model), None)
        inner = self._model_at((*parent, mine)) if mine is not None else None
        if inner is not None and name in inner.model_fields:
            return f"{name!r} goes under `{mine}:`, e.g. {mine}: {{{name}: ...}}"
        if mine is not None:
            for action, other in ACTIONS.items():
                if other is not model and name in other.model_fields:
                    return f"{name!r} is a key of {action} tasks, not of {mine} tasks"
        known = list(model.model_fields)
        if isinstance(name, str) and AIRFLOW_KEYS.get(name) in known:
            return f"unknown key {name!r}; lockgate calls it {AIRFLOW_KEYS[name]!r}"
        return f"unknown key {name!r}{did_you_mean(name, known, 'known keys:')}"

    def _model_at(self, path: Path_) -> type[Any] | None:
        if not path:
            return PipelineSpec
        if path == ("defaults",):
            return TaskDefaults
        if len(path) == 2 and path[0] == "params":
            return ParamSpec
        if len(path) == 2 and path[0] == "tasks":
            task = self.data["tasks"].get(path[1])
            if isinstance(task, dict):
                action = next((a for a in ACTIONS if a in task), None)
                return ACTIONS[action] if action else None
        if len(path) == 3 and path[0] == "tasks" and path[2] in ACTIONS:  # e.g. `mask:`'s keys
            return action_model(str(path[2]))
        if len(path) == 4 and path[0] == "tasks" and path[2] in ACTIONS:  # e.g. `copy.source`
            model = action_model(str(path[2]))
            info = model.model_fields.get(str(path[3])) if model is not None else None
            if info is not None and "DatasetSpec" in str(info.annotation):
                return DatasetSpec
        if len(path) == 5 and path[0] == "tasks" and path[2:4] == ("sql", "inputs"):
            return DatasetSpec
        return None


def _is_dataset_slot(loc: list[Any], i: int) -> bool:
    """Whether `loc[i]` holds a dataset (a URI or a mapping): `source`, `target` or `dataset`
    of a data task, or one of an sql task's `inputs`."""
    return loc[i] in ("source", "target", "dataset") or (i > 0 and loc[i - 1] == "inputs")


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ")


def _describe(kind: str, err: Any, value: Any) -> str:
    """Pydantic's message for an error type, in the words of this format."""
    ctx = err.get("ctx") or {}
    simple = {
        "string_type": "expected text",
        "int_type": "expected a whole number",
        "float_type": "expected a number",
        "bool_type": "expected true or false",
        "list_type": "expected a list",
        "dict_type": "expected a mapping",
        "model_type": "expected a mapping",
        "model_attributes_type": "expected a mapping",
    }
    if kind in simple:
        return f"{simple[kind]}, got {show(value)}"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length', 1)} item(s), got none"
    if kind == "string_pattern_mismatch":
        return f"{show(value)} does not match the pattern {ctx.get('pattern')!r}"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}, got {show(value)}"
    if kind == "value_error":
        return _clean(err["msg"])
    return f"{_clean(err['msg'])[:1].lower()}{_clean(err['msg'])[1:]}, got {show(value)}"


# -- building -----------------------------------------------------------------------------------
class _Builder:
    """Turns a validated spec into model objects, with located errors for what the models
    check (import paths, template syntax and references, unknown task ids, the graph)."""

    def __init__(self, doc: Document, spec: PipelineSpec, file: Path) -> None:
        self.doc = doc
        self.spec = spec
        self.file = file
        self.path = str(file)
        self.task_ids = list(spec.tasks)

    def build(self) -> Pipeline:
        spec, doc = self.spec, self.doc
        pipe_id = spec.id or self.file.stem
        if not ID_PATTERN.match(pipe_id):
            raise DefinitionError(
                f"id: the file name {pipe_id!r} is not a valid pipeline id (letters, digits, "
                "'_', '.' or '-', starting with a letter or '_'); set one with `id:`",
                self.path,
                1,
                1,
            )
        folder = str(self.file.parent)
        if folder not in sys.path:  # as for .py files: modules next to the file can be imported
            sys.path.insert(0, folder)
        defaults = self._settings(spec.defaults, ("defaults",), TaskSettings(), "default")
        params = {name: self._param(name, value) for name, value in (spec.params or {}).items()}
        tasks = {tid: self._task(tid, task, defaults) for tid, task in spec.tasks.items()}
        schedule, datasets = spec.schedule, ()
        if isinstance(schedule, list):
            schedule, datasets = None, self._uris(schedule, ("schedule",))
        try:
            return Pipeline(
                id=pipe_id,
                tasks=tasks,
                description=spec.description,
                tags=tuple(spec.tags or ()),
                schedule=schedule,
                datasets=datasets,
                timezone=spec.timezone or "UTC",
                params=params,
                defaults=defaults,
                max_active_tasks=spec.max_active_tasks,
                pools=dict(spec.pools or {}),
                start_date=spec.start_date,
                end_date=spec.end_date,
                catchup=bool(spec.catchup),
                max_active_runs=spec.max_active_runs,
                run_timeout=spec.run_timeout,
                origin="yaml",
                file=self.path,
                line=doc.first_line(),
                source=doc.text,
            )
        except DefinitionError as exc:
            raise self._locate(exc, tasks) from None

    def _locate(self, exc: DefinitionError, tasks: dict[str, Task]) -> DefinitionError:
        """A model error (cycle, compensation rules, pools) at the column of its task's key."""
        for tid, task in tasks.items():
            if task.line == exc.line:
                return self.doc.error(("tasks", tid), exc.detail, key=True)
        named = [
            k for k in PipelineSpec.model_fields if k in exc.detail and (k,) in self.doc.values
        ]
        if named:  # e.g. "end_date ... is before start_date": the key named first
            return self.doc.error((min(named, key=exc.detail.index),), exc.detail)
        return DefinitionError(exc.detail, self.path, exc.line or 1, 1)

    def _uris(self, uris: list[str], where: Path_) -> tuple[str, ...]:
        """Dataset URIs (checked by the schema) without repeats; a repeat is located."""
        seen: dict[str, None] = {}
        for i, uri in enumerate(uris):
            if uri in seen:
                at = (*where, i) if (*where, i) in self.doc.values else where
                raise self.doc.error(at, f"dataset URI {uri!r} is listed twice")
            seen[uri] = None
        return tuple(seen)

    # params ---------------------------------------------------------------------------------
    def _param(self, name: str, value: Any) -> Param:
        where = ("params", name)
        if not isinstance(value, ParamSpec):
            try:
                return Param(value)
            except ValueError as exc:
                raise self.doc.error(where, str(exc)) from None
        fields = {k: getattr(value, k) for k in value.model_fields_set if k in PARAM_KEYS}
        if fields.get("enum") is not None:
            fields["enum"] = tuple(fields["enum"])
        try:
            return Param(**fields)
        except ValueError as exc:
            culprit = "pattern" if "pattern" in str(exc) and "pattern" in fields else "default"
            at = (*where, culprit) if (*where, culprit) in self.doc.values else where
            raise self.doc.error(at, str(exc), key=at == where) from None

    # settings -------------------------------------------------------------------------------
    def _settings(
        self, spec: TaskSpec | Any, where: Path_, base: TaskSettings, what: str
    ) -> TaskSettings:
        if spec is None:
            return base
        options = {
            k: getattr(spec, k)
            for k in SETTING_NAMES
            if k in spec.model_fields_set and getattr(spec, k) is not None
        }
        for key, value in options.items():  # locate a value the model rejects
            try:
                make_settings({key: value}, what=what)
            except DefinitionError as exc:
                raise self.doc.error((*where, key), exc.detail) from None
        return make_settings(options, base, what=what)

    # tasks ----------------------------------------------------------------------------------
    def _task(self, tid: str, spec: TaskSpec, defaults: TaskSettings) -> Task:
        where = ("tasks", tid)
        upstream: dict[str, None] = {}
        for i, dep in enumerate(spec.depends_on or ()):
            self._known(dep, (*where, "depends_on", i), "depends on unknown task")
            upstream[dep] = None
        if spec.compensate_with is not None:
            self._known(
                spec.compensate_with, (*where, "compensate_with"), "names unknown compensation task"
            )
        builder = _ACTION_BUILDERS[type(spec)]
        fields = builder(self, tid, spec)
        for value in (
            *fields.get("args", ()),
            *fields.get("kwargs", {}).values(),
            *fields.get("env", {}).values(),
            fields.get("command"),
            fields.get("cwd"),
        ):
            if isinstance(value, Template):  # `results.x` in a template: x runs first
                upstream.update(dict.fromkeys(value.refs))
        line = self.doc.at(where, key=True)[0]
        return Task(
            id=tid,
            upstream=tuple(upstream),
            settings=self._settings(spec, where, defaults, "task"),
            on_success=self._callbacks(spec.on_success, (*where, "on_success")),
            on_failure=self._callbacks(spec.on_failure, (*where, "on_failure")),
            on_retry=self._callbacks(spec.on_retry, (*where, "on_retry")),
            compensation=spec.compensate_with,
            tags=tuple(spec.tags or ()),
            produces=self._uris(spec.produces or [], (*where, "produces")),
            description=spec.description,
            file=self.path,
            line=line,
            **fields,
        )

    def _known(self, tid: str, where: Path_, what: str) -> None:
        if tid not in self.spec.tasks:
            tip = did_you_mean(tid, self.task_ids, "tasks:")
            raise self.doc.error(where, f"{what} {tid!r}{tip}")

    def _shell(self, tid: str, spec: ShellTask) -> dict[str, Any]:
        where = ("tasks", tid)
        command: Any = spec.shell
        if isinstance(command, str):
            command = self._template(command, (*where, "shell"), "shell")
        else:
            items = [self._template(c, (*where, "shell", i), "text") for i, c in enumerate(command)]
            refs = [r for item in items if isinstance(item, Template) for r in item.refs]
            if len(refs) or any(isinstance(item, Template) for item in items):
                command = Template(list(command), "text", tuple(dict.fromkeys(refs)))
            else:
                command = tuple(command)
        env = {
            name: self._template(value, (*where, "env", name), "text")
            for name, value in (spec.env or {}).items()
        }
        cwd = spec.cwd
        if cwd is not None:
            cwd = self._template(cwd, (*where, "cwd"), "text")
        return {
            "kind": TaskKind.SHELL,
            "command": command,
            "env": env,
            "cwd": cwd,
            "skip_exit_codes": tuple(spec.skip_exit_codes or ()),
            "output_result": bool(spec.output_result),
        }

    def _python(self, tid: str, spec: PythonTask) -> dict[str, Any]:
        where = ("tasks", tid)
        fn = self._import(spec.python, (*where, "python"))
        try:
            signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):
            signature = None
        wants_context = signature is not None and "ctx" in signature.parameters
        args = [
            self._template(value, (*where, "args", i), "native")
            for i, value in enumerate(spec.args or ())
        ]
        kwargs = {
            name: self._template(value, (*where, "kwargs", name), "native")
            for name, value in (spec.kwargs or {}).items()
        }
        if wants_context and "ctx" in kwargs:
            raise self.doc.error(
                (*where, "kwargs", "ctx"),
                "'ctx' is supplied by lockgate at run time (the TaskContext); do not pass it",
                key=True,
            )
        if signature is not None:
            try:
                signature.bind_partial(*args, **kwargs)
            except TypeError as exc:
                at = "kwargs" if "keyword" in str(exc) and spec.kwargs else "args"
                if (*where, at) not in self.doc.values:
                    at = "python"
                raise self.doc.error((*where, at), f"{spec.python}: {exc}") from None
        return {
            "kind": TaskKind.PYTHON,
            "fn": fn,
            "args": tuple(args),
            "kwargs": kwargs,
            "branch": bool(spec.branch),
            "wants_context": wants_context,
        }

    def _privacy(self, tid: str, action: str, given: dict[str, Any]) -> dict[str, Any]:
        """A Python task calling `lockgate.privacy.tasks.<action>_task` with the action's
        values (text values may be templates); the privacy engine loads when the task runs."""
        from lockgate.privacy import tasks as privacy_tasks

        where = ("tasks", tid, action)
        kwargs = {
            name: self._template(value, (*where, name), "text")
            for name, value in given.items()
            if value is not None
        }
        return {
            "kind": TaskKind.PYTHON,
            "fn": getattr(privacy_tasks, f"{action}_task"),
            "kwargs": kwargs,
        }

    def _scan(self, tid: str, spec: ScanTask) -> dict[str, Any]:
        return self._privacy(tid, "scan", dict(spec.scan))

    def _mask(self, tid: str, spec: MaskTask) -> dict[str, Any]:
        if spec.mask.rules is None and not spec.mask.auto:
            raise self.doc.error(
                ("tasks", tid, "mask"),
                "give `rules:` (a rules file or a list of rules) or `auto: true`",
            )
        return self._privacy(tid, "mask", dict(spec.mask))

    def _redact(self, tid: str, spec: RedactTask) -> dict[str, Any]:
        return self._privacy(tid, "redact", dict(spec.redact))

    def _data(self, tid: str, action: str, given: BaseModel) -> dict[str, Any]:
        """A Python task calling `lockgate.io.tasks.<action>_task` with the action's values
        (text values may be templates; `checks` are checked now and never templated)."""
        from lockgate.io import tasks as io_tasks

        where = ("tasks", tid, action)
        values = given.model_dump(exclude_none=True)
        mode, keys = values.get("mode", "overwrite"), values.get("keys")
        if mode == "upsert" and not keys:
            raise self.doc.error((*where, "mode"), "mode upsert needs the key columns: keys: [id]")
        if "checks" in values:
            self._checks(values["checks"], (*where, "checks"))
        # bound values and datasets: a lone {{ expr }} keeps its type (parameters; the table
        # an upstream task returned as a source); other text renders as text
        kwargs = {
            name: value
            if name == "checks"
            else self._template(
                value, (*where, name), "native" if name in _NATIVE_DATA_VALUES else "text"
            )
            for name, value in values.items()
        }
        return {
            "kind": TaskKind.PYTHON,
            "fn": getattr(io_tasks, f"{action}_task"),
            "kwargs": kwargs,
        }

    def _checks(self, checks: list[dict[str, Any]], where: Path_) -> None:
        """Parse the checks now, so a mistake is a load error at the check's line."""
        from lockgate.quality import parse_checks

        try:
            parse_checks(checks, where=dotted(where))
        except DefinitionError as exc:  # a CheckDefinitionError: `index` is the check's
            index = getattr(exc, "index", None)
            at = (*where, index) if isinstance(index, int) else where
            raise DefinitionError(exc.detail, self.path, *self.doc.at(at)) from None

    def _read(self, tid: str, spec: ReadTask) -> dict[str, Any]:
        return self._data(tid, "read", spec.read)

    def _copy(self, tid: str, spec: CopyTask) -> dict[str, Any]:
        return self._data(tid, "copy", spec.copy_)

    def _sql(self, tid: str, spec: SqlTask) -> dict[str, Any]:
        return self._data(tid, "sql", spec.sql)

    def _check(self, tid: str, spec: CheckTask) -> dict[str, Any]:
        return self._data(tid, "check", spec.check)

    # values ---------------------------------------------------------------------------------
    def _template(self, value: Any, where: Path_, mode: str) -> Any:
        """`value` itself when it has no template syntax, else a checked `Template` (each
        string compiled at its own line and column; `results.<id>` must name a task)."""
        if isinstance(value, str):
            if "{{" not in value and "{%" not in value:
                return value
            line, col = self.doc.at(where)
            try:
                template = compile_template(
                    value,
                    mode=mode,
                    file=self.path,
                    line=line,
                    column=col,
                    where=dotted(where),
                    params=self.spec.params or {},
                )
            except DefinitionError as exc:
                if exc.column is not None or not exc.line:
                    raise
                # an error on a later line of a multi-line template: point at that line's text
                text = self.doc.text.splitlines()[exc.line - 1 : exc.line] or [""]
                column = len(text[0]) - len(text[0].lstrip()) + 1
                raise DefinitionError(exc.detail, self.path, exc.line, column) from None
            for ref in template.refs:
                if ref not in self.spec.tasks:
                    tip = did_you_mean(ref, self.task_ids, "tasks:")
                    raise self.doc.error(
                        where, f"template reads results.{ref}, but there is no task {ref!r}{tip}"
                    )
            return template
        if not has_template(value):
            return value
        refs: dict[str, None] = {}
        for sub, text in _strings(value, where):
            found = self._template(text, sub, mode)
            if isinstance(found, Template):
                refs.update(dict.fromkeys(found.refs))
        return Template(value, mode, tuple(refs))

    def _callbacks(self, paths: list[str] | None, where: Path_) -> tuple[Callable[..., Any], ...]:
        if not paths:
            return ()
        return tuple(
            self._import(p, (*where, i) if (*where, i) in self.doc.values else where)
            for i, p in enumerate(paths)
        )

    def _import(self, target: str, where: Path_) -> Callable[..., Any]:
        """The function at 'module:function' (or 'module.function'), imported now."""
        module_name, sep, attr = target.partition(":")
        if not sep:
            module_name, _, attr = target.rpartition(".")
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise self.doc.error(where, f"cannot import {module_name!r}: {exc}") from None
        except Exception as exc:
            raise self.doc.error(
                where, f"cannot import {module_name!r}: {type(exc).__name__}: {exc}"
            ) from None
        for part in attr.split("."):
            if not hasattr(obj, part):
                tip = did_you_mean(part, [n for n in dir(obj) if not n.startswith("_")])
                raise self.doc.error(
                    where,
                    f"module {module_name!r} has no {attr!r}"
                    f"{tip if tip.startswith('; did') else ''}",
                )
            obj = getattr(obj, part)
        from lockgate.authoring.python import TaskFunction

        if isinstance(obj, TaskFunction):  # a @task function: call the plain function
            obj = obj.fn
        if not callable(obj):
            raise self.doc.error(where, f"{target!r} is not a function ({type(obj).__name__})")
        return obj


_ACTION_BUILDERS: dict[type[TaskSpec], Callable[[_Builder, str, Any], dict[str, Any]]] = {
    ShellTask: _Builder._shell,
    PythonTask: _Builder._python,
    ScanTask: _Builder._scan,
    MaskTask: _Builder._mask,
    RedactTask: _Builder._redact,
    ReadTask: _Builder._read,
    CopyTask: _Builder._copy,
    SqlTask: _Builder._sql,
    CheckTask: _Builder._check,
}
"""The Task fields of each task type (see `yaml_schema.ACTIONS`)."""
assert set(_ACTION_BUILDERS) == set(ACTIONS.values())


def _strings(value: Any, where: Path_) -> Iterator[tuple[Path_, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*where, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*where, i))
