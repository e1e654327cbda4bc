"""The YAML pipeline format as pydantic models: they validate a parsed file and give the JSON
Schema that editors use for completion and help (`docs/pipeline.schema.json`).

A task is one of the action models in `ACTIONS` (`shell`, `python`, the privacy tasks
`scan`, `mask` and `redact`, and the data tasks `read`, `copy`, `sql` and `check`), chosen by
which action key it has; a new built-in task type is one
more model here and one more builder in `yaml_loader`.
Custom types check their values in a `BeforeValidator`, so an error says in plain words what
was expected (the loader adds the file, line, column and field path).
"""

from __future__ import annotations

import contextlib
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, Union

from annotated_types import Ge, Le
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
)

from lockgate.errors import did_you_mean
from lockgate.io.dataset import WRITE_MODES
from lockgate.model.datasets import MAX_URI_LENGTH, URI_PATTERN, check_uri
from lockgate.model.durations import parse_duration
from lockgate.model.params import PARAM_TYPES
from lockgate.model.pipeline import ID_PATTERN
from lockgate.model.schedule import check_schedule
from lockgate.model.timetables import zone
from lockgate.model.trigger_rules import TriggerRule

SCHEMA_TITLE = "lockgate pipeline"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
DOTTED_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)?$"
_DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*(((ms|w|d|h|m|s)\s*)+)?$"


def show(value: Any) -> str:
    """A value as the author wrote it, short: `'three'`, `5`, `true`, `null`, `a list`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, date):
        return value.isoformat()
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- value types --------------------------------------------------------------------------------
def _whole(minimum: int) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"expected a whole number >= {minimum}, got {show(value)}")
        return value

    return Annotated[int, Ge(minimum), BeforeValidator(check)]


def _number(minimum: float | None = None, maximum: float | None = None) -> Any:
    if minimum is not None and maximum is not None:
        span = f" between {minimum:g} and {maximum:g}"
    else:
        span = f" >= {minimum:g}" if minimum is not None else ""

    def check(value: Any) -> Any:
        ok = not isinstance(value, bool) and isinstance(value, int | float)
        if (
            not ok
            or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)
        ):
            raise ValueError(f"expected a number{span}, got {show(value)}")
        return value

    bounds = [Ge(minimum)] if minimum is not None else []
    bounds += [Le(maximum)] if maximum is not None else []
    return Annotated[float, *bounds, BeforeValidator(check)]


def _amount(value: Any) -> Any:
    """A resource amount: a number > 0 (also as text: YAML reads 4e9 as text)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"expected an amount greater than 0, got {show(value)}")
    return value


def _duration(positive: bool) -> Any:
    def check(value: Any) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise ValueError(
                f"expected a duration such as 30s, 5m, 1h30m or a number of seconds, got {show(value)}"
            ) from None
        if seconds < 0 or (positive and seconds == 0):
            raise ValueError(
                f"expected a duration {'>' if positive else '>='} 0 seconds, got {show(value)}"
            )
        return seconds

    number: dict[str, Any] = {"type": "number", ("exclusiveMinimum" if positive else "minimum"): 0}
    return Annotated[
        float,
        BeforeValidator(check),
        WithJsonSchema({"anyOf": [number, {"type": "string", "pattern": _DURATION_PATTERN}]}),
    ]


def _choice(choices: tuple[str, ...]) -> Any:
    def check(value: Any) -> Any:
        if value not in choices:
            tip = did_you_mean(value, choices) if isinstance(value, str) else ""
            if not tip.startswith("; did"):
                tip = ""
            raise ValueError(f"expected one of {', '.join(choices)}, got {show(value)}{tip}")
        return value

    return Annotated[Literal[choices], BeforeValidator(check)]


def _name(pattern: str, what: str, rule: str) -> Any:
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if not isinstance(value, str) or not compiled.match(value):
            raise ValueError(f"invalid {what} {show(value)}: {rule}")
        return value

    return Annotated[str, Field(pattern=pattern), BeforeValidator(check)]


