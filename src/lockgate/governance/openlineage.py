"""OpenLineage events from a run's events, sent in the background through the
`openlineage-python` client (file, console or HTTP), as lockgate.toml's `[lineage]` table says.

A pipeline run is a job (`[lineage] namespace`, named by the pipeline id) with a START when the
run starts and a COMPLETE, FAIL or ABORT (cancelled) when it ends. Each task attempt that read
or wrote datasets is a child job `pipeline.task` (a ParentRunFacet names the pipeline run) with
its inputs and outputs: schema, classification tags (TagsDatasetFacet, one tag per classified
column), column lineage (which input columns each output column comes from, and the masking
operation applied), row counts, and the error when it failed. Run ids are UUIDs derived from
lockgate's run id (and task id and attempt), so the same run always gets the same ones.

Emission never slows or fails a run: the bus subscriber only queues events; a background thread
converts and sends them; a transport that fails is reported once on stderr and the rest of the
run's events are dropped. Datasets are named by OpenLineage's conventions (`file` + absolute
path, `s3://bucket` + key, `postgres://host:port` + `db.schema.table`, `sqlite://<db path>` +
table); credentials never appear in a name.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from lockgate.errors import ConfigError, did_you_mean
from lockgate.model import events as ev
from lockgate.model import facts

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.model.events import Event
    from lockgate.model.intervals import RunDates

DEFAULT_NAMESPACE = "lockgate"
DEFAULT_FILE = ".lockgate/lineage/events.jsonl"
TRANSPORTS = ("file", "console", "http")
_KEYS = (
    "enabled",
    "namespace",
    "transport",
    "path",
    "url",
    "endpoint",
    "api_key_env",
    "timeout",
    "verify",
    "retries",
)
CLASSIFICATION_KEY = "classification"
"""The key of the classification tags in the TagsDatasetFacet (the value is the tag)."""
_SUBTYPES = {
    "identity": "IDENTITY",
    "transformation": "TRANSFORMATION",
    "aggregation": "AGGREGATION",
}
_TASK_ENDS = {
    ev.TASK_SUCCEEDED: "COMPLETE",
    ev.TASK_FAILED: "FAIL",
    ev.TASK_RETRYING: "FAIL",
    ev.TASK_LOST: "FAIL",
    ev.TASK_CANCELLED: "ABORT",
}
_RUN_ENDS = {"success": "COMPLETE", "failed": "FAIL", "cancelled": "ABORT", "lost": "FAIL"}
_FILE_LOCK = threading.Lock()
"""Runs of one process (a scheduler's) append to the same file: one event at a time."""


# -- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LineageConfig:
    """The `[lineage]` table of lockgate.toml, checked."""

    transport: str
    namespace: str = DEFAULT_NAMESPACE
    path: Path | None = None
    """file: the JSON-lines file events are appended to."""
    url: str = ""
    """http: the server's base URL (`endpoint` is joined to it)."""
    endpoint: str = "api/v1/lineage"
    api_key_env: str | None = None
    """http: the environment variable holding the API key (sent as a bearer token)."""
    timeout: float = 5.0
    verify: bool = True
    retries: int = 2

    @property
    def where(self) -> str:
        """Where events go, for messages (never a credential)."""
        if self.transport == "file":
            return str(self.path)
        if self.transport == "http":
            from lockgate.io.dataset import display

            return display(self.url)
        return "the console (stderr)"


def load_config(project: Project) -> LineageConfig | None:
    """The project's lineage settings; None when lockgate.toml has no `[lineage]` table (or
    `enabled = false`): no events are emitted. ConfigError (one line) for a bad table."""
    table: Mapping[str, Any] = project.tables.get("lineage") or {}
    if not table:
        return None
    where = f"{project.config_file}: [lineage]"
    for name in table:
        if name not in _KEYS:
            raise ConfigError(f"{where}: unknown key {name!r}{did_you_mean(name, _KEYS)}")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}: enabled must be true or false, got {enabled!r}")
    if not enabled:
        return None
    transport = table.get("transport")
    if transport not in TRANSPORTS:
        raise ConfigError(
            f"{where}: transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}; "
            'e.g. transport = "file"'
        )
    namespace = table.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not namespace.strip():
        raise ConfigError(f"{where}: namespace must be a non-empty name, got {namespace!r}")
    config = LineageConfig(transport=transport, namespace=namespace.strip())
    if transport == "file":
        path = table.get("path", DEFAULT_FILE)
        if not isinstance(path, str) or not path.strip():
            raise ConfigError(f"{where}: path must be a file path, got {path!r}")
        full = Path(path).expanduser()
        return _replace(config, path=full if full.is_absolute() else project.root / full)
    if transport == "console":
        return config
    return _http(config, table, where)


