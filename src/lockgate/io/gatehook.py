"""Where the policy gate plugs into every dataset write.

`io.connect.open_writer` (and the privacy engine's file writer) hand each write to the gate
before the target is opened. The gate lives above `io/` (governance/gate.py: it needs the
project's zones and policies, the store's waivers and the privacy scanner), so `io/` cannot
import it; it registers itself here instead, and is imported by name the first time a write
asks for it, in whatever process the write runs (a worker process included). This is the one
place where `io/` reaches upwards, on purpose: a write can never skip the gate by running
where nobody installed it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.io.base import Writer
    from lockgate.io.dataset import Dataset

Opener = Callable[["pa.Schema"], "Writer"]
Gate = Callable[["Dataset", "pa.Schema", Sequence["Dataset"], Opener], "Writer"]
"""`gate(target, schema, sources, open)`: decides on the write (raising PolicyViolationError
before `open` when it is refused) and returns the writer to use, `open(schema)` or one that
wraps it (to look at the first rows before opening it, or check values as they pass)."""

_GATE_MODULE = "lockgate.governance.gate"
_installed: list[Gate] = []


def install(gate: Gate) -> None:
    """Make `gate` the one every write goes through (governance/gate.py calls this)."""
    _installed[:] = [gate]


def gated(
    target: Dataset, schema: pa.Schema, sources: Sequence[Dataset], open_writer: Opener
) -> Writer:
    """The writer of `target`, after the gate has let the write through."""
    if not _installed:
        importlib.import_module(_GATE_MODULE)  # installs itself
    return _installed[0](target, schema, sources, open_writer)
