"""Folding a batch of events into rows: the events themselves plus the latest state of each run,
task and attempt they touch. Rows are tuples for the DBAPI's executemany (the hot write path
skips SQLAlchemy's per-row work; the statements are plain SQL valid on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lockgate.model import events as ev
from lockgate.model.events import Event

_ATTEMPT_EVENTS = frozenset(
    {
        ev.TASK_STARTED,
        ev.TASK_SUCCEEDED,
        ev.TASK_FAILED,
        ev.TASK_RETRYING,
        ev.TASK_SKIPPED,
        ev.TASK_CANCELLED,
    }
)
_TASK_EVENTS = _ATTEMPT_EVENTS | {ev.TASK_QUEUED, ev.TASK_UPSTREAM_FAILED, ev.TASK_LOST}
_COLUMN_FIELDS = frozenset({"result_json", "log_path", "started_at", "ended_at"})
_encode = json.JSONEncoder(default=str, separators=(",", ":")).encode


_INSERTS: dict[str, tuple[str, int, str]] = {
    # table: (head, columns, conflict clause)
    "events": ("INSERT INTO events (run_id, ts, kind, task_id, attempt, state, data)", 7, ""),
    "task_runs": (
        "INSERT INTO task_runs (run_id, task_id, state, attempts, updated_at, error)",
        6,
        " ON CONFLICT (run_id, task_id) DO UPDATE SET "
        "state = excluded.state, attempts = COALESCE(excluded.attempts, task_runs.attempts), "
        "updated_at = excluded.updated_at, error = excluded.error",
    ),
    "task_attempts": (
        "INSERT INTO task_attempts "
        "(run_id, task_id, attempt, state, started_at, ended_at, error, log_path)",
        8,
        " ON CONFLICT (run_id, task_id, attempt) DO UPDATE SET "
        "state = excluded.state, "
        "started_at = COALESCE(excluded.started_at, task_attempts.started_at), "
        "ended_at = COALESCE(excluded.ended_at, task_attempts.ended_at), "
        "error = COALESCE(excluded.error, task_attempts.error), "
        "log_path = COALESCE(excluded.log_path, task_attempts.log_path)",
    ),
    "results": (
        "INSERT INTO results (run_id, task_id, value, size)",
        4,
        " ON CONFLICT (run_id, task_id) DO UPDATE SET value = excluded.value, size = excluded.size",
    ),
}


def statements(placeholder: str) -> dict[str, str]:
    """The write statements with the driver's placeholder (`?` for sqlite3, `%s` for psycopg)."""

    def marks(n: int) -> str:
        return ", ".join([placeholder] * n)

    out = {name: f"{head} VALUES ({marks(n)}){tail}" for name, (head, n, tail) in _INSERTS.items()}
    out["run_started"] = (
        f"UPDATE runs SET state = {placeholder}, started_at = {placeholder}, "
        f"heartbeat_at = {placeholder}, executor = COALESCE({placeholder}, executor) "
        f"WHERE id = {placeholder} AND owner = {placeholder}"
    )
    out["dataset_events"] = (
        f"INSERT INTO dataset_events (uri, run_id, task_id, ts) VALUES ({marks(4)})"
    )
    # back to the queue for any scheduler; its interrupted tasks keep their retries
    out["run_requeued"] = (
        f"UPDATE runs SET state = 'queued', owner = NULL, ended_at = NULL, "
        f"heartbeat_at = {placeholder}, error = {placeholder} "
        f"WHERE id = {placeholder} AND owner = {placeholder}"
    )
    out["task_requeued"] = FORGIVE_INTERRUPTED.replace("?", placeholder)
    out["catalogue"] = (
        f"INSERT INTO datasets (uri, kind, schema, rows, run_id, task_id, updated_at) "
        f"VALUES ({marks(7)}) ON CONFLICT (uri) DO UPDATE SET kind = excluded.kind, "
        "schema = excluded.schema, rows = excluded.rows, run_id = excluded.run_id, "
        "task_id = excluded.task_id, updated_at = excluded.updated_at"
    )
    out["lineage"] = (
        f"INSERT INTO lineage (run_id, task_id, input_uri, output_uri, ts) VALUES ({marks(5)})"
    )
    out["quality_results"] = (
        "INSERT INTO quality_results (run_id, task_id, attempt, dataset, name, check_kind, "
        f"severity, passed, failing_rows, detail, ts) VALUES ({marks(11)})"
    )
    out["policy_decisions"] = (
        "INSERT INTO policy_decisions (run_id, task_id, attempt, dataset, zone, decision, detail, "
        f"ts) VALUES ({marks(8)})"
    )
    out["run_finished"] = (
        f"UPDATE runs SET state = {placeholder}, ended_at = {placeholder}, "
        f"heartbeat_at = {placeholder}, error = {placeholder} "
        f"WHERE id = {placeholder} AND owner = {placeholder}"
    )
    # run-level writes are fenced by owner (the writing process, appended by the store): a
    # process that lost its run to another (taken over after a long stall) cannot end it
    return out