def _http(config: LineageConfig, table: Mapping[str, Any], where: str) -> LineageConfig:
    from lockgate.io.dataset import display

    url = table.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{where}: url must be the lineage server's http(s) URL, e.g. "
            f'url = "http://127.0.0.1:5000", got {display(str(url)) if url else url!r}'
        )
    if parts.password is not None or "@" in parts.netloc:
        raise ConfigError(
            f"{where}: url {display(url or '')} holds credentials; put the API key in an "
            "environment variable and name it with api_key_env"
        )
    endpoint = table.get("endpoint", config.endpoint)
    if not isinstance(endpoint, str):
        raise ConfigError(f"{where}: endpoint must be a path such as api/v1/lineage")
    key_env = table.get("api_key_env")
    if key_env is not None and (not isinstance(key_env, str) or not key_env.strip()):
        raise ConfigError(
            f"{where}: api_key_env must name an environment variable (e.g. "
            f'"MARQUEZ_API_KEY"), never hold the key itself'
        )
    timeout = table.get("timeout", config.timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where}: timeout must be a number of seconds > 0, got {timeout!r}")
    verify = table.get("verify", True)
    if not isinstance(verify, bool):
        raise ConfigError(f"{where}: verify must be true or false, got {verify!r}")
    retries = table.get("retries", config.retries)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise ConfigError(f"{where}: retries must be a whole number from 0 to 10, got {retries!r}")
    return _replace(
        config,
        url=url or "",
        endpoint=endpoint,
        api_key_env=key_env.strip() if key_env else None,
        timeout=float(timeout),
        verify=verify,
        retries=retries,
    )


def _replace(config: LineageConfig, **changes: Any) -> LineageConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)


# -- dataset names ------------------------------------------------------------------------------
def dataset_name(key: str) -> tuple[str, str]:
    """The OpenLineage (namespace, name) of a dataset as the store names it
    (`io.catalogue.key`): files `file` + absolute path, S3 `s3://bucket` + key, SQLite
    `sqlite://<db path>` + table, PostgreSQL `postgres://host:port` + `db.schema.table`,
    HTTP `scheme://host[:port]` + path. User names, passwords and query strings are left out."""
    if "://" not in key:
        return "file", key
    scheme = key.split("://", 1)[0].lower()
    parts = urlsplit(key)
    if scheme in ("file",):
        return "file", parts.path
    if scheme in ("s3", "s3a"):
        return f"s3://{parts.hostname or ''}", parts.path.lstrip("/")
    if scheme == "sqlite":
        from lockgate.io.dataset import parse

        path = parse(key).path  # absolute: the store names SQLite files so
        return f"sqlite://{path}", parts.fragment or Path(path).name
    if scheme.startswith("postgres"):
        host = parts.hostname or (parse_qs(parts.query).get("host") or ["localhost"])[0]
        database = parts.path.lstrip("/") or "postgres"
        table = parts.fragment or ""
        if table and "." not in table:
            table = f"public.{table}"
        name = f"{database}.{table}" if table else database
        return f"postgres://{host}:{parts.port or 5432}", name
    if scheme in ("http", "https"):
        port = f":{parts.port}" if parts.port else ""
        return f"{scheme}://{parts.hostname or ''}{port}", parts.path or "/"
    return DEFAULT_NAMESPACE, key