def _schedule(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(
            "expected a schedule: a cron expression, a preset such as @daily, @once or "
            f"'every 30m', got {show(value)}"
        )
    if "://" in value:
        raise ValueError(
            f"{show(value)} is a dataset URI: a pipeline triggered by dataset updates lists "
            f"them, e.g. schedule: [{value.strip()}]"
        )
    check_schedule(value)  # its ValueError says what is wrong
    return value.strip()


def _schedule_form(value: Any) -> str | None:
    """Which form a `schedule:` value has: text is a time schedule, a list names datasets."""
    if isinstance(value, str):
        return "time"
    if isinstance(value, list):
        return "datasets"
    return None


def _dataset_uri(value: Any) -> Any:
    check_uri(value)  # its ValueError says what is wrong
    return value


def _timezone(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(
            f"expected an IANA time zone name such as 'Europe/Berlin', got {show(value)}"
        )
    zone(value)  # its ValueError names the zone
    return value


def _when(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(
        f"expected a date (2024-01-01) or a date and time (2024-01-01T06:00:00Z), got {show(value)}"
    )


def _command(value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(
        "expected a command (text run by /bin/sh -c) or a non-empty list of arguments (text), "
        f"got {show(value)}"
    )


def _env_value(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if not isinstance(value, bool) and isinstance(value, int | float):
        return str(value)
    raise ValueError(f"expected text or a number, got {show(value)}")


def _dotted(value: Any) -> Any:
    if (
        isinstance(value, str)
        and re.match(DOTTED_PATTERN, value)
        and (":" in value or "." in value)
    ):
        return value
    raise ValueError(f"expected 'module:function' or 'module.function', got {show(value)}")


def _exit_code(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise ValueError(f"expected an exit code (a whole number from 0 to 255), got {show(value)}")
    return value


def _rules(value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    raise ValueError(
        "expected a rules file (text) or a list of rules (mappings with column and op), "
        f"got {show(value)}"
    )


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


ID_RULE = "use letters, digits, '_', '.' or '-', starting with a letter or '_'"
Id = _name(ID_PATTERN.pattern, "id", ID_RULE)
TaskId = _name(ID_PATTERN.pattern, "task id", ID_RULE)
ParamName = _name(NAME_PATTERN, "param name", "use letters, digits and '_' (an identifier)")
EnvName = _name(NAME_PATTERN, "environment variable name", "use letters, digits and '_'")
KwargName = _name(NAME_PATTERN, "keyword argument name", "use letters, digits and '_'")
WholeFrom0 = _whole(0)
WholeFrom1 = _whole(1)
Duration = _duration(positive=False)
PositiveDuration = _duration(positive=True)
Number = _number()
ExitCode = Annotated[int, Ge(0), Le(255), BeforeValidator(_exit_code)]
BackoffFactor = _number(1)
Amount = Annotated[float, BeforeValidator(_amount), WithJsonSchema({"type": ["number", "string"]})]
Fraction = _number(0, 1)
TriggerRuleName = _choice(tuple(r.value for r in TriggerRule))
ParamType = _choice(PARAM_TYPES)
Schedule = Annotated[
    str,
    BeforeValidator(_schedule),
    WithJsonSchema(
        {
            "type": "string",
            "description": "A cron expression (5 fields), a preset (@hourly, @daily, @weekly, "
            "@monthly, @yearly), @once, or an interval such as 'every 30m'.",
        }
    ),
]
DatasetUri = Annotated[
    str,
    BeforeValidator(_dataset_uri),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": URI_PATTERN.pattern,
            "maxLength": MAX_URI_LENGTH,
            "description": "A dataset URI: scheme://location, e.g. s3://bucket/orders.parquet.",
        }
    ),
]
DatasetUris = Annotated[list[DatasetUri], Field(min_length=1)]
ScheduleOrDatasets = Annotated[
    Union[  # noqa: UP007
        Annotated[Schedule, Tag("time")],
        Annotated[DatasetUris, Tag("datasets")],
    ],
    Discriminator(
        _schedule_form,
        custom_error_type="schedule_form",
        custom_error_message="expected a schedule (a cron expression, a preset such as "
        "@daily, @once or 'every 30m') or a list of dataset URIs",
    ),
]
TimeZone = Annotated[
    str,
    BeforeValidator(_timezone),
    WithJsonSchema({"type": "string", "description": "An IANA time zone name."}),
]
When = Annotated[
    datetime,
    BeforeValidator(_when),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
    ),
]
Command = Annotated[
    str | list[str],
    BeforeValidator(_command),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
            ]
        }
    ),
]
EnvValue = Annotated[
    str,
    BeforeValidator(_env_value),
    WithJsonSchema({"type": ["string", "number"]}),
]
DottedPath = Annotated[str, Field(pattern=DOTTED_PATTERN), BeforeValidator(_dotted)]
Rules = Annotated[
    str | list[dict[str, Any]],
    BeforeValidator(_rules),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "column": {"type": "string"},
                            "op": {"type": "string"},
                            "options": {"type": "object"},
                            "classification": {"type": "string"},
                        },
                        "required": ["column", "op"],
                        "additionalProperties": False,
                    },
                },
            ]
        }
    ),
]
Callbacks = Annotated[
    list[DottedPath],
    BeforeValidator(_one_or_many),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DOTTED_PATTERN},
                {"type": "array", "items": {"type": "string", "pattern": DOTTED_PATTERN}},
            ]
        }
    ),
]
Produces = Annotated[
    list[DatasetUri],
    BeforeValidator(_one_or_many),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": URI_PATTERN.pattern, "maxLength": MAX_URI_LENGTH},
                {
                    "type": "array",
                    "items": {
                        "type": "string",
                        "pattern": URI_PATTERN.pattern,
                        "maxLength": MAX_URI_LENGTH,
                    },
                },
            ]
        }
    ),
]
TaskIds = Annotated[
    list[TaskId],
    BeforeValidator(_one_or_many),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": ID_PATTERN.pattern},
                {"type": "array", "items": {"type": "string", "pattern": ID_PATTERN.pattern}},
            ]
        }
    ),
]


