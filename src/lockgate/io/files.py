"""Local files and S3 objects as datasets (CSV, Parquet, JSONL): the `file` and `s3` connector.

Reading streams record batches through `io/formats.py` (memory flat in dataset size); the
schema is known before the first batch (Parquet footer, CSV header, first JSONL block).
Parquet keeps classification tags in its field metadata; the dataset's declared `tags` are
laid over them (declared wins). CSV columns are text.

Writing is atomic. A local file is written to `.NAME.lockgate-xxxxxxxx.tmp` next to it,
flushed to disk and renamed into place on commit; missing parent folders are created (and
removed again when the write is abandoned). An S3 object is written as a multipart upload,
completed on commit and aborted otherwise, so readers see the old object or the new one, never
a part. `append` writes a new file holding the old rows then the new ones, the same way; its
columns must match the existing data. `upsert` needs a SQL target.

S3 settings come from the dataset's options (`endpoint_url`, `key`, `secret`, `token`,
`region`; a named connection fills them in) or else the usual AWS variables.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from lockgate.errors import DataError, describe, did_you_mean
from lockgate.io.base import BATCH_ROWS, AtomicWriter, ClosingReader, WriteResult
from lockgate.io.coltypes import convert, typed_schema
from lockgate.io.dataset import Dataset, Location, check_mode, display, parse
from lockgate.io.formats import (
    COMPRESSIONS,
    PARQUET_BUFFER,
    BatchReader,
    Encoder,
    Opener,
    check_unique_names,
    detect_format,
    move_into_place,
    private_temp,
)
from lockgate.io.schemas import declared
from lockgate.model.classification import tag_of, with_tag

if TYPE_CHECKING:
    from s3fs import S3FileSystem

READ_OPTIONS = ("types",)
"""Options of every file dataset being read: `types` (io/coltypes.py)."""
S3_OPTIONS = ("endpoint_url", "key", "secret", "token", "region")
"""Options of an S3 dataset; each falls back to the usual AWS variable."""
S3_PART = 16 << 20
"""Bytes per part of an S3 multipart upload (S3 takes 5 MiB to 5 GiB, at most 10,000 parts)."""
S3_READ_BLOCK = 8 << 20
"""Bytes fetched per request when streaming CSV or JSONL from S3."""
S3_PARQUET_BUFFER = 4 << 20
"""Bytes read ahead per Parquet column on S3 (each read is one ranged GET)."""
S3_CONNECT_TIMEOUT = 3.0
S3_READ_TIMEOUT = 60.0
S3_ATTEMPTS = 2
"""Tries per S3 request: an unreachable endpoint fails in seconds, not minutes."""
COPY_CHUNK = 1 << 20
"""Bytes copied at a time when appending to a CSV or JSONL file."""
UPSERT_REFUSED = (
    "upsert needs a SQL target (sqlite:// or postgresql://); use overwrite or append for files"
)

_BAD_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "AuthorizationHeaderMalformed",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
}
_DENIED = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem"}
_MISSING = {"NoSuchKey", "404", "NotFound"}


# -- the connector ------------------------------------------------------------------------


def open_reader(dataset: Dataset, *, batch_rows: int = BATCH_ROWS) -> FileReader:
    """A reader of the file or S3 object `dataset`; DataError naming it when it cannot be
    read (no such file, bucket or key, refused credentials, unreachable endpoint)."""
    loc, label = _where(dataset)
    if loc.kind == "s3":
        store = S3Store(dataset, label)
        size = store.size(loc.bucket, loc.key)
        if size is None:
            raise DataError(
                f"{label}: no such object: bucket {loc.bucket!r} has no key {loc.key!r}"
            )
        fmt = _format(dataset, loc, label)
        batches = BatchReader(
            loc.key,
            fmt=fmt,
            batch_rows=batch_rows,
            label=label,
            opener=store.opener(loc.bucket, loc.key, fmt),
            size=size,
            parquet_buffer=S3_PARQUET_BUFFER,
        )
    else:
        _check_options(dataset, READ_OPTIONS, label, "a file")
        if os.path.isdir(loc.path):
            raise DataError(f"{label}: is a folder; name a file in it")
        fmt = _format(dataset, loc, label)
        batches = BatchReader(loc.path, fmt=fmt, batch_rows=batch_rows, label=label)
    try:
        return FileReader(batches, dataset.tags, label, (dataset.options or {}).get("types"))
    except BaseException:
        batches.close()
        raise


def open_writer(
    dataset: Dataset,
    schema: pa.Schema,
    *,
    mode: str = "overwrite",
    keys: tuple[str, ...] = (),
) -> FileWriter:
    """An atomic writer of `dataset` for batches of `schema` (the dataset's declared tags laid
    over it); nothing is visible until `commit()`."""
    loc, label = _where(dataset)
    if mode == "upsert":
        raise DataError(f"{label}: {UPSERT_REFUSED}")
    if "types" in (dataset.options or {}):
        raise DataError(
            f"{label}: the types option is for reading; a target takes its types from the data"
        )
    check_mode(mode, keys)
    check_unique_names(label, schema.names)
    schema = declared(schema, dataset.tags, label)
    target: _Target
    if loc.kind == "s3":
        store = S3Store(dataset, label)
        store.check_bucket(loc.bucket)
        size = store.size(loc.bucket, loc.key, denied_ok=mode != "append")
        fmt = _format(dataset, loc, label)
        existing = (
            _Existing(loc.key, size, store.opener(loc.bucket, loc.key, fmt))
            if mode == "append" and size
            else None
        )
        target = _S3Target(store, loc.bucket, loc.key)
    else:
        _check_options(dataset, (), label, "a file target")
        if os.path.isdir(loc.path):
            raise DataError(f"{label}: is a folder; give a file name to write")
        fmt = _format(dataset, loc, label)
        size = os.path.getsize(loc.path) if os.path.isfile(loc.path) else 0
        existing = _Existing(loc.path, size, None) if mode == "append" and size else None
        target = _LocalTarget(loc.path, label)
    name = loc.key if loc.kind == "s3" else loc.path
    compression = None if fmt == "parquet" else COMPRESSIONS.get(PurePosixPath(name).suffix.lower())
    return FileWriter(target, schema, fmt, mode, label, existing, compression)


def _where(dataset: Dataset) -> tuple[Location, str]:
    loc = parse(dataset.uri)
    if loc.kind not in ("file", "s3"):
        raise DataError(f"{display(dataset.uri)}: not a file or S3 dataset")
    return loc, display(dataset.uri)


def _format(dataset: Dataset, loc: Location, label: str) -> str:
    """The dataset's format (declared, or from its extension); errors name the dataset."""
    name = loc.key if loc.kind == "s3" else loc.path
    try:
        return detect_format(name, dataset.format, local=loc.kind == "file")
    except DataError as exc:
        text = str(exc).removeprefix(f"{name}: ")
        raise DataError(f"{label}: {text}") from None


