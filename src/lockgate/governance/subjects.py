"""Where did this person's data go: find a data subject's values in the project's datasets
(GDPR erasure and access requests), for `lockgate lineage --subject ID`.

The subject identifier (an e-mail address, a customer number...) is tokenized the way the
`tokenize` operation does with its default options, under every key of the project's keyring
(the identifier as given, trimmed, and in lower case), so tokens made before a key rotation
are found too. Then every dataset of the catalogue is searched, streamed batch by batch:
columns tagged `<class>/tokenized` (any `/tokenized` column without a class) for the tokens,
raw columns of the class (any raw classified column without one) for the identifier itself,
compared trimmed and case-insensitively. The result names each dataset, column and number of
matching rows, and the lineage edges that connect the datasets found.

The identifier never leaves this process: it is not logged, stored or printed; the report
holds datasets, columns, counts and key ids only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lockgate.errors import DataError, LockgateError
from lockgate.model.classification import base_class, is_raw

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.config import Project
    from lockgate.governance.lineage import Edge
    from lockgate.privacy.keys import Keyring
    from lockgate.store.store import Store

MAX_DATASETS = 10_000
"""Catalogue datasets searched at most (the report says when the catalogue has more)."""
PATH_DEPTH = 10
PATH_NODES = 500


@dataclass(frozen=True)
class Match:
    """A column of a dataset holding the subject: `form` is `tokenized` or `raw`."""

    dataset: str
    column: str
    tag: str
    form: str
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "column": self.column,
            "tag": self.tag,
            "form": self.form,
            "rows": self.rows,
        }


@dataclass
class SubjectReport:
    """What a subject search found (never the identifier itself)."""

    classification: str | None
    key_ids: list[str]
    searched: int = 0
    matches: list[Match] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Datasets that could not be read: (dataset, one-line reason)."""
    paths: list[Edge] = field(default_factory=list)
    """Lineage edges on the paths between the datasets found."""
    truncated: bool = False

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(m.dataset for m in self.matches))

    def to_json(self) -> dict[str, Any]:
        return {
            "class": self.classification,
            "key_ids": self.key_ids,
            "searched": self.searched,
            "truncated": self.truncated,
            "matches": [m.to_json() for m in self.matches],
            "skipped": [{"dataset": d, "reason": r} for d, r in self.skipped],
            "paths": [e.to_json() for e in self.paths],
        }


def variants(subject: str) -> list[str]:
    """The spellings searched: as given, trimmed, trimmed in lower case (each once)."""
    return list(dict.fromkeys([subject, subject.strip(), subject.strip().lower()]))


def subject_tokens(subject: str, keyring: Keyring) -> dict[str, list[str]]:
    """The tokens `tokenize` (default options) makes of the subject's spellings, per key id
    of `keyring`."""
    import pyarrow as pa

    from lockgate.privacy.transforms import apply

    values = pa.array(variants(subject), type=pa.string())
    out: dict[str, list[str]] = {}
    for key_id in keyring.ids:
        tokens = apply("tokenize", values, options={"key": key_id}, keyring=keyring)
        out[key_id] = [str(t) for t in tokens.to_pylist() if t]
    return out


def wanted(tag: str | None, classification: str | None) -> str | None:
    """How a column tagged `tag` is searched: `tokenized`, `raw`, or None (not at all)."""
    if not tag or tag == "none":
        return None
    if classification is not None and base_class(tag) != classification:
        return None
    if tag.endswith("/tokenized"):
        return "tokenized"
    return "raw" if is_raw(tag) else None


