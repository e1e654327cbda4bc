"""Mask tables and files column by column, from a rules file or from what `scan` finds.

A rule names a column, an operation of `lockgate.privacy.transforms` and its options. Files are
masked in record batches, so memory stays flat whatever their size; the output is written to a
temporary file renamed into place only when every batch succeeded. Every masked column's
classification tag is updated (`pii.email` -> `pii.email/tokenized`), which Parquet keeps.

With `auto`, each classified column gets the operation of `AUTO_OPS`. The choices keep test
data useful and joins working: values that serve as join keys (e-mails, phones, names, IPs) are
tokenized with a keyed MAC, deterministic for a given key, so the same value gives the same
token in every table and joins still match; card numbers keep their last 4 digits and IBANs
their last 4 characters, with their separators (`**** **** **** 1234`; the bank code is hidden); dates of birth keep their year (as text, `1984`); SSNs, addresses and secrets are
replaced by a placeholder; free text keeps everything but its PII spans. No output looks like
raw PII (names are tokenized rather than faked for that reason), so a masked file scanned again
shows no raw PII class, CSV included. Customer ids and other surrogate keys are not PII (scan
leaves them unclassified) and stay as they are, so they still join; give them a `tokenize` rule
where an id is itself sensitive.

Rules file (YAML):

    rules:
      - column: email
        op: tokenize
      - column: card_number
        op: mask
        options: {keep_last: 4}
      - column: notes
        op: redact_text
        classification: free_text   # optional: the column's class, for its tag
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import itertools
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import DataError, LockgateError, PrivacyError, did_you_mean
from lockgate.io.connect import open_writer
from lockgate.io.dataset import Dataset
from lockgate.io.formats import BatchReader, check_distinct
from lockgate.model.classification import is_raw, tag_of, with_tag
from lockgate.privacy.entities import FREE_TEXT, Entity, entity_for
from lockgate.privacy.scan import SAMPLE_SIZE, ScanReport, scan

if TYPE_CHECKING:
    from lockgate.privacy.keys import Keyring

AUTO_OPS: dict[str, tuple[str, dict[str, Any]]] = {
    "pii.email": ("tokenize", {}),
    "pii.phone": ("tokenize", {}),
    "pii.name": ("tokenize", {}),
    "pii.ip": ("tokenize", {}),
    "pii.ssn": ("redact", {}),
    "pii.address": ("redact", {}),
    "pci.pan": ("mask", {"keep_last": 4}),
    "pii.iban": ("mask", {"keep_last": 4, "format": "alphanumeric"}),
    "pii.dob": ("generalize", {"to": "year", "as_text": True}),
    FREE_TEXT: ("redact_text", {}),
}
"""The operation `--auto` applies to each classification; every `secret.*` column is redacted."""
SECRET_OP: tuple[str, dict[str, Any]] = ("redact", {})

ONCE_PER_VALUE = frozenset({"redact_text", "fake"})
"""Operations that cost much per value: a batch's column is dictionary-encoded first, so each
distinct value is analysed (or faked) once however often it repeats (`no issues`, templated
notes); the result is decoded back to a plain column."""
RULE_KEYS = ("column", "op", "options", "classification")
MASK_BATCH_ROWS = 1 << 16
PREFETCH = 2
"""Batches read ahead in a background thread while the current one is masked (0: none)."""
WRITE_BEHIND = 2
"""Masked batches queued for the background thread that writes them (0: written inline)."""

T = TypeVar("T")

FPE_OPS = ("fpe", "fpe_decrypt")
AUTO_PEEK_BATCHES = 16
"""`alphabet: auto` is decided from the first batch where the column has letters or digits,
looking at most this many batches ahead (held in memory); none there: `digits`."""


@dataclass
class Rule:
    """Apply operation `op` with `options` to `column`.

    `classification` is the column's class for its tag when the input carries none (CSV, or a
    Parquet file never scanned); `where` says where the rule came from, for error messages.
    """

    column: str
    op: str
    options: dict[str, Any] = field(default_factory=dict)
    classification: str | None = None
    where: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"column": self.column, "op": self.op}
        if self.options:
            out["options"] = dict(self.options)
        if self.classification:
            out["classification"] = self.classification
        return out


@dataclass
class MaskSummary:
    """What `mask_file` did: rows written, rules applied, output tags, time taken."""

    source: str
    target: str
    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    rules: list[Rule] = field(default_factory=list)
    tags: dict[str, str | None] = field(default_factory=dict)
    report: ScanReport | None = None
    source_schema: pa.Schema | None = None
    """The input's schema with the classes the rules give (what was read)."""
    schema: pa.Schema | None = None
    """The output's schema (types and tags: what was written)."""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows_per_s),
            "rules": [r.to_json() for r in self.rules],
            "tags": {k: v for k, v in self.tags.items() if v},
            "scan": self.report.to_json() if self.report is not None else None,
        }


