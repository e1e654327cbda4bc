"""Running a transform on an array, a chunked array, or one column of a batch or table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from lockgate.errors import PrivacyError, did_you_mean
from lockgate.model import classification as tags
from lockgate.privacy.transforms.operation import Context, Operation, Values
from lockgate.privacy.transforms.registry import lookup

if TYPE_CHECKING:
    from lockgate.privacy.keys import Keyring

KEY_ID = b"lockgate.key_id"
"""Field metadata: the id of the key a keyed transform used on the column."""

Data = TypeVar("Data", pa.RecordBatch, pa.Table)


def meta_key(option: str) -> bytes:
    """The field metadata key an operation records option `option` under."""
    return f"lockgate.{option}".encode()


def context(
    op: Operation,
    options: Mapping[str, Any] | None,
    keyring: Keyring | None,
    column: str,
    classification: str | None,
    row_offset: int = 0,
) -> Context:
    """The checked options of `op` with its key id resolved against the keyring."""
    checked = op.check(options)
    if op.needs_key and keyring is not None:
        pinned = checked.get("key")
        checked["key"] = keyring.check_id(pinned) if pinned else keyring.current
    return Context(op.name, checked, column, classification, keyring, row_offset)


def apply(
    op: str | Operation,
    values: Values,
    *,
    options: Mapping[str, Any] | None = None,
    keyring: Keyring | None = None,
    column: str = "",
    classification: str | None = None,
) -> Values:
    """`values` transformed by operation `op` (an Array gives an Array, a ChunkedArray a
    ChunkedArray). `column` and `classification` are the column's name and tag: errors name
    the column, `encrypt` binds values to it, `mask` and `fake` pick their format from the tag.
    """
    spec: Operation = lookup(op)
    ctx = context(spec, options, keyring, column, classification)
    return run(spec, values, ctx)


def run(op: Operation, values: Values, ctx: Context, *, prepared: bool = False) -> Values:
    """Prepare once for the whole column (unless `prepared`), then transform it chunk by
    chunk."""
    if op.prepare is not None and not prepared:
        ctx = op.prepare(values, ctx)
    if not isinstance(values, pa.ChunkedArray):
        return _run_array(op, values, ctx)
    chunks: list[pa.Array] = []
    offset = ctx.row_offset
    for chunk in values.chunks:
        chunks.append(_run_array(op, chunk, replace(ctx, row_offset=offset)))
        offset += len(chunk)
    if not chunks:
        kind = _run_array(op, pa.array([], type=values.type), ctx).type
        return pa.chunked_array([], type=kind)
    kind = chunks[0].type
    return pa.chunked_array([c if c.type == kind else c.cast(kind) for c in chunks], type=kind)


def _run_array(op: Operation, values: pa.Array, ctx: Context) -> pa.Array:
    if pa.types.is_dictionary(values.type):
        if op.per_unique:
            return pa.DictionaryArray.from_arrays(values.indices, op.run(values.dictionary, ctx))
        values = values.dictionary_decode()
    return op.run(values, ctx)


def apply_to_field(
    data: Data,
    column: str,
    op: str | Operation,
    options: Mapping[str, Any] | None = None,
    keyring: Keyring | None = None,
    row_offset: int = 0,
) -> Data:
    """`data` (a RecordBatch or a Table) with `column` transformed by `op` and its field
    metadata updated: the classification tag gets the operation's form (`pii.email` ->
    `pii.email/tokenized`; decrypting restores `pii.email`), and keyed operations record the key
    id they used (`lockgate.key_id`) with whatever their reverse needs (FPE's alphabet).
    `row_offset`: rows before `data` in its file, so errors name the row of the file."""
    index = data.schema.get_field_index(column)
    if index < 0:
        raise PrivacyError(
            f"no column {column!r}" + did_you_mean(column, data.schema.names, known="columns:")
        )
    spec: Operation = lookup(op)
    field = data.schema.field(index)
    meta = dict(field.metadata or {})
    tag = tags.tag_of(field)
    given = dict(options or {})
    if spec.reverses:
        names = {o.name for o in spec.options}
        for name in spec.records:
            if given.get(name) is None and meta.get(meta_key(name)):
                given[name] = meta[meta_key(name)].decode()
        if "key" in names and given.get("key") is None and meta.get(KEY_ID):
            given["key"] = meta[KEY_ID].decode()
    ctx = context(spec, given, keyring, column, tag, row_offset)
    if spec.prepare is not None:
        ctx = spec.prepare(data.column(index), ctx)
    out = run(spec, data.column(index), ctx, prepared=True)
    if spec.reverses:
        for name in (*spec.records, "key_id"):
            meta.pop(meta_key(name), None)
        new_tag = tags.base_class(tag)
    else:
        # what an earlier transform recorded no longer describes the values
        for name in [k for k in meta if k.startswith(b"lockgate.") and k != tags.TAG_KEY]:
            del meta[name]
        if spec.needs_key and ctx.keyring is not None:
            meta[KEY_ID] = str(ctx.options["key"]).encode()
        for name in spec.records:
            value = ctx.options.get(name)
            if value is not None:
                meta[meta_key(name)] = str(value).encode()
        new_tag = tags.transformed(tag, spec.form)
    new_field = tags.with_tag(pa.field(field.name, out.type, field.nullable, meta or None), new_tag)
    if isinstance(data, pa.RecordBatch) and isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    return data.set_column(index, new_field, out)