FORGIVE_INTERRUPTED = (
    "UPDATE task_runs SET retry_base = attempts WHERE run_id = ? "
    "AND state IN ('cancelled', 'lost') AND EXISTS (SELECT 1 FROM task_attempts a "
    "WHERE a.run_id = task_runs.run_id AND a.task_id = task_runs.task_id "
    "AND a.attempt = task_runs.attempts AND a.state IN ('cancelled', 'lost'))"
)
"""Attempts interrupted by their driver's death or stop do not count against the task's retries:
its last attempt was cancelled or lost (not a task that was waiting to retry a failure)."""

COPY_FROM = 64  # rows; below this, COPY's extra statements cost more than they save


def insert_rows(cur: Any, name: str, rows: list[Any], placeholder: str, copy: bool) -> None:
    """Insert `rows` into table `name` with executemany, or on PostgreSQL with COPY, where an
    executemany costs a server round per row (5x slower for a batch of a fan-out's events).

    Upserts COPY into a temporary staging table first, then INSERT ... SELECT ... ON CONFLICT;
    that needs the keys of one batch to be unique, which `fold` guarantees."""
    head, n, tail = _INSERTS[name]
    if not copy or len(rows) < COPY_FROM:
        cur.executemany(f"{head} VALUES ({', '.join([placeholder] * n)}){tail}", rows)
        return
    columns = head[head.index("(") :]
    if not tail:  # append-only
        with cur.copy(f"COPY {name} {columns} FROM STDIN") as stream:
            for row in rows:
                stream.write_row(row)
        return
    stage = f"lockgate_stage_{name}"
    cur.execute(  # per connection; "already exists" notices are silenced by store/dbapi.py
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} "
        f"(LIKE {name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    with cur.copy(f"COPY {stage} {columns} FROM STDIN") as stream:
        for row in rows:
            stream.write_row(row)
    cur.execute(f"{head} SELECT {columns[1:-1]} FROM {stage}{tail}")


@dataclass
class Folded:
    events: list[tuple[Any, ...]] = field(default_factory=list)
    tasks: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    attempts: dict[tuple[str, str, int], list[Any]] = field(default_factory=dict)
    results: list[tuple[Any, ...]] = field(default_factory=list)
    run_started: list[tuple[Any, ...]] = field(default_factory=list)
    run_finished: list[tuple[Any, ...]] = field(default_factory=list)
    datasets: list[tuple[Any, ...]] = field(default_factory=list)
    catalogue: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    lineage: list[tuple[Any, ...]] = field(default_factory=list)
    quality_results: list[tuple[Any, ...]] = field(default_factory=list)
    policy_decisions: list[tuple[Any, ...]] = field(default_factory=list)
    run_requeued: list[tuple[Any, ...]] = field(default_factory=list)


