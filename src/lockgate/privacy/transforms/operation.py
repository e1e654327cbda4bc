"""What a transform is: a named, documented function from an Arrow array to an Arrow array."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import pyarrow as pa

from lockgate.errors import KeyringError
from lockgate.privacy.transforms.options import Option, check_options

if TYPE_CHECKING:
    from lockgate.privacy.keys import Keyring

Values: TypeAlias = "pa.Array | pa.ChunkedArray"
"""An Arrow array or chunked array."""


@dataclass(frozen=True)
class Context:
    """What a transform knows while it runs: its checked options and the column's identity."""

    op: str
    options: Mapping[str, Any]
    column: str = ""
    classification: str | None = None
    keyring: Keyring | None = None
    row_offset: int = 0
    """Rows before this array in the column (errors name rows of the whole column)."""

    def key(self, purpose: str) -> tuple[str, bytes]:
        """`(key id, key)` for `purpose`: the pinned key id (option `key`) or the current one."""
        if self.keyring is None:
            raise KeyringError(
                f"{self.op} needs a key; pass a keyring (run `lockgate init` to create the "
                "project's key file, or set LOCKGATE_KEYS)"
            )
        return self.keyring.key_for(purpose, self.options.get("key"))

    def where(self, row: int) -> str:
        """`row 17 of column 'email'`: where a value is, never what it is."""
        return f"row {self.row_offset + row} of column {self.column or '?'!r}"


Runner = Callable[[pa.Array, Context], pa.Array]
Preparer = Callable[[Values, Context], Context]


@dataclass(frozen=True)
class Operation:
    """A transform: its name, the tag form it leaves (`pii.email` -> `pii.email/tokenized`),
    a one-line summary, whether it needs a key, and the function that runs it."""

    name: str
    form: str
    summary: str
    needs_key: bool
    run: Runner = field(repr=False, compare=False)
    options: tuple[Option, ...] = ()
    prepare: Preparer | None = field(default=None, repr=False, compare=False)
    """Resolves data-dependent options once per column (e.g. the FPE alphabet)."""
    records: tuple[str, ...] = ()
    """Options written to the field metadata as `lockgate.<name>`; the reversing operation reads
    them back (FPE's alphabet and tweak, the type an encrypted column had)."""
    reverses: bool = False
    """The result is the raw value again (decrypt): the tag goes back to its base class."""
    per_unique: bool = True
    """Each value's result depends on the value alone: a dictionary column is transformed by
    transforming its dictionary."""

    def check(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """The options validated and normalised, defaults filled in; a PrivacyError names the
        bad option and the valid ones."""
        return check_options(self.name, self.options, options)

    @property
    def doc(self) -> str:
        """The full documentation of the operation (its function's docstring)."""
        return inspect.getdoc(self.run) or self.summary
