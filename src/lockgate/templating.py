"""Templates: the sandboxed Jinja environment, the names templates see, and rendering.

Templates are checked when a pipeline is loaded (syntax, attribute names that reach Python
internals such as `__class__`, unknown names and params, where values land in a shell
command), and rendered by the engine when their task starts, in an immutable sandbox with
strict undefined names. In shell commands, values travel as environment variables
(`ShellCommand`), never as shell text. Rendered values are not written to logs.

This module sits just above `model`: authoring compiles templates, the engine renders them.
"""

from __future__ import annotations

import contextvars
import re
import secrets
import shlex
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NoReturn

from lockgate.errors import (
    DefinitionError,
    TemplateError,
    TemplateSecurityError,
    describe,
    did_you_mean,
)
from lockgate.model.intervals import RunDates
from lockgate.model.refs import Template

if TYPE_CHECKING:
    import jinja2

MODES = ("text", "native", "shell")
_LONE = re.compile(r"\s*\{\{(?P<expr>.*?)\}\}\s*", re.S)
_BLOCK = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_lock = threading.Lock()
_SHELL_ADVICE = (
    "lockgate passes each value to the command as an environment variable, which works in a "
    'plain word or inside "..."; write `echo {{ x }}` or `echo "x={{ x }}"`, or pass it in '
    '`env` and use "$NAME"'
)
_envs: dict[tuple[str, frozenset[tuple[str, Any]]], Any] = {}


class _Raw(str):
    """Text marked by the `raw` filter: a shell command template puts it in as it is."""


@dataclass(frozen=True)
class ShellCommand:
    """A rendered shell command: its text refers to each template value as an environment
    variable (`"${LOCKGATE_ARG_0}"`), and `env` holds the values."""

    text: str
    env: Mapping[str, str]


ARG_PREFIX = "LOCKGATE_ARG_"


class _ShellValues:
    """The values of one shell-command render, each replaced in the text by a marker until the
    rendered command shows where it lands (see `_render_shell`)."""

    def __init__(self) -> None:
        self.marker = f"lgv{secrets.token_hex(6)}x"  # random: template text cannot forge it
        self.values: list[str] = []


_shell_render: contextvars.ContextVar[_ShellValues | None] = contextvars.ContextVar(
    "lockgate_shell_render", default=None
)


def _shell_finalize(value: Any) -> Any:
    if isinstance(value, _Raw):
        return value
    # str.__str__ drops subclasses such as Markup (from `safe`/`tojson`): plain text
    text = "" if value is None else (str.__str__(value) if isinstance(value, str) else str(value))
    render = _shell_render.get()
    if render is None:
        raise RuntimeError("shell command templates are rendered by _render_shell only")
    render.values.append(text)
    return f"{render.marker}{len(render.values) - 1}x"


def ds_add(ds: str, days: int) -> str:
    """`ds` (YYYY-MM-DD) moved by `days` days: `macros.ds_add('2024-01-31', 1)` is 2024-02-01."""
    return (datetime.strptime(ds, "%Y-%m-%d") + timedelta(days=int(days))).strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """`ds` parsed with `input_format` and written with `output_format` (strftime codes)."""
    return datetime.strptime(ds, input_format).strftime(output_format)


