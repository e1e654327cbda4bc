"""One attempt of one task, as handed to an executor, and the code that runs it anywhere."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lockgate.engine.context import Skip, TaskContext
from lockgate.engine.logcapture import LogSink, capture
from lockgate.io import artifacts
from lockgate.model import facts, workplace
from lockgate.secrets import redaction

SUCCESS, FAILED, SKIPPED, LOST = "success", "failed", "skipped", "lost"
KILL_GRACE_S = 2.0
_PRIVATE_ENV = frozenset(
    {"LOCKGATE_DB_URL", "LOCKGATE_KEYS", "LOCKGATE_TOKEN", "PGPASSWORD", "PGPASSFILE"}
)
_PRIVATE_PREFIXES = ("LOCKGATE_SECRET_",)
"""Variables a shell task never inherits: the metadata database's URL and password (libpq's
variables, set by deployments for lockgate's own database), the privacy keys, the API token,
and the env secret backend's variables (a task gets a secret by name: `{{ secret('x') }}`)."""


@dataclass(slots=True)
class WorkItem:
    """Everything needed to run one attempt, resolved: no references left in args or env."""

    task_id: str
    attempt: int
    kind: str
    ctx: TaskContext
    fn: Callable[..., Any] | None = None
    command: str | tuple[str, ...] | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    wants_context: bool = False
    timeout: float | None = None
    result_max_bytes: int = 1 << 20
    skip_exit_codes: tuple[int, ...] = ()
    output_result: bool = False
    """Shell: the last line the command writes to standard output is the task's result."""
    inherit_env: bool = True
    """Shell: start from this process's environment (minus lockgate's private variables)."""
    pipeline_file: str | None = None
    """Where another process can load the pipeline (and so the task's function) from."""
    artifacts: str | None = None
    """Where tables the task returns are kept (io/artifacts.py); None: tables are refused."""
    project_root: str | None = None
    """The run's project folder: `Project.load()` in the task finds it (model/workplace.py)."""
    resources: tuple[tuple[str, float], ...] = ()
    """Worker resources the attempt needs (task setting `resources`; the Dask executor's)."""
    secrets: tuple[str, ...] = ()
    """Secret values already in this item (rendered into its arguments or environment): the
    process that runs it redacts them too (secrets/redaction.py)."""

    @property
    def key(self) -> tuple[str, int]:
        return (self.task_id, self.attempt)


@dataclass(slots=True)
class Outcome:
    """How an attempt ended. `result_json` is the JSON text of the return value (None for None)."""

    task_id: str
    attempt: int
    state: str
    result_json: str | None = None
    error: str | None = None
    started_at: float = 0.0
    ended_at: float = 0.0
    final: bool = False
    """A failure that another attempt cannot fix (e.g. a result that is not JSON): no retry."""
    facts: list[dict[str, Any]] = field(default_factory=list)
    """What the task reported about its data (model/facts.py), kept whether it failed or not."""


@dataclass(frozen=True, slots=True)
class Started:
    """An executor that queues attempts where the engine cannot see (`reports_starts`) says
    when one really started: its timeout counts from here."""

    task_id: str
    attempt: int


def encode_result(value: Any, task_id: str, limit: int) -> str | None:
    """JSON text of a task's return value; raises ValueError naming the problem."""
    if value is None:
        return None
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"task {task_id!r} returned a value that is not JSON ({exc}); return JSON data "
            "(dicts, lists, strings, numbers, booleans, null)"
        ) from None
    if len(text) > limit:
        raise ValueError(
            f"task {task_id!r} returned {len(text):,} bytes of JSON, more than the "
            f"{limit:,}-byte limit for results (result_max_bytes in lockgate.toml); results "
            "live in the metadata database, so write large data to files and return their paths"
        )
    return text


def run_python(item: WorkItem, fn: Callable[..., Any]) -> Outcome:
    """Call the task's function with its inputs, capturing output to its log and the facts it
    reports about its data; what it returns, raises and reports comes back redacted."""
    redaction.register_all(item.secrets)
    with facts.collect() as found, workplace.inside(item.project_root):
        outcome = _call(item, fn)
    outcome.facts = found
    return redacted(outcome)


