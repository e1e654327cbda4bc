"""What every connector provides: a reader of record batches and an atomic writer.

A reader streams `pyarrow.RecordBatch`es (memory flat in dataset size) and knows its schema,
whose fields carry classification tags where the source keeps them. A writer takes batches
and makes them visible all at once on `commit()`; `abort()` (or an exception inside its `with`
block, or the process dying) leaves the target as it was. `commit()` is idempotent (a second
call returns the first result), so `with open_writer(...) as w: ...; w.commit()` is fine, and
`abort()` after a commit does nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.io.dataset import Dataset

BATCH_ROWS = 65_536
"""Rows per record batch read, unless a reader is asked for another size."""


@dataclass(frozen=True)
class WriteResult:
    """What a committed write did: the target (password hidden), the rows written and how."""

    target: str
    rows: int
    mode: str
    bytes: int | None = None
    found_tags: Mapping[str, str] = field(default_factory=dict)
    """Classifications the policy gate's scan found in columns that carried none (they are
    written with the data where the format keeps tags, and recorded in the catalogue)."""

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "rows": self.rows, "mode": self.mode, "bytes": self.bytes}


@runtime_checkable
class Reader(Protocol):
    """A dataset being read: its schema, then its batches, once."""

    @property
    def schema(self) -> pa.Schema: ...

    def __iter__(self) -> Iterator[pa.RecordBatch]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Reader: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class Writer(Protocol):
    """A dataset being written: batches in, visible all at once on commit."""

    def write(self, batch: pa.RecordBatch | pa.Table) -> None: ...

    def commit(self) -> WriteResult: ...

    def abort(self) -> None: ...

    def __enter__(self) -> Writer: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Commit when the block ended normally, abort when it raised."""


class ClosingReader(ABC):
    """What readers share: `with reader:` closes it, whatever happened in the block."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AtomicWriter(ABC):
    """What writers share: `with writer:` commits when the block ended normally and aborts
    when it raised."""

    @abstractmethod
    def commit(self) -> WriteResult: ...

    @abstractmethod
    def abort(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class Connector(Protocol):
    """One module per kind of dataset (`io/files.py`, `io/sql.py`, `io/http.py`)."""

    def open_reader(self, dataset: Dataset, *, batch_rows: int = BATCH_ROWS) -> Reader: ...

    def open_writer(
        self,
        dataset: Dataset,
        schema: pa.Schema,
        *,
        mode: str = "overwrite",
        keys: tuple[str, ...] = (),
    ) -> Writer: ...
