"""The store's reads for the server: bounded, indexed pages (keyset pagination, never an
offset or a count over every run), so a list is as fast with 100,000 runs as with ten."""

from __future__ import annotations

import json
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
MAX_BRANCHES = 64
"""On SQLite a filter on up to this many pipelines (or states) reads one index range per value
and merges them (`UNION ALL` of pages) instead of sorting every matching run: 5 pipelines of
100,000 runs took 45 ms a page sorted, 1 ms merged. PostgreSQL plans it well (0.6 ms) as is."""
SCAN_ROWS = 20_000
"""Rows one page looks at, at most, when no index serves its filter (`_id_page`)."""
_AUDIT_FIELDS = "seq, ts, actor, action, target, run_id, detail, key_id, hash"
_DATASET_FIELDS = "uri, kind, schema, rows, run_id, task_id, updated_at"
_QUALITY_FIELDS = (
    "t.id, t.run_id, r.pipeline_id, t.task_id, t.attempt, t.dataset, t.name, t.check_kind, "
    "t.severity, t.passed, t.failing_rows, t.detail, t.ts"
)
_DECISION_FIELDS = (
    "t.id, t.run_id, r.pipeline_id, t.task_id, t.attempt, t.dataset, t.zone, t.decision, "
    "t.detail, t.ts"
)
_WAIVER_FIELDS = (
    "id, rule, dataset, columns, zone, owner, reason, created_by, created_at, expires_at, "
    "revoked_at, revoked_by, mac"
)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _json_column(row: dict[str, Any], column: str) -> dict[str, Any]:
    text = row.get(column)
    row[column] = json.loads(text) if text else None
    return row


def _touched_by(alias: str, n: int) -> str:
    """SQL: the dataset `alias` (its uri and run_id) was written or read by a run of one of
    `n` pipelines (bound three times: the catalogue's last writer, lineage out, lineage in)."""
    runs = f"r.pipeline_id IN ({_marks(n)})"
    return (
        f"(EXISTS (SELECT 1 FROM runs r WHERE r.id = {alias}.run_id AND {runs}) "
        "OR EXISTS (SELECT 1 FROM lineage l JOIN runs r ON r.id = l.run_id "
        f"WHERE l.output_uri = {alias}.uri AND {runs}) "
        "OR EXISTS (SELECT 1 FROM lineage l JOIN runs r ON r.id = l.run_id "
        f"WHERE l.input_uri = {alias}.uri AND {runs}))"
    )