def find_subject(
    project: Project,
    store: Store,
    subject: str,
    classification: str | None = None,
    *,
    keyring: Keyring | None = None,
    max_datasets: int = MAX_DATASETS,
    progress: Callable[[str], None] | None = None,
) -> SubjectReport:
    """Search the catalogue's datasets for `subject` (see the module docstring). `keyring`
    defaults to the project's; without one, only raw columns can be searched."""
    if not isinstance(subject, str) or not subject.strip():
        raise DataError("--subject: give the subject's identifier, e.g. an e-mail address")
    if keyring is None:
        from lockgate.privacy.tasks import project_keyring

        keyring = project_keyring(project)
    tokens = subject_tokens(subject, keyring) if keyring is not None else {}
    report = SubjectReport(classification, sorted(tokens))
    token_set = sorted({t for found in tokens.values() for t in found})
    raw_set = sorted({v.strip().lower() for v in variants(subject)})
    for row in _catalogue(store, max_datasets, report):
        columns = {
            str(c["name"]): (str(c["tag"]), form)
            for c in row.get("schema") or ()
            if (form := wanted(c.get("tag"), classification)) is not None
        }
        if not columns or (not token_set and all(f == "tokenized" for _, f in columns.values())):
            continue
        report.searched += 1
        if progress is not None:
            progress(row["uri"])
        try:
            counts = _count(row["uri"], columns, token_set, raw_set)
        except LockgateError as exc:
            report.skipped.append((row["uri"], str(exc).splitlines()[0]))
            continue
        except Exception as exc:  # a dataset that cannot be read is reported, not fatal
            report.skipped.append((row["uri"], f"{type(exc).__name__}: {exc}".splitlines()[0]))
            continue
        for name, rows in counts.items():
            if rows:
                tag, form = columns[name]
                report.matches.append(Match(row["uri"], name, tag, form, rows))
    report.paths = connecting(store, report.datasets)
    return report


def _catalogue(store: Store, limit: int, report: SubjectReport) -> Iterator[dict[str, Any]]:
    after, seen = "", 0
    while True:
        page = store.datasets_page(after, 200)
        for row in page:
            if seen >= limit:
                report.truncated = True
                return
            seen += 1
            yield row
        if len(page) < 200:
            return
        after = page[-1]["uri"]


def _count(
    uri: str, columns: dict[str, tuple[str, str]], tokens: list[str], raw: list[str]
) -> dict[str, int]:
    """Rows of the dataset `uri` holding the subject, per searched column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from lockgate.io.connect import open_reader
    from lockgate.io.dataset import Dataset

    token_values = pa.array(tokens, type=pa.string())
    raw_values = pa.array(raw, type=pa.string())
    counts = dict.fromkeys(columns, 0)
    with open_reader(Dataset(uri)) as reader:
        present = [name for name in columns if name in reader.schema.names]
        for batch in reader:
            for name in present:
                values = _text(batch.column(name))
                if values is None:
                    continue
                if columns[name][1] == "tokenized":
                    hits = pc.is_in(values, value_set=token_values)
                else:
                    hits = pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(values)), raw_values)
                counts[name] += int(pc.sum(hits).as_py() or 0)
    return counts


def _text(values: pa.Array | pa.ChunkedArray) -> Any:
    """The column as text (numbers and dates as their text), or None when it cannot be."""
    import pyarrow as pa

    kind = values.type
    if pa.types.is_dictionary(kind):
        values = values.cast(kind.value_type)
        kind = kind.value_type
    if pa.types.is_string(kind):
        return values
    if pa.types.is_large_string(kind):
        return values.cast(pa.string())
    try:
        return values.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def connecting(store: Store, datasets: list[str]) -> list[Edge]:
    """The lineage edges on paths from one of `datasets` to another (downstream walks of at
    most `PATH_DEPTH` levels and `PATH_NODES` datasets), through datasets in between too."""
    from lockgate.governance.lineage import walk

    found = set(datasets)
    if len(found) < 2:
        return []
    edges: dict[tuple[str, str, str | None, str], Edge] = {}
    for start in datasets:
        graph = walk(
            store,
            start,
            upstream=False,
            downstream=True,
            depth=PATH_DEPTH,
            max_nodes=PATH_NODES,
        )
        for edge in graph.downstream:
            edges.setdefault((edge.input, edge.output, edge.pipeline_id, edge.task_id), edge)
    # keep the edges from which a dataset found can be reached
    reaches = set(found)
    grew = True
    while grew:
        grew = False
        for edge in edges.values():
            if edge.output in reaches and edge.input not in reaches:
                reaches.add(edge.input)
                grew = True
    return [e for e in edges.values() if e.output in reaches]
