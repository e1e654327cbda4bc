"""The functions behind the `scan`, `mask` and `redact` pipeline tasks (Python and YAML).

Relative paths are relative to the project folder, whatever the working folder of the run;
results are small JSON documents (the scan report, a masking summary) that downstream tasks
and `lockgate runs` can read. Nothing heavy is imported until a task runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.errors import PrivacyError

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.privacy.keys import Keyring
    from lockgate.privacy.masking import MaskSummary, Rule
    from lockgate.privacy.scan import ScanReport


def scan_task(input: str, sample_size: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Classify the columns of `input`; the result is the scan report (see `scan_doc`)."""
    from lockgate.privacy.scan import scan

    root = _project().root
    doc = scan_doc(scan(_source(input, root), sample_size=sample_size, seed=seed))
    found = [c for c in doc["columns"] if c["classification"]]
    _say(f"scanned {input}: {len(found)} of {len(doc['columns'])} column(s) classified")
    return doc


def mask_task(
    input: str,
    output: str,
    rules: str | Sequence[Mapping[str, Any]] | None = None,
    auto: bool = False,
    sample_size: int = 1000,
) -> dict[str, Any]:
    """Mask `input` into `output` with `rules` (a rules file or a list of rule mappings),
    `auto`, or both (auto then covers the columns the rules leave alone); the result is the
    summary (see `mask_doc`)."""
    from lockgate.privacy.masking import mask_file

    project = _project()
    src, dst = _path(input, project.root), _path(output, project.root)
    plan = _rules(rules, project.root)
    dst.parent.mkdir(parents=True, exist_ok=True)
    summary = mask_file(
        src,
        dst,
        rules=plan,
        auto=auto,
        keyring=project_keyring(project),
        sample_size=sample_size,
    )
    _mask_facts(summary)
    doc = mask_doc(summary)
    ops = "; ".join(f"{op} {', '.join(cols)}" for op, cols in doc["columns_by_op"].items())
    _say(f"masked {input} -> {output}: {doc['rows']} row(s); {ops or 'no column masked'}")
    return doc


def redact_task(input: str, output: str, entities: Sequence[str] | None = None) -> dict[str, Any]:
    """Redact the PII and secrets of the text file `input` into `output`, line by line; the
    result counts the lines and the spans replaced per entity type."""
    from lockgate.privacy.textredact import redact_file

    root = _project().root
    src, dst = _path(input, root), _path(output, root)
    dst.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = redact_file(src, dst, entities=_entities(entities)).to_json()
    _say(f"redacted {input} -> {output}: {doc['lines_changed']} of {doc['lines']} line(s) changed")
    return doc


def scan_doc(report: ScanReport) -> dict[str, Any]:
    """The scan report as `lockgate scan --json` prints it: the source, the rows sampled, and
    each column's name, classification (None when it holds no PII) and confidence."""
    return {
        "source": report.source,
        "rows_sampled": report.rows_sampled,
        "columns": [
            {
                "name": c.name,
                "classification": c.classification,
                "confidence": round(c.confidence, 3),
            }
            for c in report.columns
        ],
    }


def mask_doc(summary: MaskSummary) -> dict[str, Any]:
    """What a mask did, in short: rows, the columns masked by each operation, the output's
    classification tags, and the time taken."""
    by_op: dict[str, list[str]] = {}
    for rule in summary.rules:
        by_op.setdefault(rule.op, []).append(rule.column)
    tags = {name: tag for name, tag in summary.tags.items() if tag}
    return {
        "source": summary.source,
        "target": summary.target,
        "rows": summary.rows,
        "columns_by_op": by_op,
        "tags": tags,
        "seconds": round(summary.seconds, 3),
    }


def mask_lineage(summary: MaskSummary) -> dict[str, list[dict[str, Any]]]:
    """The column lineage of a mask (`DatasetWritten` facts' `columns`): each masked column
    comes from the input's column through its operation (`masking` unless the operation
    restores raw values, as decrypt does); the others are copied as they are."""
    from lockgate.io.catalogue import key
    from lockgate.io.copy import capped_lineage, lineage_entry
    from lockgate.privacy.transforms import OPERATIONS

    source = key(summary.source)
    ops = {rule.column: rule.op for rule in summary.rules}
    columns: dict[str, list[dict[str, Any]]] = {}
    for name in summary.tags:
        op = ops.get(name)
        if op is None:
            columns[name] = [lineage_entry(source, name)]
        else:
            masking = not OPERATIONS[op].reverses
            columns[name] = [lineage_entry(source, name, "transformation", op, masking)]
    return capped_lineage(columns)


def _mask_facts(summary: MaskSummary) -> None:
    """Report what a mask read and wrote (catalogue, lineage with the operation per column)."""
    from lockgate.io.catalogue import key
    from lockgate.io.schemas import describe_schema
    from lockgate.model import facts

    if summary.source_schema is None or summary.schema is None:
        return
    source, target = key(summary.source), key(summary.target)
    facts.report(
        facts.DATASET_READ,
        {
            "uri": source,
            "kind": "file",
            "rows": summary.rows,
            "schema": describe_schema(summary.source_schema),
        },
    )
    facts.report(
        facts.DATASET_WRITTEN,
        {
            "uri": target,
            "kind": "file",
            "rows": summary.rows,
            "mode": "overwrite",
            "schema": describe_schema(summary.schema),
            "inputs": [source],
            "columns": mask_lineage(summary),
        },
    )


def project_keyring(project: Project) -> Keyring | None:
    """The project's keyring, or None when it has no key file and LOCKGATE_KEYS is unset (an
    operation that needs a key then says how to create one; the others run without)."""
    from lockgate.privacy.keys import ENV_VAR, Keyring, keys_file_of

    if not keys_file_of(project).exists() and not os.environ.get(ENV_VAR, "").strip():
        return None
    return Keyring.for_project(project)


def _project() -> Project:
    from lockgate.config import Project

    return Project.load()


def _path(value: Any, root: Path) -> Path:
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise PrivacyError(f"expected a file path, got {value!r}")
    text = str(value)
    if "://" in text:
        if not text.startswith("file://"):
            raise PrivacyError(
                f"{text.split('://', 1)[0]}:// is not a file: mask reads and writes CSV, Parquet "
                "and JSONL files; to mask a table, copy it to Parquet, mask that, and copy the "
                "result where it goes"
            )
        value = text[len("file://") :]
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def _source(value: Any, root: Path) -> str:
    """A file path resolved against the project folder; a URI (`scheme://...`) as it is."""
    if isinstance(value, str) and "://" in value:
        return value
    return str(_path(value, root))


def _rules(value: Any, root: Path) -> list[Rule] | None:
    """Rules from a rules file (path) or from a list of `{"column", "op", ...}` mappings."""
    if value is None:
        return None
    from lockgate.privacy.masking import load_rules, rules_from

    if isinstance(value, str | os.PathLike):
        return list(load_rules(_path(value, root)))
    if isinstance(value, Sequence) and all(isinstance(r, Mapping) for r in value):
        return list(rules_from(value, where="rules"))
    raise PrivacyError(
        f"rules must be a rules file or a list of rules (mappings with column and op), "
        f"got {type(value).__name__}"
    )


def _entities(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _say(line: str) -> None:
    """One line in the task's log (standard output is captured per attempt)."""
    sys.stdout.write(line + "\n")