# -- run ids ------------------------------------------------------------------------------------
def run_uuid(run_id: str, *parts: object) -> str:
    """The OpenLineage run id of a lockgate run (or, with task id and attempt, of one task
    attempt): a UUIDv7 whose time is the run's creation (read from its id) and whose other bits
    come from a hash of the ids, so it is the same whenever it is computed."""
    from openlineage.client.uuid import generate_static_uuid

    try:
        instant = datetime.strptime(run_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        instant = datetime.fromtimestamp(0, UTC)
    data = "\x1f".join(str(p) for p in (run_id, *parts)).encode()
    return str(generate_static_uuid(instant, data))


# -- events -> OpenLineage ----------------------------------------------------------------------
def _producer() -> str:
    from lockgate import __version__

    return f"https://pypi.org/project/lockgate/{__version__}/"


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass
class _Attempt:
    started: float | None = None
    facts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class Converter:
    """Turns one run's lockgate events into OpenLineage RunEvents (openlineage-python
    objects), in order. Keeps what a task attempt reported until the attempt ends."""

    def __init__(
        self, namespace: str, pipeline_id: str, run_id: str, dates: RunDates | None = None
    ) -> None:
        self.namespace = namespace
        self.pipeline_id = pipeline_id
        self.run_id = run_id
        self.dates = dates
        self.run_uuid = run_uuid(run_id)
        self.producer = _producer()
        self._attempts: dict[tuple[str, int], _Attempt] = {}
        self._shared_run_facets: dict[str, Any] | None = None
        self._shared_job_facets: dict[str, Any] = {}

    def convert(self, event: Event) -> list[Any]:
        """The OpenLineage events `event` completes (often none)."""
        kind = event.kind
        if kind == ev.RUN_STARTED:
            return [self._pipeline_event("START", event.ts)]
        if kind == ev.RUN_FINISHED:
            state = event.state or "failed"
            error = self._run_error(event) if state != "success" else None
            return [self._pipeline_event(_RUN_ENDS.get(state, "OTHER"), event.ts, error)]
        if event.task_id is None:
            return []
        slot = (event.task_id, event.attempt)
        if kind == ev.TASK_STARTED:
            self._attempts[slot] = _Attempt(started=event.ts)
        elif kind in ev.FACTS and isinstance(event.data, dict):
            self._attempts.setdefault(slot, _Attempt()).facts.append((kind, event.data))
        elif kind in _TASK_ENDS:
            attempt = self._attempts.pop(slot, None)
            if attempt is not None and _touches_data(attempt.facts):
                error = str((event.data or {}).get("error") or "") or None
                return self._task_events(event, attempt, _TASK_ENDS[kind], error)
        return []

    # -- the pipeline run ---------------------------------------------------------------------
    def _pipeline_event(self, event_type: str, ts: float, error: str | None = None) -> Any:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

        facets = self._run_facets()
        if error:
            facets["errorMessage"] = self._error(error)
        return RunEvent(
            eventType=RunState(event_type),
            eventTime=_time(ts),
            producer=self.producer,
            run=Run(runId=self.run_uuid, facets=facets),
            job=Job(self.namespace, self.pipeline_id, facets=self._job_facets("PIPELINE")),
            inputs=[],
            outputs=[],
        )

    def _run_error(self, event: Event) -> str:
        data = event.data or {}
        if data.get("error"):
            return str(data["error"])
        failed = [str(t) for t in data.get("failed_tasks") or []]
        if failed:
            return f"task(s) failed: {', '.join(failed)}"
        return f"the run ended {event.state}"

    def _run_facets(self) -> dict[str, Any]:
        """The facets every run event carries (made once: events share them)."""
        if self._shared_run_facets is None:
            self._shared_run_facets = self._make_run_facets()
        return dict(self._shared_run_facets)

    def _make_run_facets(self) -> dict[str, Any]:
        from openlineage.client.facet_v2 import nominal_time_run, processing_engine_run

        from lockgate import __version__

        facets: dict[str, Any] = {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=__version__,
                name="lockgate",
                openlineageAdapterVersion=_client_version(),
                producer=self.producer,
            )
        }
        if self.dates is not None:
            start = self.dates.data_interval_start
            end = self.dates.data_interval_end
            facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
                nominalStartTime=start.astimezone(UTC).isoformat(),
                nominalEndTime=end.astimezone(UTC).isoformat() if end > start else None,
                producer=self.producer,
            )
        return facets

    def _job_facets(self, job_type: str) -> dict[str, Any]:
        from openlineage.client.facet_v2 import job_type_job

        if job_type not in self._shared_job_facets:
            self._shared_job_facets[job_type] = job_type_job.JobTypeJobFacet(
                processingType="BATCH",
                integration="LOCKGATE",
                jobType=job_type,
                producer=self.producer,
            )
        return {"jobType": self._shared_job_facets[job_type]}

    def _error(self, message: str) -> Any:
        from openlineage.client.facet_v2 import error_message_run

        return error_message_run.ErrorMessageRunFacet(
            message=message, programmingLanguage="python", producer=self.producer
        )

    # -- task attempts ------------------------------------------------------------------------
    def _task_events(
        self, event: Event, attempt: _Attempt, event_type: str, error: str | None
    ) -> list[Any]:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import parent_run

        assert event.task_id is not None
        uuid = run_uuid(self.run_id, event.task_id, event.attempt)
        name = f"{self.pipeline_id}.{event.task_id}"
        job_facets = self._job_facets("TASK")

        def facets(with_error: bool) -> dict[str, Any]:
            found = self._run_facets()
            found["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=self.run_uuid),
                job=parent_run.Job(namespace=self.namespace, name=self.pipeline_id),
                root=parent_run.Root(
                    run=parent_run.RootRun(runId=self.run_uuid),
                    job=parent_run.RootJob(namespace=self.namespace, name=self.pipeline_id),
                ),
                producer=self.producer,
            )
            if with_error and error:
                found["errorMessage"] = self._error(error)
            return found

        inputs, outputs = self._datasets(attempt.facts)
        start = RunEvent(
            eventType=RunState.START,
            eventTime=_time(attempt.started if attempt.started is not None else event.ts),
            producer=self.producer,
            run=Run(runId=uuid, facets=facets(False)),
            job=Job(self.namespace, name, facets=job_facets),
            inputs=inputs,
            outputs=[],
        )
        end = RunEvent(
            eventType=RunState(event_type),
            eventTime=_time(event.ts),
            producer=self.producer,
            run=Run(runId=uuid, facets=facets(event_type != "COMPLETE")),
            job=Job(self.namespace, name, facets=job_facets),
            inputs=inputs,
            outputs=outputs,
        )
        return [start, end]

    def _datasets(self, found: list[tuple[str, dict[str, Any]]]) -> tuple[list[Any], list[Any]]:
        from openlineage.client.event_v2 import InputDataset, OutputDataset
        from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

        read: dict[str, dict[str, Any]] = {}
        written: dict[str, dict[str, Any]] = {}
        for kind, data in found:
            uri = data.get("uri")
            if not isinstance(uri, str):
                continue
            if kind == facts.DATASET_READ:
                read[uri] = data
            elif kind == facts.DATASET_WRITTEN:
                written[uri] = data
                for source in data.get("inputs") or []:
                    read.setdefault(str(source), {})
        inputs = []
        for uri, data in read.items():
            namespace, name = dataset_name(uri)
            inputs.append(
                InputDataset(namespace, name, facets=self._dataset_facets(data.get("schema")))
            )
        outputs = []
        for uri, data in written.items():
            namespace, name = dataset_name(uri)
            facets = self._dataset_facets(data.get("schema"))
            lineage = self._column_lineage(data.get("columns"))
            if lineage is not None:
                facets["columnLineage"] = lineage
            out_facets: dict[str, Any] = {}
            if isinstance(data.get("rows"), int):
                out_facets["outputStatistics"] = stats.OutputStatisticsOutputDatasetFacet(
                    rowCount=data["rows"], producer=self.producer
                )
            outputs.append(OutputDataset(namespace, name, out_facets, facets=facets))
        return inputs, outputs

    def _dataset_facets(self, schema: Any) -> dict[str, Any]:
        from openlineage.client.facet_v2 import schema_dataset, tags_dataset

        if not isinstance(schema, list) or not schema:
            return {}
        columns = [c for c in schema if isinstance(c, dict) and c.get("name") is not None]
        facets: dict[str, Any] = {
            "schema": schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(
                        name=str(c["name"]),
                        type=str(c.get("type") or "") or None,
                        ordinal_position=position,
                    )
                    for position, c in enumerate(columns, start=1)
                ],
                producer=self.producer,
            )
        }
        tags = [
            tags_dataset.TagsDatasetFacetFields(
                key=CLASSIFICATION_KEY, value=str(c["tag"]), source="lockgate", field=str(c["name"])
            )
            for c in columns
            if c.get("tag")
        ]
        if tags:
            facets["tags"] = tags_dataset.TagsDatasetFacet(tags=tags, producer=self.producer)
        return facets

    def _column_lineage(self, columns: Any) -> Any:
        from openlineage.client.facet_v2 import column_lineage_dataset as cl

        if not isinstance(columns, dict) or not columns:
            return None
        fields: dict[str, Any] = {}
        for output, sources in columns.items():
            by_field: dict[tuple[str, str, str], list[Any]] = {}
            for source in sources if isinstance(sources, list) else []:
                if not isinstance(source, dict) or not source.get("dataset"):
                    continue
                namespace, name = dataset_name(str(source["dataset"]))
                masking = bool(source.get("masking"))
                op = source.get("transform")
                by_field.setdefault((namespace, name, str(source.get("field"))), []).append(
                    cl.Transformation(
                        type="DIRECT",
                        subtype=_SUBTYPES.get(str(source.get("kind")), "TRANSFORMATION"),
                        description=str(op) if op else None,
                        masking=masking,
                    )
                )
            if by_field:  # `count(*)` draws on no column
                fields[str(output)] = cl.Fields(
                    inputFields=[
                        cl.InputField(namespace=ns, name=nm, field=fd, transformations=done)
                        for (ns, nm, fd), done in by_field.items()
                    ]
                )
        if not fields:
            return None
        return cl.ColumnLineageDatasetFacet(fields=fields, producer=self.producer)


