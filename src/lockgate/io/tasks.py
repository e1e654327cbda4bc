"""The functions behind the `read`, `copy`, `sql` and `check` pipeline tasks (Python and YAML).

Each returns a small JSON document (rows, schema with tags, check results) and reports what it
read and wrote as facts (`model/facts.py`), which the engine stores: the datasets catalogue,
lineage and quality results (`run_checks` reports those). Plain paths are relative to the
project folder, whatever the working folder of the run. Nothing heavy is imported until a task
runs.

Checks before a write. A task that writes and has `checks` streams its data once into a
private spool, an uncompressed Arrow IPC file in `.lockgate/tmp`, memory-mapped: the checks
(DuckDB) scan it in place, without a copy, and only if no `error` check failed is the target
opened and written from it. So:
- the source is read once, even a remote table or an API (checks such as unique, references or
  custom SQL need the whole dataset, so they cannot judge it batch by batch);
- the data checked is exactly the data written (a source that changes between a check and a
  second read cannot slip unchecked rows through);
- a failed check writes nothing: the target is not even opened, so it stays as it was;
- the writer is used by the task's own thread only (DuckDB pulls streams from its worker
  threads, where a database connection may not be used).
Memory stays flat (the spool is file-backed pages the kernel can drop); the cost is one local
write of the data. Without checks, data streams straight from source to target. `read` and
`check` tasks write nothing: their checks read the source directly (one pass, counted).

Temporary data stays private. A task's spool and DuckDB's spill files (checks, SQL) live in
its own folder under `.lockgate/tmp` (0700, files 0600), never in the shared system /tmp; the
folder names its owning process, and a folder left by a killed task (its process gone, or 24 h
old when it names none) is removed when the next one is made.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.errors import DataError
from lockgate.io import artifacts
from lockgate.io.catalogue import key
from lockgate.io.dataset import Dataset, check_mode, display
from lockgate.io.schemas import describe_written
from lockgate.model import facts

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.config import Project
    from lockgate.io.base import WriteResult

PREVIEW_ROWS = 10
"""Rows an `sql` task without a target returns as its preview."""

DatasetRef = str | Mapping[str, Any]
"""A dataset as tasks take it: a URI or path, or a mapping with `uri` and any of `format`,
`query`, `connection`, `options`, `tags`, `zone`."""
DATASET_KEYS = ("uri", "format", "query", "connection", "options", "tags", "zone")
Checks = Sequence[Mapping[str, Any]] | None


# -- tasks --------------------------------------------------------------------------------------
def read_task(
    source: DatasetRef,
    *,
    format: str | None = None,
    query: str | None = None,
    connection: str | None = None,
    options: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    checks: Checks = None,
) -> dict[str, Any]:
    """Read `source` to the end (streamed) and return `{source, rows, schema, seconds}`, with
    the results of `checks` run over it (a data-quality gate on a source): a failed `error`
    check fails the task, `warn` results are recorded."""
    from lockgate.io.connect import open_reader
    from lockgate.io.schemas import declared

    project = _project()
    src = _source(source, project, format, query, connection, options, tags)
    plan = _parse_checks(checks)
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    with open_reader(src) as reader:
        counted = _Counted(reader, declared(reader.schema, dict(src.tags)))
        if plan:
            with _scratch(project) as scratch:
                results = _check(counted, plan, display(src.uri), project.root, scratch)
        counted.drain()
    _read_fact(src, counted.schema, counted.rows)
    doc: dict[str, Any] = {
        "source": display(src.uri),
        "rows": counted.rows,
        "schema": _describe(counted.schema),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if plan:
        doc["checks"] = results
    _say(f"read {display(src.uri)}: {counted.rows:,} row(s){_checked(results)}")
    return doc


def check_task(
    dataset: DatasetRef,
    checks: Sequence[Mapping[str, Any]],
    *,
    format: str | None = None,
    query: str | None = None,
    connection: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run data-quality `checks` over `dataset`: a failed `error` check fails the task (so its
    downstream tasks do not run); `warn` results are recorded. The result is `read_task`'s,
    with each check's outcome under `checks`."""
    if not checks:
        raise DataError("check: give the checks to run, e.g. checks: [{not_null: [id]}]")
    return read_task(
        dataset, format=format, query=query, connection=connection, options=options, checks=checks
    )


