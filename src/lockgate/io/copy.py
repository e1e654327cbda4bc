"""Copying any dataset to any other, batch by batch: what `lockgate copy` and the `copy` task do.

Memory stays flat (one batch in flight); the target changes only when the whole source has
been read and written (the writer's commit), so a failure halfway leaves the old target.

Also the column lineage a write reports (`DatasetWritten` facts' `columns`): a copy passes each
column as it is (`identity_lineage`); `capped_lineage` keeps any producer's facts small.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lockgate.io.base import BATCH_ROWS, WriteResult
from lockgate.io.connect import open_reader, open_writer
from lockgate.io.dataset import Dataset, display
from lockgate.io.schemas import conform, declared, describe_written

LINEAGE_COLUMNS = 500
"""Output columns whose lineage a write reports (wider tables: the first ones)."""
LINEAGE_INPUTS = 50
"""Input columns reported per output column (a `hash(*)` over a wide table: the first ones)."""
ColumnLineage = dict[str, list[dict[str, Any]]]
"""`{output column: [{"dataset", "field", "transform", "masking", "kind"}, ...]}`."""


def lineage_entry(
    dataset: str,
    field: str,
    kind: str = "identity",
    transform: str | None = None,
    masking: bool = False,
) -> dict[str, Any]:
    """One input column an output column comes from: its dataset (catalogue key) and name,
    the operation applied (a masking operation's name, else None), whether it masks, and the
    kind of use (`identity`, `transformation` or `aggregation`)."""
    return {
        "dataset": dataset,
        "field": field,
        "transform": transform,
        "masking": masking,
        "kind": kind,
    }


def identity_lineage(dataset: str, names: Iterable[str]) -> ColumnLineage:
    """The lineage of a copy of `dataset` (a catalogue key): each column as it is."""
    return capped_lineage({name: [lineage_entry(dataset, name)] for name in names})


def identity_of(source: Dataset, schema: Sequence[Mapping[str, Any]]) -> ColumnLineage:
    """`identity_lineage` of a copy of `source` whose described schema is `schema`."""
    from lockgate.io.catalogue import key

    return identity_lineage(key(source.uri), (str(f["name"]) for f in schema))


def capped_lineage(columns: Mapping[str, Sequence[dict[str, Any]]]) -> ColumnLineage:
    """`columns` within `LINEAGE_COLUMNS` output and `LINEAGE_INPUTS` input columns each."""
    out: ColumnLineage = {}
    for name, sources in columns.items():
        if len(out) >= LINEAGE_COLUMNS:
            break
        out[name] = list(sources[:LINEAGE_INPUTS])
    return out


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
        display(source.uri),
        written,
        time.perf_counter() - started,
        describe_written(schema, written.found_tags),
    )