class Spec(BaseModel):
    """Base of every model of the format: unknown keys are errors, values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


# -- params -------------------------------------------------------------------------------------
class ParamSpec(Spec):
    """A run parameter in full form. Without `default` the param is required."""

    type: ParamType | None = None
    """string, integer, number, boolean, array or object (inferred from the default if not given)."""
    default: Any = None
    """The value a run gets when it gives none; leave it out to make the param required."""
    description: str | None = None
    """What the param means (shown by `lockgate show` and the UI)."""
    enum: list[Any] | None = None
    """The only values allowed."""
    minimum: Number | None = None
    """The smallest number allowed."""
    maximum: Number | None = None
    """The largest number allowed."""
    pattern: str | None = None
    """A regular expression that a string value must match entirely."""
    min_length: WholeFrom0 | None = None
    """The fewest characters (string) or items (array, object)."""
    max_length: WholeFrom0 | None = None
    """The most characters (string) or items (array, object)."""


PARAM_KEYS = frozenset(ParamSpec.model_fields)


def _param_form(value: Any) -> str:
    """A mapping with any of ParamSpec's keys is the full form; anything else is a default."""
    if isinstance(value, dict) and PARAM_KEYS.intersection(value):
        return "full"
    return "value"


ParamEntry = Annotated[
    Union[  # noqa: UP007
        Annotated[ParamSpec, Tag("full")],
        Annotated[
            Any,
            Tag("value"),
            WithJsonSchema({"description": "Shorthand: the default value (its type is inferred)."}),
        ],
    ],
    Discriminator(_param_form),
]


