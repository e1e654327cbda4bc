"""`lockgate policy check PIPELINE`: the policy evaluated before a pipeline runs.

Each write of the pipeline's data and privacy tasks (`copy`, `sql`, `mask`) is judged from what
is declared: the zones of its target and sources, the tags declared on datasets, the tags the
store's catalogue recorded for datasets lockgate wrote before, the tags Parquet files carry
(their schema only is read), and, along the pipeline, the tags a `mask` task leaves (each
rule's operation turns `pii.email` into `pii.email/tokenized`) and a `copy` carries. What
cannot be known before the run is reported as such, never as allowed: a target named by a
template, columns a SQL query computes, or untagged data going to a less trusted zone (the
gate scans it when it runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.governance.gate import Governance, governance
from lockgate.governance.policy import Violation, evaluate
from lockgate.governance.zones import Placement
from lockgate.io.catalogue import key
from lockgate.io.dataset import Dataset

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.model.pipeline import Pipeline
    from lockgate.model.task import Task

Columns = dict[str, str | None]
"""Column name -> tag (None: untagged) of a dataset, in order."""


@dataclass
class PlannedWrite:
    """One write a pipeline will make, and what the policy says about it."""

    task: str
    action: str
    target: str
    zone: str
    zone_reason: str
    sources: list[dict[str, str]]
    verdict: str = "allow"
    """allow, deny, warn, or unknown (decided when the task runs)."""
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    columns: Columns = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "action": self.action,
            "target": self.target,
            "zone": self.zone,
            "zone_reason": self.zone_reason,
            "sources": self.sources,
            "verdict": self.verdict,
            "violations": [v.to_json() for v in self.violations],
            "notes": self.notes,
            "columns": [{"name": n, "tag": t} for n, t in self.columns.items()],
        }


class _Unknown(Exception):
    """A value only known when the task runs (a template, an upstream result)."""


def check_pipeline(pipeline: Pipeline, project: Project) -> list[PlannedWrite]:
    """The writes of `pipeline`'s data tasks, in dependency order, each judged."""
    gov = governance(project)
    known: dict[str, Columns] = {}  # dataset key -> columns predicted by an earlier task
    out: list[PlannedWrite] = []
    for task_id in pipeline.order:
        task = pipeline.tasks[task_id]
        action = _action(task)
        if action not in ("copy", "sql", "mask"):
            continue
        out.append(_judge(task, action, gov, project, known))
    return out


def _action(task: Task) -> str | None:
    module = str(getattr(task.fn, "__module__", ""))
    if module not in ("lockgate.io.tasks", "lockgate.privacy.tasks"):
        return None
    return str(getattr(task.fn, "__name__", "")).removesuffix("_task")


def _judge(
    task: Task, action: str, gov: Governance, project: Project, known: dict[str, Columns]
) -> PlannedWrite:
    kw = dict(task.kwargs or {})
    target_value = kw.get("output" if action == "mask" else "target")
    try:
        target = _dataset(target_value, project.root)
    except _Unknown:
        return PlannedWrite(
            task.id,
            action,
            "(decided at run time)",
            "?",
            "",
            [],
            verdict="unknown",
            notes=["the target is a template or an upstream result: checked when the task runs"],
        )
    if target is None:  # an sql task without a target: a preview, nothing written
        return PlannedWrite(task.id, action, "(preview only)", "-", "", [], verdict="allow")
    zones = gov.zones
    target_key = key(target.uri)
    placed = zones.place(target_key, target.zone, target.connection)
    write = PlannedWrite(task.id, action, target_key, placed.zone, placed.reason, [])
    sources: list[Dataset] = []
    unknown_sources = False
    raw_inputs: list[Any]
    if action == "sql":
        inputs = kw.get("inputs")
        raw_inputs = list(inputs.values()) if isinstance(inputs, Mapping) else [inputs]
    else:
        raw_inputs = [kw.get("input" if action == "mask" else "source")]
    for value in raw_inputs:
        try:
            src = _dataset(value, project.root)
        except _Unknown:
            unknown_sources = True
            continue
        if src is not None:
            sources.append(src)
    places = []
    for src in sources:
        where = zones.place(key(src.uri), src.zone, src.connection)
        places.append(where)
        write.sources.append({"dataset": key(src.uri), "zone": where.zone})
    if unknown_sources:
        places.append(Placement(zones.default, "default"))  # may come from anywhere
        write.notes.append("a source is a template or an upstream result: its zone is the default")
        write.sources.append({"dataset": "(run time)", "zone": zones.default})
    if not placed.declared:
        write.notes.append(
            f"the target has no declared zone: it is in default_zone {zones.default}; declare it "
            "with a dataset zone or [zones.NAME] datasets in lockgate.toml"
        )
    columns = _predict(action, kw, sources, project, known, write)
    partial = columns is None
    if columns is None:
        # the columns the pipeline declares tags for are known: judge those now
        columns = {} if action == "sql" else _declared(kw, sources)
    declared_tags = dict(target.tags)
    columns = {**columns, **{n: t for n, t in declared_tags.items() if n not in columns}}
    columns = {n: declared_tags.get(n, t) for n, t in columns.items()}
    write.columns = columns
    if not partial:
        known[target_key] = columns
    source_zones = [s["zone"] for s in write.sources] or [zones.default]
    evaluation = evaluate(gov.policy, zones, placed.zone, source_zones, columns.items())
    _apply_waivers(evaluation.violations, target_key, gov, project, write)
    write.violations = evaluation.violations
    if any(v.severity == "error" for v in evaluation.violations):
        write.verdict = "deny"
    elif evaluation.violations:
        write.verdict = "warn"
    if partial:
        if write.verdict != "deny":
            write.verdict = "unknown"
        write.notes.append(
            "its other columns are known only when it runs: checked by the gate then"
        )
        return write
    lower = zones.downwards(placed.zone, places)
    untagged = [n for n, t in columns.items() if t is None]
    if write.verdict != "deny" and lower and untagged:
        mode = zones.untagged_mode(placed.zone, gov.policy.untagged)
        if mode == "block":
            write.verdict = "deny"
            write.notes.append(
                f"untagged columns refused by zone {placed.zone}: {', '.join(untagged)}"
            )
        elif mode == "scan":
            write.verdict = "unknown" if write.verdict == "allow" else write.verdict
            write.notes.append(
                f"untagged columns are scanned when it runs: {', '.join(untagged[:8])}"
                + (" ..." if len(untagged) > 8 else "")
            )
    return write