def copy_task(
    source: DatasetRef,
    target: DatasetRef,
    *,
    mode: str = "overwrite",
    keys: Sequence[str] | str = (),
    format: str | None = None,
    target_format: str | None = None,
    query: str | None = None,
    connection: str | None = None,
    target_connection: str | None = None,
    options: Mapping[str, Any] | None = None,
    target_options: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    checks: Checks = None,
) -> dict[str, Any]:
    """Copy any dataset to any other (`io.copy.copy`); `tags` declares the classification of
    target columns. With `checks`, the data is checked before the target is opened (see the
    module docstring): a failed `error` check writes nothing and fails the task."""
    from lockgate.io.copy import copy

    project = _project()
    src = _source(source, project, format, query, connection, options, None)
    dst = _dataset(
        target, project.root, target_format, None, target_connection, target_options, tags
    )
    key_columns = _keys(keys, mode)
    plan = _parse_checks(checks)
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    if plan:
        from lockgate.io.connect import open_reader
        from lockgate.io.schemas import declared

        with open_reader(src) as reader, _scratch(project) as scratch, _spool(scratch) as spool:
            schema = declared(reader.schema, {**dict(src.tags), **dict(dst.tags)})
            table = spool.fill(reader, schema)
            _read_fact(src, schema, table.num_rows)
            results = _check(table, plan, display(dst.uri), project.root, scratch)
            written = _land(
                table.to_batches(), schema, dst, mode=mode, keys=key_columns, sources=[src]
            )
        described = describe_written(schema, written.found_tags)
    else:
        done = copy(src, dst, mode=mode, keys=key_columns)
        written, described = done.written, done.schema
        _read_fact(src, described, done.rows)
    _written_fact(dst, written, described, [src], copied=True)
    doc = {
        "source": display(src.uri),
        **written.to_json(),
        "seconds": round(time.perf_counter() - started, 3),
        "schema": described,
    }
    if plan:
        doc["checks"] = results
    _say(
        f"copied {display(src.uri)} -> {written.target}: {written.rows:,} row(s), "
        f"{mode}{_checked(results)}"
    )
    return doc


def sql_task(
    query: str,
    inputs: Mapping[str, DatasetRef],
    target: DatasetRef | None = None,
    *,
    mode: str = "overwrite",
    keys: Sequence[str] | str = (),
    target_format: str | None = None,
    target_connection: str | None = None,
    target_options: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    checks: Checks = None,
) -> dict[str, Any]:
    """Run one DuckDB query over named input datasets (each streamed in under its name) and
    write its result into `target`; without a target, the result is a preview (rows, schema
    and the first rows, raw-classified values masked). Output columns keep the tags of the
    input columns they come from; `tags` declares others (see `io/sqltransform.py`).
    `parameters` are bound to `$name` placeholders in the query: values that must never
    become SQL (run params, upstream results) go there, not into the query's template."""
    from lockgate.io.sqltransform import Transform, check_names

    project = _project()
    if not isinstance(inputs, Mapping) or not inputs:
        raise DataError(
            "sql: give the inputs, a mapping of name -> dataset, e.g. {orders: data/orders.csv}"
        )
    check_names(inputs)
    sources = {
        name: _source(value, project, None, None, None, None, None)
        for name, value in inputs.items()
    }
    dst = None
    key_columns: tuple[str, ...] = ()
    if target is not None:
        dst = _dataset(
            target, project.root, target_format, None, target_connection, target_options, tags
        )
        key_columns = _keys(keys, mode)
    plan = _parse_checks(checks)
    started = time.perf_counter()
    named = display(dst.uri) if dst is not None else "sql result"
    results: list[dict[str, Any]] = []
    written: WriteResult | None = None
    preview: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(_scratch(project))
        transform = stack.enter_context(
            Transform(query, sources, tags=tags, parameters=parameters, temp_dir=str(scratch))
        )
        assert transform.schema is not None
        schema: pa.Schema = transform.schema
        batches: Any = transform
        if plan:
            table = stack.enter_context(_spool(scratch)).fill(transform, schema)
            results = _check(table, plan, named, project.root, scratch)
            batches = table.to_batches()
        if dst is None:
            preview = _preview(batches, schema)
        else:
            written = _land(
                batches, schema, dst, mode=mode, keys=key_columns, sources=list(sources.values())
            )
        _input_facts(transform)
    doc: dict[str, Any] = {"inputs": {n: display(d.uri) for n, d in sources.items()}}
    if dst is not None and written is not None:
        _written_fact(dst, written, schema, list(sources.values()), transform.columns())
        doc.update(written.to_json(), schema=describe_written(schema, written.found_tags))
        rows = written.rows
    else:
        doc.update(preview)
        rows = preview["rows"]
    doc["seconds"] = round(time.perf_counter() - started, 3)
    if plan:
        doc["checks"] = results
    how = f", {mode}" if dst is not None else ""
    _say(f"sql -> {named}: {rows:,} row(s){how}{_checked(results)}")
    return doc


