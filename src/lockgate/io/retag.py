"""Tags from the store's catalogue put back on a dataset read from a format that cannot carry
them (CSV, JSONL, SQL tables): only on columns that exist and have no tag of their own, so a
stale catalogue entry (a column dropped or renamed since) is harmless."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa

from lockgate.io.base import ClosingReader, Reader
from lockgate.model.classification import tag_of, with_tag


class _Retagged(ClosingReader):
    """A reader whose schema and batches carry the catalogued tags."""

    def __init__(self, reader: Reader, schema: pa.Schema) -> None:
        self._reader = reader
        self._schema = schema

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._reader:
            yield pa.RecordBatch.from_arrays(batch.columns, schema=self._schema)

    def close(self) -> None:
        self._reader.close()

    def __getattr__(self, name: str) -> Any:  # e.g. a connector's progress counters
        return getattr(self._reader, name)


def with_catalogued_tags(reader: Reader, tags: Mapping[str, str]) -> Reader:
    """`reader`, or a wrapper whose schema adds `tags` to untagged columns that exist."""
    schema = reader.schema
    fields = [
        with_tag(f, tags[f.name]) if f.name in tags and tag_of(f) is None else f for f in schema
    ]
    if all(a is b for a, b in zip(fields, schema, strict=True)):
        return reader
    return _Retagged(reader, pa.schema(fields, metadata=schema.metadata))
