"""Opening any dataset: the connector for its kind, after its named connection (if any) has
filled in the endpoint and credentials."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lockgate.io.base import BATCH_ROWS, Connector, Reader, Writer
from lockgate.io.dataset import Dataset, check_mode

if TYPE_CHECKING:
    import pyarrow as pa

_MODULES = {
    "file": "lockgate.io.files",
    "s3": "lockgate.io.files",
    "sqlite": "lockgate.io.sql",
    "postgresql": "lockgate.io.sql",
    "http": "lockgate.io.http",
}


def connector(dataset: Dataset) -> Connector:
    """The module that reads and writes datasets of this kind (imported on first use)."""
    module: Connector = importlib.import_module(_MODULES[dataset.kind])
    return module


def resolved(dataset: Dataset) -> Dataset:
    """`dataset` with its named connection applied (endpoint, credentials, base URI)."""
    if dataset.connection is None:
        return dataset
    from lockgate.io.connections import apply

    return apply(dataset)


def open_reader(dataset: Dataset, *, batch_rows: int = BATCH_ROWS) -> Reader:
    """A reader of `dataset`'s record batches; DataError naming the dataset when it cannot be
    opened (no such file or table, unreachable host, refused credentials)."""
    dataset = resolved(dataset)
    reader = connector(dataset).open_reader(dataset, batch_rows=batch_rows)
    if dataset.catalogued:
        from lockgate.io.retag import with_catalogued_tags

        return with_catalogued_tags(reader, dataset.catalogued)
    return reader


def open_writer(
    dataset: Dataset,
    schema: pa.Schema,
    *,
    mode: str = "overwrite",
    keys: tuple[str, ...] = (),
    sources: Sequence[Dataset] = (),
) -> Writer:
    """An atomic writer of `dataset` for batches of `schema`; nothing is visible until commit.
    `sources`: the datasets the data comes from (the policy gate compares their zones)."""
    from lockgate.io.gatehook import gated

    check_mode(mode, keys)
    dataset = resolved(dataset)

    def open_target(checked: pa.Schema) -> Writer:
        return connector(dataset).open_writer(dataset, checked, mode=mode, keys=keys)

    return gated(dataset, schema, sources, open_target)
