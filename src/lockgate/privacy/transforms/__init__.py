"""Column transforms: named operations from an Arrow array to an Arrow array.

`apply("tokenize", values, keyring=...)` transforms an array; `apply_to_field(batch, "email",
"tokenize", keyring=...)` transforms one column of a RecordBatch or Table and updates its
classification tag (`pii.email` -> `pii.email/tokenized`). `OPERATIONS` lists them all, each
with its options (`Operation.check`) and documentation (`Operation.doc`). Every operation keeps
nulls null and works on whole arrays at once (pyarrow.compute and numpy), except the per-value
cryptography of `fpe` and `encrypt`.
"""

from lockgate.privacy.transforms.operation import Context, Operation, Values
from lockgate.privacy.transforms.options import Option
from lockgate.privacy.transforms.registry import OPERATIONS, lookup
from lockgate.privacy.transforms.running import KEY_ID, apply, apply_to_field

__all__ = [
    "KEY_ID",
    "OPERATIONS",
    "Context",
    "Operation",
    "Option",
    "Values",
    "apply",
    "apply_to_field",
    "lookup",
]
