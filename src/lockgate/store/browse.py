"""The store's reads for the server: bounded, indexed pages (keyset pagination, never an
offset or a count over every run), so a list is as fast with 100,000 runs as with ten."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockgate.store.dbapi import Database

RUN_FIELDS = (
    'id, pipeline_id, version_id, state, params, executor, "trigger", created_at, started_at, '
    "ended_at, error, logical_date, data_interval_start, data_interval_end, run_key"
)
MAX_IN = 500
"""Ids bound into one `IN (...)`."""


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class BrowseStore:
    """Mixed into `Store`: needs `self.db`."""

    db: Database

    def runs_page(
        self,
        *,
        pipelines: Sequence[str] | None = None,
        states: Sequence[str] = (),
        trigger: str | None = None,
        since: float | None = None,
        until: float | None = None,
        before: tuple[float, str] | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Runs newest first (created_at, then id), after the cursor `before` (the last row
        of the previous page), among `pipelines` when given (an empty list: none)."""
        if pipelines is not None and not pipelines:
            return []
        where: list[str] = []
        params: list[Any] = []
        if pipelines is not None:
            where.append(f"pipeline_id IN ({_marks(len(pipelines))})")
            params += list(pipelines)
        if states:
            where.append(f"state IN ({_marks(len(states))})")
            params += list(states)
        if trigger:
            where.append('"trigger" = ?')
            params.append(trigger)
        if since is not None:
            where.append("created_at >= ?")
            params.append(since)
        if until is not None:
            where.append("created_at < ?")
            params.append(until)
        if before is not None:
            # the index range is on created_at <= ?; ties broken by id
            where.append("created_at <= ? AND (created_at < ? OR id < ?)")
            params += [before[0], before[0], before[1]]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return self.db.rows(
            f"SELECT {RUN_FIELDS} FROM runs{clause} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, int(limit)),
        )

    def task_runs_of(self, run_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Task states of several runs (a pipeline's grid): one query per `MAX_IN` runs."""
        ids = list(run_ids)
        out: list[dict[str, Any]] = []
        for i in range(0, len(ids), MAX_IN):
            chunk = ids[i : i + MAX_IN]
            out += self.db.rows(
                "SELECT run_id, task_id, state, attempts, updated_at FROM task_runs "
                f"WHERE run_id IN ({_marks(len(chunk))})",
                tuple(chunk),
            )
        return out

    def attempt_times(self, run_id: str) -> list[dict[str, Any]]:
        """Every attempt of a run with its times (the Gantt chart)."""
        return self.db.rows(
            "SELECT task_id, attempt, state, started_at, ended_at, error FROM task_attempts "
            "WHERE run_id = ? ORDER BY started_at, task_id, attempt",
            (run_id,),
        )

    def versions_page(
        self, pipeline_id: str, before: int | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """A pipeline's recorded versions, newest first (without their source)."""
        clause, params = ("AND id < ? ", (before,)) if before is not None else ("", ())
        return self.db.rows(
            "SELECT id, pipeline_id, hash, file, created_at FROM pipeline_versions "
            f"WHERE pipeline_id = ? {clause}ORDER BY id DESC LIMIT ?",
            (pipeline_id, *params, int(limit)),
        )

    def run_state_counts(self, pipeline_id: str, since: float) -> dict[str, int]:
        """How many runs of a pipeline created since `since` ended in each state."""
        rows = self.db.rows(
            "SELECT state, COUNT(*) AS n FROM runs WHERE pipeline_id = ? AND created_at >= ? "
            "GROUP BY state",
            (pipeline_id, since),
        )
        return {row["state"]: int(row["n"]) for row in rows}