def _check_options(dataset: Dataset, known: tuple[str, ...], label: str, kind: str) -> None:
    for key in dataset.options or {}:
        if key not in known:
            hint = did_you_mean(key, known) if known else f"; {kind} takes no options"
            raise DataError(f"{label}: unknown option {key!r} for {kind} dataset{hint}")


# -- reading ------------------------------------------------------------------------------


class FileReader(ClosingReader):
    """A file or S3 object being read: `schema` (declared tags applied), then its batches."""

    def __init__(
        self,
        batches: BatchReader,
        tags: Mapping[str, str],
        label: str,
        types: Mapping[str, Any] | None = None,
    ) -> None:
        self._batches = batches
        self.label = label
        self.format = batches.format
        self.num_rows = batches.num_rows
        """Rows in the dataset when known before reading (Parquet), else None."""
        schema = batches.schema if types is None else typed_schema(batches.schema, types, label)
        self._typed = types is not None
        self._schema = declared(schema, tags, label)
        self._retag = not self._schema.equals(batches.schema, check_metadata=True)

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._batches:
            if self._typed:
                batch = convert(batch, self._schema, self.label)
            elif self._retag:  # the declared tags ride on every batch (no copy)
                batch = pa.RecordBatch.from_arrays(batch.columns, schema=self._schema)
            yield batch

    def close(self) -> None:
        self._batches.close()


