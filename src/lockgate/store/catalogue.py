"""The store's side of the data plane: the dataset catalogue (last known schema and
classification tags of each dataset written), lineage edges and data-quality results. Rows are
written by the event path (store/fold.py, from the facts tasks report); these are the reads,
plus `record_dataset` for writes made outside a run (`lockgate copy`)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from lockgate.model.facts import DATASET_WRITTEN

if TYPE_CHECKING:
    from lockgate.store.dbapi import Database

LINEAGE_EDGES = 2000
"""Edges one lineage query returns at most (a huge graph is cut, never loaded whole)."""
_QUALITY_COLUMNS = (
    "run_id, task_id, attempt, dataset, name, check_kind, severity, passed, failing_rows, "
    "detail, ts"
)


def _decoded(row: dict[str, Any], column: str) -> dict[str, Any]:
    text = row.get(column)
    row[column] = json.loads(text) if text else None
    return row


class CatalogueStore:
    """Mixed into `Store`: needs `self.db` and `self._sql` (store/fold.py statements)."""

    db: Database
    _sql: dict[str, str]

    def dataset(self, uri: str) -> dict[str, Any] | None:
        """The catalogue row of `uri` (as `io.dataset.display` shows it), `schema` decoded."""
        found = self.db.rows(
            "SELECT uri, kind, schema, rows, run_id, task_id, updated_at FROM datasets "
            "WHERE uri = ?",
            (uri,),
        )
        return _decoded(found[0], "schema") if found else None

    def record_dataset(
        self, uri: str, kind: str, schema: list[dict[str, Any]], rows: int | None
    ) -> None:
        """Record a dataset written outside a run (no lineage: no run to tie it to)."""
        with self.db.transaction() as cur:
            cur.execute(
                self._sql["catalogue"],
                (uri, kind, json.dumps(schema), rows, None, None, time.time()),
            )

    def quality_results(self, run_id: str, task_id: str | None = None) -> list[dict[str, Any]]:
        """A run's data-quality results in the order they were recorded, `detail` decoded."""
        query = f"SELECT {_QUALITY_COLUMNS} FROM quality_results WHERE run_id = ?"
        params: tuple[Any, ...] = (run_id,)
        if task_id is not None:
            query += " AND task_id = ?"
            params += (task_id,)
        return [_decoded(r, "detail") for r in self.db.rows(query + " ORDER BY id", params)]

    def quality_counts(self, run_ids: list[str]) -> dict[str, tuple[int, int]]:
        """Per run: (checks recorded, checks failed), one query per 500 runs."""
        out: dict[str, tuple[int, int]] = {}
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            for row in self.db.rows(
                "SELECT run_id, COUNT(*) AS total, SUM(1 - passed) AS failed "
                f"FROM quality_results WHERE run_id IN ({marks}) GROUP BY run_id",
                tuple(chunk),
            ):
                out[row["run_id"]] = (int(row["total"]), int(row["failed"] or 0))
        return out

    def lineage(self, run_id: str) -> list[dict[str, Any]]:
        """A run's lineage edges: which task made which output from which input."""
        return self.db.rows(
            "SELECT task_id, input_uri, output_uri, ts FROM lineage WHERE run_id = ? ORDER BY id",
            (run_id,),
        )

    def datasets_written(self, run_id: str) -> list[dict[str, Any]]:
        """Each dataset write of the run, in order: the task and what it reported (uri, kind,
        rows, mode, schema with tags, inputs)."""
        rows = self.db.rows(
            "SELECT task_id, attempt, data FROM events WHERE run_id = ? AND kind = ? ORDER BY id",
            (run_id, DATASET_WRITTEN),
        )
        return [{"task_id": r["task_id"], **json.loads(r["data"] or "{}")} for r in rows]

    # -- the lineage graph (lockgate lineage) -----------------------------------------------
    def lineage_edges(
        self, uris: list[str], *, upstream: bool, limit: int = LINEAGE_EDGES
    ) -> list[dict[str, Any]]:
        """The lineage edges into the datasets `uris` (`upstream`) or out of them: one row per
        (input, output, pipeline, task) with its last run (`run_id`, `ts`) and how many runs
        made it (`runs`), newest first, at most `limit` per call. Indexed: each dataset is
        looked up by `ix_lineage_output` (or `ix_lineage_input`), 500 at a time."""
        column = "output_uri" if upstream else "input_uri"
        out: list[dict[str, Any]] = []
        for i in range(0, len(uris), 500):
            chunk = uris[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            out.extend(
                self.db.rows(
                    "SELECT input_uri, output_uri, pipeline_id, task_id, run_id, ts, runs FROM ("
                    "SELECT l.input_uri, l.output_uri, r.pipeline_id, l.task_id, l.run_id, l.ts, "
                    "ROW_NUMBER() OVER (PARTITION BY l.input_uri, l.output_uri, r.pipeline_id, "
                    "l.task_id ORDER BY l.ts DESC, l.id DESC) AS pick, "
                    "COUNT(*) OVER (PARTITION BY l.input_uri, l.output_uri, r.pipeline_id, "
                    "l.task_id) AS runs "
                    f"FROM lineage l LEFT JOIN runs r ON r.id = l.run_id WHERE l.{column} IN "
                    f"({marks})) AS edges WHERE pick = 1 ORDER BY ts DESC LIMIT ?",
                    (*chunk, limit - len(out)),
                )
            )
            if len(out) >= limit:
                break
        return out

    def datasets_info(self, uris: list[str]) -> dict[str, dict[str, Any]]:
        """The catalogue rows of `uris` that it has, by uri (`schema` decoded); by primary key,
        500 at a time."""
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(uris), 500):
            chunk = uris[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            for row in self.db.rows(
                "SELECT uri, kind, schema, rows, run_id, task_id, updated_at FROM datasets "
                f"WHERE uri IN ({marks})",
                tuple(chunk),
            ):
                out[row["uri"]] = _decoded(row, "schema")
        return out

    def in_lineage(self, uri: str) -> bool:
        """Whether any lineage edge reads or writes `uri` (two index lookups)."""
        return bool(
            self.db.rows("SELECT 1 AS hit FROM lineage WHERE output_uri = ? LIMIT 1", (uri,))
            or self.db.rows("SELECT 1 AS hit FROM lineage WHERE input_uri = ? LIMIT 1", (uri,))
        )

    def dataset_names(self, after: str = "", limit: int = 1000) -> list[str]:
        """Catalogue keys in order, from the first after `after`: a page of the primary key
        (walk the catalogue with successive pages; never all of it at once)."""
        rows = self.db.rows(
            "SELECT uri FROM datasets WHERE uri > ? ORDER BY uri LIMIT ?", (after, limit)
        )
        return [row["uri"] for row in rows]

    def datasets_page(self, after: str = "", limit: int = 200) -> list[dict[str, Any]]:
        """Catalogue rows (`schema` decoded) in key order from the first after `after`: one
        page of a walk over the whole catalogue (`lockgate lineage --subject`)."""
        rows = self.db.rows(
            "SELECT uri, kind, schema, rows, run_id, task_id, updated_at FROM datasets "
            "WHERE uri > ? ORDER BY uri LIMIT ?",
            (after, limit),
        )
        return [_decoded(row, "schema") for row in rows]
