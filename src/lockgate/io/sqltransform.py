"""A DuckDB SQL transform over named input datasets, streamed: what the `sql` task runs.

Each input is registered in DuckDB under its name as an Arrow stream (not a table): DuckDB
pulls record batches from the input's reader as it needs them, so memory stays flat for
filters and projections, and only what the query itself must hold (a join's build side, an
aggregate's groups) is kept (DuckDB spills it to a private temporary folder when it is large).
A query that scans an input twice (a self-join, a subquery) opens it again: each scan streams.

The query must be one read-only query (SELECT, WITH ... SELECT, UNION ...). DuckDB runs with
its file system, extensions and settings locked: the query sees its inputs and nothing else,
so lineage (outputs made from the declared inputs) is exact.

Classification travels by provenance: an output column takes the most sensitive tag of the
input columns its expression references, through CTEs, subqueries, joins and set operations
(`upper(email) AS contact`, `email || ''`, `WITH x AS (SELECT email AS e ...) SELECT e FROM x`
all stay `pii.email`; a raw tag beats a transformed one, which beats none). Counting
(`count(email)`) passes no tag. What cannot be traced is tagged on the safe side (see
`carried_tags`). `tags` declares the tag of an output column outright. The same tracing gives
the column lineage of the result (`Transform.columns`).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from lockgate.errors import DataError
from lockgate.io.base import BATCH_ROWS
from lockgate.io.connect import open_reader
from lockgate.io.dataset import Dataset, display
from lockgate.io.schemas import conform, declared
from lockgate.io.sqltags import KINDS, Traced, trace
from lockgate.model.classification import with_tag

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from lockgate.io.base import Reader

_LITERAL = re.compile(r"'(?:[^']|'')*'")
"""A quoted value in DuckDB's messages: data (maybe personal), never shown."""
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""An input's name: a plain SQL identifier, so the query can name it unquoted."""

MEMORY_LIMIT = "1GB"
"""DuckDB's memory for one transform (tasks may run side by side); past it, joins, sorts and
aggregates spill to a private temporary folder."""
_LOCKED = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
"""DuckDB settings of every transform: no files, URLs or extensions beyond the inputs."""


def check_names(names: Any) -> list[str]:
    """The input names, if each is an identifier and no two differ only in case (DuckDB's
    names are case-insensitive); DataError otherwise."""
    seen: dict[str, str] = {}
    for name in names:
        if not isinstance(name, str) or not NAME.match(name):
            raise DataError(
                f"sql: input name {name!r} is not an identifier; name inputs with letters, "
                "digits and _ (e.g. orders), as the query refers to them"
            )
        if name.lower() in seen:
            raise DataError(
                f"sql: inputs {seen[name.lower()]!r} and {name!r} differ only in case; SQL names "
                "are case-insensitive, so rename one"
            )
        seen[name.lower()] = name
    return list(seen.values())


class _Input:
    """One input as DuckDB sees it: a schema, and a fresh stream of batches for each scan.

    The reader opened for the schema serves the first scan; later scans reopen the dataset.
    Errors of the dataset's reader are kept, so the task reports them (they name the dataset)
    instead of DuckDB's wrapping of them."""

    def __init__(self, name: str, dataset: Dataset, batch_rows: int) -> None:
        self.name = name
        self.dataset = dataset
        self.batch_rows = batch_rows
        self._first: Reader | None = open_reader(dataset, batch_rows=batch_rows)
        self.schema: pa.Schema = declared(self._first.schema, dict(dataset.tags))
        self.rows: int | None = None
        """Rows of the first scan that ran to the end (None if none did)."""
        self.error: BaseException | None = None
        self._readers: list[Reader] = [self._first]

    def __arrow_c_schema__(self) -> Any:
        return self.schema.__arrow_c_schema__()

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        import pyarrow as pa

        stream = pa.RecordBatchReader.from_batches(self.schema, self._batches())
        return stream.__arrow_c_stream__(requested_schema)

    def _batches(self) -> Iterator[pa.RecordBatch]:
        reader, self._first = self._first, None
        try:
            if reader is None:
                reader = open_reader(self.dataset, batch_rows=self.batch_rows)
                self._readers.append(reader)
            rows = 0
            for batch in reader:
                rows += batch.num_rows
                yield conform(batch, self.schema)
            if self.rows is None:
                self.rows = rows
        except Exception as exc:
            self.error = self.error or exc
            raise
        finally:
            if reader is not None:
                reader.close()

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self._readers.clear()
        self._first = None


