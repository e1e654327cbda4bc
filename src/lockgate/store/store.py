"""The metadata store: pipeline versions, runs, task states and attempts, events, results."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lockgate.engine import events as ev
from lockgate.engine.events import Event
from lockgate.errors import NotFoundError, StoreError
from lockgate.store import schema as s
from lockgate.store.db import READONLY, check_writable_sqlite, create_db_engine, safe_url
from lockgate.store.fold import fold, statements
from lockgate.store.writer import EventWriter

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from lockgate.model.pipeline import Pipeline

STALE_HEARTBEAT_S = 120.0
ACTIVE_STATES = ("queued", "running")


def process_owner() -> str:
    """`host:pid:start` for this process; `start` tells a reused pid from the original."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def _process_start(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def owner_alive(owner: str | None, heartbeat_at: float | None, now: float) -> bool:
    """Whether the process recorded as running a run still exists (or still beats)."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname():
        return heartbeat_at is not None and now - heartbeat_at < STALE_HEARTBEAT_S
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return start == "?" or _process_start(pid) == start


class Store:
    """Access to the metadata database. One per process; thread-safe."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            check_writable_sqlite(url)
        self.engine: Engine = create_db_engine(url)
        self.dialect = self.engine.dialect.name
        from lockgate.store.migrate import ensure_schema

        try:
            ensure_schema(self.engine)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"cannot open the metadata database {safe_url(url)}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}"
            ) from None
        self._owner = process_owner()
        self._active: set[str] = set()
        self._sql = statements("%s" if self.dialect == "postgresql" else "?")

    def close(self) -> None:
        self.engine.dispose()

    # -- connections ------------------------------------------------------------------------
    def _read(self) -> Connection:
        return self.engine.connect().execution_options(**READONLY)

    # -- pipelines and runs -----------------------------------------------------------------
    def record_version(self, pipeline: Pipeline) -> int:
        """The id of this definition's version row, created on first sight."""
        from sqlalchemy import select

        digest = pipeline.fingerprint()
        t = s.pipeline_versions
        query = select(t.c.id).where(t.c.pipeline_id == pipeline.id, t.c.hash == digest)
        with self._read() as conn:
            found = conn.execute(query).scalar()
        if found is not None:
            return int(found)
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        with self.engine.begin() as conn:
            # Another process may insert the same version at the same moment (PostgreSQL
            # does not serialize writers as SQLite's BEGIN IMMEDIATE does): keep its row.
            conn.execute(
                insert(t)
                .values(
                    pipeline_id=pipeline.id,
                    hash=digest,
                    file=pipeline.file,
                    source=pipeline.source,
                    created_at=time.time(),
                )
                .on_conflict_do_nothing(index_elements=["pipeline_id", "hash"])
            )
            return int(conn.execute(query).scalar_one())

    def create_run(
        self,
        run_id: str,
        pipeline_id: str,
        version_id: int | None,
        params: dict[str, Any],
        executor: str,
        trigger: str = "manual",
    ) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                s.runs.insert().values(
                    id=run_id,
                    pipeline_id=pipeline_id,
                    version_id=version_id,
                    state="queued",
                    params=json.dumps(params),
                    executor=executor,
                    trigger=trigger,
                    created_at=now,
                    owner=self._owner,
                    heartbeat_at=now,
                )
            )
        self._active.add(run_id)

    def claim_run(self, run_id: str, executor: str) -> None:
        """Take over an interrupted run (resume): this process becomes its owner."""
        from sqlalchemy import update

        with self.engine.begin() as conn:
            conn.execute(
                update(s.runs)
                .where(s.runs.c.id == run_id)
                .values(
                    owner=self._owner,
                    heartbeat_at=time.time(),
                    state="queued",
                    ended_at=None,
                    error=None,
                    executor=executor,
                )
            )
        self._active.add(run_id)

    def release_run(self, run_id: str) -> None:
        self._active.discard(run_id)

    def writer(self) -> EventWriter:
        """A group-commit subscriber for the event bus."""
        return EventWriter(self.write_events, heartbeat=self.heartbeat)

    def heartbeat(self) -> None:
        if not self._active:
            return
        from sqlalchemy import update

        with self.engine.begin() as conn:
            conn.execute(
                update(s.runs)
                .where(s.runs.c.id.in_(list(self._active)))
                .values(heartbeat_at=time.time())
            )

    # -- the event write path ---------------------------------------------------------------
    def write_events(self, batch: list[Event]) -> None:
        """Append events and fold them into runs, task_runs, task_attempts and results,
        all in one transaction."""
        rows = fold(batch, time.time())
        sql = self._sql
        with self.engine.begin() as conn:
            cur = conn.connection.cursor()
            try:
                cur.executemany(sql["events"], rows.events)
                if rows.tasks:
                    cur.executemany(sql["task_runs"], list(rows.tasks.values()))
                if rows.attempts:
                    cur.executemany(sql["task_attempts"], list(rows.attempts.values()))
                if rows.results:
                    cur.executemany(sql["results"], rows.results)
                for name in ("run_started", "run_finished"):
                    for values in getattr(rows, name):
                        cur.execute(sql[name], values)
            finally:
                cur.close()

    # -- recovery ---------------------------------------------------------------------------
    def recover_lost(self) -> list[str]:
        """Mark runs whose owning process died, and their running attempts, as `lost`."""
        from sqlalchemy import select, update

        now = time.time()
        r = s.runs
        with self._read() as conn:
            rows = conn.execute(
                select(r.c.id, r.c.owner, r.c.heartbeat_at).where(r.c.state.in_(ACTIVE_STATES))
            ).all()
        dead = [
            row.id
            for row in rows
            if row.owner != self._owner and not owner_alive(row.owner, row.heartbeat_at, now)
        ]
        for run_id in dead:
            with self.engine.begin() as conn:
                state = conn.execute(select(r.c.state, r.c.owner).where(r.c.id == run_id)).one()
                if state.state not in ACTIVE_STATES:
                    continue
                a, t = s.task_attempts, s.task_runs
                lost = conn.execute(
                    select(a.c.task_id, a.c.attempt).where(
                        a.c.run_id == run_id, a.c.state.in_(("queued", "running"))
                    )
                ).all()
                conn.execute(
                    update(a)
                    .where(a.c.run_id == run_id, a.c.state.in_(("queued", "running")))
                    .values(
                        state="lost", ended_at=now, error="the process running this attempt died"
                    )
                )
                conn.execute(
                    update(t)
                    .where(t.c.run_id == run_id, t.c.state == "running")
                    .values(
                        state="lost", updated_at=now, error="the process running this attempt died"
                    )
                )
                host_pid = ":".join((state.owner or "?").split(":")[:2])
                error = f"the process running this run ({host_pid}) died; `lockgate resume {run_id}` continues it"
                conn.execute(update(r).where(r.c.id == run_id).values(state="lost", error=error))
                rows_ = [
                    {
                        "run_id": run_id,
                        "ts": now,
                        "kind": ev.TASK_LOST,
                        "task_id": x.task_id,
                        "attempt": x.attempt,
                        "state": "lost",
                        "data": None,
                    }
                    for x in lost
                ]
                rows_.append(
                    {
                        "run_id": run_id,
                        "ts": now,
                        "kind": ev.RUN_FINISHED,
                        "task_id": None,
                        "attempt": 0,
                        "state": "lost",
                        "data": json.dumps({"error": error}),
                    }
                )
                conn.execute(s.events.insert(), rows_)
        return dead

    # -- queries ----------------------------------------------------------------------------
    def get_run(self, run_id: str) -> dict[str, Any] | None:
        from sqlalchemy import select

        with self._read() as conn:
            row = conn.execute(select(s.runs).where(s.runs.c.id == run_id)).mappings().first()
        return dict(row) if row else None

    def find_run(self, prefix: str) -> dict[str, Any] | None:
        """A run by full id, or by a unique prefix of it."""
        run = self.get_run(prefix)
        if run is not None:
            return run
        from sqlalchemy import select

        with self._read() as conn:
            rows = (
                conn.execute(
                    select(s.runs).where(s.runs.c.id.startswith(prefix, autoescape=True)).limit(2)
                )
                .mappings()
                .all()
            )
        if len(rows) > 1:
            raise NotFoundError(
                f"run id prefix {prefix!r} matches several runs; give more of the id"
            )
        return dict(rows[0]) if rows else None

    def list_runs(
        self, pipeline_id: str | None = None, state: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        from sqlalchemy import select

        r = s.runs
        query = select(r).order_by(r.c.created_at.desc()).limit(limit)
        if pipeline_id:
            query = query.where(r.c.pipeline_id == pipeline_id)
        if state:
            query = query.where(r.c.state == state)
        with self._read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def task_states(self, run_id: str) -> list[dict[str, Any]]:
        from sqlalchemy import select

        t = s.task_runs
        with self._read() as conn:
            return [
                dict(row) for row in conn.execute(select(t).where(t.c.run_id == run_id)).mappings()
            ]

    def attempts(self, run_id: str, task_id: str | None = None) -> list[dict[str, Any]]:
        from sqlalchemy import select

        a = s.task_attempts
        query = select(a).where(a.c.run_id == run_id).order_by(a.c.started_at, a.c.attempt)
        if task_id is not None:
            query = query.where(a.c.task_id == task_id)
        with self._read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def results(self, run_id: str) -> dict[str, str]:
        from sqlalchemy import select

        t = s.results
        with self._read() as conn:
            rows = conn.execute(select(t.c.task_id, t.c.value).where(t.c.run_id == run_id))
            return {row.task_id: row.value for row in rows}

    def events(self, run_id: str, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        from sqlalchemy import select

        e = s.events
        query = (
            select(e).where(e.c.run_id == run_id, e.c.id > after_id).order_by(e.c.id).limit(limit)
        )
        with self._read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def version(self, version_id: int) -> dict[str, Any] | None:
        from sqlalchemy import select

        t = s.pipeline_versions
        with self._read() as conn:
            row = conn.execute(select(t).where(t.c.id == version_id)).mappings().first()
        return dict(row) if row else None

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

        Returns (pipeline_id, run_id) of the runs deleted (or that would be)."""
        from sqlalchemy import delete, select

        cutoff = time.time() - older_than_s
        r = s.runs
        with self._read() as conn:
            victims = [
                (row.pipeline_id, row.id)
                for row in conn.execute(
                    select(r.c.pipeline_id, r.c.id).where(
                        r.c.created_at < cutoff, r.c.state.not_in(ACTIVE_STATES)
                    )
                )
            ]
        if dry_run or not victims:
            return victims
        ids = [run_id for _, run_id in victims]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            with self.engine.begin() as conn:
                for table in (s.events, s.results, s.task_attempts, s.task_runs):
                    conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
                conn.execute(delete(r).where(r.c.id.in_(chunk)))
        with self.engine.begin() as conn:
            v = s.pipeline_versions
            used = select(r.c.version_id).where(r.c.version_id.is_not(None))
            conn.execute(delete(v).where(v.c.created_at < cutoff, v.c.id.not_in(used)))
        if self.dialect == "sqlite":
            raw = self.engine.raw_connection()  # VACUUM cannot run inside a transaction
            try:
                raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
            finally:
                raw.close()
        return victims
