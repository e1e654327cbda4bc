"""The artifact store: tables that Python tasks return, kept as Parquet files named by the
SHA-256 of their content, in a local folder or under an S3 prefix (setting `artifacts`).

A task's result in the metadata DB is then a small reference (`{"$artifact": "sha256:...",
"uri": ..., "rows": ..., "columns": [...], "frame": "pandas"}`) instead of the data; the task
that consumes it receives the table again, as the same kind of frame. The same table returned
twice is stored once. Classification tags ride in the Parquet field metadata.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from typing import Any

from lockgate.errors import DataError

REF_KEY = "$artifact"
_FRAMES = {
    ("pyarrow", "Table"): "arrow",
    ("pyarrow", "RecordBatch"): "arrow",
    ("pandas", "DataFrame"): "pandas",
    ("polars", "DataFrame"): "polars",
}


def frame_kind(value: object) -> str | None:
    """`arrow`, `pandas` or `polars` when `value` is a table of that library, else None
    (checked by type name, so pandas and polars are not imported to find out)."""
    kind = type(value)
    return _FRAMES.get((kind.__module__.split(".", 1)[0], kind.__name__))


def is_ref(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get(REF_KEY), str) and "uri" in value


def _to_arrow(value: Any, frame: str) -> Any:
    import pyarrow as pa

    if frame == "pandas":
        return pa.Table.from_pandas(value, preserve_index=False)
    if frame == "polars":
        return value.to_arrow()
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    return value


def _location(where: str) -> tuple[Any, str]:
    """The fsspec filesystem and path of a local path or an `s3://bucket/key` URI."""
    if where.startswith("s3://"):
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True), where[len("s3://") :].rstrip("/")
    from fsspec.implementations.local import LocalFileSystem

    return LocalFileSystem(), os.path.abspath(where)


def store(value: Any, root: str) -> dict[str, Any]:
    """Keep the table `value` (Arrow, pandas or polars) under `root`; its reference."""
    import pyarrow.parquet as pq

    frame = frame_kind(value)
    if frame is None:
        raise TypeError(f"not a table: {type(value).__name__}")
    table = _to_arrow(value, frame)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    fs, base = _location(root)
    path = f"{base}/{digest[:2]}/{digest}.parquet"
    uri = f"s3://{path}" if root.startswith("s3://") else path
    try:
        if root.startswith("s3://"):
            if not fs.exists(path):
                fs.pipe_file(path, data)  # one PUT: atomic, visible whole or not at all
        elif not os.path.exists(path):
            _write_private(path, data)
    except OSError as exc:
        raise DataError(f"artifact store {root}: cannot write {uri}: {exc}") from None
    return {
        REF_KEY: f"sha256:{digest}",
        "uri": uri,
        "rows": table.num_rows,
        "columns": table.column_names,
        "frame": frame,
    }


def _write_private(path: str, data: bytes) -> None:
    """Write `path` durably, readable by its owner only (artifacts are task data, maybe
    personal): a private temporary file of its own (several threads may store the same
    table at once), fsynced, then renamed into place."""
    from lockgate.io.formats import private_temp

    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = private_temp(path)
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load(ref: dict[str, Any]) -> Any:
    """The table a reference names, as the kind of frame that was stored; DataError when it
    is gone or does not match its hash."""
    import pyarrow.parquet as pq

    uri = str(ref["uri"])
    fs, path = _location(uri)
    try:
        with fs.open(path, "rb") as src:
            data = src.read()
    except (OSError, FileNotFoundError) as exc:
        raise DataError(
            f"artifact {uri} cannot be read ({exc}); the artifact store may have been cleaned: "
            "run the task that produced it again"
        ) from None
    expected = str(ref[REF_KEY]).removeprefix("sha256:")
    if hashlib.sha256(data).hexdigest() != expected:
        raise DataError(f"artifact {uri} does not match its SHA-256: it was changed or damaged")
    table = pq.read_table(io.BytesIO(data))
    frame = ref.get("frame")
    if frame == "pandas":
        return table.to_pandas()
    if frame == "polars":
        import polars as pl

        return pl.from_arrow(table)
    return table