def _declared(kw: Mapping[str, Any], sources: list[Dataset]) -> Columns:
    """The columns whose tags the task declares (on its source or on the copy)."""
    out: Columns = {}
    for src in sources:
        out.update(src.tags)
    out.update(kw.get("tags") or {})
    return out


def _apply_waivers(
    violations: list[Violation],
    target: str,
    gov: Governance,
    project: Project,
    write: PlannedWrite,
) -> None:
    """Drop the violations a waiver in force covers (as the gate would), saying so."""
    import time

    from lockgate.governance.gate import _waiver_for, waivers_in_force

    if not any(v.severity == "error" for v in violations):
        return
    now = time.time()
    in_force = [w for w in waivers_in_force(project) if w["verified"]]
    for violation in list(violations):
        waiver = _waiver_for(violation, target, in_force, gov.root, now)
        if waiver is not None and violation.severity == "error":
            violations.remove(violation)
            write.notes.append(f"{violation.rule} on {violation.column!r} waived by {waiver}")


def _dataset(value: Any, root: Path) -> Dataset | None:
    from lockgate.io.tasks import _dataset as as_dataset
    from lockgate.model.refs import ParamRef, TaskOutput, Template

    if value is None:
        return None
    if isinstance(value, Template | TaskOutput | ParamRef):
        raise _Unknown
    if isinstance(value, Mapping) and any(
        isinstance(v, Template | TaskOutput | ParamRef) for v in value.values()
    ):
        raise _Unknown
    return as_dataset(value, root, None, None, None, None, None)


def _predict(
    action: str,
    kw: Mapping[str, Any],
    sources: list[Dataset],
    project: Project,
    known: dict[str, Columns],
    write: PlannedWrite,
) -> Columns | None:
    """The columns and tags the task will write, or None when only the run can tell."""
    if action == "sql" or len(sources) != 1:
        return None
    source = sources[0]
    columns = _columns_of(source, project, known)
    if columns is None:
        write.notes.append(f"{key(source.uri)}: its columns are not known before it is read")
        return None
    if action == "copy":
        tags = kw.get("tags") or {}
        return {n: tags.get(n, t) for n, t in columns.items()}
    return _masked(columns, kw, project, write)


def _columns_of(source: Dataset, project: Project, known: dict[str, Columns]) -> Columns | None:
    """What is known of a source's columns: an earlier task's output, the catalogue, a
    Parquet file's schema; declared tags laid over it."""
    name = key(source.uri)
    columns: Columns | None = dict(known[name]) if name in known else None
    if columns is None:
        from lockgate.store.store import Store

        store = Store.if_exists(project.db_url)
        if store is not None:
            try:
                row = store.dataset(name)
            finally:
                store.close()
            if row and row.get("schema"):
                columns = {f["name"]: f.get("tag") for f in row["schema"]}
    if columns is None and source.kind in ("file", "sqlite") and source.connection is None:
        columns = _local_schema(source)
    if columns is None:
        return None
    for column, tag in source.tags.items():
        if column in columns:
            columns[column] = tag
    return columns


def _local_schema(source: Dataset) -> Columns | None:
    """The columns (and tags) of a local file or SQLite table, from its schema alone (a
    Parquet footer, a CSV header, a table's definition); None when it cannot be opened yet
    (an earlier task makes it)."""
    from lockgate.errors import LockgateError
    from lockgate.io.connect import open_reader
    from lockgate.model.classification import tag_of

    try:
        with open_reader(source, batch_rows=1) as reader:
            return {f.name: tag_of(f) for f in reader.schema}
    except (LockgateError, OSError):
        return None


def _masked(
    columns: Columns, kw: Mapping[str, Any], project: Project, write: PlannedWrite
) -> Columns:
    """The tags a `mask` task leaves: each rule's operation sets its column's form; with
    `auto`, each classified column without a rule gets its automatic operation."""
    from lockgate.model.classification import transformed
    from lockgate.privacy.masking import AUTO_OPS
    from lockgate.privacy.tasks import _rules
    from lockgate.privacy.transforms.registry import OPERATIONS

    out = dict(columns)
    rules = kw.get("rules")
    try:
        plan = _rules(rules, project.root) or []
    except Exception as exc:  # the run would fail the same way: say it, judge the rest
        write.notes.append(f"the masking rules cannot be read: {exc}")
        plan = []
    ruled = set()
    for rule in plan:
        if rule.column in out:
            ruled.add(rule.column)
            tag = out[rule.column] or rule.classification
            out[rule.column] = transformed(tag, OPERATIONS[rule.op].form)
    if kw.get("auto"):
        for column, tag in columns.items():
            if column in ruled or tag is None or "/" in tag:
                continue
            op = "redact" if tag.startswith("secret.") else AUTO_OPS.get(tag, (None, {}))[0]
            if op is not None:
                out[column] = transformed(tag, OPERATIONS[op].form)
        if any(t is None for t in columns.values()):
            write.notes.append("auto masking classifies untagged columns when it runs")
    return out