def _touches_data(found: Iterable[tuple[str, dict[str, Any]]]) -> bool:
    return any(kind in (facts.DATASET_READ, facts.DATASET_WRITTEN) for kind, _ in found)


@functools.cache
def _client_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openlineage-python")
    except PackageNotFoundError:
        return "unknown"


# -- sending ------------------------------------------------------------------------------------
def make_transport(config: LineageConfig) -> Any:
    """The openlineage-python transport `config` names (the HTTP API key read from its
    environment variable now; KeyError-free: a missing variable is a ConfigError)."""
    if config.transport == "file":
        from openlineage.client.transport.file import FileConfig, FileTransport

        assert config.path is not None
        config.path.parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(config.path), append=True))
    if config.transport == "console":
        from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport

        _console_logging()
        return ConsoleTransport(ConsoleConfig())
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    auth: dict[str, str] = {}
    if config.api_key_env:
        key = os.environ.get(config.api_key_env, "")
        if not key:
            raise ConfigError(
                f"[lineage] api_key_env names {config.api_key_env}, which is not set; set it "
                "to the lineage server's API key"
            )
        auth = {"type": "api_key", "apiKey": key}
    retry = {
        "total": config.retries,
        "read": config.retries,
        "connect": config.retries,
        "backoff_factor": 0.3,
        "status_forcelist": [500, 502, 503, 504],
        "allowed_methods": ["HEAD", "POST"],
    }
    http = HttpConfig.from_dict(
        {
            "url": config.url,
            "endpoint": config.endpoint,
            "timeout": config.timeout,
            "verify": config.verify,
            "auth": auth,
            "retry": retry,
        }
    )
    return HttpTransport(http)