# -- tasks --------------------------------------------------------------------------------------
class TaskSettingsSpec(Spec):
    """How a task is run (retries, timeout, trigger rule, pool); see `defaults`."""

    retries: WholeFrom0 | None = None
    """How many times a failed attempt is retried."""
    retry_delay: Duration | None = None
    """Wait before the first retry: seconds, or text such as 30s, 5m, 1h30m."""
    retry_backoff: BackoffFactor | None = None
    """Multiplier applied to the delay after each failed attempt (2 doubles it)."""
    retry_jitter: Fraction | None = None
    """Fraction (0-1) of each delay randomised away, so retries do not stampede."""
    max_retry_delay: Duration | None = None
    """The longest wait between attempts."""
    timeout: PositiveDuration | None = None
    """How long one attempt may run before it is stopped and failed."""
    trigger_rule: TriggerRuleName | None = None
    """When the task runs given its upstream tasks' states (default all_success)."""
    pool: str | None = None
    """The pool whose slots the task takes while it runs."""
    pool_slots: WholeFrom1 | None = None
    """How many slots of the pool the task takes."""
    resources: dict[str, Amount] | None = None
    """Worker resources one attempt needs, e.g. {gpu: 1, memory: 4e9}: the Dask executor runs
    it only on a worker started with them (`dask worker --resources "gpu=1"`); other executors
    ignore them."""


class TaskDefaults(TaskSettingsSpec):
    """Task settings applied to every task of the pipeline (a task's own settings win)."""


class TaskSpec(TaskSettingsSpec):
    """What every task has, whatever it runs."""

    depends_on: TaskIds | None = None
    """Ids of the tasks that must finish first (tasks whose results a template reads are added)."""
    description: str | None = None
    """What the task does."""
    tags: list[str] | None = None
    """Labels to find and filter tasks by."""
    compensate_with: TaskId | None = None
    """Id of a task that runs only if this one fails, to undo its effects."""
    on_success: Callbacks | None = None
    """Function(s) called with the TaskContext when the task succeeds: 'module:function'."""
    on_failure: Callbacks | None = None
    """Function(s) called with the TaskContext when the task fails for good."""
    on_retry: Callbacks | None = None
    """Function(s) called with the TaskContext when a failed attempt will be retried."""
    produces: Produces | None = None
    """URI(s) of the datasets the task updates when it succeeds (they trigger the pipelines
    whose schedule lists them)."""


class ShellTask(TaskSpec):
    """A task that runs a command."""

    shell: Command
    """A command run by /bin/sh -c ({{ }} values are shell-quoted), or a list of arguments run
    directly (each one a template)."""
    env: dict[EnvName, EnvValue] | None = None
    """Environment variables of the command; values may be templates."""
    cwd: str | None = None
    """The folder the command runs in; may be a template."""
    skip_exit_codes: list[ExitCode] | None = None
    """Exit codes that end the task as skipped instead of failed."""
    output_result: bool | None = None
    """The last line the command writes to standard output is the task's result."""


class PythonTask(TaskSpec):
    """A task that calls a Python function."""

    python: DottedPath
    """The function to call: 'module:function' or 'module.function' (a module next to the
    YAML file can be used)."""
    args: list[Any] | None = None
    """Positional arguments; a lone '{{ expr }}' gives the value itself (a list stays a list)."""
    kwargs: dict[KwargName, Any] | None = None
    """Keyword arguments; a lone '{{ expr }}' gives the value itself."""
    branch: bool | None = None
    """The function returns the id(s) of the direct downstream tasks to follow; the others are
    skipped."""


class ScanAction(Spec):
    """What a scan task classifies; its result is the scan report (see `lockgate scan`)."""

    input: str
    """The file to scan (CSV, Parquet or JSONL), relative to the project folder; may be a
    template."""
    sample_size: WholeFrom1 | None = None
    """How many rows are sampled to classify each column (default 1000)."""
    seed: WholeFrom0 | None = None
    """The seed of the sample: the same seed samples the same rows (default 0)."""


class MaskAction(Spec):
    """What a mask task reads, writes and how it masks: `rules`, `auto: true`, or both."""

    input: str
    """The file to mask (CSV, Parquet or JSONL), relative to the project folder; may be a
    template."""
    output: str
    """The file to write (its extension chooses the format); may be a template."""
    rules: Rules | None = None
    """A rules file (YAML), or the rules themselves: a list of mappings with `column`, `op`
    and optionally `options` (see docs/privacy.md); may be a template."""
    auto: bool | None = None
    """Mask every column that scan classifies (that no rule names), and the PII inside
    free-text columns."""
    sample_size: WholeFrom1 | None = None
    """With `auto`: how many rows are sampled to classify the columns (default 1000)."""


