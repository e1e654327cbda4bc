"""Running checks over a table or a reader with DuckDB: `run_checks`.

All row-level checks that are plain predicates (not_null, range, accepted_values, regex) and
the table-level aggregates (row_count, freshness) share one scan: a single query of
`count(*) FILTER (WHERE ...)` and `max(...)` columns. `unique`, `references` and `sql` each run
their own query (grouping and joins, out of core in DuckDB). Examples (up to 5 failing rows) are
fetched only for checks that failed. A missing column, a query DuckDB refuses or an unreadable
referenced dataset fails that check with a message; the other checks still run.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from lockgate.errors import did_you_mean
from lockgate.model import facts
from lockgate.model.classification import tag_of
from lockgate.model.durations import format_duration
from lockgate.quality.checks import (
    AcceptedValues,
    Check,
    Freshness,
    NotNull,
    Range,
    References,
    Regex,
    RowCount,
    SchemaMatch,
    Sql,
    Unique,
)
from lockgate.quality.examples import MAX_EXAMPLES, rows
from lockgate.quality.parse import parse_checks
from lockgate.quality.results import CheckResult
from lockgate.quality.session import MEMORY_LIMIT, Session, as_arrow, quote
from lockgate.quality.typenames import type_matches

Sources = Mapping[str, Any] | Callable[[str], Any]
"""Opens the datasets `references` checks name: URI -> `pyarrow.Table` or reader."""


def run_checks(
    data: Any,
    checks: Iterable[Check | Mapping[str, Any]],
    *,
    dataset: str,
    now: dt.datetime | None = None,
    sources: Sources | None = None,
    tags: Mapping[str, str] | None = None,
    memory_limit: str = MEMORY_LIMIT,
    temp_dir: str | os.PathLike[str] | None = None,
) -> list[CheckResult]:
    """Every check's result over `data` (a `pyarrow.Table` or a reader, read once), in order;
    each is also reported as a `QualityChecked` fact of the running task.

    `dataset` names the data in results (passwords hidden). `now` is when freshness is judged
    (default: the current UTC time; a naive datetime is UTC). `sources` opens the datasets that
    `references` checks name by URI: a mapping URI -> table/reader, or a function of the URI
    (lockgate's connectors when omitted); readers opened here are closed here. `tags` adds
    classifications (`{"email": "pii.email"}`) to those the schema's fields carry. DuckDB
    spills to a private folder made in `temp_dir` (default: the system's temporary folder;
    tasks give the project's private one, since spilled data is the data in clear).
    """
    from lockgate.io.dataset import display

    parsed = parse_checks(list(checks))
    arrow = as_arrow(data)
    all_tags: dict[str, str | None] = {f.name: tag_of(f) for f in arrow.schema}
    all_tags.update(tags or {})
    moment = _utc(now)
    with Session(arrow, all_tags, memory_limit=memory_limit, temp_dir=temp_dir) as session:
        runner = _Runner(session, display(dataset), moment, sources)
        results = runner.run(parsed)
    for result in results:
        facts.report(facts.QUALITY_CHECKED, result.to_json())
    return results


def _utc(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    return now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now.astimezone(dt.UTC)


@dataclass
class _Scan:
    """A check's part of the shared scan: its aggregate columns and their parameters."""

    check: Check
    columns: list[str]
    params: list[Any]
    predicate: str | None = None
    """The failing-row condition, for row-level checks (examples are fetched with it)."""
    predicate_params: tuple[Any, ...] = ()


class _Runner:
    def __init__(
        self, session: Session, dataset: str, now: dt.datetime, sources: Sources | None
    ) -> None:
        self.s = session
        self.dataset = dataset
        self.now = now
        self.sources = sources
        self.names = set(session.schema.names)
        self.refs: dict[int, str | CheckResult] = {}

    def run(self, checks: list[Check]) -> list[CheckResult]:
        results: dict[int, CheckResult] = {}
        pending: list[tuple[int, Check]] = []
        for i, check in enumerate(checks):
            missing = self._missing(check)
            if missing is not None:
                results[i] = missing
            elif isinstance(check, SchemaMatch):
                results[i] = self._schema(check)
            else:
                pending.append((i, check))
        if pending:
            self.s.load()
            for i, check in pending:
                if isinstance(check, References):
                    self.refs[i] = self._reference(check)
            self.s.lock()
            scans: list[tuple[int, _Scan]] = []
            for i, check in pending:
                try:
                    scan = _scan_of(check, self)
                except ValueError as exc:
                    results[i] = self.result(check, False, str(exc))
                    continue
                if scan is not None:
                    scans.append((i, scan))
            self._scan_all(scans, results)
            for i, check in pending:
                if i not in results:
                    results[i] = self._guarded(check, partial(self._alone, i, check))
        return [results[i] for i in range(len(checks))]

    # -- helpers -------------------------------------------------------------------------------

    def result(
        self,
        check: Check,
        passed: bool,
        message: str,
        failing: int = 0,
        examples: list[dict[str, Any]] | None = None,
    ) -> CheckResult:
        return CheckResult(
            name=check.name,
            check=check.kind,
            severity=check.severity,
            passed=passed,
            failing_rows=failing,
            examples=examples or [],
            message=message,
            dataset=self.dataset,
        )

    def _missing(self, check: Check) -> CheckResult | None:
        for column in check.columns_used():
            if column not in self.names:
                hint = did_you_mean(column, sorted(self.names), "its columns are")
                return self.result(
                    check, False, f"column {column!r} not found in {self.dataset}{hint}"
                )
        if isinstance(check, Range) and _text_against_numbers(self.s.schema, check):
            return self.result(
                check,
                False,
                f"column {check.column!r} is text and the bounds are numbers (CSV columns are "
                f"read as text): give the source the option types: {{{check.column}: double}}",
            )
        return None

    def _guarded(self, check: Check, body: Callable[[], CheckResult]) -> CheckResult:
        import duckdb

        try:
            return body()
        except (duckdb.Error, ValueError, OverflowError) as exc:
            return self.result(check, False, f"could not run the check: {self.s.failure(exc)}")

    def _examples(self, sql: str, params: list[Any], derived: bool = False) -> list[dict[str, Any]]:
        return rows(
            self.s.table(f"{sql} LIMIT {MAX_EXAMPLES}", params), self.s.masker, derived_too=derived
        )

    # -- the shared scan -----------------------------------------------------------------------

    def _scan_all(self, planned: list[tuple[int, _Scan]], results: dict[int, CheckResult]) -> None:
        import duckdb

        if not planned:
            return
        columns = [col for _, scan in planned for col in scan.columns]
        params = [p for _, scan in planned for p in scan.params]
        try:
            values = self.s.scalars(f"SELECT {', '.join(columns)} FROM data", params)
        except duckdb.Error:
            return  # one of them cannot run: each runs alone, so the others still report
        at = 0
        for i, scan in planned:
            mine = values[at : at + len(scan.columns)]
            at += len(scan.columns)
            results[i] = self._guarded(scan.check, partial(self._judge, scan, mine))

    def _alone(self, index: int, check: Check) -> CheckResult:
        scan = _scan_of(check, self)
        if scan is not None:
            values = self.s.scalars(f"SELECT {', '.join(scan.columns)} FROM data", scan.params)
            return self._judge(scan, values)
        if isinstance(check, Unique):
            return self._unique(check)
        if isinstance(check, References):
            ref = self.refs[index]
            return ref if isinstance(ref, CheckResult) else self._references(check, ref)
        if isinstance(check, Sql):
            return self._sql(check)
        raise ValueError(f"no way to run a {check.kind} check")

    def _judge(self, scan: _Scan, values: tuple[Any, ...]) -> CheckResult:
        check = scan.check
        if isinstance(check, RowCount):
            return self._row_count(check, int(values[0]))
        if isinstance(check, Freshness):
            return self._freshness(check, values[0])
        failing = int(values[0])
        examples: list[dict[str, Any]] = []
        if failing and scan.predicate:
            examples = self._examples(
                f"SELECT * FROM data WHERE {scan.predicate}", list(scan.predicate_params)
            )
        return self.result(check, failing == 0, _row_message(check, failing), failing, examples)

    # -- table-level checks --------------------------------------------------------------------

    def _row_count(self, check: RowCount, count: int) -> CheckResult:
        low, high = check.min, check.max
        ok = (low is None or count >= low) and (high is None or count <= high)
        if low is not None and high is not None:
            expected = f"between {low} and {high}"
        elif low is not None:
            expected = f"at least {low}"
        else:
            expected = f"at most {high}"
        return self.result(check, ok, f"{count} row(s); expected {expected}")

    def _freshness(self, check: Freshness, newest_us: Any) -> CheckResult:
        limit = check.max_age_text or format_duration(check.max_age)
        if newest_us is None:
            return self.result(
                check, False, f"no {check.column} value to judge freshness by (max_age {limit})"
            )
        newest = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(newest_us))
        age = (self.now - newest).total_seconds()
        shown = self.s.masker.text(check.column, newest.isoformat())
        when = f"{format_duration(int(age))} old" if age >= 1 else "current"
        ok = age <= check.max_age
        return self.result(check, ok, f"newest {check.column} is {shown} ({when}); max_age {limit}")

    def _schema(self, check: SchemaMatch) -> CheckResult:
        problems: list[str] = []
        fields = {f.name: f for f in self.s.schema}
        for name, expected in check.columns.items():
            field = fields.get(name)
            if field is None:
                problems.append(f"missing column {name!r}")
            elif not type_matches(expected, field.type):
                problems.append(f"{name} is {field.type}, expected {expected}")
        if check.exact:
            extra = [n for n in fields if n not in check.columns]
            if extra:
                problems.append(f"unexpected column(s) {', '.join(extra)}")
        if problems:
            return self.result(check, False, "; ".join(problems))
        return self.result(check, True, f"{len(check.columns)} column(s) as expected")

    # -- checks with their own query -----------------------------------------------------------

    def _unique(self, check: Unique) -> CheckResult:
        keys = ", ".join(quote(c) for c in check.columns)
        present = " AND ".join(f"{quote(c)} IS NOT NULL" for c in check.columns)
        groups = f"SELECT {keys} FROM data WHERE {present} GROUP BY {keys} HAVING count(*) > 1"
        values, failing = self.s.scalars(
            "SELECT count(*), coalesce(sum(n), 0) FROM ("
            f"SELECT count(*) AS n FROM data WHERE {present} GROUP BY {keys} HAVING count(*) > 1)",
            [],
        )
        label = ", ".join(check.columns)
        if not failing:
            return self.result(check, True, f"0 row(s) share one {label} value")
        join = " AND ".join(f"d.{quote(c)} = g.{quote(c)}" for c in check.columns)
        order = ", ".join(f"d.{quote(c)}" for c in check.columns)
        examples = self._examples(
            f"SELECT d.* FROM data d SEMI JOIN ({groups}) g ON {join} ORDER BY {order}", []
        )
        return self.result(
            check,
            False,
            f"{int(failing)} row(s) share {int(values)} duplicated {label} value(s)",
            int(failing),
            examples,
        )

    def _reference(self, check: References) -> str | CheckResult:
        """Load the referenced dataset's keys (before the connection is locked)."""
        from lockgate.io.dataset import display

        target = check.dataset
        label = display(target) if isinstance(target, str) else "the referenced data"
        close: Callable[[], None] | None = None
        try:
            source = target
            if isinstance(target, str):
                source, owned = self._open(target)
                if owned and hasattr(source, "close"):
                    close = source.close
            arrow = as_arrow(source)
            names = set(arrow.schema.names)
            for column in check.to:
                if column not in names:
                    hint = did_you_mean(column, sorted(names), "its columns are")
                    return self.result(
                        check, False, f"column {column!r} not found in {label}{hint}"
                    )
            return self.s.add_reference(arrow, check.to)
        except Exception as exc:  # any failure to read it fails this check, not the others
            return self.result(check, False, f"could not read {label}: {self.s.failure(exc)}")
        finally:
            if close is not None:
                close()

    def _open(self, uri: str) -> tuple[Any, bool]:
        sources = self.sources
        if isinstance(sources, Mapping) and uri in sources:
            return sources[uri], False
        if callable(sources):
            return sources(uri), True
        from lockgate.io.connect import open_reader
        from lockgate.io.dataset import Dataset

        return open_reader(Dataset(uri)), True

    def _references(self, check: References, table: str) -> CheckResult:
        from lockgate.io.dataset import display

        present = " AND ".join(f"d.{quote(c)} IS NOT NULL" for c in check.columns)
        match = " AND ".join(
            f"r.{quote(t)} = d.{quote(c)}" for c, t in zip(check.columns, check.to, strict=True)
        )
        failing_rows = (
            f"SELECT d.* FROM data d WHERE {present} "
            f"AND NOT EXISTS (SELECT 1 FROM {table} r WHERE {match})"
        )
        (failing,) = self.s.scalars(f"SELECT count(*) FROM ({failing_rows})", [])
        target = display(check.dataset) if isinstance(check.dataset, str) else "the referenced data"
        message = (
            f"{int(failing)} row(s) with {', '.join(check.columns)} not found in {target} "
            f"({', '.join(check.to)})"
        )
        examples = self._examples(failing_rows, []) if failing else []
        return self.result(check, not failing, message, int(failing), examples)

    def _sql(self, check: Sql) -> CheckResult:
        import duckdb

        statements = self.s.con.extract_statements(check.query)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            return self.result(
                check, False, "the query must be one SELECT statement returning the failing rows"
            )
        query = _subquery(statements[0].query)
        (failing,) = self.s.scalars(f"SELECT count(*) FROM {query} AS failing", [])
        examples = (
            self._examples(f"SELECT * FROM {query} AS failing", [], derived=True) if failing else []
        )
        return self.result(
            check, not failing, f"the query returned {int(failing)} row(s)", int(failing), examples
        )


def _subquery(query: str) -> str:
    """A SELECT's text as a parenthesised subquery: a trailing `;` dropped and the text on
    lines of its own, so a trailing `-- comment` cannot swallow the closing parenthesis."""
    import duckdb

    text = query.encode()  # token positions count bytes
    tokens = duckdb.tokenize(query)
    while tokens:
        at, kind = tokens[-1]
        if kind == duckdb.token_type.comment:
            tokens.pop()
        elif kind == duckdb.token_type.operator and text[at:].lstrip().startswith(b";"):
            text = text[:at]
            tokens.pop()
        else:
            break
    return f"(\n{text.decode()}\n)"


def _scan_of(check: Check, runner: _Runner) -> _Scan | None:
    """The check's part of the shared scan; None for checks that need their own query."""
    import pyarrow as pa

    if isinstance(check, RowCount):
        return _Scan(check, ["count(*)"], [])
    if isinstance(check, Freshness):
        field = runner.s.schema.field(check.column)
        column = quote(check.column)
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if pa.types.is_timestamp(kind):
            value = column
        elif pa.types.is_date(kind):
            value = f"CAST({column} AS TIMESTAMP)"
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            value = f"TRY_CAST({column} AS TIMESTAMPTZ)"
        else:
            raise ValueError(
                f"freshness needs a timestamp, date or ISO 8601 text column; "
                f"{check.column} is {field.type}"
            )
        return _Scan(check, [f"epoch_us(max({value}))"], [])
    predicate = _predicate(check, runner)
    if predicate is None:
        return None
    sql, params = predicate
    return _Scan(check, [f"count(*) FILTER (WHERE {sql})"], list(params), sql, tuple(params))


def _predicate(check: Check, runner: _Runner) -> tuple[str, list[Any]] | None:
    """The SQL condition a failing row meets, with its parameters."""
    import pyarrow as pa

    if isinstance(check, NotNull):
        return " OR ".join(f"{quote(c)} IS NULL" for c in check.columns), []
    if isinstance(check, Range):
        column = quote(check.column)
        parts, params = [], []
        if check.min is not None:
            parts.append(f"{column} {'<' if check.inclusive else '<='} ?")
            params.append(check.min)
        if check.max is not None:
            parts.append(f"{column} {'>' if check.inclusive else '>='} ?")
            params.append(check.max)
        if pa.types.is_floating(runner.s.schema.field(check.column).type):
            parts.append(f"isnan({column})")
        return f"({' OR '.join(parts)})", params
    if isinstance(check, AcceptedValues):
        column = quote(check.column)
        kind = runner.s.column_type(check.column)
        values = [v for v in check.values if v is not None]
        if kind == "VARCHAR" or kind.startswith("ENUM"):
            return (
                f"NOT list_contains(CAST(? AS VARCHAR[]), CAST({column} AS VARCHAR))",
                [[str(v) for v in values]],
            )
        return f"NOT list_contains(CAST(? AS {kind}[]), {column})", [values]
    if isinstance(check, Regex):
        return (
            f"NOT regexp_full_match(CAST({quote(check.column)} AS VARCHAR), ?)",
            [check.pattern],
        )
    return None


def _row_message(check: Check, failing: int) -> str:
    if isinstance(check, NotNull):
        return f"{failing} row(s) with a null {' or '.join(check.columns)}"
    if isinstance(check, Range):
        return f"{failing} row(s) with {check.column} outside {_interval(check)}"
    if isinstance(check, AcceptedValues):
        shown = ", ".join(repr(v) for v in check.values[:5])
        more = f" and {len(check.values) - 5} more" if len(check.values) > 5 else ""
        return f"{failing} row(s) with {check.column} not in [{shown}{more}]"
    if isinstance(check, Regex):
        return f"{failing} row(s) with {check.column} not fully matching {check.pattern!r}"
    return f"{failing} failing row(s)"


def _interval(check: Range) -> str:
    if check.min is not None and check.max is not None:
        left, right = ("[", "]") if check.inclusive else ("(", ")")
        return f"{left}{check.min}, {check.max}{right}"
    if check.min is not None:
        return f"{'>=' if check.inclusive else '>'} {check.min}"
    return f"{'<=' if check.inclusive else '<'} {check.max}"


def _text_against_numbers(schema: Any, check: Range) -> bool:
    """A text column given numeric bounds: DuckDB would refuse to compare them."""
    import pyarrow as pa

    kind = schema.field(check.column).type
    bounds = [b for b in (check.min, check.max) if b is not None]
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    numeric = all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
    return text and bool(bounds) and numeric
