"""Classification tags carried in Arrow field metadata (they survive Parquet round trips)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

TAG_KEY = b"lockgate.classification"
"""Field metadata key holding a column's classification, e.g. `pii.email/tokenized`."""


DECLASSIFIED_KEY = b"lockgate.declassified"
"""Field metadata key holding the raw tag a column carried before a pipeline declared it less
sensitive (`tags: {email: none}`): the policy gate judges the column by it."""


def tag_of(field: pa.Field) -> str | None:
    """The field's classification tag, or None when it has none."""
    meta = field.metadata or {}
    raw = meta.get(TAG_KEY)
    return raw.decode() if raw else None


def with_tag(field: pa.Field, tag: str | None) -> pa.Field:
    """The same field with its classification set to `tag` (removed when None). A new tag
    ends a declassification mark (a transform has made the column what its tag says)."""
    meta = dict(field.metadata or {})
    meta.pop(DECLASSIFIED_KEY, None)
    if tag is None:
        meta.pop(TAG_KEY, None)
    else:
        meta[TAG_KEY] = tag.encode()
    return field.with_metadata(meta)


def declassified_from(field: pa.Field) -> str | None:
    """The raw tag `field` carried before a declared tag made it less sensitive, if any."""
    raw = (field.metadata or {}).get(DECLASSIFIED_KEY)
    return raw.decode() if raw else None


def transformed(tag: str | None, form: str) -> str | None:
    """The tag after a transform: `pii.email` + `tokenized` -> `pii.email/tokenized`.

    A value transformed twice keeps the last form (`pii.email/masked` + `redacted` ->
    `pii.email/redacted`); an untagged column stays untagged.
    """
    if tag is None:
        return None
    return f"{tag.split('/', 1)[0]}/{form}"


def base_class(tag: str | None) -> str | None:
    """`pii.email/tokenized` -> `pii.email`."""
    return tag.split("/", 1)[0] if tag else None


def is_raw(tag: str | None) -> bool:
    """A tag that names a sensitive class in its raw (untransformed) form."""
    return bool(tag) and "/" not in tag and tag != "none"  # type: ignore[operator]
