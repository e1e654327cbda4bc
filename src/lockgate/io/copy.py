"""Copying any dataset to any other, batch by batch: what `lockgate copy` and the `copy` task do.

Memory stays flat (one batch in flight); the target changes only when the whole source has
been read and written (the writer's commit), so a failure halfway leaves the old target.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lockgate.io.base import BATCH_ROWS, WriteResult
from lockgate.io.connect import open_reader, open_writer
from lockgate.io.dataset import Dataset, display
from lockgate.io.schemas import conform, declared, describe_schema


@dataclass(frozen=True)
class CopyResult:
    source: str
    written: WriteResult
    seconds: float
    schema: list[dict[str, Any]]

    @property
    def rows(self) -> int:
        return self.written.rows

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            **self.written.to_json(),
            "seconds": round(self.seconds, 3),
            "schema": self.schema,
        }


def copy(
    source: Dataset,
    target: Dataset,
    *,
    mode: str = "overwrite",
    keys: tuple[str, ...] = (),
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int], None] | None = None,
) -> CopyResult:
    """Copy `source` into `target`; `progress(rows_so_far)` is called after each batch."""
    started = time.perf_counter()
    with open_reader(source, batch_rows=batch_rows) as reader:
        schema = declared(reader.schema, {**dict(source.tags), **dict(target.tags)})
        rows = 0
        with open_writer(target, schema, mode=mode, keys=keys, sources=[source]) as writer:
            for batch in reader:
                if batch.schema.names == schema.names:
                    batch = conform(batch, schema)  # the declared tags ride on every batch
                writer.write(batch)
                rows += batch.num_rows
                if progress is not None:
                    progress(rows)
            written = writer.commit()
    return CopyResult(
        display(source.uri), written, time.perf_counter() - started, describe_schema(schema)
    )
