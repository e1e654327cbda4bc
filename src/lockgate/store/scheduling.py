"""The store's side of scheduling: queued runs and who claims them, pause flags, dataset update
events, and the registry of running schedulers.

Exactly once is the database's job, not the schedulers': a scheduled run has a `run_key`
(`interval:<logical date>`) that is unique per pipeline, so two schedulers (or a scheduler and a
backfill) creating the same interval's run insert one row; a queued run is claimed with a
conditional UPDATE (`... WHERE owner IS NULL`), so one process drives it. On PostgreSQL the
pipeline rows are locked (`FOR UPDATE`) while a scheduler counts and claims runs, so two
schedulers cannot both start the last slot of `max_active_runs`; SQLite's `BEGIN IMMEDIATE`
already serializes writers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lockgate.errors import ConfigError, NotFoundError
from lockgate.store.owners import local_owner, owner_alive

if TYPE_CHECKING:
    from lockgate.store.dbapi import Database

SCHEDULER = "scheduler"
"""`runs.runner` of a run that a scheduler daemon drives (others are driven by their creator)."""
SCHEDULER_STALE_S = 15.0
"""A scheduler on another host whose heartbeat is older than this is taken for dead."""


def interval_key(logical_date: float) -> str:
    """The run key of a scheduled or backfilled run: one run per pipeline and logical date."""
    moment = datetime.fromtimestamp(logical_date, UTC)
    return f"interval:{moment:%Y-%m-%dT%H:%M:%S.%f}Z"


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to record as queued (`owner` None: for a scheduler to claim)."""

    run_id: str
    pipeline_id: str
    version_id: int | None
    params: Mapping[str, Any]
    trigger: str
    dates: tuple[float, float, float]
    run_key: str | None = None
    runner: str | None = SCHEDULER
    owner: str | None = None