class RedactAction(Spec):
    """What a redact task reads and writes: a text or log file, line by line."""

    input: str
    """The text file to redact, relative to the project folder; may be a template."""
    output: str
    """The file to write; may be a template."""
    entities: list[str] | None = None
    """Only these entity types (email, ip, jwt, ...; default: every PII and secret type)."""


class ScanTask(TaskSpec):
    """A task that classifies the columns of a file; its result is the scan report."""

    scan: ScanAction
    """The file to scan and how to sample it."""


class MaskTask(TaskSpec):
    """A task that masks a file with rules or automatically; its result is a summary."""

    mask: MaskAction
    """The file to mask, the file to write and the rules (or `auto: true`)."""


class RedactTask(TaskSpec):
    """A task that replaces the PII and secrets in a text or log file."""

    redact: RedactAction
    """The file to redact and the file to write."""


# -- data-plane tasks ---------------------------------------------------------------------------
class DatasetSpec(Spec):
    """A dataset with options, where a URI alone is not enough."""

    uri: str
    """A dataset URI (file://, s3://, sqlite:///db#table, postgresql://...#table, https://) or
    a file path relative to the project folder; may be a template."""
    format: str | None = None
    """csv, parquet or jsonl, when the file name does not say it."""
    query: str | None = None
    """A SQL query to read instead of the URI's table (sqlite, postgresql)."""
    connection: str | None = None
    """A named connection giving the endpoint and credentials."""
    options: dict[str, Any] | None = None
    """Options of the connector (CSV delimiter, S3 endpoint_url, HTTP pagination, ...)."""
    tags: dict[str, str] | None = None
    """Column -> classification (e.g. email: pii.email), for formats that do not carry it."""
    zone: str | None = None
    """The zone the dataset lives in (prod, staging, ci, ...): the policy gate checks what
    may be written into it. Default: from lockgate.toml's [zones] (see docs/governance.md)."""


def _dataset_form(value: Any) -> str | None:
    """A text value is a URI or path; a mapping (or a parsed `DatasetSpec`) the full form."""
    if isinstance(value, str):
        return "uri"
    if isinstance(value, dict | DatasetSpec):
        return "full"
    return None


DatasetRef = Annotated[
    Union[  # noqa: UP007
        Annotated[str, Tag("uri")],
        Annotated[DatasetSpec, Tag("full")],
    ],
    Discriminator(
        _dataset_form,
        custom_error_type="dataset_form",
        custom_error_message="expected a dataset URI or path, or a mapping with uri: and its "
        "options",
    ),
]
InputName = _name(NAME_PATTERN, "input name", "use letters, digits and '_' (an SQL identifier)")
ParameterName = _name(
    NAME_PATTERN, "parameter name", "use letters, digits and '_' (the query writes $name)"
)
WriteMode = _choice(WRITE_MODES)
Columns = Annotated[
    list[str],
    BeforeValidator(_one_or_many),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


def _checks(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    raise ValueError(
        "expected a list of checks, each a mapping such as {not_null: [id]} or "
        f"{{unique: id, severity: warn}}, got {show(value)}"
    )


Checks = Annotated[
    list[dict[str, Any]],
    BeforeValidator(_checks),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "object"},
            "description": "Data-quality checks (see docs/quality.md): not_null, unique, "
            "accepted_values, range, regex, row_count, freshness, references, schema, sql; "
            "each with an optional severity (error or warn) and name.",
        }
    ),
]


class ReadAction(Spec):
    """What a read task reads, and the checks it runs over it."""

    source: DatasetRef
    """The dataset to read: a URI, a path relative to the project folder, or a mapping with
    uri and options; may be a template."""
    format: str | None = None
    """csv, parquet or jsonl, when the file name does not say it."""
    query: str | None = None
    """A SQL query to read instead of the URI's table; may be a template."""
    connection: str | None = None
    """A named connection giving the source's endpoint and credentials."""
    options: dict[str, Any] | None = None
    """Options of the source's connector."""
    tags: dict[str, str] | None = None
    """Column -> classification of the source's columns (formats that do not carry it)."""
    checks: Checks | None = None
    """Data-quality checks run over the data: a failed `error` check fails the task."""