# -- checks -------------------------------------------------------------------------------------
def _parse_checks(checks: Checks) -> list[Any]:
    if not checks:
        return []
    from lockgate.quality import parse_checks

    return list(parse_checks(list(checks)))


def _check(
    data: Any, plan: list[Any], named: str, root: Path, scratch: Path
) -> list[dict[str, Any]]:
    """Run `plan` over `data` (a table or a reader), reported as checks of `named`; raises
    `QualityCheckFailed` (a DataError naming the dataset and the failed checks) when an
    `error` check failed. Datasets that `references` checks name are opened like the task's
    own (paths relative to the project folder); DuckDB spills into `scratch`."""
    from lockgate.io.connect import open_reader
    from lockgate.quality import enforce, run_checks

    def source(uri: str) -> Any:
        return open_reader(_dataset(uri, root, None, None, None, None, None))

    try:
        results = run_checks(data, plan, dataset=named, sources=source, temp_dir=scratch)
    except Exception as exc:
        error = getattr(data, "error", None)  # the source failed while the checks read it
        if error is not None:
            raise error from None
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{named}: the checks could not run: {type(exc).__name__}: {exc}") from None
    docs = [r.to_json() for r in results]
    enforce(results)
    return docs


def _checked(results: list[dict[str, Any]]) -> str:
    if not results:
        return ""
    failed = sum(1 for r in results if not r.get("passed"))
    if failed:
        return f"; {len(results)} check(s), {failed} warning(s)"
    return f"; {len(results)} check(s) passed"


class _Counted:
    """A reader's batches (with `schema`'s tags) counted as they pass, once: the checks read
    them through it, and `drain()` reads what they left (schema-only checks read nothing).
    A failure of the source is kept, so the task reports it rather than DuckDB's wrapping."""

    def __init__(self, reader: Any, schema: pa.Schema) -> None:
        self.schema = schema
        self.rows = 0
        self.error: BaseException | None = None
        self._batches = self._pass(reader)

    def _pass(self, reader: Any) -> Iterator[pa.RecordBatch]:
        from lockgate.io.schemas import conform

        try:
            for batch in reader:
                self.rows += batch.num_rows
                yield conform(batch, self.schema)
        except Exception as exc:
            self.error = exc
            raise

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self._batches

    def drain(self) -> None:
        for _ in self._batches:
            pass


# -- spooling and writing -----------------------------------------------------------------------
SCRATCH_PREFIXES = ("task-", "spool-", "lockgate-sql-", "lockgate-quality-")
"""Names of the temporary folders lockgate makes under `.lockgate/tmp` (older versions made
`spool-` folders there)."""
OWNER_FILE = "owner"
"""The file in a temporary folder naming the process that made it (`store.owners` form)."""
STALE_AFTER_S = 24 * 3600
"""Age after which a temporary folder whose owner cannot be told (no owner file, or another
host's) is taken for stale."""


def _tmp_dir(project: Project) -> Path:
    """The project's folder for temporary data (owner-only)."""
    folder = project.state_dir / "tmp"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        if folder.stat().st_mode & 0o077:
            folder.chmod(0o700)
    return folder


