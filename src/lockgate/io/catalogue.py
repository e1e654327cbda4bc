"""The store's dataset catalogue seen from the data plane: tags recorded for a dataset are put
back on it when read (CSV, JSONL and SQL tables cannot carry them), and writes made outside a
run (`lockgate copy`) are recorded. Neither creates a metadata database that does not exist."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.io.dataset import Dataset, display, parse

if TYPE_CHECKING:
    from lockgate.config import Project

_SELF_TAGGED = ("parquet",)
"""Formats that keep tags in the data itself: nothing to look up."""


def key(uri: str, root: Path | None = None) -> str:
    """The one spelling of a dataset in the store (catalogue, lineage, facts), so that
    `out.csv`, `./out.csv` and `file:///abs/out.csv` are one dataset: files by absolute path,
    SQLite by its absolute database path, others as `display` shows them (no password).
    Relative paths are taken from `root` (default: the working folder)."""
    loc = parse(uri, root)
    if loc.kind == "file":
        return os.path.normpath(loc.path)
    if loc.kind == "sqlite":
        table = f"#{loc.table}" if loc.table else ""
        return f"sqlite:///{os.path.normpath(loc.path)}{table}"
    return display(uri)


def _self_tagged(dataset: Dataset) -> bool:
    return dataset.kind == "http" or (dataset.format or dataset.uri).endswith(_SELF_TAGGED)


def with_catalogue_tags(dataset: Dataset, project: Project) -> Dataset:
    """`dataset` with the tags the store recorded when lockgate last wrote it (applied on read
    to columns that exist and carry none: see io/retag.py)."""
    if _self_tagged(dataset):
        return dataset
    from lockgate.store.store import Store

    store = Store.if_exists(project.db_url)
    if store is None:
        return dataset
    try:
        row = store.dataset(key(dataset.uri))
    finally:
        store.close()
    tags = {f["name"]: f["tag"] for f in (row or {}).get("schema") or () if f.get("tag")}
    return dataclasses.replace(dataset, catalogued=tags) if tags else dataset


def record_write(
    project: Project, dataset: Dataset, schema: list[dict[str, Any]], rows: int
) -> bool:
    """Record a write made outside a run in the catalogue; False when the project has no
    metadata database (nothing is created for it)."""
    from lockgate.store.store import Store

    store = Store.if_exists(project.db_url)
    if store is None:
        return False
    try:
        store.record_dataset(key(dataset.uri), dataset.kind, schema, rows)
    finally:
        store.close()
    return True