class Transform:
    """A running SQL transform: a reader of the query's result (see `io.base.Reader`), whose
    schema carries the classification tags the columns inherit or are declared with.
    `parameters` are bound to the query's `$name` placeholders: values, never SQL text.

        with Transform("select ...", {"orders": Dataset(...)}) as result:
            for batch in result: ...
    """

    def __init__(
        self,
        query: str,
        inputs: Mapping[str, Dataset],
        *,
        tags: Mapping[str, str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        batch_rows: int = BATCH_ROWS,
        temp_dir: str | None = None,
        memory_limit: str = MEMORY_LIMIT,
    ) -> None:
        if not isinstance(query, str) or not query.strip():
            raise DataError("sql: the query is empty; give a SELECT over the inputs")
        self.query = query
        self.names = check_names(inputs)
        self.datasets = dict(inputs)
        self.declared = dict(tags or {})
        self.parameters = dict(parameters or {})
        self.batch_rows = batch_rows
        self.temp_dir = temp_dir
        self.memory_limit = memory_limit
        self.inputs: list[_Input] = []
        self._con: duckdb.DuckDBPyConnection | None = None
        self._result: pa.RecordBatchReader | None = None
        self._spill: str | None = None
        self.schema: pa.Schema | None = None
        self.rows = 0
        self.traced: list[Traced] = []
        """Per output column: its inherited tag and the input columns it comes from."""

    # -- Reader protocol --------------------------------------------------------------------
    def __enter__(self) -> Transform:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        if self._result is None or self.schema is None:
            raise RuntimeError("use the transform inside `with Transform(...) as t:`")
        schema = self.schema
        while True:
            try:
                batch = self._result.read_next_batch()
            except StopIteration:
                return
            except Exception as exc:
                raise self._error(exc) from None
            if batch.num_rows == 0:
                continue
            self.rows += batch.num_rows
            yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)

    def close(self) -> None:
        if self._result is not None:
            self._result = None
        if self._con is not None:
            self._con.close()
            self._con = None
        for source in self.inputs:
            source.close()
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)
            self._spill = None

    # -- running ----------------------------------------------------------------------------
    def _start(self) -> None:
        import duckdb
        import pyarrow as pa

        for name in self.names:
            self.inputs.append(_Input(name, self.datasets[name], self.batch_rows))
        self._spill = tempfile.mkdtemp(prefix="lockgate-sql-", dir=self.temp_dir)
        config: dict[str, Any] = dict(
            _LOCKED, temp_directory=self._spill, memory_limit=self.memory_limit
        )
        self._con = con = duckdb.connect(":memory:", config=config)
        for source in self.inputs:
            con.register(source.name, source)
        con.execute("SET TimeZone = 'UTC'")  # timestamps with a zone render the same anywhere
        con.execute("SET lock_configuration = true")
        tree = self._parse(con)
        try:
            relation = con.sql(self.query, params=self.parameters or None)
            fetch = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
            self._result = fetch(self.batch_rows)
        except Exception as exc:
            raise self._error(exc) from None
        assert self._result is not None
        out = self._result.schema
        schemas = {s.name: s.schema for s in self.inputs}
        self.traced = trace(tree, schemas, out.names, self.query)
        fields = []
        for i, column in enumerate(out):
            tag = self.declared.get(column.name, self.traced[i].tag)
            fields.append(with_tag(column, tag) if tag else column)
        self.schema = pa.schema(fields)

    def _parse(self, con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        """The query's syntax tree (DuckDB's JSON form); DataError unless it is one query."""
        row = con.execute("SELECT json_serialize_sql(?)", [self.query]).fetchall()
        tree: dict[str, Any] = json.loads(row[0][0])
        if tree.get("error"):
            message = str(tree.get("error_message") or "invalid SQL")
            if tree.get("error_type") == "parser":
                raise DataError(f"sql: {message}; check the query's syntax")
            raise DataError(
                "sql: the query must be one read-only query (SELECT, WITH ... SELECT, "
                f"UNION ...): {message}"
            )
        statements = tree.get("statements") or []
        if len(statements) != 1:
            raise DataError(
                f"sql: the query holds {len(statements)} statements; give exactly one SELECT"
            )
        node: dict[str, Any] = statements[0].get("node") or {}
        return node

    def _error(self, exc: BaseException) -> BaseException:
        """The error to report: an input's own (it names the dataset), else DuckDB's first
        line with a hint, as a DataError; quoted values in it are hidden (they are data)."""
        for source in self.inputs:
            if isinstance(source.error, DataError):
                return source.error
            if source.error is not None:
                return DataError(
                    f"sql: reading input {source.name!r} ({display(source.dataset.uri)}) "
                    f"failed: {type(source.error).__name__}: {source.error}"
                )
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        text = _LITERAL.sub("'***'", text)  # `Could not convert string '...'` quotes data
        hint = ""
        if "Did you mean" in str(exc) or "does not exist" in text:
            hint = f"; the query can read its inputs: {', '.join(self.names) or 'none given'}"
        elif "not found in FROM clause" in text or "Referenced column" in text:
            hint = "; " + "; ".join(
                f"{s.name} has {', '.join(s.schema.names)}" for s in self.inputs
            )
        return DataError(f"sql: {text}{hint}")

    # -- what was read ----------------------------------------------------------------------
    def read(self) -> list[tuple[str, Dataset, pa.Schema, int | None]]:
        """Each input: its name, dataset, schema and the rows a complete scan read."""
        return [(s.name, s.dataset, s.schema, s.rows) for s in self.inputs]

    def columns(self) -> dict[str, list[dict[str, Any]]]:
        """Column lineage of the result, as `DatasetWritten` facts carry it: per output column,
        the input columns it comes from (`{"dataset": catalogue key, "field", "transform":
        None, "masking": False, "kind"}`, kind from `sqltags.KINDS`)."""
        from lockgate.io.catalogue import key
        from lockgate.io.copy import capped_lineage, lineage_entry

        if self.schema is None:
            return {}
        keys = {name.lower(): key(self.datasets[name].uri) for name in self.names}
        return capped_lineage(
            {
                name: [
                    lineage_entry(keys.get(s.input, s.input), s.column, KINDS[s.kind])
                    for s in traced.sources
                ]
                for name, traced in zip(self.schema.names, self.traced, strict=False)
            }
        )