@contextlib.contextmanager
def _scratch(project: Project) -> Iterator[Path]:
    """A new owner-only folder for one task's temporary data (its spool, DuckDB's spill files),
    naming this process in its owner file, removed afterwards. Folders left by killed tasks
    are swept first (`_sweep`)."""
    from lockgate.store.owners import process_owner

    parent = _tmp_dir(project)
    _sweep(parent)
    folder = Path(tempfile.mkdtemp(prefix="task-", dir=parent))  # 0700
    try:
        fd = os.open(folder / OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(process_owner() + "\n")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _sweep(parent: Path, now: float | None = None) -> list[str]:
    """Remove the temporary folders in `parent` whose owner is gone (a SIGKILL skips every
    clean-up, and the processes executor kills on each timeout and cancel); the names of
    those removed. A folder is stale when its owner file names a process of this host that no
    longer runs (a reused pid is told apart by its start time), or, when the owner cannot be
    told (no readable owner file, another host's process), once it is `STALE_AFTER_S` old."""
    from lockgate.store.owners import local_owner, owner_alive

    moment = time.time() if now is None else now
    removed: list[str] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(SCRATCH_PREFIXES) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            owner = Path(entry.path, OWNER_FILE).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            owner = ""
        if owner and local_owner(owner):
            stale = not owner_alive(owner, None, moment)
        else:
            try:
                stale = moment - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
            except OSError:
                stale = False
        if stale:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
    return removed


class _Spool:
    """A private local Arrow IPC file (0600) holding one task's data, read back
    memory-mapped."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = os.path.join(folder, "data.arrow")
        self._map: Any = None

    def fill(self, batches: Any, schema: pa.Schema) -> pa.Table:
        """Write `batches` (given `schema`'s tags) and return them as a zero-copy table."""
        import pyarrow as pa

        from lockgate.io.schemas import conform

        # created owner-only before Arrow opens it (Arrow would create it 0666 minus umask)
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        with pa.OSFile(self.path, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for batch in batches:
                if batch.num_rows:
                    writer.write_batch(conform(batch, schema))
        self._map = pa.memory_map(self.path, "r")
        table: pa.Table = pa.ipc.open_file(self._map).read_all()
        return table

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


@contextlib.contextmanager
def _spool(folder: Path) -> Iterator[_Spool]:
    """A spool in `folder` (a task's scratch folder, which removes it), closed afterwards."""
    spool = _Spool(folder)
    try:
        yield spool
    finally:
        spool.close()


def _land(
    batches: Any,
    schema: pa.Schema,
    target: Dataset,
    *,
    mode: str,
    keys: tuple[str, ...],
    sources: Sequence[Dataset],
) -> WriteResult:
    """Write every batch into `target`; visible only once all are written (the writer's
    commit), so a failure halfway leaves the old data. `sources`: where the data comes from."""
    from lockgate.io.connect import open_writer
    from lockgate.io.schemas import conform

    with open_writer(target, schema, mode=mode, keys=keys, sources=sources) as writer:
        for batch in batches:
            writer.write(conform(batch, schema))
        return writer.commit()


def _preview(batches: Any, schema: pa.Schema) -> dict[str, Any]:
    """`{rows, schema, preview}`: the rows counted to the end and the first few kept, values
    of raw-classified columns masked (results live in the metadata database)."""
    import pyarrow as pa

    from lockgate.model.classification import tag_of
    from lockgate.quality.examples import Masker, jsonable

    masker = Masker({f.name: tag_of(f) for f in schema})
    first: list[pa.RecordBatch] = []
    kept = rows = 0
    for batch in batches:
        if kept < PREVIEW_ROWS:
            first.append(batch.slice(0, PREVIEW_ROWS - kept))
            kept += first[-1].num_rows
        rows += batch.num_rows
    head = pa.Table.from_batches(first, schema=schema)
    preview = [
        {k: ("***" if v is not None and masker.masks(k) else jsonable(v)) for k, v in row.items()}
        for row in head.to_pylist()
    ]
    return {"rows": rows, "schema": _describe(schema), "preview": preview}


# -- facts --------------------------------------------------------------------------------------
def _describe(schema: Any) -> list[dict[str, Any]]:
    from lockgate.io.schemas import describe_schema

    if isinstance(schema, list):  # already described
        return schema
    return describe_schema(schema)


# facts name datasets as the store's catalogue does (io.catalogue.key): one spelling each
def _read_fact(src: Dataset, schema: Any, rows: int | None) -> None:
    facts.report(
        facts.DATASET_READ,
        {"uri": key(src.uri), "kind": src.kind, "rows": rows, "schema": _describe(schema)},
    )


def _input_facts(transform: Any) -> None:
    for _name, dataset, schema, rows in transform.read():
        _read_fact(dataset, schema, rows)


def _written_fact(
    dst: Dataset,
    written: WriteResult,
    schema: Any,
    inputs: Sequence[Dataset],
    columns: Mapping[str, list[dict[str, Any]]] | None = None,
    *,
    copied: bool = False,
) -> None:
    """Report a write; `columns`: its column lineage (io/copy.py `ColumnLineage`), or
    `copied`: each column is the one input's column of the same name."""
    from lockgate.io.copy import capped_lineage, identity_of

    described = describe_written(_describe(schema), written.found_tags)
    if copied and len(inputs) == 1:
        columns = identity_of(inputs[0], described)
    facts.report(
        facts.DATASET_WRITTEN,
        {
            "uri": key(dst.uri),
            "kind": dst.kind,
            "rows": written.rows,
            "mode": written.mode,
            "schema": described,
            "inputs": [key(d.uri) for d in inputs],
            "columns": capped_lineage(columns or {}),
        },
    )


# -- values -------------------------------------------------------------------------------------
def _project() -> Project:
    from lockgate.config import Project

    return Project.load()


def _source(
    value: Any,
    project: Project,
    format: str | None,
    query: str | None,
    connection: str | None,
    options: Mapping[str, Any] | None,
    tags: Mapping[str, str] | None,
) -> Dataset:
    """A dataset to read (`_dataset`), with the tags the store recorded when lockgate last
    wrote it, for the formats that cannot carry tags themselves (CSV, JSONL, SQL tables)."""
    from lockgate.io.catalogue import with_catalogue_tags

    dataset = _dataset(value, project.root, format, query, connection, options, tags)
    return with_catalogue_tags(dataset, project)


def _dataset(
    value: Any,
    root: Path,
    format: str | None,
    query: str | None,
    connection: str | None,
    options: Mapping[str, Any] | None,
    tags: Mapping[str, str] | None,
) -> Dataset:
    """A `Dataset` from a URI, a path (relative to the project folder) or a mapping with
    `uri` and any of format, query, connection, options, tags; the task's own values fill
    what the mapping leaves out. The URI is parsed here: a bad one fails before any I/O."""
    given: dict[str, Any] = {}
    if artifacts.is_ref(value):  # a table an upstream Python task returned: its Parquet file
        value = {"uri": value["uri"], "format": "parquet"}
    if isinstance(value, Mapping):
        unknown = sorted(set(map(str, value)) - set(DATASET_KEYS))
        if unknown:
            raise DataError(
                f"dataset {value.get('uri', '')!r}: unknown key {unknown[0]!r}; a dataset "
                f"mapping has {', '.join(DATASET_KEYS)}"
            )
        given = dict(value)
        value = given.get("uri")
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise DataError(f"expected a dataset URI or a file path, got {value!r}")
    named = given.get("connection", connection)
    # relative to its connection (a table, key or API path): resolved below, so that facts
    # and messages name the full dataset (its password hidden by `display`)
    uri = str(value) if named else _rooted(str(value), root)
    dataset = Dataset(
        uri,
        format=given.get("format", format),
        query=given.get("query", query),
        connection=named,
        options=dict(given.get("options") or options or {}),
        tags={**dict(tags or {}), **dict(given.get("tags") or {})},
        zone=_zone(given.get("zone")),
    )
    if named is not None:
        from lockgate.io.connect import resolved

        return resolved(dataset)
    dataset.location  # noqa: B018  (parsed now: a bad URI fails before any I/O)
    return dataset


def _zone(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"a dataset's zone must be a zone name such as staging, got {value!r}")
    return value.strip()


def _rooted(uri: str, root: Path) -> str:
    """`uri` with a relative file path (`data/x.csv`, `sqlite:///app.db#t`) made absolute
    under `root`: tasks resolve paths against the project folder, not the working folder."""
    if "://" not in uri:
        path = Path(uri).expanduser()
        return str(path if path.is_absolute() else root / path)
    scheme, rest = uri.split("://", 1)
    if scheme.lower() == "sqlite" and rest.startswith("/") and not rest.startswith("//"):
        from urllib.parse import quote

        return f"{scheme}:///{quote(root.as_posix())}{rest}"  # sqlite:////abs/app.db#t
    return uri


def _keys(keys: Sequence[str] | str, mode: str) -> tuple[str, ...]:
    out = (keys,) if isinstance(keys, str) else tuple(str(k) for k in keys or ())
    check_mode(mode, out)
    return out


def _say(line: str) -> None:
    """One line in the task's log (standard output is captured per attempt)."""
    sys.stdout.write(line + "\n")


# A table an upstream Python task returned reaches these tasks as its artifact reference (not
# loaded into memory by the engine): they read its Parquet file like any dataset, streamed.
for _task in (read_task, check_task, copy_task, sql_task):
    setattr(_task, "takes_table_refs", True)  # noqa: B010