class CopyAction(Spec):
    """What a copy task reads and writes, how, and the checks the data must pass first."""

    source: DatasetRef
    """The dataset to read (a URI, a path relative to the project folder, or a mapping with
    uri and options); may be a template."""
    target: DatasetRef
    """The dataset to write; may be a template."""
    mode: WriteMode | None = None
    """overwrite (default), append, or upsert (SQL targets, with `keys`)."""
    keys: Columns | None = None
    """The key column(s) of an upsert."""
    format: str | None = None
    """The source's format (csv, parquet, jsonl) when its name does not say it."""
    target_format: str | None = None
    """The target's format when its name does not say it."""
    query: str | None = None
    """A SQL query to read instead of the source's table; may be a template."""
    connection: str | None = None
    """A named connection for the source."""
    target_connection: str | None = None
    """A named connection for the target."""
    options: dict[str, Any] | None = None
    """Options of the source's connector."""
    target_options: dict[str, Any] | None = None
    """Options of the target's connector."""
    tags: dict[str, str] | None = None
    """Column -> classification of the target's columns (declared tags win over inherited)."""
    checks: Checks | None = None
    """Data-quality checks run before anything is written: a failed `error` check writes
    nothing and fails the task; `warn` results are recorded."""


class SqlAction(Spec):
    """A DuckDB SQL transform over named input datasets, written to a target."""

    query: str
    """One SELECT over the inputs, named as in `inputs`; may be a template (values that must
    not become SQL go in `parameters`)."""
    inputs: Annotated[dict[InputName, DatasetRef], Field(min_length=1)]
    """Name -> dataset: each is streamed into DuckDB under its name."""
    target: DatasetRef | None = None
    """Where the result goes (default: nowhere; the task's result is a preview)."""
    mode: WriteMode | None = None
    """overwrite (default), append, or upsert (SQL targets, with `keys`)."""
    keys: Columns | None = None
    """The key column(s) of an upsert."""
    target_format: str | None = None
    """The target's format when its name does not say it."""
    target_connection: str | None = None
    """A named connection for the target."""
    target_options: dict[str, Any] | None = None
    """Options of the target's connector."""
    tags: dict[str, str] | None = None
    """Column -> classification of output columns (others inherit the tags of the input
    columns they come from)."""
    parameters: dict[ParameterName, Any] | None = None
    """Values bound to `$name` placeholders in the query (never parsed as SQL); may be
    templates."""
    checks: Checks | None = None
    """Data-quality checks run over the result before it is written."""


class CheckAction(Spec):
    """The dataset a check task reads and the checks it must pass."""

    dataset: DatasetRef
    """The dataset to check (a URI, a path relative to the project folder, or a mapping with
    uri and options); may be a template."""
    checks: Annotated[Checks, Field(min_length=1)]
    """The checks: a failed `error` check fails the task (its downstream tasks do not run)."""
    format: str | None = None
    """csv, parquet or jsonl, when the file name does not say it."""
    query: str | None = None
    """A SQL query to check instead of the URI's table; may be a template."""
    connection: str | None = None
    """A named connection giving the endpoint and credentials."""
    options: dict[str, Any] | None = None
    """Options of the connector."""


class ReadTask(TaskSpec):
    """A task that reads a dataset (and checks it); its result is the rows and schema."""

    read: ReadAction
    """The dataset to read and its checks."""


class CopyTask(TaskSpec):
    """A task that copies any dataset to any other, optionally checking the data first."""

    copy_: CopyAction = Field(alias="copy")
    """The source, the target, the write mode and the checks. (The field is `copy_` in
    Python: `copy` would shadow pydantic's `BaseModel.copy`.)"""


class SqlTask(TaskSpec):
    """A task that transforms datasets with DuckDB SQL and writes the result."""

    sql: SqlAction
    """The query, its inputs, the target and the checks."""


class CheckTask(TaskSpec):
    """A task that runs data-quality checks over a dataset."""

    check: CheckAction
    """The dataset and its checks."""