# -- writing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Existing:
    """The data an append starts from: a local path (opener None) or an S3 object."""

    name: str
    size: int
    opener: Opener | None

    def reader(self, fmt: str, label: str) -> BatchReader:
        return BatchReader(
            self.name,
            fmt=fmt,
            label=label,
            opener=self.opener,
            size=self.size,
            parquet_buffer=S3_PARQUET_BUFFER if self.opener else PARQUET_BUFFER,
        )

    def stream(self) -> Any:
        """Its bytes, decompressed."""
        source: Any = self.opener() if self.opener else self.name
        compression = COMPRESSIONS.get(PurePosixPath(self.name).suffix.lower())
        return pa.input_stream(source, compression=compression)


class _Target(Protocol):
    """Where a writer's bytes go until commit makes them the dataset."""

    def sink(self, compression: str | None) -> Any:
        """A new output stream (compressed as asked) into the pending data."""

    def commit(self) -> int:
        """Make the written data the dataset (the sink is closed); its size in bytes."""

    def abort(self) -> None:
        """Throw the pending data away; the dataset stays as it was."""

    def error(self, exc: BaseException, label: str) -> DataError:
        """`exc`, raised while writing, as one line naming the dataset."""


def _write_error(exc: BaseException, label: str) -> DataError:
    if isinstance(exc, OSError) and exc.strerror:
        return DataError(f"{label}: cannot write: {exc.strerror}")
    text = str(exc).strip()
    return DataError(f"{label}: cannot write: {text.splitlines()[0] if text else describe(exc)}")


class _LocalTarget:
    """A temporary file next to the target, renamed into place on commit."""

    def __init__(self, path: str, label: str) -> None:
        self.path = path
        self.created = _make_folders(Path(path).parent, label)
        try:
            self.tmp = private_temp(path)
        except OSError as exc:
            self._remove_folders()
            raise self.error(exc, label) from None
        except BaseException:  # e.g. SIGTERM's SystemExit: nothing left behind
            self._remove_folders()
            raise

    def error(self, exc: BaseException, label: str) -> DataError:
        return _write_error(exc, label)

    def sink(self, compression: str | None) -> Any:
        return pa.output_stream(self.tmp, compression=compression)

    def commit(self) -> int:
        move_into_place(self.tmp, self.path)
        self.tmp = ""
        return os.path.getsize(self.path)

    def abort(self) -> None:
        if self.tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)
            self.tmp = ""
        self._remove_folders()

    def _remove_folders(self) -> None:
        for folder in reversed(self.created):
            with contextlib.suppress(OSError):  # not empty (someone else wrote there): keep it
                folder.rmdir()
        self.created = []


def _make_folders(folder: Path, label: str) -> list[Path]:
    """Create `folder` and its missing parents, as `mkdir -p` would; the folders created,
    outermost first (so an abandoned write can remove them again)."""
    missing: list[Path] = []
    ancestor = folder
    while not ancestor.exists():  # the root always exists
        missing.append(ancestor)
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DataError(
            f"{label}: cannot write under {str(ancestor)!r}: it is a file, not a folder"
        )
    created: list[Path] = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            if path.is_dir():  # made meanwhile by another writer
                continue
            _remove(created)
            raise DataError(
                f"{label}: cannot write under {str(path)!r}: it is a file, not a folder"
            ) from None
        except OSError as exc:
            _remove(created)
            raise DataError(
                f"{label}: cannot create folder {str(path)!r}: {exc.strerror or exc}"
            ) from None
        created.append(path)
    return created


def _remove(folders: list[Path]) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