def _console_logging() -> None:
    """The console transport logs each event at INFO: show them on stderr, one per line."""
    import logging

    class ToStderr(logging.Handler):
        """Writes to the standard error of the moment (which tests and the CLI may swap)."""

        def emit(self, record: logging.LogRecord) -> None:
            sys.stderr.write(record.getMessage() + "\n")

    logger = logging.getLogger("openlineage.client.transport.console")
    if not any(type(h).__name__ == "ToStderr" for h in logger.handlers):
        logger.addHandler(ToStderr())
    logger.setLevel(logging.INFO)
    logger.propagate = False


BATCH_S = 0.5
"""How often the background thread converts and sends what the run queued."""


class Emitter:
    """A run's lineage: a bus subscriber that queues events (nothing else in the engine's
    thread) and a background thread that converts and sends them, in batches every
    `BATCH_S` seconds (a thread woken for every event would contend for the interpreter
    with the run's own work). `close()` at the end of the run sends what is left (waiting
    at most `close_timeout` seconds)."""

    def __init__(
        self,
        config: LineageConfig,
        pipeline_id: str,
        dates: RunDates | None = None,
        *,
        transport: Callable[[LineageConfig], Any] = make_transport,
    ) -> None:
        self.config = config
        self.pipeline_id = pipeline_id
        self.dates = dates
        self.close_timeout = (config.timeout + 1) * (config.retries + 1) + 5
        self.sent = 0
        self.failed: str | None = None
        """Why sending stopped (reported once on stderr), or None."""
        self._make_transport = transport
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._converter: Converter | None = None
        self._client: Any = None

    def __call__(self, event: Event) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="lockgate-lineage", daemon=True
                    )
                    self._thread.start()
        self._queue.put(event)

    def close(self, timeout: float | None = None) -> None:
        """Send what is queued, then stop (the thread is left behind, as a daemon, if the
        transport is still busy after `timeout`)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(self.close_timeout if timeout is None else timeout)

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(BATCH_S)
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if self.failed is None:  # after a failure: drained without work
                    self._send(item)
            if stopping:
                break
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing a broken transport
                self._client.close(1.0)

    def _send(self, event: Event) -> None:
        try:
            if self._converter is None:
                self._converter = Converter(
                    self.config.namespace, self.pipeline_id, event.run_id, self.dates
                )
                self._client = self._new_client()
            for done in self._converter.convert(event):
                if self.config.transport == "file":
                    with _FILE_LOCK:
                        self._client.emit(done)
                else:
                    self._client.emit(done)
                self.sent += 1
        except Exception as exc:  # a transport must never fail the run
            self._give_up(exc)

    def _new_client(self) -> Any:
        from openlineage.client import OpenLineageClient

        return OpenLineageClient(transport=self._make_transport(self.config))

    def _give_up(self, exc: BaseException) -> None:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        self.failed = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        sys.stderr.write(
            f"lockgate: lineage: could not send OpenLineage events to {self.config.where} "
            f"({self.failed}); the run goes on without them\n"
        )


def subscriber_for(
    project: Project, *, pipeline_id: str, dates: RunDates | None = None
) -> Emitter | None:
    """The lineage subscriber of one run of `pipeline_id` (subscribe it to the run's bus,
    `close()` it when the run ends), or None when the project emits no lineage. A bad
    `[lineage]` table is a ConfigError, raised here, before the run starts."""
    config = load_config(project)
    if config is None:
        return None
    return Emitter(config, pipeline_id, dates)
