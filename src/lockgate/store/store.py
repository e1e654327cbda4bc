"""The metadata store: pipeline versions, runs, task states and attempts, events, results, and
the audit chain they are written with (store/audit.py)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from lockgate.errors import ConfigError, NotFoundError, StoreError, describe
from lockgate.model import events as ev
from lockgate.model.events import Event
from lockgate.store.accounts import AccountsStore
from lockgate.store.audit import (
    EVENTS_ACTION,
    AuditChain,
    Checkpoint,
    Entry,
    Finding,
    Keys,
    Pruned,
    Record,
    entry,
    user_actor,
)
from lockgate.store.browse import BrowseStore
from lockgate.store.catalogue import CatalogueStore
from lockgate.store.db import create_db_engine, safe_url
from lockgate.store.dbapi import Database
from lockgate.store.fold import COPY_FROM, FORGIVE_INTERRUPTED, fold, insert_rows, statements
from lockgate.store.governance import GovernanceStore
from lockgate.store.owners import owner_alive, process_owner
from lockgate.store.scheduling import SchedulingStore
from lockgate.store.writer import EventWriter

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from lockgate.model.pipeline import Pipeline

ACTIVE_STATES = ("queued", "running")


_RUN_COLUMNS = (
    'id, pipeline_id, version_id, state, params, executor, "trigger", created_at, started_at, '
    "ended_at, owner, heartbeat_at, error, logical_date, data_interval_start, data_interval_end, "
    "run_key, runner"
)
_DIED = "the process running this attempt died"
_encode_rows = json.JSONEncoder(separators=(",", ":"), default=str, check_circular=False).encode


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class Store(SchedulingStore, CatalogueStore, GovernanceStore, AccountsStore, BrowseStore):
    """Access to the metadata database. One per process and URL; thread-safe.

    Runtime reads and writes are plain SQL through the DBAPI (`store/dbapi.py`); `engine`
    gives an SQLAlchemy engine for migrations and inspection, created only when asked for.

    `keys` (a `Keys` such as the project's keyring, or a function returning one, called on the
    first audited write) keys the audit chain: every event batch, pipeline version and action
    is appended to it in the transaction that writes it. A store opened without keys can read
    everything but refuses audited writes."""

    def __init__(self, url: str, keys: Keys | Callable[[], Keys] | None = None) -> None:
        from lockgate.store.migrate import ensure_schema

        self.url = url
        self.db = Database(url)
        self.dialect = self.db.dialect
        try:
            ensure_schema(self.db)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"cannot open the metadata database {safe_url(url)}: {describe(exc)}"
            ) from None
        self._owner = process_owner()
        self._active: set[str] = set()
        self._sql = statements(self.db.placeholder)
        self._engine: Engine | None = None
        self._keys: Keys | None = None
        self._keys_factory: Callable[[], Keys] | None = None
        if hasattr(keys, "key_for"):
            self._keys = cast("Keys", keys)
        elif keys is not None:
            self._keys_factory = keys
        self._keys_lock = threading.Lock()
        self._audit_off = False  # benchmarks only (bench/engine.py: the chain's cost on W2)
        self.chain = AuditChain(self.db, self.audit_keys)

    def audit_keys(self) -> Keys:
        """The audit chain's keys (resolved on first use); StoreError when the store was
        opened without them."""
        if self._keys is not None:
            return self._keys
        with self._keys_lock:
            if self._keys is None:
                if self._keys_factory is None:
                    raise StoreError(
                        f"the metadata database {self.db.shown_url} was opened without the "
                        "project's audit key, so it cannot record this; open it with "
                        "lockgate.api.open_store(project) or Store(url, keys=keyring)"
                    )
                self._keys = self._keys_factory()
            return self._keys

    @property
    def engine(self) -> Engine:
        """An SQLAlchemy engine on the same database (imports SQLAlchemy on first use)."""
        if self._engine is None:
            self._engine = create_db_engine(self.url)
        return self._engine

    @classmethod
    def if_exists(cls, url: str, keys: Keys | Callable[[], Keys] | None = None) -> Store | None:
        """The store at `url`, or None when it is an SQLite file that does not exist yet: for
        lookups, which must not create a database."""
        from lockgate.store.db import sqlite_path

        if url.startswith("sqlite") and not os.path.exists(sqlite_path(url)):
            return None
        return cls(url, keys)

    def close(self) -> None:
        self.db.close()
        if self._engine is not None:
            self._engine.dispose()

    def _rows(self, query: str, *params: Any) -> list[dict[str, Any]]:
        return self.db.rows(query, params)

    # -- pipelines and runs -----------------------------------------------------------------
    def record_version(self, pipeline: Pipeline) -> int:
        """The id of this definition's version row, created on first sight (and audited as
        `pipeline.version` in the same transaction)."""
        digest = pipeline.fingerprint()
        query = "SELECT id FROM pipeline_versions WHERE pipeline_id = ? AND hash = ?"
        found = self.db.scalar(query, (pipeline.id, digest))
        if found is not None:
            return int(found)
        db = self.db
        with db.transaction() as cur:
            # Another process may insert the same version at the same moment (PostgreSQL
            # does not serialize writers as SQLite's BEGIN IMMEDIATE does): keep its row.
            cur.execute(
                db.sql(
                    "INSERT INTO pipeline_versions (pipeline_id, hash, file, source, created_at) "
                    f"VALUES ({_marks(5)}) ON CONFLICT (pipeline_id, hash) DO NOTHING"
                ),
                (pipeline.id, digest, pipeline.file, pipeline.source, time.time()),
            )
            if cur.rowcount == 1:
                detail = {"pipeline": pipeline.id, "hash": digest, "file": pipeline.file}
                # who ran (or scheduled) the new definition first: the OS user of this process
                self.audit_in(cur, "pipeline.version", pipeline.id, detail, actor=user_actor())
            cur.execute(db.sql(query), (pipeline.id, digest))
            return int(cur.fetchone()[0])

    def create_run(
        self,
        run_id: str,
        pipeline_id: str,
        version_id: int | None,
        params: dict[str, Any],
        executor: str,
        trigger: str = "manual",
        dates: tuple[float, float, float] | None = None,
    ) -> None:
        """Record a new queued run; `dates`: its logical date and data interval (timestamps)."""
        now = time.time()
        logical, start, end = dates or (now, now, now)
        db = self.db
        with db.transaction() as cur:
            cur.execute(
                db.sql(
                    "INSERT INTO runs (id, pipeline_id, version_id, state, params, executor, "
                    '"trigger", created_at, owner, heartbeat_at, logical_date, '
                    f"data_interval_start, data_interval_end) VALUES ({_marks(13)})"
                ),
                (
                    run_id,
                    pipeline_id,
                    version_id,
                    "queued",
                    json.dumps(params),
                    executor,
                    trigger,
                    now,
                    self._owner,
                    now,
                    logical,
                    start,
                    end,
                ),
            )
            # who started it: the OS user of this process (a run of `lockgate run`, a backfill)
            detail = {"pipeline": pipeline_id, "trigger": trigger, "version": version_id}
            self.audit_in(cur, "run.create", run_id, detail, actor=user_actor(), run_id=run_id)
        self._active.add(run_id)

    def claim_run(self, run_id: str, executor: str, forgive_lost: bool = False) -> None:
        """Take over an interrupted run, or a queued one nobody has claimed (resume): this
        process becomes its owner. `forgive_lost`: its interrupted attempts (the process
        driving it died or was stopped) do not count against the tasks' retries."""
        db = self.db
        with db.transaction() as cur:
            cur.execute(
                db.sql(
                    "UPDATE runs SET owner = ?, heartbeat_at = ?, state = 'queued', "
                    "ended_at = NULL, error = NULL, executor = ? "
                    "WHERE id = ? AND (state NOT IN ('queued', 'running', 'success') "
                    "OR (state = 'queued' AND owner IS NULL))"
                ),
                (self._owner, time.time(), executor, run_id),
            )
            if cur.rowcount != 1:
                raise ConfigError(
                    f"run {run_id} cannot be resumed now: another process is running or "
                    "resuming it, or it has succeeded"
                )
            if forgive_lost:
                cur.execute(db.sql(FORGIVE_INTERRUPTED), (run_id,))
        self._active.add(run_id)

    def release_run(self, run_id: str) -> None:
        self._active.discard(run_id)

    def writer(self) -> EventWriter:
        """A group-commit subscriber for the event bus (the audit keys are resolved now, so a
        store without them fails here rather than in the writer thread)."""
        if not self._audit_off:
            self.audit_keys()
        return EventWriter(self.write_events, heartbeat=self.heartbeat)

    def heartbeat(self) -> None:
        active = list(self._active)
        if not active:
            return
        self.db.execute(
            f"UPDATE runs SET heartbeat_at = ? WHERE id IN ({_marks(len(active))})",
            (time.time(), *active),
        )

    # -- the event write path ---------------------------------------------------------------
    def write_events(self, batch: list[Event]) -> None:
        """Append events and fold them into runs, task_runs, task_attempts and results, and
        append one audit record holding the batch's event rows, all in one transaction."""
        rows = fold(batch, time.time())
        sql = self._sql
        mark = self.db.placeholder
        copy = self.dialect == "postgresql"
        # encoded before the transaction: the write lock is held for the SQL only
        record = self._events_entry(rows.events) if rows.events and not self._audit_off else None
        # a small batch goes to PostgreSQL in one round trip; a large one is COPYed
        with self.db.transaction(pipelined=len(rows.events) < COPY_FROM) as cur:
            insert_rows(cur, "events", rows.events, mark, copy)
            if rows.tasks:
                insert_rows(cur, "task_runs", list(rows.tasks.values()), mark, copy)
            if rows.attempts:
                insert_rows(cur, "task_attempts", list(rows.attempts.values()), mark, copy)
            if rows.results:
                insert_rows(cur, "results", rows.results, mark, copy)
            if rows.datasets:
                cur.executemany(sql["dataset_events"], rows.datasets)
            if rows.catalogue:
                cur.executemany(sql["catalogue"], list(rows.catalogue.values()))
            for name in ("lineage", "quality_results", "policy_decisions"):
                if getattr(rows, name):
                    cur.executemany(sql[name], getattr(rows, name))
            me = self._owner
            for name in ("run_started", "run_finished"):
                for values in getattr(rows, name):
                    cur.execute(sql[name], (*values, me))
            for values in rows.run_requeued:
                cur.execute(sql["task_requeued"], (values[-1],))
                cur.execute(sql["run_requeued"], (*values, me))
            if record is not None:
                # last, so PostgreSQL holds the chain's head lock only for the tail of the commit
                self.chain.append(cur, [record])

    def _events_entry(self, rows: list[tuple[Any, ...]]) -> Entry:
        """The audit record of a batch of event rows (`fold`'s tuples, in order): one record
        per batch, never one per event (the chain's cost on the engine stays a few percent)."""
        run_id = rows[0][0]
        if any(row[0] != run_id for row in rows):
            run_id = None
        return entry(self._owner, EVENTS_ACTION, run_id=run_id, detail=_encode_rows(rows))

    # -- recovery ---------------------------------------------------------------------------
    def recover_lost(self) -> list[str]:
        """Find runs whose owning process died. A scheduler's run goes back to the queue for
        another scheduler (its interrupted attempts are `lost`, and do not count against the
        tasks' retries); any other run, and its running attempts, are marked `lost`."""
        now = time.time()
        candidates = self._rows(
            "SELECT id, owner, heartbeat_at, runner FROM runs "
            "WHERE state IN ('queued', 'running') AND owner IS NOT NULL"
        )
        dead = [
            row
            for row in candidates
            if row["owner"] != self._owner
            and not owner_alive(row["owner"], row["heartbeat_at"], now)
        ]
        db = self.db
        recovered = []
        for row in dead:
            run_id, owner = row["id"], row["owner"]
            requeue = row["runner"] == "scheduler"
            host_pid = ":".join(owner.split(":")[:2])
            if requeue:
                error = f"the scheduler running this run ({host_pid}) died; queued again"
                update = (
                    "UPDATE runs SET state = 'queued', owner = NULL, ended_at = NULL, error = ? "
                    "WHERE id = ? AND owner = ? AND state IN ('queued', 'running')"
                )
            else:
                error = (
                    f"the process running this run ({host_pid}) died; "
                    f"`lockgate resume {run_id}` continues it"
                )
                update = (
                    "UPDATE runs SET state = 'lost', error = ? "
                    "WHERE id = ? AND owner = ? AND state IN ('queued', 'running')"
                )
            with db.transaction() as cur:
                # only if nobody recovered or claimed it meanwhile (atomic on both databases)
                cur.execute(db.sql(update), (error, run_id, owner))
                if cur.rowcount != 1:
                    continue
                recovered.append(run_id)
                cur.execute(
                    db.sql(
                        "SELECT task_id, attempt FROM task_attempts "
                        "WHERE run_id = ? AND state IN ('queued', 'running')"
                    ),
                    (run_id,),
                )
                lost = cur.fetchall()
                cur.execute(
                    db.sql(
                        "UPDATE task_attempts SET state = 'lost', ended_at = ?, error = ? "
                        "WHERE run_id = ? AND state IN ('queued', 'running')"
                    ),
                    (now, _DIED, run_id),
                )
                base = ", retry_base = attempts" if requeue else ""
                cur.execute(
                    db.sql(
                        f"UPDATE task_runs SET state = 'lost', updated_at = ?, error = ?{base} "
                        "WHERE run_id = ? AND state = 'running'"
                    ),
                    (now, _DIED, run_id),
                )
                events: list[tuple[Any, ...]] = [
                    (run_id, now, ev.TASK_LOST, task_id, attempt, "lost", None)
                    for task_id, attempt in lost
                ]
                kind, state = (ev.RUN_REQUEUED, "queued") if requeue else (ev.RUN_FINISHED, "lost")
                events.append((run_id, now, kind, None, 0, state, json.dumps({"error": error})))
                cur.executemany(self._sql["events"], events)
                self.chain.append(cur, [self._events_entry(events)])
        return recovered

    # -- the audit chain ----------------------------------------------------------------------
    def audit(
        self,
        action: str,
        target: str | None = None,
        detail: Any = None,
        *,
        actor: str | None = None,
        run_id: str | None = None,
    ) -> int:
        """Append one audit record in a transaction of its own; its sequence number.
        `detail`: JSON data (never a secret's value); `actor` defaults to this process."""
        record = entry(actor or self._owner, action, target, run_id, detail)
        with self.db.transaction() as cur:
            return self.chain.append(cur, [record])

    def audit_batch(self, records: Sequence[tuple[str, str, str | None, str | None, Any]]) -> None:
        """Append several audit records (actor, action, target, run_id, detail) in one
        transaction: the server's request log, written a few times a second."""
        if records:
            with self.db.transaction() as cur:
                self.chain.append(cur, [entry(*r) for r in records])

    def audit_in(
        self,
        cur: Any,
        action: str,
        target: str | None = None,
        detail: Any = None,
        *,
        actor: str | None = None,
        run_id: str | None = None,
    ) -> None:
        """`audit` inside the caller's transaction (`cur`), committed with its other writes."""
        self.chain.append(cur, [entry(actor or self._owner, action, target, run_id, detail)])

    def audit_records(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> list[Record]:
        """Audit records with seq > `after` in [`since`, `until`), by seq (page on seq)."""
        return self.chain.records(since=since, until=until, after=after, limit=limit)

    def audit_count(self) -> int:
        return self.chain.count()

    def audit_head(self) -> dict[str, Any] | None:
        return self.chain.head()

    def audit_checkpoints(self) -> list[Checkpoint]:
        return self.chain.checkpoints()

    def audit_checkpoint(self) -> Checkpoint | None:
        """Sign a checkpoint of the chain now (None while it is empty)."""
        return self.chain.checkpoint()

    def audit_verify(self, exported: Sequence[Checkpoint] = ()) -> Finding:
        """Verify the chain (store/audit.py); an empty chain in a database that holds runs
        or pipeline versions (every one of them was audited) has had its records deleted."""
        finding = self.chain.verify(exported)
        if (
            finding.ok
            and finding.records == 0
            and (
                self.db.scalar("SELECT 1 FROM runs LIMIT 1")
                or self.db.scalar("SELECT 1 FROM pipeline_versions LIMIT 1")
            )
        ):
            return Finding(
                False,
                "the audit chain is empty but the database holds runs or pipeline versions, "
                "which were all audited: its records were deleted",
                problem="truncated",
            )
        return finding

    def audit_prune(self, before: float, actor: str | None = None) -> Pruned:
        """Delete audit records up to the newest checkpoint made at or before `before`."""
        return self.chain.prune(before, actor or self._owner)

    # -- queries ----------------------------------------------------------------------------
    def get_run(self, run_id: str) -> dict[str, Any] | None:
        found = self._rows(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", run_id)
        return found[0] if found else None

    def get_runs(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Several runs by id, in one query per 500."""
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i : i + 500]
            for row in self._rows(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN ({_marks(len(chunk))})", *chunk
            ):
                out[row["id"]] = row
        return out

    def find_run(self, prefix: str) -> dict[str, Any] | None:
        """A run by full id, or by a unique prefix of it."""
        run = self.get_run(prefix)
        if run is not None:
            return run
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        found = self._rows(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 2",
            pattern,
        )
        if len(found) > 1:
            raise NotFoundError(
                f"run id prefix {prefix!r} matches several runs; give more of the id"
            )
        return found[0] if found else None

    def list_runs(
        self, pipeline_id: str | None = None, state: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        where, params = [], []
        if pipeline_id:
            where.append("pipeline_id = ?")
            params.append(pipeline_id)
        if state:
            where.append("state = ?")
            params.append(state)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return self._rows(
            f"SELECT {_RUN_COLUMNS} FROM runs{clause} ORDER BY created_at DESC LIMIT ?",
            *params,
            int(limit),
        )

    def task_states(self, run_id: str) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT run_id, task_id, state, attempts, updated_at, error, retry_base FROM task_runs "
            "WHERE run_id = ?",
            run_id,
        )

    def attempts(self, run_id: str, task_id: str | None = None) -> list[dict[str, Any]]:
        query = (
            "SELECT run_id, task_id, attempt, state, started_at, ended_at, error, log_path "
            "FROM task_attempts WHERE run_id = ?"
        )
        params: tuple[Any, ...] = (run_id,)
        if task_id is not None:
            query += " AND task_id = ?"
            params += (task_id,)
        return self._rows(query + " ORDER BY started_at, attempt", *params)

    def results(self, run_id: str) -> dict[str, str]:
        rows = self._rows("SELECT task_id, value FROM results WHERE run_id = ?", run_id)
        return {row["task_id"]: row["value"] for row in rows}

    def events(self, run_id: str, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT id, run_id, ts, kind, task_id, attempt, state, data FROM events "
            "WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
            run_id,
            after_id,
            int(limit),
        )

    def published(self, run_id: str) -> list[dict[str, Any]]:
        """The files a run's tasks published (`ctx.publish`), oldest first: `id` (of the
        event), `task_id` and the fact's `data` (JSON text)."""
        return self._rows(
            "SELECT id, task_id, data FROM events WHERE run_id = ? AND kind = ? ORDER BY id",
            run_id,
            "ReportPublished",
        )

    def version(self, version_id: int) -> dict[str, Any] | None:
        found = self._rows(
            "SELECT id, pipeline_id, hash, file, source, created_at FROM pipeline_versions "
            "WHERE id = ?",
            version_id,
        )
        return found[0] if found else None

    def last_runs(self, pipeline_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The newest run of each pipeline, one indexed query per pipeline."""
        out = {}
        for pid in pipeline_ids:
            rows = self.list_runs(pipeline_id=pid, limit=1)
            if rows:
                out[pid] = rows[0]
        return out

    # -- retention --------------------------------------------------------------------------
    def clean(self, older_than_s: float, dry_run: bool = False) -> list[tuple[str, str]]:
        """Delete finished runs created before now - older_than_s, with everything they own.
        The audit chain is not touched: it has its own retention (`audit_prune`).

        Returns (pipeline_id, run_id) of the runs deleted (or that would be)."""
        cutoff = time.time() - older_than_s
        victims = [
            (row["pipeline_id"], row["id"])
            for row in self._rows(
                # each pipeline's newest scheduled run stays: the scheduler continues after it
                # (without it, @once would run again and a catchup would start over)
                "SELECT pipeline_id, id FROM runs r "
                "WHERE created_at < ? AND state NOT IN ('queued', 'running') "
                "AND NOT (\"trigger\" = 'schedule' AND logical_date = (SELECT MAX(logical_date) "
                "FROM runs n WHERE n.pipeline_id = r.pipeline_id AND n.\"trigger\" = 'schedule'))",
                cutoff,
            )
        ]
        if dry_run or not victims:
            return victims
        db = self.db
        ids = [run_id for _, run_id in victims]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = _marks(len(chunk))
            with db.transaction() as cur:
                for table in (
                    "events",
                    "results",
                    "task_attempts",
                    "task_runs",
                    "quality_results",
                ):  # policy decisions stay: the gate reads where datasets' data came from
                    cur.execute(db.sql(f"DELETE FROM {table} WHERE run_id IN ({marks})"), chunk)
                cur.execute(db.sql(f"DELETE FROM runs WHERE id IN ({marks})"), chunk)
        from lockgate.store.notifications import prune as prune_notifications

        prune_notifications(self, cutoff)
        db.execute(
            "DELETE FROM pipeline_versions WHERE created_at < ? AND id NOT IN "
            "(SELECT version_id FROM runs WHERE version_id IS NOT NULL)",
            (cutoff,),
        )
        if self.dialect == "sqlite":
            with self.db.connection() as conn:
                conn.execute("VACUUM")  # outside any transaction
        return victims