class _S3Target:
    """A multipart upload, completed on commit and aborted otherwise."""

    def __init__(self, store: S3Store, bucket: str, key: str) -> None:
        self.store, self.bucket, self.key = store, bucket, key
        try:
            self.file = store.fs.open(f"{bucket}/{key}", "wb", block_size=S3_PART, autocommit=False)
        except Exception as exc:
            raise store.error(exc, bucket, key) from None

    def sink(self, compression: str | None) -> Any:
        return pa.output_stream(self.file, compression=compression)

    def commit(self) -> int:
        self.file.commit()
        return int(self.file.loc)

    def abort(self) -> None:
        try:
            self.file.discard()  # aborts the multipart upload, if one was started
        except Exception:  # nothing was completed: the old object stays
            pass
        finally:
            # fsspec would upload the buffered rest on close (or when collected): never
            self.file.closed = True

    def error(self, exc: BaseException, label: str) -> DataError:
        if isinstance(exc, pa.ArrowException | TypeError) or type(exc) is ValueError:
            return _write_error(exc, label)
        return self.store.error(exc, self.bucket, self.key)


class FileWriter(AtomicWriter):
    """A file or S3 object being written: batches in, the whole dataset visible on commit.

    `rows` counts the rows written through it (an append's old rows are not counted).
    """

    def __init__(
        self,
        target: _Target,
        schema: pa.Schema,
        fmt: str,
        mode: str,
        label: str,
        existing: _Existing | None,
        compression: str | None,
    ) -> None:
        self.label = label
        self.mode = mode
        self.format = fmt
        self.rows = 0
        self.schema = schema
        self._target = target
        self._result: WriteResult | None = None
        self._aborted = False
        self._encoder: Encoder | None = None
        self._sink: Any = None
        try:
            self._sink = target.sink(compression)
            header = True
            if existing is not None:
                header = self._start_append(existing, fmt)
            if self._encoder is None:  # (appending to Parquet made it already)
                self._encoder = Encoder(self._sink, self.schema, fmt, header=header)
        except DataError:
            self.abort()
            raise
        except Exception as exc:
            self.abort()
            raise target.error(exc, label) from None

    def _start_append(self, existing: _Existing, fmt: str) -> bool:
        """Write the existing data first; False when the CSV header is already there. The
        new rows must have the existing columns (and, for Parquet and JSONL, their types)."""
        with existing.reader(fmt, self.label) as old:
            before = old.schema
            _check_append(self.label, before, self.schema, fmt)
            # the existing column order, the new tags (else the existing ones)
            fields = []
            for f in before:
                new = self.schema.field(f.name)
                fields.append(with_tag(new, tag_of(new) or tag_of(f)))
            self.schema = pa.schema(fields, metadata=self.schema.metadata)
            if fmt == "parquet":
                encoder = Encoder(self._sink, self.schema, fmt)
                self._encoder = encoder
                for batch in old:
                    encoder.write(pa.RecordBatch.from_arrays(batch.columns, schema=self.schema))
                return True
        stream = existing.stream()
        try:
            last = b""
            while chunk := stream.read(COPY_CHUNK):
                self._sink.write(chunk)
                last = chunk[-1:]
            if last not in (b"", b"\n"):
                self._sink.write(b"\n")
        finally:
            stream.close()
        return fmt != "csv"

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Append the rows of `batch` (columns by name, converted to the writer's types)."""
        if self._result is not None or self._aborted or self._encoder is None:
            raise DataError(f"{self.label}: cannot write: the writer is already closed")
        try:
            self._encoder.write(self._conform(batch))
        except DataError:
            self.abort()
            raise
        except Exception as exc:
            self.abort()
            raise self._target.error(exc, self.label) from None
        self.rows += batch.num_rows

    def _conform(self, batch: pa.RecordBatch | pa.Table) -> Any:
        names = self.schema.names
        if batch.schema.names != names:
            if sorted(batch.schema.names) != sorted(names):
                raise DataError(
                    f"{self.label}: cannot write: the rows have columns "
                    f"{', '.join(batch.schema.names)} where {', '.join(names)} were expected"
                )
            batch = batch.select(names)
        if not batch.schema.equals(self.schema):
            try:
                batch = batch.cast(self.schema)
            except (pa.ArrowException, ValueError) as exc:
                raise DataError(
                    f"{self.label}: cannot write: the rows do not convert to the dataset's "
                    f"types: {str(exc).splitlines()[0]}"
                ) from None
        return batch

    def commit(self) -> WriteResult:
        """Make the written rows the dataset, all at once; the same result when called again."""
        if self._result is not None:
            return self._result
        if self._aborted or self._encoder is None:
            raise DataError(f"{self.label}: cannot commit: the write was aborted; nothing written")
        try:
            self._encoder.finish()
            sink, self._sink = self._sink, None
            sink.close()
            size = self._target.commit()
        except DataError:
            self.abort()
            raise
        except Exception as exc:
            self.abort()
            raise self._target.error(exc, self.label) from None
        self._result = WriteResult(self.label, self.rows, self.mode, size)
        return self._result

    def abort(self) -> None:
        """Throw away what was written; the dataset stays as it was. No-op after a commit."""
        if self._result is not None or self._aborted:
            return
        self._aborted = True
        self._target.abort()  # first: closing the sink must not reach the dataset
        if self._encoder is not None:
            self._encoder.discard()
        if self._sink is not None:
            with contextlib.suppress(Exception):
                self._sink.close()
            self._sink = None

    def __del__(self) -> None:
        # a writer dropped without commit or abort writes nothing
        with contextlib.suppress(Exception):
            if getattr(self, "_target", None) is not None:
                self.abort()


def _json_kind(type_: pa.DataType) -> str | None:
    """What a JSON lines value of this type looks like (None: a null fits anything)."""
    t = pa.types
    if t.is_null(type_):
        return None
    if t.is_boolean(type_):
        return "boolean"
    if t.is_integer(type_) or t.is_floating(type_) or t.is_decimal(type_) or t.is_duration(type_):
        return "number"
    if t.is_list(type_) or t.is_large_list(type_) or t.is_fixed_size_list(type_):
        return "list"
    if t.is_struct(type_) or t.is_map(type_):
        return "object"
    return "text"  # strings, binary (base64), dates and times (ISO 8601)


def _check_append(label: str, before: pa.Schema, new: pa.Schema, fmt: str) -> None:
    """DataError naming the differing columns when rows of `new` cannot follow `before`:
    the same column names (any order); the same types for Parquet, the same kinds of JSON
    value for JSONL (CSV has no types)."""
    extra = [n for n in new.names if n not in before.names]
    missing = [n for n in before.names if n not in new.names]
    differ = []
    for f in before:
        if f.name not in new.names:
            continue
        other = new.field(f.name).type
        if fmt == "parquet" and f.type != other:
            differ.append(f"{f.name} is {f.type} there, {other} here")
        elif fmt == "jsonl":
            kinds = _json_kind(f.type), _json_kind(other)
            if None not in kinds and kinds[0] != kinds[1]:
                differ.append(f"{f.name} holds {kinds[0]} values there, {kinds[1]} here")
    parts = []
    if extra:
        parts.append(f"columns not in the existing data: {', '.join(extra)}")
    if missing:
        parts.append(f"columns missing: {', '.join(missing)}")
    if differ:
        parts.append("; ".join(differ))
    if parts:
        raise DataError(
            f"{label}: cannot append: the new rows do not match the existing data "
            f"({'; '.join(parts)}); write the same columns and types, or use mode overwrite"
        )


# -- S3 -----------------------------------------------------------------------------------


def s3_settings(dataset: Dataset, label: str) -> dict[str, str | None]:
    """Endpoint, credentials and region: the dataset's options, else the AWS variables."""
    _check_options(dataset, S3_OPTIONS + READ_OPTIONS, label, "an S3")
    opts: Mapping[str, Any] = dataset.options or {}
    for name, value in opts.items():
        if value is not None and not isinstance(value, str):
            raise DataError(f"{label}: option {name} must be text, got {type(value).__name__}")
    env = os.environ.get

    def first(*values: str | None) -> str | None:
        return next((v for v in values if v), None)

    key = first(opts.get("key"))
    if key:  # credentials from the options: never mix in the environment's token
        secret, token = first(opts.get("secret")), first(opts.get("token"))
    else:
        key = env("AWS_ACCESS_KEY_ID")
        secret = first(opts.get("secret"), env("AWS_SECRET_ACCESS_KEY"))
        token = first(opts.get("token"), env("AWS_SESSION_TOKEN"))
    return {
        "key": key,
        "secret": secret,
        "token": token,
        "endpoint_url": first(
            opts.get("endpoint_url"), env("AWS_ENDPOINT_URL_S3"), env("AWS_ENDPOINT_URL")
        ),
        "region": first(opts.get("region"), env("AWS_REGION"), env("AWS_DEFAULT_REGION")),
    }


class S3Store:
    """An S3 endpoint reached with the dataset's settings (s3fs), and its errors in one line."""

    def __init__(self, dataset: Dataset, label: str) -> None:
        settings = s3_settings(dataset, label)
        self.label = label
        self.endpoint = settings["endpoint_url"]
        self.fs = _filesystem(**settings)

    @property
    def where(self) -> str:
        return f"the S3 endpoint {display(self.endpoint)}" if self.endpoint else "S3"

    def size(self, bucket: str, key: str, *, denied_ok: bool = False) -> int | None:
        """The object's size in bytes, or None when there is none; DataError when the key
        names a folder (a prefix of other objects) or S3 cannot be asked. `denied_ok`: the
        credentials may write without reading (a put-only policy), so a refusal means
        "unknown" (None) rather than an error."""
        if key.endswith("/"):
            raise DataError(
                f"{self.label}: names a folder (the key ends with /); give an object key such "
                f"as s3://{bucket}/{key}data.parquet"
            )
        try:
            info = self.fs.info(f"{bucket}/{key}")
        except FileNotFoundError as exc:
            if _code(exc) == "NoSuchBucket":
                raise self.error(exc, bucket, key) from None
            return None
        except Exception as exc:
            if denied_ok and self._denied_only(exc, bucket):
                return None
            raise self.error(exc, bucket, key) from None
        if info.get("type") == "directory":
            raise DataError(
                f"{self.label}: is a folder (other objects are under {key}/); give an object key"
            )
        return int(info.get("size") or 0)

    def check_bucket(self, bucket: str) -> None:
        """DataError when `bucket` does not exist, the credentials are wrong or the endpoint
        cannot be reached: found before any data is sent. Credentials that may write but
        not look at the bucket (a put-only policy) pass: the upload itself will tell."""
        try:
            self.fs.call_s3("head_bucket", Bucket=bucket)
        except FileNotFoundError:
            raise self._no_bucket(bucket) from None
        except Exception as exc:
            if self._denied_only(exc, bucket):
                return
            raise self.error(exc, bucket, "") from None

    def _denied_only(self, exc: BaseException, bucket: str) -> bool:
        """Whether S3 refused a request to credentials it knows (not wrong credentials)."""
        code = _code(exc)
        if code in ("403", "Forbidden"):
            code = self._why_forbidden(bucket) or code
        if code in _BAD_CREDENTIALS:
            return False
        return isinstance(exc, PermissionError) or code in _DENIED

    def opener(self, bucket: str, key: str, fmt: str) -> Opener:
        """Opens the object for reading: Parquet without read-ahead (its reads jump between
        columns), CSV and JSONL with it. Reads fail if the object changes meanwhile."""
        cache = "none" if fmt == "parquet" else "readahead"

        def open_object() -> IO[bytes]:
            try:
                handle = self.fs.open(
                    f"{bucket}/{key}", "rb", block_size=S3_READ_BLOCK, cache_type=cache
                )
            except Exception as exc:
                raise self.error(exc, bucket, key) from None
            return _Guarded(handle, lambda exc: self.error(exc, bucket, key))  # type: ignore[return-value]

        return open_object

    def _why_forbidden(self, bucket: str) -> str | None:
        """The error code behind a bare 403 (answers to HEAD requests have no body): a
        listing's answer says whether the credentials are wrong or only not allowed."""
        try:
            self.fs.call_s3("list_objects_v2", Bucket=bucket, MaxKeys=1)
        except Exception as exc:
            return _code(exc)
        return None

    def _no_bucket(self, bucket: str) -> DataError:
        return DataError(
            f"{self.label}: no such bucket {bucket!r} at {self.where}; create it or fix the name"
        )

    def error(self, exc: BaseException, bucket: str, key: str) -> DataError:
        """An exception from s3fs or botocore as one line naming the dataset, the cause and
        what to do."""
        if isinstance(exc, DataError):
            return exc
        from botocore import exceptions as boto

        code = _code(exc)
        if code in ("403", "Forbidden") and bucket:
            code = self._why_forbidden(bucket) or code
        label, where = self.label, self.where
        if code == "NoSuchBucket":
            return self._no_bucket(bucket)
        if code in _BAD_CREDENTIALS:
            return DataError(
                f"{label}: {where} refused the credentials ({code}); check the key and secret "
                "(the connection's, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            )
        if isinstance(exc, PermissionError) or code in _DENIED:
            return DataError(
                f"{label}: access denied by {where}; the credentials may not use this bucket "
                "or key: check its policy and the key's permissions"
            )
        if isinstance(exc, FileNotFoundError) or code in _MISSING:
            return DataError(f"{label}: no such object: bucket {bucket!r} has no key {key!r}")
        if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
            return DataError(
                f"{label}: no S3 credentials; set the key and secret options (or a connection), "
                "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        if isinstance(exc, boto.ReadTimeoutError | TimeoutError) or "Timeout" in type(exc).__name__:
            return DataError(
                f"{label}: {where} did not answer within {S3_READ_TIMEOUT:g} s; try again later "
                "or check the endpoint"
            )
        if (
            isinstance(
                exc, boto.EndpointConnectionError | boto.ConnectTimeoutError | ConnectionError
            )
            or "Connect" in type(exc).__name__
        ):
            return DataError(
                f"{label}: cannot reach {where}; check endpoint_url (or AWS_ENDPOINT_URL) "
                "and that the server is up"
            )
        if isinstance(exc, boto.NoRegionError):
            return DataError(f"{label}: no AWS region; set the region option or AWS_REGION")
        if (
            isinstance(exc, OSError)
            and "pre-conditions" in str(exc)
            or type(exc).__name__ == "FileExpired"
        ):
            return DataError(f"{label}: the object changed while it was read; read it again")
        return DataError(f"{label}: S3 request failed: {describe(exc)}")


def _code(exc: BaseException) -> str | None:
    """The S3 error code (`NoSuchBucket`, `AccessDenied`...) behind an s3fs/botocore error."""
    seen: BaseException | None = exc
    for _ in range(3):
        if seen is None:
            break
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        seen = seen.__cause__ or seen.__context__
    return None


def _filesystem(
    key: str | None,
    secret: str | None,
    token: str | None,
    endpoint_url: str | None,
    region: str | None,
) -> S3FileSystem:
    """An s3fs file system (fsspec caches one per distinct settings) with short timeouts and
    few retries, and no listing cache (other writers change the bucket)."""
    import s3fs

    fs = s3fs.S3FileSystem(
        key=key,
        secret=secret,
        token=token,
        endpoint_url=endpoint_url,
        client_kwargs={"region_name": region} if region else {},
        config_kwargs={
            "connect_timeout": S3_CONNECT_TIMEOUT,
            "read_timeout": S3_READ_TIMEOUT,
            "retries": {"max_attempts": S3_ATTEMPTS, "mode": "standard"},
        },
        use_listings_cache=False,
    )
    fs.retries = S3_ATTEMPTS
    return fs


class _Guarded:
    """A read-only file object whose I/O errors become DataErrors naming the dataset (pyarrow
    passes them through unchanged)."""

    def __init__(self, handle: Any, error: Callable[[BaseException], DataError]) -> None:
        self._handle = handle
        self._error = error

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._handle.read(size)
        except Exception as exc:
            raise self._error(exc) from None
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        try:
            return int(self._handle.seek(offset, whence))
        except Exception as exc:
            raise self._error(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)