def redacted(outcome: Outcome) -> Outcome:
    """`outcome` with secrets redacted from its result, error and facts (secrets/redaction.py)."""
    if outcome.error:
        outcome.error = redaction.redact(outcome.error)
    if outcome.result_json is not None:
        outcome.result_json = redaction.redact_json_text(outcome.result_json)
    if outcome.facts:
        outcome.facts = redaction.redact_json(outcome.facts)
    return outcome


def _call(item: WorkItem, fn: Callable[..., Any]) -> Outcome:
    started = time.time()
    with capture(item.ctx.log_path) as log:
        try:
            if getattr(fn, "takes_table_refs", False):  # reads the artifact as a dataset
                args, kwargs = item.args, item.kwargs
            else:
                args, kwargs = _with_tables(item.args, item.kwargs)
            if item.wants_context:
                kwargs = {**kwargs, "ctx": item.ctx}
            value = fn(*args, **kwargs)
            if item.artifacts is not None and artifacts.frame_kind(value) is not None:
                value = artifacts.store(value, item.artifacts)
        except Skip as exc:
            log.write(f"task skipped: {exc}\n")
            return Outcome(
                item.task_id, item.attempt, SKIPPED, None, str(exc), started, time.time()
            )
        except BaseException as exc:  # the task's failure, whatever it is, is the task's outcome
            tb = exc.__traceback__
            # the first frame is this function: the user's traceback starts below it
            log.write("".join(traceback.format_exception(type(exc), exc, tb and tb.tb_next)))
            return Outcome(
                item.task_id, item.attempt, FAILED, None, _describe(exc), started, time.time()
            )
        try:
            result = encode_result(value, item.task_id, item.result_max_bytes)
        except ValueError as exc:  # the same value would come back on every attempt
            log.write(f"{exc}\n")
            return Outcome(
                item.task_id, item.attempt, FAILED, None, str(exc), started, time.time(), True
            )
    return Outcome(item.task_id, item.attempt, SUCCESS, result, None, started, time.time())


