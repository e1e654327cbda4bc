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
