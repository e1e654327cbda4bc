"""`nullify`: every value becomes null."""

from __future__ import annotations

import pyarrow as pa

from lockgate.privacy.transforms.operation import Context, Operation


def nullify(values: pa.Array, ctx: Context) -> pa.Array:
    """Replace every value with null, keeping the column's type (so the schema is unchanged)."""
    return pa.nulls(len(values), values.type)


OPERATION = Operation(
    name="nullify",
    form="nullified",
    summary="replace every value with null (the column and its type stay)",
    needs_key=False,
    run=nullify,
    per_unique=False,
)