def _with_tables(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The inputs with each artifact reference (an upstream task's table) loaded as a table,
    here in the worker rather than in the coordinator, so tables never travel through it."""
    if not any(map(artifacts.is_ref, (*args, *kwargs.values()))):
        return args, kwargs
    load = artifacts.load
    return (
        tuple(load(a) if artifacts.is_ref(a) else a for a in args),
        {k: load(v) if artifacts.is_ref(v) else v for k, v in kwargs.items()},
    )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ShellProcess:
    """A running shell task in its own process group, which `kill()` stops entirely."""

    def __init__(self, item: WorkItem) -> None:
        self.item = item
        self.proc: subprocess.Popen[bytes] | None = None
        self.killed_reason: str | None = None
        self._lock = threading.Lock()

    def run(self) -> Outcome:
        item = self.item
        redaction.register_all(item.secrets)
        started = time.time()
        # the metadata DB's URL may hold its password: tasks have no business with it
        env = (
            {
                k: v
                for k, v in os.environ.items()
                if k not in _PRIVATE_ENV and not k.startswith(_PRIVATE_PREFIXES)
            }
            if item.inherit_env
            else {}
        )
        env.update(item.env)
        if isinstance(item.command, str):
            argv: list[str] = ["/bin/sh", "-c", item.command]
        else:
            argv = list(item.command or ())
        log = LogSink(item.ctx.log_path)
        # output goes through the log's redaction: pipes, pumped by threads (none is needed
        # when nothing is kept: no log folder and no result)
        keep = log.path is not None
        pipe: Any = subprocess.PIPE if keep else subprocess.DEVNULL
        pumps: list[OutputPump] = []
        try:
            with self._lock:
                if self.killed_reason is not None:
                    return Outcome(
                        item.task_id,
                        item.attempt,
                        FAILED,
                        None,
                        self.killed_reason,
                        started,
                        time.time(),
                    )
                # stdout and stderr apart: a line one leaves unfinished is never spliced with
                # the other's (which could split a secret past redaction)
                self.proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE if item.output_result else pipe,
                    stderr=pipe,
                    env=env,
                    cwd=item.cwd,
                    start_new_session=True,
                )
            if self.proc.stdout is not None:
                pumps.append(OutputPump(self.proc.stdout, log, keep_last=item.output_result))
            if self.proc.stderr is not None:
                pumps.append(OutputPump(self.proc.stderr, log.stream()))
            try:
                code = self.proc.wait(timeout=item.timeout)
            except subprocess.TimeoutExpired:
                self.kill(f"timed out after {item.timeout:g}s")
                code = self.proc.wait()
            for pump in pumps:  # a background child may hold the pipe open: do not wait on it
                pump.join(KILL_GRACE_S)
        except (OSError, ValueError) as exc:  # ValueError: e.g. a NUL byte in an env value
            return Outcome(
                item.task_id,
                item.attempt,
                FAILED,
                None,
                f"cannot start command {argv[0]!r}: {getattr(exc, 'strerror', None) or exc}",
                started,
                time.time(),
            )
        finally:
            log.close()
        ended = time.time()
        if self.killed_reason is not None:
            return Outcome(
                item.task_id, item.attempt, FAILED, None, self.killed_reason, started, ended
            )
        if code == 0:
            result = None
            last = pumps[0].last if item.output_result and pumps else None
            if last is not None:
                try:
                    result = encode_result(
                        redaction.redact(last), item.task_id, item.result_max_bytes
                    )
                except ValueError as exc:
                    return Outcome(
                        item.task_id, item.attempt, FAILED, None, str(exc), started, ended, True
                    )
            return Outcome(item.task_id, item.attempt, SUCCESS, result, None, started, ended)
        if code in item.skip_exit_codes:
            return Outcome(
                item.task_id,
                item.attempt,
                SKIPPED,
                None,
                f"command exited with code {code}, which skips the task",
                started,
                ended,
            )
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            error = f"command was killed by {name}"
        else:
            error = f"command exited with code {code}"
        return Outcome(item.task_id, item.attempt, FAILED, None, error, started, ended)

    def kill(self, reason: str) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after a grace period."""
        with self._lock:
            if self.killed_reason is None:
                self.killed_reason = reason
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
        else:
            _signal_group(proc.pid, signal.SIGKILL)  # children that ignored SIGTERM


class OutputPump(threading.Thread):
    """Copies a command's output stream into its (redacting) log; `keep_last`: remembers the
    last non-empty line (a shell task's result)."""

    def __init__(self, stream: Any, log: LogSink, keep_last: bool = False) -> None:
        super().__init__(daemon=True, name="lockgate-shell-output")
        self.stream = stream
        self.log = log
        self.keep_last = keep_last
        self.last: str | None = None
        self.start()

    def run(self) -> None:
        import codecs

        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        tail = ""
        with self.stream:
            while chunk := self.stream.read1(65536):
                text = decoder.decode(chunk)
                self.log.write(text)
                if self.keep_last:
                    tail = (tail + text)[-65536:]
        text = decoder.decode(b"", final=True)
        self.log.write(text)
        if self.keep_last:
            lines = [ln for ln in (tail + text).splitlines() if ln.strip()]
            self.last = lines[-1] if lines else None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def crashed(item: WorkItem, exc: BaseException) -> Outcome:
    """The outcome of an attempt whose runner itself failed (a bug, or a broken environment),
    so the engine always hears back instead of waiting forever."""
    now = time.time()
    error = redaction.redact(f"lockgate could not run the task: {_describe(exc)}")
    return Outcome(item.task_id, item.attempt, FAILED, None, error, now, now)


def run_shell(
    item: WorkItem, register: Callable[[ShellProcess | None], None] | None = None
) -> Outcome:
    proc = ShellProcess(item)
    if register is not None:
        register(proc)
    try:
        return proc.run()
    finally:
        if register is not None:
            register(None)