ACTIONS: dict[str, type[TaskSpec]] = {
    "shell": ShellTask,
    "python": PythonTask,
    "scan": ScanTask,
    "mask": MaskTask,
    "redact": RedactTask,
    "read": ReadTask,
    "copy": CopyTask,
    "sql": SqlTask,
    "check": CheckTask,
}
"""Task types by their action key: a task has exactly one of these keys."""
ACTION_LIST = ", ".join(ACTIONS)


def action_model(action: str) -> type[BaseModel] | None:
    """The model of an action's mapping (e.g. `MaskAction` for `mask:`), None for actions
    whose value is not a mapping (shell, python)."""
    model = ACTIONS.get(action)
    if model is None:
        return None
    for name, info in model.model_fields.items():
        if (info.alias or name) == action:
            inner = info.annotation
            return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None
    return None


def action_of(value: Any) -> str | None:
    """The action key of a task mapping (None unless it has exactly one)."""
    if isinstance(value, TaskSpec):
        return next(k for k, m in ACTIONS.items() if isinstance(value, m))
    if not isinstance(value, dict):
        return None
    found = [key for key in ACTIONS if key in value]
    return found[0] if len(found) == 1 else None


AnyTask = Annotated[
    Union[tuple(Annotated[model, Tag(key)] for key, model in ACTIONS.items())],  # noqa: UP007
    Discriminator(
        action_of,
        custom_error_type="task_action",
        custom_error_message=f"a task needs exactly one of: {ACTION_LIST}",
    ),
]


# -- the pipeline -------------------------------------------------------------------------------
class PipelineSpec(Spec):
    """A lockgate pipeline written in YAML: its schedule, params, defaults and tasks."""

    id: Id | None = None
    """The pipeline id (default: the file name without its extension)."""
    description: str | None = None
    """What the pipeline does."""
    tags: list[str] | None = None
    """Labels to find and filter pipelines by."""
    schedule: ScheduleOrDatasets | None = None
    """When it runs: a cron expression, a preset such as @daily, @once, 'every 30m', a list of
    dataset URIs (it runs when each has been updated), or null (only when triggered)."""
    timezone: TimeZone | None = None
    """The IANA time zone of the schedule, of start_date/end_date without an offset and of the
    run dates templates see (default UTC)."""
    start_date: When | None = None
    """The first date the schedule covers (a date or date-time; in `timezone` unless it says
    otherwise)."""
    end_date: When | None = None
    """The last date the schedule covers."""
    catchup: bool | None = None
    """Whether the scheduler runs the intervals missed since start_date."""
    max_active_runs: WholeFrom1 | None = None
    """How many runs of this pipeline may be active at once."""
    max_active_tasks: WholeFrom1 | None = None
    """How many tasks of one run may run at once."""
    run_timeout: PositiveDuration | None = None
    """How long a whole run may take: seconds, or text such as 2h."""
    pools: dict[str, WholeFrom1] | None = None
    """Pools this pipeline's tasks share, with their number of slots."""
    params: dict[ParamName, ParamEntry] | None = None
    """Run parameters: a default value, or the full form (type, default, description, ...)."""
    defaults: TaskDefaults | None = None
    """Task settings applied to every task."""
    tasks: dict[TaskId, AnyTask] = Field(min_length=1)
    """The tasks, by id. Each has exactly one action key: shell, python, scan, mask, redact,
    read, copy, sql or check."""


def pipeline_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a YAML pipeline file, as in docs/pipeline.schema.json.

    Regenerate that file with `lockgate schema > docs/pipeline.schema.json`."""
    schema = PipelineSpec.model_json_schema()
    schema = _tidy(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": SCHEMA_TITLE,
        **{k: v for k, v in schema.items() if k != "title"},
    }


def _tidy(node: Any) -> Any:
    """Make the generated schema what editors need: `anyOf` (a shorthand param value matches
    anything, so `oneOf` would reject the full form) and no keys outside `patternProperties`."""
    if isinstance(node, list):
        return [_tidy(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {("anyOf" if k == "oneOf" else k): _tidy(v) for k, v in node.items()}
    if "patternProperties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out