CLAIM_MAX = 500
"""Runs of one pipeline claimed in one pass, at most."""
_INSERT_CHUNK = 60
"""Rows per multi-row INSERT of runs: 15 values each stays under SQLite's old limit of 999
parameters per statement."""


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class SchedulingStore:
    """Mixed into `Store`: needs `self.db`, `self.dialect`, `self._owner` and `self._active`."""

    db: Database
    dialect: str
    _owner: str
    _active: set[str]
    _wake_address: str | None = None

    if TYPE_CHECKING:

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
            """Append an audit record inside the caller's transaction (Store)."""

    # -- runs ---------------------------------------------------------------------------------
    def enqueue(self, runs: list[NewRun]) -> list[str]:
        """Record runs as queued, in one transaction; a run whose key exists already is not
        created. Returns the ids of the runs created.

        One multi-row INSERT per chunk, then one SELECT of the new ids (a row with a new run's
        id exists only if this INSERT created it): a scheduler creating 50 runs due at the
        same second makes two round trips to PostgreSQL, not 50."""
        with self.db.transaction() as cur:
            return self.insert_runs(cur, runs)

    def insert_runs(self, cur: Any, runs: list[NewRun]) -> list[str]:
        """Insert runs inside the caller's transaction; the ids of those created."""
        if not runs:
            return []
        # in a fixed order: two schedulers inserting the same keys lock them in the same order
        # (PostgreSQL would otherwise detect a deadlock between them)
        runs = sorted(runs, key=lambda run: (run.pipeline_id, run.run_key or "", run.run_id))
        now = time.time()
        db = self.db
        rows = [
            (
                run.run_id,
                run.pipeline_id,
                run.version_id,
                "queued",
                json.dumps(dict(run.params)),
                None,
                run.trigger,
                now,
                run.owner,
                now,
                *run.dates,
                run.run_key,
                run.runner,
            )
            for run in runs
        ]
        found: set[str] = set()
        for i in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[i : i + _INSERT_CHUNK]
            values = ", ".join([f"({_marks(len(chunk[0]))})"] * len(chunk))
            cur.execute(
                db.sql(
                    "INSERT INTO runs (id, pipeline_id, version_id, state, params, executor, "
                    '"trigger", created_at, owner, heartbeat_at, logical_date, '
                    "data_interval_start, data_interval_end, run_key, runner) "
                    f"VALUES {values} ON CONFLICT (pipeline_id, run_key) DO NOTHING"
                ),
                [value for row in chunk for value in row],
            )
        ids = [run.run_id for run in runs]
        for i in range(0, len(ids), 500):
            chunk_ids = ids[i : i + 500]
            cur.execute(
                db.sql(f"SELECT id FROM runs WHERE id IN ({_marks(len(chunk_ids))})"),
                chunk_ids,
            )
            found.update(row[0] for row in cur.fetchall())
        created = [run_id for run_id in ids if run_id in found]
        mine = {run.run_id for run in runs if run.owner == self._owner}
        self._active.update(r for r in created if r in mine)
        return created

    def runs_by_key(self, pipeline_id: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The runs of a pipeline with these run keys, by key."""
        wanted = list(keys)
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            for row in self.db.rows(
                "SELECT id, state, owner, heartbeat_at, run_key, runner FROM runs "
                f"WHERE pipeline_id = ? AND run_key IN ({_marks(len(chunk))})",
                (pipeline_id, *chunk),
            ):
                out[row["run_key"]] = row
        return out

    def last_scheduled(self, pipeline_id: str) -> tuple[float, float] | None:
        """(logical date, interval end) of the pipeline's latest scheduled run."""
        rows = self.db.rows(
            "SELECT logical_date, data_interval_end FROM runs "
            "WHERE pipeline_id = ? AND \"trigger\" = 'schedule' "
            "ORDER BY logical_date DESC LIMIT 1",
            (pipeline_id,),
        )
        if not rows:
            return None
        return rows[0]["logical_date"], rows[0]["data_interval_end"]

    def claim_queued(self, limits: Mapping[str, int | None]) -> list[str]:
        """Claim queued scheduler runs of the given pipelines (not paused), oldest logical date
        first, without going over each pipeline's `max_active_runs` (its value in `limits`,
        None: no limit). Returns the ids claimed, which this process must now drive."""
        if not limits:
            return []
        db = self.db
        now = time.time()
        claimed: list[str] = []
        # the oldest few of each pipeline (a long backlog of one must not hide the others)
        per_pipeline = min(CLAIM_MAX, max((n or CLAIM_MAX) for n in limits.values()))
        with db.transaction() as cur:
            cur.execute(
                db.sql(
                    "SELECT id, pipeline_id FROM (SELECT r.id, r.pipeline_id, r.logical_date, "
                    "r.created_at, ROW_NUMBER() OVER (PARTITION BY r.pipeline_id "
                    "ORDER BY r.logical_date, r.created_at) AS n FROM runs r JOIN pipelines p "
                    "ON p.id = r.pipeline_id WHERE r.state = 'queued' AND r.owner IS NULL "
                    "AND r.runner = ? AND p.paused = 0) q WHERE n <= ? "
                    "ORDER BY logical_date, created_at"
                ),
                (SCHEDULER, per_pipeline),
            )
            queued: dict[str, list[str]] = {}
            for run_id, pipeline_id in cur.fetchall():
                if pipeline_id in limits:
                    queued.setdefault(pipeline_id, []).append(run_id)
            if not queued:
                return []
            limited = sorted(p for p in queued if limits[p] is not None)
            active: dict[str, int] = {}
            if limited:
                marks = _marks(len(limited))
                if self.dialect == "postgresql":  # count and claim under the pipelines' locks
                    cur.execute(
                        db.sql(
                            f"SELECT id FROM pipelines WHERE id IN ({marks}) ORDER BY id FOR UPDATE"
                        ),
                        limited,
                    )
                cur.execute(
                    db.sql(
                        "SELECT pipeline_id, COUNT(*) FROM runs WHERE state IN "
                        f"('queued', 'running') AND owner IS NOT NULL AND pipeline_id IN ({marks}) "
                        "GROUP BY pipeline_id"
                    ),
                    limited,
                )
                active = {pid: int(n) for pid, n in cur.fetchall()}
            wanted: list[str] = []
            for pipeline_id, ids in queued.items():
                limit = limits[pipeline_id]
                room = len(ids) if limit is None else max(0, limit - active.get(pipeline_id, 0))
                wanted.extend(ids[:room])
            # one UPDATE per 500 runs (not one per run: 50 runs due at once were 50 round
            # trips to PostgreSQL before the first could start)
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                claim = (
                    "UPDATE runs SET owner = ?, heartbeat_at = ? "
                    f"WHERE id IN ({_marks(len(chunk))}) AND owner IS NULL AND state = 'queued'"
                )
                if self.dialect == "postgresql":
                    # another scheduler may have claimed some since the SELECT: the UPDATE
                    # skips them (READ COMMITTED re-checks the WHERE), RETURNING says which
                    cur.execute(db.sql(claim + " RETURNING id"), (self._owner, now, *chunk))
                    got = {row[0] for row in cur.fetchall()}
                else:
                    # BEGIN IMMEDIATE: no other writer since the SELECT, every one is claimed
                    cur.execute(db.sql(claim), (self._owner, now, *chunk))
                    if cur.rowcount == len(chunk):
                        got = set(chunk)
                    else:  # pragma: no cover - defensive
                        cur.execute(
                            db.sql(
                                f"SELECT id FROM runs WHERE id IN ({_marks(len(chunk))}) "
                                "AND owner = ? AND heartbeat_at = ?"
                            ),
                            (*chunk, self._owner, now),
                        )
                        got = {row[0] for row in cur.fetchall()}
                claimed.extend(run_id for run_id in chunk if run_id in got)
        self._active.update(claimed)
        return claimed

    def owned_scheduler_runs(self) -> list[str]:
        """The scheduler runs this process owns that have not finished."""
        rows = self.db.rows(
            "SELECT id FROM runs WHERE owner = ? AND runner = ? AND state IN ('queued', 'running')",
            (self._owner, SCHEDULER),
        )
        return [row["id"] for row in rows]

    def fail_run(self, run_id: str, error: str) -> None:
        """End a run this process claimed but could not drive (its pipeline no longer loads)."""
        now = time.time()
        self.db.execute(
            "UPDATE runs SET state = 'failed', ended_at = ?, error = ? "
            "WHERE id = ? AND owner = ? AND state IN ('queued', 'running')",
            (now, error, run_id, self._owner),
        )
        self._active.discard(run_id)

    def requeue(self, run_id: str, reason: str) -> None:
        """Hand a run this process claimed back to the schedulers (it could not start it, or
        started it no more); a run that has finished meanwhile stays as it is."""
        self.db.execute(
            "UPDATE runs SET owner = NULL, state = 'queued', ended_at = NULL, error = ? "
            "WHERE id = ? AND owner = ? AND state IN ('queued', 'running')",
            (reason, run_id, self._owner),
        )
        self._active.discard(run_id)

    @property
    def owner(self) -> str:
        """This process, as recorded in `runs.owner`."""
        return self._owner

    def clear_tasks(
        self,
        run_id: str,
        task_ids: Iterable[str],
        *,
        runner: str | None = SCHEDULER,
        owner: str | None = None,
    ) -> None:
        """Make tasks of a finished run pending again and queue the run: for a scheduler
        (default), or claimed by `owner` (this process, e.g. a backfill re-running it).

        Attempt numbers continue (history is kept); the cleared tasks get their retries
        afresh. Raises ConfigError if the run is queued or running."""
        ids = list(task_ids)
        db = self.db
        now = time.time()
        with db.transaction() as cur:
            cur.execute(
                db.sql(
                    "UPDATE runs SET state = 'queued', owner = ?, runner = ?, ended_at = NULL, "
                    "error = NULL, heartbeat_at = ? WHERE id = ? AND state NOT IN "
                    "('queued', 'running')"
                ),
                (owner, runner, now, run_id),
            )
            if cur.rowcount != 1:
                raise ConfigError(
                    f"run {run_id} is queued or running; clear it once it has finished"
                )
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = _marks(len(chunk))
                cur.execute(
                    db.sql(
                        "UPDATE task_runs SET state = 'pending', error = NULL, updated_at = ?, "
                        f"retry_base = attempts WHERE run_id = ? AND task_id IN ({marks})"
                    ),
                    (now, run_id, *chunk),
                )
                cur.execute(
                    db.sql(f"DELETE FROM results WHERE run_id = ? AND task_id IN ({marks})"),
                    (run_id, *chunk),
                )
            cur.execute(
                db.sql(
                    "INSERT INTO events (run_id, ts, kind, task_id, attempt, state, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                (run_id, now, "RunCleared", None, 0, "queued", json.dumps({"tasks": ids})),
            )
        if owner == self._owner:
            self._active.add(run_id)

    # -- pipelines ----------------------------------------------------------------------------
    def register_pipelines(self, pipeline_ids: Iterable[str]) -> None:
        """Give pipelines seen for the first time a row (not paused; dataset updates counted
        from now on)."""
        ids = list(pipeline_ids)
        if not ids:
            return
        db = self.db
        with db.transaction() as cur:
            cur.execute(db.sql("SELECT COALESCE(MAX(id), 0) FROM dataset_events"))
            cursor = int(cur.fetchone()[0])
            now = time.time()
            cur.executemany(
                db.sql(
                    "INSERT INTO pipelines (id, paused, dataset_cursor, updated_at) "
                    "VALUES (?, 0, ?, ?) ON CONFLICT (id) DO NOTHING"
                ),
                [(pid, cursor, now) for pid in ids],
            )

    def pipeline_flags(self) -> dict[str, dict[str, Any]]:
        """Every known pipeline's `paused` flag and dataset cursor, by id."""
        rows = self.db.rows("SELECT id, paused, dataset_cursor FROM pipelines")
        return {row["id"]: row for row in rows}

    def set_paused(self, pipeline_id: str, paused: bool) -> bool:
        """Pause or unpause; returns whether the flag changed."""
        self.register_pipelines([pipeline_id])
        return (
            self.db.execute(
                "UPDATE pipelines SET paused = ?, updated_at = ? WHERE id = ? AND paused <> ?",
                (int(paused), time.time(), pipeline_id, int(paused)),
            )
            == 1
        )

    # -- datasets -----------------------------------------------------------------------------
    def dataset_updates(self, uris: Iterable[str], after: int) -> dict[str, int]:
        """For each URI updated after event id `after`: the id of its latest update."""
        wanted = list(uris)
        rows = self.db.rows(
            "SELECT uri, MAX(id) AS last FROM dataset_events "
            f"WHERE id > ? AND uri IN ({_marks(len(wanted))}) GROUP BY uri",
            (after, *wanted),
        )
        return {row["uri"]: int(row["last"]) for row in rows}

    def enqueue_dataset_run(self, run: NewRun, cursor: int, new_cursor: int) -> bool:
        """Record a dataset-triggered run and move the pipeline's cursor, atomically: of two
        schedulers seeing the same updates, one creates the run."""
        db = self.db
        with db.transaction() as cur:
            cur.execute(
                db.sql(
                    "UPDATE pipelines SET dataset_cursor = ?, updated_at = ? "
                    "WHERE id = ? AND dataset_cursor = ?"
                ),
                (new_cursor, time.time(), run.pipeline_id, cursor),
            )
            if cur.rowcount != 1:
                return False
            # in the same transaction: a crash cannot move the cursor without the run
            return bool(self.insert_runs(cur, [run]))

    # -- schedulers ---------------------------------------------------------------------------
    def register_scheduler(self, wake_address: str | None, alone: bool) -> None:
        """Record this process as a running scheduler. `alone`: refuse if another live one
        is recorded (SQLite, where schedulers cannot share the database safely). A process
        runs one scheduler per database (its runs and wake-ups are recorded by process)."""
        db = self.db
        now = time.time()
        self._wake_address = wake_address
        with db.transaction() as cur:
            cur.execute(db.sql("SELECT owner, heartbeat_at FROM schedulers"))
            others = [
                owner
                for owner, beat in cur.fetchall()
                if owner != self._owner and _scheduler_alive(owner, beat, now)
            ]
            if alone and others:
                host_pid = ":".join(others[0].split(":")[:2])
                raise ConfigError(
                    f"another scheduler ({host_pid}) is running on this SQLite database; stop it "
                    "first, or use PostgreSQL to run several schedulers"
                )
            cur.execute(
                db.sql(
                    "INSERT INTO schedulers (owner, wake_address, started_at, heartbeat_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (owner) DO NOTHING"
                ),
                (self._owner, wake_address, now, now),
            )
            if cur.rowcount != 1:
                host_pid = ":".join(self._owner.split(":")[:2])
                where = "this SQLite database" if alone else "this database"
                fix = "use PostgreSQL to run several schedulers" if alone else "run it elsewhere"
                raise ConfigError(
                    f"another scheduler ({host_pid}, this process) is running on {where}; "
                    f"stop it first, or {fix}"
                )

    def beat_scheduler(self) -> None:
        """Refresh this scheduler's heartbeat and the heartbeats of the runs it drives."""
        now = time.time()
        # an upsert: another process may have removed this row as stale (a long pause, clock
        # skew between hosts); beating again makes this scheduler visible again
        self.db.execute(
            "INSERT INTO schedulers (owner, wake_address, started_at, heartbeat_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (owner) DO UPDATE SET "
            "heartbeat_at = excluded.heartbeat_at",
            (self._owner, self._wake_address, now, now),
        )
        active = list(self._active)
        if active:
            self.db.execute(
                f"UPDATE runs SET heartbeat_at = ? WHERE id IN ({_marks(len(active))})",
                (now, *active),
            )

    def unregister_scheduler(self) -> None:
        self.db.execute("DELETE FROM schedulers WHERE owner = ?", (self._owner,))

    def live_schedulers(self) -> list[dict[str, Any]]:
        """The schedulers that are running now (dead ones' rows are removed)."""
        now = time.time()
        rows = self.db.rows("SELECT owner, wake_address, heartbeat_at FROM schedulers")
        live = [r for r in rows if _scheduler_alive(r["owner"], r["heartbeat_at"], now)]
        for row in rows:
            if row not in live and now - row["heartbeat_at"] > SCHEDULER_STALE_S:
                self.db.execute(
                    "DELETE FROM schedulers WHERE owner = ? AND heartbeat_at = ?",
                    (row["owner"], row["heartbeat_at"]),
                )
        return live

    # -- cancellation -----------------------------------------------------------------------------
    def request_cancel(self, run_id: str, actor: str) -> str:
        """Cancel a run: a queued one nobody has claimed ends `cancelled` now; for one being
        driven (running, or claimed and starting) a request is recorded for the process
        driving it. Returns the run's state afterwards (`cancelled`, or `running`/`queued`);
        NotFoundError / ConfigError when there is no such run or it ended."""
        now = time.time()
        db = self.db
        with db.transaction() as cur:
            cur.execute(
                db.sql("SELECT state, pipeline_id, owner FROM runs WHERE id = ?"), (run_id,)
            )
            found = cur.fetchone()
            if found is None:
                raise NotFoundError(f"no run {run_id!r}")
            state, pipeline_id, owner = found
            if state not in ("queued", "running"):
                raise ConfigError(f"run {run_id} has ended ({state}); nothing to cancel")
            cancelled = 0
            if state == "queued" and owner is None:
                cur.execute(
                    db.sql(
                        "UPDATE runs SET state = 'cancelled', ended_at = ?, error = ? "
                        "WHERE id = ? AND state = 'queued' AND owner IS NULL"
                    ),
                    (now, f"cancelled by {actor} before it started", run_id),
                )
                cancelled = cur.rowcount
            cur.execute(db.sql("DELETE FROM run_cancels WHERE run_id = ?"), (run_id,))
            if cancelled:
                outcome = "cancelled"
            else:  # being driven (or claimed since the SELECT): its driver cancels it
                cur.execute(
                    db.sql(
                        "INSERT INTO run_cancels (run_id, requested_at, requested_by) "
                        "VALUES (?, ?, ?)"
                    ),
                    (run_id, now, actor),
                )
                outcome = state
            self.audit_in(
                cur, "run.cancel", pipeline_id, {"state": state}, actor=actor, run_id=run_id
            )
        return outcome

    def cancel_requested(self, run_id: str) -> bool:
        return bool(self.db.rows("SELECT 1 FROM run_cancels WHERE run_id = ?", (run_id,)))

    def cancel_requests(self, run_ids: Iterable[str]) -> dict[str, str]:
        """Of these runs, those someone asked to cancel, with who asked."""
        ids = list(run_ids)
        if not ids:
            return {}
        rows = self.db.rows(
            f"SELECT run_id, requested_by FROM run_cancels WHERE run_id IN ({_marks(len(ids))})",
            tuple(ids),
        )
        return {row["run_id"]: row["requested_by"] for row in rows}

    def forget_cancel(self, run_id: str) -> None:
        self.db.execute("DELETE FROM run_cancels WHERE run_id = ?", (run_id,))


def _scheduler_alive(owner: str, beat: float, now: float) -> bool:
    """Alive: its process exists (this host), or it beat recently (another host)."""
    if local_owner(owner):
        return owner_alive(owner, None, now)
    return now - beat < SCHEDULER_STALE_S