def fold(batch: list[Event], now: float) -> Folded:
    """Rows for one batch; several events of one task or attempt become one upsert."""
    out = Folded()
    tasks, attempts = out.tasks, out.attempts
    for e in batch:
        data = e.data
        stored = None
        if data is not None:
            # fields that have columns in task_attempts/results are not repeated in the event
            stored = {k: v for k, v in data.items() if k not in _COLUMN_FIELDS}
            result = data.get("result_json")
            if result is not None:
                stored["result_bytes"] = len(result)
                out.results.append((e.run_id, e.task_id, result, len(result)))
            if e.kind == ev.TASK_SUCCEEDED:  # datasets it updated: same commit as the success
                for uri in data.get("datasets") or ():
                    out.datasets.append((uri, e.run_id, e.task_id, e.ts))
        out.events.append(
            (
                e.run_id,
                e.ts,
                e.kind,
                e.task_id,
                e.attempt,
                e.state,
                _encode(stored) if stored else None,
            )
        )
        kind = e.kind
        if kind in ev.FACTS:
            _fold_fact(out, e)
        elif kind in _TASK_EVENTS:
            key = (e.run_id, e.task_id)
            row = tasks.get(key)
            if row is None:
                # run_id, task_id, state, attempts, updated_at, error
                row = tasks[key] = [e.run_id, e.task_id, e.state, None, e.ts, None]
            row[2] = e.state
            row[4] = e.ts
            error = data.get("error") if data is not None else None
            if kind == ev.TASK_STARTED:
                row[3] = e.attempt
                row[5] = None
            elif error:
                row[5] = error
            if kind in _ATTEMPT_EVENTS and e.attempt > 0:
                akey = (e.run_id, e.task_id, e.attempt)
                arow = attempts.get(akey)
                if arow is None:
                    # run_id, task_id, attempt, state, started_at, ended_at, error, log_path
                    arow = attempts[akey] = [
                        e.run_id,
                        e.task_id,
                        e.attempt,
                        e.state,
                        None,
                        None,
                        None,
                        None,
                    ]
                if kind == ev.TASK_STARTED:
                    arow[3] = e.state
                    arow[4] = e.ts
                    arow[7] = data.get("log_path") if data is not None else None
                else:
                    arow[3] = data.get("attempt_state", e.state) if data is not None else e.state
                    arow[5] = (data.get("ended_at") if data is not None else None) or e.ts
                    if data is not None:
                        if data.get("started_at"):
                            arow[4] = data["started_at"]
                        if error:
                            arow[6] = error
        elif kind == ev.RUN_STARTED:
            out.run_started.append((e.state, e.ts, now, (data or {}).get("executor"), e.run_id))
        elif kind == ev.RUN_REQUEUED:
            error = (data or {}).get("error") or "its scheduler stopped; queued again"
            out.run_requeued.append((now, error, e.run_id))
        elif kind == ev.RUN_FINISHED:
            failed = (data or {}).get("failed_tasks") or ()
            error = (data or {}).get("error") or (
                f"task(s) failed: {', '.join(failed)}" if failed else None
            )
            out.run_finished.append((e.state, e.ts, now, error, e.run_id))
    return out


def _fold_fact(out: Folded, e: Event) -> None:
    """A task's report about its data: the catalogue row and lineage edges of a dataset it
    wrote, or one data-quality result. Facts come from task code: anything malformed in them
    is dropped here rather than failing the batch of events it came with (the event itself,
    with its data, is kept)."""
    data = e.data or {}
    if e.kind == ev.DATASET_WRITTEN:
        uri = data.get("uri")
        if not isinstance(uri, str) or not uri:
            return
        schema = data.get("schema")
        rows = data.get("rows")
        out.catalogue[uri] = (
            uri[:1024],
            str(data.get("kind") or "")[:16],
            _encode(schema) if schema is not None else None,
            rows if isinstance(rows, int) else None,
            e.run_id,
            e.task_id,
            e.ts,
        )
        for source in data.get("inputs") or ():
            if isinstance(source, str) and source:
                out.lineage.append((e.run_id, e.task_id or "", source[:1024], uri[:1024], e.ts))
    elif e.kind in (ev.POLICY_DECISION, ev.POLICY_VIOLATION):
        out.policy_decisions.append(policy_row(e.run_id, e.task_id, e.attempt, data, e.ts))
    elif e.kind == ev.QUALITY_CHECKED:
        failing = data.get("failing_rows")
        detail = {k: data[k] for k in ("message", "examples") if data.get(k) is not None}
        out.quality_results.append(
            (
                e.run_id,
                e.task_id or "",
                e.attempt,
                (str(data["dataset"])[:1024] if data.get("dataset") else None),
                str(data.get("name") or data.get("check") or "check")[:255],
                str(data.get("check") or "")[:32],
                "warn" if data.get("severity") == "warn" else "error",
                1 if data.get("passed") else 0,
                failing if isinstance(failing, int) else None,
                _encode(detail) if detail else None,
                e.ts,
            )
        )


def policy_row(
    run_id: str | None, task_id: str | None, attempt: int, data: dict[str, Any], ts: float
) -> tuple[Any, ...]:
    """A `policy_decisions` row from a gate decision (`PolicyDecision`/`PolicyViolation`
    data): dataset, zone and decision in columns, the rest as JSON."""
    detail = {k: v for k, v in data.items() if k not in ("dataset", "zone", "decision")}
    return (
        run_id,
        task_id,
        attempt,
        str(data.get("dataset") or "")[:1024],
        str(data.get("zone") or "")[:64],
        str(data.get("decision") or "deny")[:16],
        _encode(detail) if detail else None,
        ts,
    )
