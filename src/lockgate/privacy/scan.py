"""`scan`: classify every column of a file or table from a deterministic sample of its rows.

The sample is drawn from the whole input, not its head: each row gets a pseudo-random key from
its position and the seed (splitmix64), and the `sample_size` rows with the smallest keys are
kept while the input streams by (a bottom-k reservoir, so memory holds one batch and the
sample). The same input and seed give the same sample, whatever the batch sizes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from lockgate.errors import PrivacyError
from lockgate.io.formats import BatchReader
from lockgate.model.classification import is_raw, tag_of
from lockgate.privacy.classify import ColumnClass, as_texts, classify_values, default_analyzer
from lockgate.privacy.entities import FREE_TEXT

SAMPLE_SIZE = 1000
SCAN_BATCH_ROWS = 1 << 17

_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_MASK = (1 << 64) - 1


def row_keys(start: int, count: int, seed: int) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """Pseudo-random 64-bit keys of rows `start .. start+count-1` (splitmix64 of position+seed)."""
    x = np.arange(start, start + count, dtype=np.uint64)
    x += np.uint64((seed * _GOLDEN + 0x632BE59BD9B4E019) & _MASK)
    x ^= x >> np.uint64(30)
    x *= _MIX1
    x ^= x >> np.uint64(27)
    x *= _MIX2
    x ^= x >> np.uint64(31)
    return x


def sample_rows(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, size: int, seed: int = 0
) -> tuple[pa.Table, int]:
    """A deterministic uniform sample of at most `size` rows, and how many rows were seen."""
    keys = np.empty(0, dtype=np.uint64)
    sample = schema.empty_table()
    seen = 0
    for batch in batches:
        count = batch.num_rows
        if not count:
            continue
        batch_keys = row_keys(seen, count, seed)
        seen += count
        if size <= 0:
            continue
        if len(keys) >= size:
            picked = np.flatnonzero(batch_keys < keys.max())
            if not picked.size:
                continue
            batch_keys = batch_keys[picked]
            rows = pa.Table.from_batches([batch.take(pa.array(picked))], schema=schema)
        else:
            rows = pa.Table.from_batches([batch], schema=schema)
        keys = np.concatenate([keys, batch_keys])
        sample = pa.concat_tables([sample, rows])
        if len(keys) > size:
            keep = np.argpartition(keys, size - 1)[:size]
            keys = keys[keep]
            sample = sample.take(pa.array(keep))
    order = np.argsort(keys, kind="stable")
    return sample.take(pa.array(order)).combine_chunks(), seen


@dataclass
class ScanReport:
    """The classification of every column of `source`, judged on `rows_sampled` rows."""

    source: str
    rows_sampled: int
    columns: list[ColumnClass]
    rows_seen: int = 0
    sample_size: int = SAMPLE_SIZE
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def column(self, name: str) -> ColumnClass:
        for column in self.columns:
            if column.name == name:
                return column
        raise PrivacyError(f"{self.source}: no column {name!r} in the scan")

    def classes(self) -> dict[str, str | None]:
        """Column name -> classification (None when the column holds no PII)."""
        return {c.name: c.classification for c in self.columns}

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows_sampled": self.rows_sampled,
            "rows_seen": self.rows_seen,
            "sample_size": self.sample_size,
            "seed": self.seed,
            "columns": [c.to_json() for c in self.columns],
        }


def classify_sample(sample: pa.Table) -> list[ColumnClass]:
    """Classify each column of a sampled table (see `lockgate.privacy.classify`)."""
    analyzer = default_analyzer()
    out = []
    for index, name in enumerate(sample.column_names):
        column = sample.column(index)
        schema_field = sample.schema.field(index)
        texts = as_texts(column)
        if texts is None:
            out.append(
                ColumnClass(
                    name,
                    tag_of(schema_field),
                    1.0,
                    type=str(column.type),
                    sampled=len(column) - column.null_count,
                    tag=tag_of(schema_field),
                    reason="tag" if tag_of(schema_field) else "type holds no PII",
                )
            )
            continue
        found = classify_values(
            name,
            texts,
            analyzer=analyzer,
            type_name=str(column.type),
            tag=tag_of(schema_field),
        )
        if pa.types.is_nested(column.type):
            found = _nested(found)
        out.append(found)
    return out


def _nested(found: ColumnClass) -> ColumnClass:
    """A nested column (struct, list, map) judged on its values' JSON text: PII anywhere inside
    makes it `free_text` (no one entity describes the whole value; `mask --auto` then redacts
    the spans in its JSON text, and the column becomes text); without, it is unclassified."""
    if (
        found.classification is not None
        and found.classification != FREE_TEXT
        and is_raw(found.classification)
    ):
        found.classification = FREE_TEXT
        found.reason = f"PII inside nested values ({found.reason})"
    elif found.classification is None:
        found.reason = "nested values read as JSON; no PII found"
    return found


def _batches_of(
    data: pa.Table | pa.RecordBatch | pa.RecordBatchReader | Iterable[pa.RecordBatch],
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    if isinstance(data, pa.Table):
        return data.schema, iter(data.to_batches())
    if isinstance(data, pa.RecordBatch):
        return data.schema, iter([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.schema, iter(data)
    batches = iter(data)
    first = next(batches, None)
    if first is None:
        raise PrivacyError("nothing to scan: no record batches and so no columns")

    def chained() -> Iterator[pa.RecordBatch]:
        yield first
        yield from batches

    return first.schema, chained()


def scan_table(
    table_or_batches: pa.Table | pa.RecordBatch | pa.RecordBatchReader | Iterable[pa.RecordBatch],
    *,
    sample_size: int = SAMPLE_SIZE,
    seed: int = 0,
    name: str = "",
) -> ScanReport:
    """Classify the columns of an Arrow table (or a stream of record batches)."""
    schema, batches = _batches_of(table_or_batches)
    sample, seen = sample_rows(batches, schema, sample_size, seed)
    return ScanReport(
        source=name,
        rows_sampled=sample.num_rows,
        columns=classify_sample(sample),
        rows_seen=seen,
        sample_size=sample_size,
        seed=seed,
    )


def scan(
    source: str | os.PathLike[str],
    *,
    sample_size: int = SAMPLE_SIZE,
    seed: int = 0,
    fmt: str | None = None,
    columns: Sequence[str] | None = None,
) -> ScanReport:
    """Classify the columns of a CSV, Parquet or JSONL file, streamed (memory stays flat);
    with `columns`, only those (the others are neither sampled nor reported)."""
    if sample_size < 1:
        raise PrivacyError(f"sample size must be at least 1, not {sample_size}")
    with BatchReader(source, fmt=fmt, batch_rows=SCAN_BATCH_ROWS, merge=False) as reader:
        if columns is None:
            sample, seen = sample_rows(reader, reader.schema, sample_size, seed)
        else:
            names = list(columns)
            schema = pa.schema([reader.schema.field(n) for n in names])
            picked = (b.select(names) for b in reader)
            sample, seen = sample_rows(picked, schema, sample_size, seed)
    return ScanReport(
        source=os.fspath(source),
        rows_sampled=sample.num_rows,
        columns=classify_sample(sample),
        rows_seen=seen,
        sample_size=sample_size,
        seed=seed,
    )