def _operations() -> Mapping[str, Any]:
    from lockgate.privacy.transforms import OPERATIONS

    return OPERATIONS


def _known_class(value: str) -> bool:
    return value == FREE_TEXT or entity_for(value) is not None


def _class_names() -> list[str]:
    return [FREE_TEXT, *(e.classification for e in Entity)]


def rules_from(items: Iterable[Any], *, where: str = "rules") -> list[Rule]:
    """Rules from mappings with `column`, `op` and optionally `options` and `classification`.

    Every problem is a PrivacyError naming `where`, the rule (number, and line when known) and
    the bad key or value.
    """
    operations = _operations()
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for number, item in enumerate(items, start=1):
        at = item.where if isinstance(item, _Located) else ""
        label = f"{where}: rule {number}{at}"
        data = item.value if isinstance(item, _Located) else item
        if not isinstance(data, Mapping):
            raise PrivacyError(
                f"{label}: expected a mapping with column and op, got {type(data).__name__}"
            )
        for key in data:
            if key not in RULE_KEYS:
                raise PrivacyError(f"{label}: unknown key {key!r}" + did_you_mean(key, RULE_KEYS))
        column, op = data.get("column"), data.get("op")
        if not isinstance(column, str) or not column:
            raise PrivacyError(f"{label}: 'column' must name a column")
        label = f"{label} (column {column!r})"
        if not isinstance(op, str) or not op:
            raise PrivacyError(
                f"{label}: 'op' must name an operation" + did_you_mean("", sorted(operations))
            )
        if op not in operations:
            raise PrivacyError(
                f"{label}: unknown operation {op!r}" + did_you_mean(op, sorted(operations))
            )
        options = data.get("options") or {}
        if not isinstance(options, Mapping):
            raise PrivacyError(f"{label}: 'options' must be a mapping of option: value")
        classification = data.get("classification")
        if classification is not None and (
            not isinstance(classification, str) or not _known_class(classification)
        ):
            raise PrivacyError(
                f"{label}: unknown classification {classification!r}"
                + did_you_mean(classification, _class_names())
            )
        try:
            operations[op].check(dict(options))
        except PrivacyError as exc:
            raise PrivacyError(f"{label}: {exc}") from None
        if column in seen:
            raise PrivacyError(
                f"{label}: column {column!r} already has a rule ({seen[column]}); "
                "give each column one rule"
            )
        seen[column] = f"rule {number}"
        rules.append(Rule(column, op, dict(options), classification, label))
    return rules


@dataclass
class _Located:
    value: Any
    where: str


