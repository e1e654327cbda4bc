"""Arrow schemas of datasets: declared classification tags laid over them, batches made to
match them, and the description the store and facts record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lockgate.errors import DataError, did_you_mean
from lockgate.model.classification import DECLASSIFIED_KEY, is_raw, tag_of, with_tag

if TYPE_CHECKING:
    import pyarrow as pa


def describe_schema(schema: Any) -> list[dict[str, Any]]:
    """`[{"name", "type", "tag"}]` for an Arrow schema: what the store and facts record."""
    return [{"name": f.name, "type": str(f.type), "tag": tag_of(f)} for f in schema]


def describe_written(schema: Any, found: Mapping[str, str]) -> list[dict[str, Any]]:
    """`describe_schema` of what was written: `schema`, plus the classifications the policy
    gate found in untagged columns (`WriteResult.found_tags`)."""
    described = describe_schema(schema) if not isinstance(schema, list) else schema
    if not found:
        return described
    return [{**f, "tag": f["tag"] or found.get(f["name"])} for f in described]


def declared(schema: Any, tags: Mapping[str, str] | Any, label: str | None = None) -> Any:
    """`schema` with the declared `tags` (column -> classification) set on its fields; a
    declared tag wins over one the source carried, but a raw tag made less sensitive (`none`,
    or a transformed form the data never went through) is kept aside in the field's metadata
    (`DECLASSIFIED_KEY`), so the policy gate still judges the column by it. With `label` (the
    dataset, as shown), a tag naming a column the schema does not have is a DataError."""
    if not tags:
        return schema
    import pyarrow as pa

    if label is not None:
        for column in tags:
            if column not in schema.names:
                hint = did_you_mean(column, schema.names, "its columns are")
                raise DataError(
                    f"{label}: tags name column {column!r}, which it does not have{hint}"
                )
    return pa.schema(
        [_declare(f, tags[f.name]) if f.name in tags else f for f in schema],
        metadata=schema.metadata,
    )


def _declare(field: Any, tag: str) -> Any:
    before = tag_of(field)
    out = with_tag(field, tag)
    if is_raw(before) and not is_raw(tag):
        out = out.with_metadata({**(out.metadata or {}), DECLASSIFIED_KEY: before.encode()})  # type: ignore[union-attr]
    return out


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with `schema` (its tags): relabelled when only field metadata differs, cast
    otherwise (a reader whose batches drift from its schema, e.g. a null-only column)."""
    if batch.schema.equals(schema, check_metadata=True):
        return batch
    import pyarrow as pa

    if batch.schema.equals(schema):
        return pa.RecordBatch.from_arrays(batch.columns, schema=schema)
    return batch.cast(schema)