class BrowseStore:
    """Mixed into `Store`: needs `self.db`."""

    db: Database

    if TYPE_CHECKING:

        def _waiver(self, row: dict[str, Any]) -> dict[str, Any]:
            """A waiver row decoded and checked against its MAC (GovernanceStore)."""
            ...

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
        split: tuple[str, list[str]] | None = None
        if self.db.dialect == "sqlite":
            if pipelines is not None and 1 < len(pipelines) <= MAX_BRANCHES:
                split = ("pipeline_id", list(pipelines))
            elif pipelines is None and 1 < len(states) <= MAX_BRANCHES:
                split = ("state", list(states))
        where: list[str] = []
        params: list[Any] = []
        if pipelines is not None and (split is None or split[0] != "pipeline_id"):
            where.append(f"pipeline_id IN ({_marks(len(pipelines))})")
            params += list(pipelines)
        if states and (split is None or split[0] != "state"):
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
        order = "ORDER BY created_at DESC, id DESC LIMIT ?"
        if split is None:
            clause = f" WHERE {' AND '.join(where)}" if where else ""
            return self.db.rows(
                f"SELECT {RUN_FIELDS} FROM runs{clause} {order}", (*params, int(limit))
            )
        # one index range per value, merged: SQLite would otherwise sort every matching run
        column, values = split
        conditions = " AND ".join([f"{column} = ?", *where])
        branch = f"SELECT * FROM (SELECT {RUN_FIELDS} FROM runs WHERE {conditions} {order}) AS b"
        bound: list[Any] = []
        for value in values:
            bound += [value, *params, int(limit)]
        union = " UNION ALL ".join(f"{branch}{i}" for i in range(len(values)))
        return self.db.rows(f"{union} {order}", (*bound, int(limit)))

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

    # -- pages of the data plane and governance (datasets, quality, decisions, waivers) -------
    def _id_page(
        self,
        query: str,
        where: list[str],
        params: list[Any],
        *,
        table: str,
        before: int | None,
        limit: int,
        scan: int | None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Rows of `query` (the table aliased `t`) matching `where`, newest first by id, below
        `before`; and the `before` of the next page (None after the last). With `scan`, only
        ids in [top - scan, top) are looked at (a range of the primary key), so a filter that
        no index serves reads at most `scan` rows per page; such a page may come back short,
        or empty, with a next one."""
        conds = list(where)
        args = list(params)
        if before is not None:
            conds.append("t.id < ?")
            args.append(int(before))
        low: int | None = None
        if scan is not None:
            top = before if before is not None else self._max_id(table) + 1
            low = top - int(scan)
            conds.append("t.id >= ?")
            args.append(low)
        clause = f" WHERE {' AND '.join(conds)}" if conds else ""
        rows = self.db.rows(f"{query}{clause} ORDER BY t.id DESC LIMIT ?", (*args, int(limit) + 1))
        if len(rows) > limit:
            return rows[:limit], int(rows[limit - 1]["id"])
        if low is not None and low > int(self.db.scalar(f"SELECT MIN(id) FROM {table}") or 0):
            return rows, low
        return rows, None

    def _max_id(self, table: str) -> int:
        return int(self.db.scalar(f"SELECT MAX(id) FROM {table}") or 0)

    def catalogue_page(
        self,
        after: str = "",
        limit: int = 50,
        *,
        pipelines: Sequence[str] | None = None,
        scan: int = SCAN_ROWS,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Catalogue rows (`schema` decoded) in key order after `after`, and the `after` of the
        next page (None after the last). With `pipelines`, only datasets that runs of those
        pipelines wrote or read, looking at `scan` catalogue keys at most per page."""
        if pipelines is not None and not pipelines:
            return [], None
        if pipelines is None:
            rows = self.db.rows(
                f"SELECT {_DATASET_FIELDS} FROM datasets WHERE uri > ? ORDER BY uri LIMIT ?",
                (after, int(limit) + 1),
            )
            more = len(rows) > limit
            rows = [_json_column(r, "schema") for r in rows[:limit]]
            return rows, (rows[-1]["uri"] if more and rows else None)
        top = self.db.scalar(
            "SELECT MAX(uri) FROM (SELECT uri FROM datasets WHERE uri > ? ORDER BY uri LIMIT ?) w",
            (after, int(scan)),
        )
        if top is None:
            return [], None
        names = list(pipelines)
        rows = self.db.rows(
            f"SELECT {_DATASET_FIELDS} FROM datasets d WHERE d.uri > ? AND d.uri <= ? AND "
            f"{_touched_by('d', len(names))} ORDER BY d.uri LIMIT ?",
            (after, top, *names, *names, *names, int(limit) + 1),
        )
        if len(rows) > limit:
            rows = rows[:limit]
            return [_json_column(r, "schema") for r in rows], rows[-1]["uri"]
        beyond = self.db.rows("SELECT uri FROM datasets WHERE uri > ? ORDER BY uri LIMIT 1", (top,))
        return [_json_column(r, "schema") for r in rows], (str(top) if beyond else None)

    def dataset_visible(self, uri: str, pipelines: Sequence[str]) -> bool:
        """Whether a run of one of `pipelines` wrote dataset `uri` last, wrote or read it, or
        tried to write it (indexed lookups: the catalogue's key, lineage by output and by
        input, decisions by dataset)."""
        if not pipelines:
            return False
        names = list(pipelines)
        marks = _marks(len(names))
        return bool(
            self.db.rows(
                "SELECT 1 AS hit FROM datasets d JOIN runs r ON r.id = d.run_id "
                f"WHERE d.uri = ? AND r.pipeline_id IN ({marks})",
                (uri, *names),
            )
            or self.db.rows(
                "SELECT 1 AS hit FROM lineage l JOIN runs r ON r.id = l.run_id "
                f"WHERE l.output_uri = ? AND r.pipeline_id IN ({marks}) LIMIT 1",
                (uri, *names),
            )
            or self.db.rows(
                "SELECT 1 AS hit FROM lineage l JOIN runs r ON r.id = l.run_id "
                f"WHERE l.input_uri = ? AND r.pipeline_id IN ({marks}) LIMIT 1",
                (uri, *names),
            )
            or self.db.rows(
                "SELECT 1 AS hit FROM policy_decisions d JOIN runs r ON r.id = d.run_id "
                f"WHERE d.dataset = ? AND r.pipeline_id IN ({marks}) LIMIT 1",
                (uri, *names),
            )
        )

    def dataset_decided(self, uri: str) -> bool:
        """Whether the gate decided on a write of `uri` (a refused one leaves nothing else)."""
        return bool(
            self.db.rows("SELECT 1 AS hit FROM policy_decisions WHERE dataset = ? LIMIT 1", (uri,))
        )

    def latest_zones_of(self, uris: Sequence[str]) -> dict[str, str]:
        """The zone of the gate's last decision on each of `uris` that has one (by the
        `(dataset, id)` index, `MAX_IN` datasets a query)."""
        out: dict[str, str] = {}
        names = list(uris)
        for i in range(0, len(names), MAX_IN):
            chunk = names[i : i + MAX_IN]
            for row in self.db.rows(
                "SELECT dataset, zone FROM policy_decisions WHERE id IN (SELECT MAX(id) FROM "
                f"policy_decisions WHERE dataset IN ({_marks(len(chunk))}) GROUP BY dataset)",
                tuple(chunk),
            ):
                out[row["dataset"]] = row["zone"]
        return out

    def run_lineage_page(
        self, run_id: str, after: int = 0, limit: int = 50
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A run's lineage edges in the order recorded, after edge id `after`; and the `after`
        of the next page (None after the last)."""
        rows = self.db.rows(
            "SELECT id, task_id, input_uri, output_uri, ts FROM lineage "
            "WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
            (run_id, int(after), int(limit) + 1),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (int(rows[-1]["id"]) if more and rows else None)

    def run_quality_page(
        self, run_id: str, after: int = 0, limit: int = 50, *, dataset: str | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A run's data-quality results in the order recorded (of `dataset` only when given),
        `detail` decoded, after result id `after`; and the `after` of the next page."""
        query = (
            f"SELECT {_QUALITY_FIELDS} FROM quality_results t LEFT JOIN runs r ON r.id = t.run_id "
            "WHERE t.run_id = ? AND t.id > ?"
        )
        params: tuple[Any, ...] = (run_id, int(after))
        if dataset is not None:
            query += " AND t.dataset = ?"
            params += (dataset,)
        rows = self.db.rows(query + " ORDER BY t.id LIMIT ?", (*params, int(limit) + 1))
        more = len(rows) > limit
        rows = [_json_column(r, "detail") for r in rows[:limit]]
        return rows, (int(rows[-1]["id"]) if more and rows else None)

    def quality_page(
        self,
        *,
        pipelines: Sequence[str] | None = None,
        passed: bool | None = None,
        before: int | None = None,
        limit: int = 50,
        scan: int = SCAN_ROWS,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Data-quality results of every run, newest first (`detail` decoded, with the run's
        pipeline), of `pipelines` and passed or failed only when given; and the `before` of
        the next page. Filtered pages look at `scan` results at most (see `_id_page`)."""
        if pipelines is not None and not pipelines:
            return [], None
        where: list[str] = []
        params: list[Any] = []
        if pipelines is not None:
            where.append(f"r.pipeline_id IN ({_marks(len(pipelines))})")
            params += list(pipelines)
        if passed is not None:
            where.append("t.passed = ?")
            params.append(1 if passed else 0)
        rows, nxt = self._id_page(
            f"SELECT {_QUALITY_FIELDS} FROM quality_results t LEFT JOIN runs r ON r.id = t.run_id",
            where,
            params,
            table="quality_results",
            before=before,
            limit=limit,
            scan=scan if where else None,
        )
        return [_json_column(r, "detail") for r in rows], nxt

    def decisions_page(
        self,
        *,
        dataset: str | None = None,
        run_id: str | None = None,
        decisions: Sequence[str] = (),
        pipelines: Sequence[str] | None = None,
        before: int | None = None,
        limit: int = 50,
        scan: int = SCAN_ROWS,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """The gate's decisions newest first (`detail` decoded, with the run's pipeline): of
        one dataset (the `(dataset, id)` index) or run, with outcomes among `decisions`, of runs
        of `pipelines` (decisions outside runs are then left out); and the `before` of the next
        page. Without a dataset or run, a filtered page looks at `scan` decisions at most."""
        if pipelines is not None and not pipelines:
            return [], None
        where: list[str] = []
        params: list[Any] = []
        if dataset is not None:
            where.append("t.dataset = ?")
            params.append(dataset)
        if run_id is not None:
            where.append("t.run_id = ?")
            params.append(run_id)
        if decisions:
            where.append(f"t.decision IN ({_marks(len(decisions))})")
            params += list(decisions)
        if pipelines is not None:
            where.append(f"r.pipeline_id IN ({_marks(len(pipelines))})")
            params += list(pipelines)
        indexed = dataset is not None or run_id is not None
        rows, nxt = self._id_page(
            f"SELECT {_DECISION_FIELDS} FROM policy_decisions t LEFT JOIN runs r "
            "ON r.id = t.run_id",
            where,
            params,
            table="policy_decisions",
            before=before,
            limit=limit,
            scan=scan if where and not indexed else None,
        )
        return [_json_column(r, "detail") for r in rows], nxt

    def waivers_page(
        self,
        *,
        active_at: float | None = None,
        before: tuple[float, str] | None = None,
        limit: int = 50,
    ) -> tuple[list[dict[str, Any]], tuple[float, str] | None]:
        """Waivers newest first (created_at, then id), those in force at `active_at` only when
        given, each `verified` against its MAC; and the `before` of the next page."""
        where: list[str] = []
        params: list[Any] = []
        if active_at is not None:
            where.append("revoked_at IS NULL AND expires_at > ? AND created_at <= ?")
            params += [active_at, active_at]
        if before is not None:
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            params += [before[0], before[0], before[1]]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.rows(
            f"SELECT {_WAIVER_FIELDS} FROM waivers{clause} ORDER BY created_at DESC, id DESC "
            "LIMIT ?",
            (*params, int(limit) + 1),
        )
        more = len(rows) > limit
        rows = [self._waiver(r) for r in rows[:limit]]
        last = rows[-1] if more and rows else None
        return rows, ((float(last["created_at"]), str(last["id"])) if last else None)

    def connections_page(self, after: str = "", limit: int = 50) -> list[dict[str, Any]]:
        """Stored connections in name order after `after` (their sealed secrets included: the
        caller shows only which fields are set)."""
        return self.db.rows(
            "SELECT name, kind, url, options, secret, created_at, updated_at FROM connections "
            "WHERE name > ? ORDER BY name LIMIT ?",
            (after, int(limit)),
        )

    # -- the audit chain --------------------------------------------------------------------------
    def audit_page(
        self,
        *,
        before: int | None,
        actor: str | None = None,
        action: str | None = None,
        run: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        scan: int = SCAN_ROWS,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Audit records with seq < `before` matching the filters (`action`: a prefix), newest
        first, looking through at most `scan` sequence numbers (no index serves actor or run);
        (rows, where the next page starts or None)."""
        db = self.db
        top = before
        if top is None:
            newest = db.scalar("SELECT MAX(seq) FROM audit_log")
            if newest is None:
                return [], None
            top = int(newest) + 1
        low = max(top - scan, 0)
        where = ["seq < ?", "seq >= ?"]
        params: list[Any] = [top, low]
        if actor is not None:
            where.append("actor = ?")
            params.append(actor)
        if action is not None:
            where.append("substr(action, 1, ?) = ?")
            params.extend([len(action), action])
        if run is not None:
            where.append("run_id = ?")
            params.append(run)
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if until is not None:
            where.append("ts < ?")
            params.append(until)
        rows = db.rows(
            f"SELECT {_AUDIT_FIELDS} FROM audit_log WHERE {' AND '.join(where)} "
            "ORDER BY seq DESC LIMIT ?",
            (*params, limit + 1),
        )
        if len(rows) > limit:
            return rows[:limit], int(rows[limit - 1]["seq"])
        oldest = db.scalar("SELECT MIN(seq) FROM audit_log")
        further = oldest is not None and low > int(oldest)
        return rows, low if further else None

    def checkpoints_page(self, before: int | None, limit: int) -> list[dict[str, Any]]:
        """Signed checkpoints with seq < `before`, newest first."""
        clause, params = ("WHERE seq < ? ", (before,)) if before is not None else ("", ())
        return self.db.rows(
            "SELECT seq, hash, ts, key_id, public_key, signature, exported_to FROM "
            f"audit_checkpoints {clause}ORDER BY seq DESC LIMIT ?",
            (*params, limit),
        )