def load_rules(path: str | os.PathLike[str]) -> list[Rule]:
    """The rules of a YAML rules file: a list of rules, or a mapping with a `rules` list."""
    yaml: Any = importlib.import_module("yaml")  # PyYAML has no type stubs here
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PrivacyError(f"{name}: no such rules file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PrivacyError(f"{name}: cannot read the rules file: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PrivacyError(f"{name}: not valid YAML{at}: {problem}") from None
    items_node = node
    if isinstance(doc, Mapping):
        for key in doc:
            if key != "rules":
                raise PrivacyError(
                    f"{name}: unknown top-level key {key!r}" + did_you_mean(key, ["rules"])
                )
        doc = doc.get("rules")
        items_node = (
            next((v for k, v in node.value if k.value == "rules"), None)
            if isinstance(node, yaml.MappingNode)
            else None
        )
    if doc is None:
        raise PrivacyError(f"{name}: no rules; list them under 'rules:'")
    if not isinstance(doc, list):
        raise PrivacyError(f"{name}: 'rules' must be a list of rules (- column: ..., op: ...)")
    lines = (
        [f" (line {n.start_mark.line + 1})" for n in items_node.value]
        if isinstance(items_node, yaml.SequenceNode)
        else [""] * len(doc)
    )
    return rules_from(
        [_Located(item, at) for item, at in zip(doc, lines, strict=False)], where=name
    )


def auto_rule(column: str, classification: str | None) -> Rule | None:
    """The `--auto` rule for a column of this classification (None: left as it is)."""
    if classification is None or not is_raw(classification):
        return None  # unclassified, or already transformed
    if classification.startswith("secret."):
        op, options = SECRET_OP
    elif classification in AUTO_OPS:
        op, options = AUTO_OPS[classification]
    else:
        return None
    return Rule(column, op, dict(options), classification, f"auto ({classification})")


def auto_rules(report: ScanReport) -> list[Rule]:
    """A rule for every column the scan classified (see `AUTO_OPS`)."""
    rules = [auto_rule(c.name, c.classification) for c in report.columns]
    return [r for r in rules if r is not None]


def check_columns(rules: Sequence[Rule], names: Sequence[str], source: str) -> None:
    """Every rule names a column of the input (else one error listing the missing ones)."""
    missing = [r for r in rules if r.column not in names]
    if not missing:
        return
    first = missing[0]
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    hint = did_you_mean(first.column, names, known="its columns are")
    where = f" in {first.where}" if first.where else ""
    raise PrivacyError(f"{source} has no column {first.column!r}{where}{more}{hint}")


def check_keys(rules: Sequence[Rule], keyring: Keyring | None) -> None:
    """A keyring is given when a rule's operation needs a key, and holds the key ids rules pin
    (checked before any work; an error names the rule)."""
    operations = _operations()
    keyed = [r for r in rules if operations[r.op].needs_key]
    if keyed and keyring is None:
        raise PrivacyError(
            f"{keyed[0].op} (column {keyed[0].column!r}) needs a key and no keyring was given; "
            "run `lockgate init` to create the project's key file, or set LOCKGATE_KEYS"
        )
    for rule in keyed:
        pinned = rule.options.get("key")
        if pinned and keyring is not None:
            try:
                keyring.check_id(str(pinned))
            except LockgateError as exc:
                where = rule.where or f"rule for column {rule.column!r}"
                raise PrivacyError(f"{where}: option 'key': {exc}") from None


def _tagged_schema(schema: pa.Schema, rules: Sequence[Rule]) -> pa.Schema:
    """The input schema with each ruled column tagged with its class, where it has no tag."""
    for rule in rules:
        index = schema.get_field_index(rule.column)
        current = schema.field(index)
        if tag_of(current) is None and rule.classification:
            schema = schema.set(index, with_tag(current, rule.classification))
    return schema


def _apply(
    data: pa.Table | pa.RecordBatch,
    rules: Sequence[Rule],
    keyring: Keyring | None,
    row_offset: int = 0,
) -> Any:
    """`data` with every rule applied; `row_offset`: rows before it in the file (for errors)."""
    from lockgate.privacy.transforms import apply_to_field

    operations = _operations()
    for rule in rules:
        index = data.schema.get_field_index(rule.column)
        plain = data.schema.field(index)
        once = rule.op in ONCE_PER_VALUE and operations[rule.op].per_unique
        once = once and (pa.types.is_string(plain.type) or pa.types.is_large_string(plain.type))
        if once:
            encoded = pc.dictionary_encode(data.column(index))
            data = data.set_column(index, plain.with_type(encoded.type), encoded)
        data = apply_to_field(
            data, rule.column, rule.op, options=rule.options, keyring=keyring,
            row_offset=row_offset,
        )  # fmt: skip
        if once:
            done = data.schema.field(index)
            column = data.column(index)
            if pa.types.is_dictionary(done.type):
                decoded = column.cast(done.type.value_type)
                data = data.set_column(index, done.with_type(decoded.type), decoded)
    return data


def mask_table(
    table: pa.Table | pa.RecordBatch, rules: Sequence[Rule], keyring: Keyring | None = None
) -> Any:
    """The table (or record batch) with every rule applied and the masked columns re-tagged."""
    check_columns(rules, table.schema.names, "the table")
    check_keys(rules, keyring)
    schema = _tagged_schema(table.schema, rules)
    if schema is not table.schema:
        table = _retag(table, schema)
    return _apply(table, rules, keyring)


def _retag(data: pa.Table | pa.RecordBatch, schema: pa.Schema) -> Any:
    """The same columns under `schema` (same names and types, other field metadata)."""
    kind = pa.Table if isinstance(data, pa.Table) else pa.RecordBatch
    return kind.from_arrays(data.columns, schema=schema)


def merge_rules(explicit: Sequence[Rule], automatic: Sequence[Rule]) -> list[Rule]:
    """Explicit rules, then automatic rules for the columns the explicit ones leave alone."""
    named = {r.column for r in explicit}
    return [*explicit, *(r for r in automatic if r.column not in named)]


def _prefetched(items: Iterator[T], depth: int) -> Generator[T, None, None]:
    """The same items, produced `depth` ahead by a background thread (errors re-raised here)."""
    if depth <= 0:
        yield from items
        return
    slots: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put((True, item))
            slots.put((False, None))
        except BaseException as exc:  # handed to the consumer
            slots.put((False, exc))
        finally:
            if isinstance(items, Generator):
                items.close()  # a reader stopped early closes its file here

    worker = threading.Thread(target=produce, name="lockgate-mask-read", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = slots.get()
            if not ok:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)
        worker.join()


class _WriteBehind:
    """Calls `write` on each item in a background thread, at most `depth` items behind.

    An error of `write` is raised by the next `put` or by `close`.
    """

    def __init__(self, write: Callable[[Any], object], depth: int) -> None:
        self._write = write
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if depth > 0:
            # the writer's thread sees the task's context: the policy gate decides there on
            # the first batch, and its decision is a fact of the running attempt
            context = contextvars.copy_context()
            self._thread = threading.Thread(
                target=context.run, args=(self._run,), name="lockgate-mask-write", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:  # after an error, drain without writing
                try:
                    self._write(item)
                except BaseException as exc:  # handed to the producer
                    self._error = exc

    def put(self, item: Any) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._write(item)
        else:
            self._queue.put(item)

    def stop(self) -> None:
        """Wait for the thread to end (what is queued is still written or dropped)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()

    def close(self) -> None:
        """Write what is queued; raise the first error of `write`."""
        self.stop()
        if self._error is not None:
            raise self._error


def _classified(
    plan: Sequence[Rule], schema: pa.Schema, source: str, sample_size: int, seed: int, fmt: str
) -> list[Rule]:
    """The rules with the class of each column that neither its rule nor the input's tags
    give, found by scanning those columns (only them): the output is then tagged
    `pii.name/faked` rather than not at all, so a rescan knows the values are masked."""
    untagged = [
        r.column for r in plan if not r.classification and tag_of(schema.field(r.column)) is None
    ]
    if not untagged:
        return list(plan)
    found = scan(source, sample_size=sample_size, seed=seed, fmt=fmt, columns=untagged).classes()
    return [
        Rule(r.column, r.op, r.options, found[r.column], r.where) if r.column in found else r
        for r in plan
    ]


def _auto_alphabet_columns(plan: Sequence[Rule], schema: pa.Schema) -> list[str]:
    """Columns whose fpe rule leaves the alphabet to `auto` (and no recorded one applies)."""
    columns = []
    for rule in plan:
        if rule.op not in FPE_OPS or rule.options.get("alphabet", "auto") != "auto":
            continue
        recorded = (schema.field(rule.column).metadata or {}).get(b"lockgate.alphabet")
        if rule.op == "fpe_decrypt" and "alphabet" not in rule.options and recorded:
            continue  # fpe_decrypt reads the alphabet fpe recorded
        columns.append(rule.column)
    return columns


def _pin_alphabets(
    plan: Sequence[Rule], schema: pa.Schema, batches: Iterator[tuple[pa.RecordBatch, int]]
) -> tuple[list[Rule], dict[str, str], list[tuple[pa.RecordBatch, int]]]:
    """The plan with each `alphabet: auto` decided from the column's first values (so every
    batch uses, and the output records, the same alphabet), the alphabets so decided, and the
    batches read ahead to decide them (to be masked first)."""
    from lockgate.privacy.transforms.fpe import decide_alphabet  # loads fastfpe: only here

    undecided = _auto_alphabet_columns(plan, schema)
    decided: dict[str, str] = {}
    peeked: list[tuple[pa.RecordBatch, int]] = []
    while undecided and len(peeked) < AUTO_PEEK_BATCHES:
        item = next(batches, None)
        if item is None:
            break
        peeked.append(item)
        for column in list(undecided):
            alphabet = decide_alphabet(item[0].column(column))
            if alphabet is not None:
                decided[column] = alphabet
                undecided.remove(column)
    decided.update({c: "digits" for c in undecided})
    pinned = [
        Rule(r.column, r.op, {**r.options, "alphabet": decided[r.column]}, r.classification,
             r.where)
        if r.column in decided
        else r
        for r in plan
    ]  # fmt: skip
    return pinned, decided, peeked


def mask_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    rules: Sequence[Rule] | None = None,
    auto: bool = False,
    keyring: Keyring | None = None,
    sample_size: int = SAMPLE_SIZE,
    progress: Callable[[int, int], object] | None = None,
    seed: int = 0,
    fmt: str | None = None,
    out_fmt: str | None = None,
    batch_rows: int = MASK_BATCH_ROWS,
) -> MaskSummary:
    """Mask the CSV, Parquet or JSONL file `src` into `dst` (any of the three), streamed.

    `rules` are applied as given; with `auto`, the file is scanned first (a streamed pass over
    a sample) and every classified column without a rule gets its `AUTO_OPS` rule. Rules that
    name a missing column fail before anything is written. `progress(done, total)` is called
    after each batch: rows for Parquet input, bytes for CSV and JSONL.
    """
    started = time.perf_counter()
    source, target = os.fspath(src), os.fspath(dst)
    explicit = list(rules or [])
    if not explicit and not auto:
        raise PrivacyError(
            f"nothing to do for {source}: give masking rules (--rules) or use --auto"
        )
    check_distinct(source, target)
    if os.path.isdir(target):
        raise DataError(f"{target}: is a folder; give a file name to write")
    reader = BatchReader(source, fmt=fmt, batch_rows=batch_rows)
    with reader:
        report = None
        if auto:
            report = scan(source, sample_size=sample_size, seed=seed, fmt=reader.format)
            found = {c.name: c.classification for c in report.columns}
            explicit = [
                r
                if r.classification
                else Rule(r.column, r.op, r.options, found.get(r.column), r.where)
                for r in explicit
            ]
            plan = merge_rules(explicit, auto_rules(report))
        else:
            plan = explicit
        check_columns(plan, reader.schema.names, source)
        if not auto:
            plan = _classified(plan, reader.schema, source, sample_size, seed, reader.format)
        check_keys(plan, keyring)
        summary = MaskSummary(source, target, rules=list(plan), report=report)
        schema = _tagged_schema(reader.schema, plan)
        batches = _prefetched(((b, reader.done) for b in reader), PREFETCH)
        try:
            # `alphabet: auto` of fpe is decided once per column, from its first values
            plan, pinned, peeked = _pin_alphabets(plan, schema, batches)
            if pinned:
                from lockgate.privacy.transforms.fpe import check_alphabet
            summary.rules = list(plan)
            # the output schema (types and tags) is known before the rows are masked, so a
            # bad target fails before any work
            out_schema = _apply(schema.empty_table(), plan, keyring).schema
            # through the policy gate, like every dataset write (governance/gate.py)
            with open_writer(
                Dataset(target, format=out_fmt),
                out_schema,
                sources=[Dataset(source, format=reader.format)],
            ) as writer:
                # three stages on their own threads: read (decode), mask, write (encode);
                # Arrow releases the GIL while it decodes and encodes, so they overlap
                behind = _WriteBehind(writer.write, WRITE_BEHIND)
                try:
                    for batch, done in itertools.chain(peeked, batches):
                        for column, alphabet in pinned.items():
                            values = batch.column(column)
                            check_alphabet(values, alphabet, column, summary.rows)
                        # errors name the row of the file, not of the batch
                        out = _apply(_retag(batch, schema), plan, keyring, summary.rows)
                        if out.schema != out_schema:
                            out = out.cast(out_schema)
                        behind.put(out)
                        summary.rows += out.num_rows
                        summary.batches += 1
                        if progress is not None:
                            progress(done, reader.total)
                except BaseException:
                    behind.stop()
                    raise
                behind.close()
        finally:
            batches.close()  # stops the reading thread now, not when collected
    summary.tags = {f.name: tag_of(f) for f in out_schema}
    summary.source_schema, summary.schema = schema, out_schema
    summary.seconds = time.perf_counter() - started
    if progress is not None:
        progress(reader.total, reader.total)
    return summary