def _ds(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _ds_nodash(value: datetime) -> str:
    return value.strftime("%Y%m%d")


def _ts(value: datetime) -> str:
    return value.isoformat()


def _ts_nodash(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def _ts_nodash_with_tz(value: datetime) -> str:
    return value.isoformat().replace("-", "").replace(":", "")


MACROS = SimpleNamespace(ds_add=ds_add, ds_format=ds_format, datetime=datetime, timedelta=timedelta)
_DATE_FILTERS: dict[str, Callable[[datetime], str]] = {
    "ds": _ds,
    "ds_nodash": _ds_nodash,
    "ts": _ts,
    "ts_nodash": _ts_nodash,
    "ts_nodash_with_tz": _ts_nodash_with_tz,
}


def _environment(mode: str, filters: Mapping[str, Callable[..., Any]] | None) -> jinja2.Environment:
    """One sandboxed environment per mode (and per set of extra filters), made once."""
    key = (mode, frozenset(filters.items()) if filters else frozenset())
    env: jinja2.Environment | None = _envs.get(key)
    if env is not None:
        return env
    with _lock:
        env = _envs.get(key)
        if env is None:
            import jinja2
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            env = ImmutableSandboxedEnvironment(
                undefined=jinja2.StrictUndefined,
                autoescape=False,
                keep_trailing_newline=True,
                finalize=_shell_finalize if mode == "shell" else None,
                cache_size=1024,
            )
            env.filters.update(_DATE_FILTERS)
            # in a shell command every value is already passed safely: `| quote` changes nothing
            env.filters["quote"] = (
                (lambda v: v) if mode == "shell" else (lambda v: shlex.quote(str.__str__(str(v))))
            )
            env.filters["raw"] = lambda v: _Raw("" if v is None else str(v))
            if filters:
                env.filters.update(filters)
            _envs[key] = env
    return env


# -- compiling (when a pipeline is loaded) ------------------------------------------------------
def compile_template(
    source: Any,
    *,
    mode: str = "text",
    file: str | None = None,
    line: int | None = None,
    column: int | None = None,
    where: str = "",
    extra: Callable[[dict[str, Any]], None] | None = None,
    filters: Mapping[str, Callable[..., Any]] | None = None,
    params: Iterable[str] | None = None,
) -> Template:
    """Check a template (or a list/dict of them) and return it as a `Template`.

    A syntax error, an attribute or item whose name starts with `_` (the way out of a
    sandbox), or a name templates do not have, is a `DefinitionError` naming `where` (e.g. the
    field), the template and its place. With `extra` the names are those of the caller and not
    checked; with `params` (the pipeline's declared params), so is `params.<name>`."""
    if mode not in MODES:
        raise ValueError(f"unknown template mode {mode!r}")
    refs: dict[str, None] = {}
    check = _Check(mode, filters, file, line, column, where, extra is None, params)
    for text in _strings(source):
        refs.update(dict.fromkeys(check(text)))
    return Template(source, mode, tuple(refs), extra, filters)


def has_template(value: Any) -> bool:
    """Whether any string in `value` contains template syntax."""
    return any("{{" in s or "{%" in s for s in _strings(value))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


NAMES = frozenset(
    {
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "yesterday_ds",
        "tomorrow_ds",
        "yesterday_ds_nodash",
        "tomorrow_ds_nodash",
        "logical_date",
        "data_interval_start",
        "data_interval_end",
        "params",
        "run_id",
        "pipeline_id",
        "task_id",
        "attempt",
        "macros",
        "results",
        "secret",
    }
)
"""The names every lockgate template sees (`RenderContext.names`)."""


@dataclass
class _Check:
    """The load-time checks of one template's strings; calling it returns their `results` refs."""

    mode: str
    filters: Mapping[str, Callable[..., Any]] | None
    file: str | None
    line: int | None
    column: int | None
    where: str
    names: bool
    params: Iterable[str] | None

    def fail(self, problem: str, line: int | None = None, column: int | None = None) -> NoReturn:
        raise DefinitionError(
            f"{_prefix(self.where)}{problem}",
            self.file,
            line or self.line,
            column if line else self.column,
        )

    def __call__(self, text: str) -> list[str]:
        """Syntax, sandbox, names, params and shell placement; the `results` refs."""
        import jinja2
        from jinja2 import meta

        env = _environment(self.mode, self.filters)
        try:
            tree = env.parse(text)
            _compiled(env, text)  # unknown filters and tests show here; it also warms the cache
        except jinja2.TemplateSyntaxError as exc:
            at = (self.line or 1) + (exc.lineno or 1) - 1 if self.line else None
            self.fail(
                f"template syntax error in {_excerpt(text)}: {exc.message}",
                at,
                self.column if at == self.line else None,
            )
        if self.mode == "shell":
            problem = _shell_placement(env, text)
            if problem is not None:
                self.fail(f"template value {problem}: {_SHELL_ADVICE}")
        refs = self._walk(text, tree)
        if self.names:
            for name in sorted(meta.find_undeclared_variables(tree) - NAMES):
                self.fail(
                    f"template {_excerpt(text)}: {name!r} is undefined"
                    f"{did_you_mean(name, sorted(NAMES))}"
                )
        return refs

    def _walk(self, text: str, tree: Any) -> list[str]:
        """Attribute and item names: none may start with `_` (`attr` only with a literal
        name); `params.<x>` must be declared; `results.<task>` are the refs."""
        from jinja2 import nodes

        declared = None if self.params is None else sorted(self.params)
        refs: list[str] = []
        for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
            if isinstance(node, nodes.Filter):
                if node.name != "attr":
                    continue
                arg = node.args[0] if node.args else None
                if not (isinstance(arg, nodes.Const) and isinstance(arg.value, str)):
                    self.fail(
                        f"security error: template {_excerpt(text)} uses `attr` with a "
                        "computed name; give the attribute name as a literal string"
                    )
                name: Any = arg.value
            elif isinstance(node, nodes.Getattr):
                name = node.attr
            elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                name = node.arg.value
            else:
                continue
            if not isinstance(name, str):
                continue
            if name.startswith("_"):
                self.fail(
                    f"security error: template {_excerpt(text)} reaches {name!r}; templates "
                    "may not use names starting with '_' (Python internals)"
                )
            inner = getattr(node, "node", None)
            if not isinstance(inner, nodes.Name):
                continue
            if inner.name == "results":
                refs.append(name)
            elif inner.name == "params" and declared is not None and name not in declared:
                tip = did_you_mean(name, declared, "declared params:") if declared else ""
                self.fail(
                    f"template {_excerpt(text)}: params.{name} is not a param of the pipeline{tip}"
                )
        return refs


def _shell_placement(env: jinja2.Environment, text: str) -> str | None:
    """Where a `{{ }}` of a shell command template would land if not in a plain word (inside
    quotes, backticks, a comment, a here-document...), read from the template's text with
    Jinja's own lexer. Control flow is not followed here; the rendered command is checked
    again when the task starts (`_render_shell`), so this is the early, located warning."""
    from lockgate.shell_words import DQUOTE, WORD, contexts

    skeleton: list[str] = []
    marks: dict[int, str] = {}
    block: list[tuple[str, str]] | None = None
    size = 0
    for _, kind, value in env.lex(text):
        if kind == "variable_begin":
            block = []
        elif kind == "variable_end" and block is not None:
            significant = [v for k, v in block if k != "whitespace"]
            if significant[-2:] != ["|", "raw"]:  # `| raw` output is the author's own text
                marks[size] = "{{" + "".join(v for _, v in block) + "}}"
                skeleton.append("v")
                size += 1
            block = None
        elif block is not None:
            block.append((kind, value))
        elif kind == "data":
            skeleton.append(value)
            size += len(value)
    for at, where in contexts("".join(skeleton), marks).items():
        if where not in (WORD, DQUOTE):
            return f"{_excerpt(marks[at])} sits in {where}"
    return None


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def _excerpt(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return f"`{flat if len(flat) <= limit else flat[: limit - 3] + '...'}`"


# -- rendering (when a task starts) -------------------------------------------------------------
class Results:
    """`results.<task_id>` in templates: the decoded result of an upstream task."""

    def __init__(self, lookup: Callable[[str], Any]) -> None:
        self._lookup = lookup

    def __getitem__(self, task_id: str) -> Any:
        return self._lookup(task_id)

    def __getattr__(self, task_id: str) -> Any:
        if task_id.startswith("_"):
            raise AttributeError(task_id)
        return self._lookup(task_id)


def date_names(logical: datetime) -> dict[str, str]:
    """The date strings of a logical date that templates know by Airflow's names."""
    ds = _ds(logical)
    yesterday, tomorrow = ds_add(ds, -1), ds_add(ds, 1)
    return {
        "ds": ds,
        "ds_nodash": _ds_nodash(logical),
        "ts": _ts(logical),
        "ts_nodash": _ts_nodash(logical),
        "ts_nodash_with_tz": _ts_nodash_with_tz(logical),
        "yesterday_ds": yesterday,
        "tomorrow_ds": tomorrow,
        "yesterday_ds_nodash": yesterday.replace("-", ""),
        "tomorrow_ds_nodash": tomorrow.replace("-", ""),
    }


@dataclass
class RenderContext:
    """What a task's templates may see, gathered by the engine when the task starts."""

    run_id: str
    pipeline_id: str
    task_id: str
    attempt: int
    params: Mapping[str, Any]
    dates: RunDates
    result: Callable[[str], Any]
    """The decoded result of an upstream task by id; raises LookupError if there is none."""
    secret: Callable[[str], str] | None = None
    """`secret('name')` in a template: the value from the project's secret backends."""
    _names: dict[int, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)

    def names_for(self, template: Template) -> dict[str, Any]:
        """The context of `template` (with its `extra` names), made once per kind of template."""
        key = id(template.extra)
        names = self._names.get(key)
        if names is None:
            names = self.names()
            if template.extra is not None:
                template.extra(names)
            self._names[key] = names
        return names

    def names(self) -> dict[str, Any]:
        """The template context: Airflow's familiar names plus lockgate's own."""
        logical = self.dates.logical_date
        return {
            **date_names(logical),
            "logical_date": logical,
            "data_interval_start": self.dates.data_interval_start,
            "data_interval_end": self.dates.data_interval_end,
            "params": dict(self.params),
            "run_id": self.run_id,
            "pipeline_id": self.pipeline_id,
            "task_id": self.task_id,
            "attempt": self.attempt,
            "macros": MACROS,
            "results": Results(self.result),
            "secret": self.secret or _no_secrets,
        }


def _no_secrets(name: str) -> str:
    raise TemplateError(f"secret({name!r}) is only available in the templates of a task")


def render(template: Template, rc: RenderContext) -> Any:
    """The value of `template` for this task; TemplateError naming the task and expression."""
    return _render_value(template.source, template, rc.names_for(template), rc)


def _render_value(value: Any, template: Template, names: dict[str, Any], rc: RenderContext) -> Any:
    if isinstance(value, str):
        return _render_text(value, template, names, rc)
    if isinstance(value, Mapping):
        return {k: _render_value(v, template, names, rc) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_render_value(v, template, names, rc) for v in value)
    return value


def _render_text(text: str, template: Template, names: dict[str, Any], rc: RenderContext) -> Any:
    import jinja2

    env = _environment(template.mode, template.filters)
    try:
        if template.mode == "native":
            lone = _LONE.fullmatch(text)
            if lone is not None and "{{" not in lone.group("expr"):
                value = _compiled(env, lone.group("expr"), expression=True)(**names)
                if isinstance(value, jinja2.Undefined):
                    value._fail_with_undefined_error()
                return value
        if template.mode == "shell":
            return _render_shell(env, text, names, rc)
        return _compiled(env, text).render(names)
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateSecurityError(
            f"task {rc.task_id!r}: security error in template {_excerpt(_culprit(text, exc))}: "
            f"{str(exc).rstrip('.')}; templates may not reach Python internals"
        ) from None
    except jinja2.UndefinedError as exc:
        quoted = re.match(r"'([^']+)' is undefined", str(exc))
        tip = did_you_mean(quoted.group(1), sorted(names), "known names:") if quoted else ""
        raise TemplateError(
            f"task {rc.task_id!r}: template {_excerpt(_culprit(text, exc))}: {exc}{tip}"
        ) from None
    except TemplateError:
        raise
    except LookupError as exc:  # results.<task> of a task that has no result
        raise TemplateError(
            f"task {rc.task_id!r}: template {_excerpt(_culprit(text, exc))}: {exc}"
        ) from None
    except Exception as exc:  # a macro or filter failed on the values it was given
        raise TemplateError(
            f"task {rc.task_id!r}: template {_excerpt(_culprit(text, exc))} failed: {describe(exc)}"
        ) from None


def _render_shell(
    env: jinja2.Environment, text: str, names: dict[str, Any], rc: RenderContext
) -> ShellCommand:
    """Render a shell command whose values never become shell code: each value is a marker
    first, then a reference to an environment variable holding it (`"${LOCKGATE_ARG_0}"` in a
    plain word, `${LOCKGATE_ARG_0}` inside double quotes). The shell expands a variable without
    parsing its value, so even a misjudged place cannot run it; places where a reference would
    not work as written (single quotes, comments, here-documents, backticks, arithmetic) are
    refused, and the task fails before anything runs."""
    from lockgate.shell_words import DQUOTE, WORD, contexts

    values = _ShellValues()
    token = _shell_render.set(values)
    try:
        skeleton = _compiled(env, text).render(names)
    finally:
        _shell_render.reset(token)
    found = re.compile(re.escape(values.marker) + r"(\d+)x")
    hits = list(found.finditer(skeleton))
    if len(hits) != len(values.values):  # a filter block ({% filter %}, a macro) changed one
        raise TemplateError(
            f"task {rc.task_id!r}: template {_excerpt(text)}: a value was changed after it was "
            "rendered (by a {% filter %} block or a macro); apply filters inside {{ }} instead"
        )
    where = contexts(skeleton, [m.start() for m in hits])
    refs: dict[int, str] = {}
    for match in hits:
        place, name = where[match.start()], f"{ARG_PREFIX}{match.group(1)}"
        if place not in (WORD, DQUOTE):
            raise TemplateError(
                f"task {rc.task_id!r}: template {_excerpt(text)}: a value lands in {place} of "
                f"the rendered command; {_SHELL_ADVICE}"
            )
        refs[match.start()] = f'"${{{name}}}"' if place == WORD else f"${{{name}}}"
    command = found.sub(lambda m: refs[m.start()], skeleton)
    return ShellCommand(
        command, {f"{ARG_PREFIX}{i}": value for i, value in enumerate(values.values)}
    )


_COMPILED_KEPT = 4096
_compiled_cache: dict[tuple[int, str, bool], Any] = {}


def _compiled(env: jinja2.Environment, text: str, *, expression: bool = False) -> Any:
    """A template (or expression) compiled once per environment: parsing is most of a render."""
    key = (id(env), text, expression)  # environments live as long as the process
    found = _compiled_cache.get(key)
    if found is None:
        if len(_compiled_cache) >= _COMPILED_KEPT:
            _compiled_cache.clear()
        found = (
            env.compile_expression(text, undefined_to_none=False)
            if expression
            else env.from_string(text)
        )
        _compiled_cache[key] = found
    return found


def _culprit(text: str, exc: BaseException) -> str:
    """The `{{ ... }}` block that most likely raised `exc`, else the whole template."""
    blocks = _BLOCK.findall(text)
    if len(blocks) <= 1:
        return text
    named = re.findall(r"'([^']+)'", str(exc))
    for name in named:
        for block in blocks:
            if re.search(rf"\b{re.escape(name)}\b", block):
                return str(block)
    return text


def missing_result(task_id: str, wanted: str, state: str | None, upstream: bool) -> LookupError:
    """The error for `results.<wanted>` when that task has no result to give."""
    if state is None:
        return LookupError(f"there is no task {wanted!r} in this pipeline")
    if not upstream:
        return LookupError(
            f"task {wanted!r} is not upstream of {task_id!r}; a template reads only the results "
            f"of upstream tasks (write `results.{wanted}` in it, or add {wanted} >> {task_id})"
        )
    return LookupError(
        f"task {wanted!r} has not succeeded (it is {state}); a template of {task_id!r} can only "
        f"read the results of tasks upstream of it"
    )
