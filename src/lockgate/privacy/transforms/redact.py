"""`redact`: every value becomes the same fixed placeholder."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockgate.privacy.transforms.operation import Context, Operation
from lockgate.privacy.transforms.options import Option
from lockgate.privacy.transforms.strings import build, layout

DEFAULT_PLACEHOLDER = "[REDACTED]"


def redact(values: pa.Array, ctx: Context) -> pa.Array:
    """Replace every value with a fixed placeholder (option `placeholder`, default
    `[REDACTED]`), whatever its type; the result is a text column.

    Nulls stay null and empty strings stay empty (there is nothing in them to hide), so a
    redacted column still shows which rows had a value.
    """
    encoded = str(ctx.options["placeholder"]).encode()
    n = len(values)
    lens = np.full(n, len(encoded), dtype=np.int64)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        lens[layout(values).lens == 0] = 0
    if values.null_count:
        lens[~pc.is_valid(values).to_numpy(zero_copy_only=False)] = 0
    count = int(np.count_nonzero(lens))
    data = np.tile(np.frombuffer(encoded, dtype=np.uint8), count if encoded else 0)
    return build(data, lens, values)


OPERATION = Operation(
    name="redact",
    form="redacted",
    summary="replace every value with a fixed placeholder ([REDACTED])",
    needs_key=False,
    run=redact,
    options=(Option("placeholder", "str", DEFAULT_PLACEHOLDER, "the text every value becomes"),),
)
