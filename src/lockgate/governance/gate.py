"""The policy gate: every dataset write is checked against the target zone's policy first.

Before a writer is opened (io.connect.open_writer, the privacy engine's file writer), the
gate places the target and the data's sources in zones (governance/zones.py), reads the
outgoing schema's classification tags, and evaluates the project's policy
(governance/policy.py). A violation of an `error` rule that no waiver covers refuses the
write: nothing is opened, a `PolicyViolation` fact is reported (an event and an audit record
in a run; a policy decision row and an audit record outside one) and the task fails with a
`PolicyViolationError` naming the dataset, zones, columns, classes and rules. Otherwise the
decision (allow, or waived, with any warnings) is recorded the same way.

Two cases need the data itself, so the gate decides on the first batch, before the target is
opened: untagged columns written to a zone less trusted than a source (`untagged = "scan"`:
the first rows are classified by the privacy scanner, and what it finds is judged as raw), and
rules with a `values` pattern (e.g. HIPAA's ZIP cut to three digits), whose columns are then
checked in every batch as it passes (a failure aborts the write, which leaves the target as
it was: writers are atomic).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.errors import PolicyViolationError
from lockgate.governance.policy import (
    Policy,
    ValueCheck,
    Violation,
    evaluate,
    load_policy,
    split_tag,
)
from lockgate.governance.zones import Zones, load_zones, root_pattern, spellings
from lockgate.io import gatehook
from lockgate.io.catalogue import key
from lockgate.model import facts
from lockgate.model.classification import declassified_from, tag_of

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.config import Project
    from lockgate.io.base import Writer, WriteResult
    from lockgate.io.dataset import Dataset

SCAN_ROWS = 1000
"""Rows of the first batch the scanner classifies when untagged data goes to a lower zone."""
UNTAGGED_RULE = "gate.untagged"
"""The rule id of a refusal for untagged data under `untagged = "block"`."""


@dataclass(frozen=True)
class Governance:
    """A project's zones and policy, loaded once per version of its lockgate.toml."""

    root: Path
    zones: Zones
    policy: Policy
    db_url: str
    fingerprint: str = ""
    """SHA-256 of the zones and rules in force (recorded with every decision: evidence of
    which policy decided, and that it changed)."""


_cache: dict[tuple[str, float], Governance] = {}
_cache_lock = threading.Lock()


def governance(project: Project) -> Governance:
    """The project's zones and policy (cached until lockgate.toml changes)."""
    from lockgate.governance.policy import check_zones

    stamp = project.config_file.stat().st_mtime if project.config_file else 0.0
    # the project's own policy files count too: a scheduler that stays up sees their edits
    for name in (project.tables.get("policy") or {}).get("files") or ():
        with contextlib.suppress(OSError, TypeError):
            stamp += Path(project.root, name).stat().st_mtime
    cache_key = (str(project.config_file or project.root), stamp)
    with _cache_lock:
        found = _cache.get(cache_key)
    if found is not None and found.db_url == project.db_url:
        return found
    where = str(project.config_file or "lockgate.toml")
    zones = load_zones(project.tables, project.root, where)
    policy = load_policy(project.tables, project.root, where)
    check_zones(policy, zones)
    made = Governance(
        project.root, zones, policy, project.db_url, policy_fingerprint(zones, policy)
    )
    with _cache_lock:
        _cache.clear()
        _cache[cache_key] = made
    return made


def policy_fingerprint(zones: Zones, policy: Policy) -> str:
    """A digest of everything that decides: zones (trust, patterns, connections, untagged
    modes), the default zone, and every rule in force."""
    import hashlib
    import json

    doc = {
        "default": zones.default,
        "untagged": policy.untagged,
        "zones": [
            dataclasses.astuple(z) for z in sorted(zones.zones.values(), key=lambda z: z.name)
        ],
        "rules": [
            [
                r.id,
                r.classes,
                r.where.describe(),
                sorted(r.allow),
                r.sources,
                r.values,
                r.max_columns,
                r.severity,
            ]
            for r in policy.rules
        ],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Decision:
    """What the gate decided on one write, and why; `data` is what gets recorded."""

    dataset: str
    zone: str
    zone_reason: str
    sources: list[dict[str, str]]
    columns: list[tuple[str, str | None]]
    lower: bool = False
    """The data goes to a zone less trusted than where it comes from."""
    policy: str = ""
    """The fingerprint of the zones and rules that decided (`Governance.fingerprint`)."""
    origins: list[str] = field(default_factory=list)
    """Every zone the data comes from: its sources' and, as recorded, theirs."""
    violations: list[Violation] = field(default_factory=list)
    waived: list[tuple[Violation, str]] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    scanned: dict[str, str | None] = field(default_factory=dict)
    declassified: dict[str, str] = field(default_factory=dict)
    """Columns declared less sensitive than they were: their raw tag, which the policy judged."""
    ignored_waivers: list[str] = field(default_factory=list)
    """Waivers in force but not signed with the project's key: ignored."""

    @property
    def blocking(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def outcome(self) -> str:
        if self.blocking:
            return "deny"
        return "waived" if self.waived else "allow"

    def data(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "zone": self.zone,
            "decision": self.outcome,
            "zone_reason": self.zone_reason,
            "sources": self.sources,
            "source_zones": sorted({s["zone"] for s in self.sources}),
            "columns": [{"name": n, "tag": t} for n, t in self.columns if t],
            "rules": self.rules,
            "violations": [v.to_json() for v in self.violations],
            "waived": [{**v.to_json(), "waiver": w} for v, w in self.waived],
            "waivers": sorted({w for _, w in self.waived}),
            "scanned": self.scanned,
            "ignored_waivers": self.ignored_waivers,
            "declassified": self.declassified,
            "policy": self.policy,
            "origins": self.origins,
        }

    def error(self) -> PolicyViolationError:
        blocking = self.blocking
        cols = "; ".join(
            (
                f"{v.column}: {'raw ' if v.form is None else v.form + ' '}{v.cls} ({v.rule})"
                if v.cls
                else f"{v.column}: untagged ({v.rule})"
            )
            if v.column
            else v.message
            for v in blocking
        )
        froms = ", ".join(sorted({s["zone"] for s in self.sources})) or "unknown"
        first = blocking[0]
        hint = (
            "classify the columns (tags) or mask them first"
            if first.rule == UNTAGGED_RULE
            else "mask those columns first (e.g. tokenize, truncate, redact)"
        )
        return PolicyViolationError(
            f"policy gate refused writing {self.dataset} (zone {self.zone}, data from {froms}): "
            f"{cols}; {hint}, or record an exception: lockgate policy waive --rule "
            f"{first.rule} --dataset '{self.dataset}' --owner NAME --reason ... --expires DATE"
        )


def decide(
    gov: Governance,
    target: Dataset,
    schema: pa.Schema,
    sources: Sequence[Dataset],
    sample: pa.RecordBatch | pa.Table | None = None,
    waivers: Callable[[], Sequence[dict[str, Any]]] = tuple,
    now: float | None = None,
    origins_of: Callable[[list[str]], set[str]] = lambda names: set(),
) -> tuple[Decision, list[ValueCheck]]:
    """The gate's decision on writing batches of `schema` into `target` from `sources`,
    given the first rows (`sample`, when the decision needs them) and the waivers in force
    (`waivers()`, asked for only when a rule is broken); `origins_of(datasets)`: the zones
    earlier decisions recorded their data as coming from."""
    zones = gov.zones
    target_key = key(target.uri)
    placed = zones.place(target_key, target.zone, target.connection)
    places = [zones.place(key(src.uri), src.zone, src.connection) for src in sources]
    origins = [
        {"dataset": key(s.uri), "zone": p.zone} for s, p in zip(sources, places, strict=True)
    ]
    source_zones = [o["zone"] for o in origins] or [zones.default]
    lower = zones.downwards(placed.zone, places)
    # where the sources' own data came from (recorded by earlier decisions), for rules that
    # depend on it: phi -> work file -> analytics is still data from phi
    if any(r.sources for r in gov.policy.rules) and sources:
        inherited = origins_of([o["dataset"] for o in origins])
        source_zones = sorted({*source_zones, *(z for z in inherited if z in zones.zones)})
    columns = [(f.name, tag_of(f)) for f in schema]
    decision = Decision(target_key, placed.zone, placed.reason, origins, columns, lower=lower)
    decision.origins = sorted(set(source_zones))
    decision.policy = gov.fingerprint[:16]
    # a column the pipeline declared less sensitive than it was is judged as it was
    declassified = {f.name: d for f in schema if (d := declassified_from(f))}
    decision.declassified = declassified
    columns = [(n, declassified.get(n, t)) for n, t in columns]
    judged = list(columns)
    untagged = [name for name, tag in columns if tag is None]
    if lower and untagged:
        mode = zones.untagged_mode(placed.zone, gov.policy.untagged)
        if mode == "block":
            for name in untagged:
                decision.violations.append(
                    Violation(
                        UNTAGGED_RULE,
                        name,
                        None,
                        None,
                        None,
                        placed.zone,
                        "error",
                        f"column {name!r} carries no classification and zone {placed.zone} "
                        "refuses untagged data from a more trusted zone (untagged = block)",
                    )
                )
        elif mode == "scan" and sample is not None:
            found = scan_columns(sample, untagged)
            decision.scanned = found
            judged = [(n, found.get(n) if t is None and n in found else t) for n, t in columns]
    evaluation = evaluate(gov.policy, zones, placed.zone, source_zones, judged)
    decision.rules = evaluation.rules
    moment = time.time() if now is None else now
    rows = waivers() if any(v.severity == "error" for v in evaluation.violations) else ()
    in_force = [w for w in rows if w.get("verified", True)]
    decision.ignored_waivers = sorted(str(w["id"]) for w in rows if not w.get("verified", True))
    for violation in evaluation.violations:
        waiver = _waiver_for(violation, target_key, in_force, gov.root, moment)
        if waiver is not None and violation.severity == "error":
            decision.waived.append((violation, waiver))
        else:
            decision.violations.append(violation)
    return decision, evaluation.value_checks


def needs_data(
    gov: Governance, target: Dataset, schema: pa.Schema, sources: Sequence[Dataset]
) -> bool:
    """The decision needs the first rows: untagged columns going to a less trusted zone
    under `untagged = "scan"`, or a rule checking values (a cheap first pass without data)."""
    decision, checks = decide(gov, target, schema, sources)
    if checks:
        return True
    if not decision.lower:
        return False
    mode = gov.zones.untagged_mode(decision.zone, gov.policy.untagged)
    return mode == "scan" and any(tag is None for _, tag in decision.columns)


def scan_columns(sample: pa.RecordBatch | pa.Table, names: Sequence[str]) -> dict[str, str | None]:
    """The classification the privacy scanner finds in each of `names` (None: nothing), from
    the first `SCAN_ROWS` rows."""
    import pyarrow as pa

    from lockgate.privacy.scan import classify_sample

    table = pa.Table.from_batches([sample]) if isinstance(sample, pa.RecordBatch) else sample
    table = table.select(list(names)).slice(0, SCAN_ROWS)
    return {c.name: c.classification for c in classify_sample(table)}


def check_waiver_scope(rule: str, dataset: str, policy: Policy) -> None:
    """A waiver names one rule (or one pack's rules, `pci.*`) and a dataset, or datasets whose
    names differ only in their last part (`staging.db#*`, `exports/*.csv`): never every rule or
    every dataset. ConfigError otherwise."""
    from lockgate.errors import ConfigError, did_you_mean

    ids = [r.id for r in policy.rules] + [UNTAGGED_RULE]
    packs = {i.split(".", 1)[0] for i in ids}
    whole_pack = rule.endswith(".*") and rule[:-2] in packs
    if rule not in ids and not whole_pack:
        raise ConfigError(
            f"--rule {rule!r} is not a rule id, nor a pack's rules (pci.*)"
            f"{did_you_mean(rule, ids)}; `lockgate policy show` lists them"
        )
    wild = min((i for i in (dataset.find(c) for c in "*?[") if i >= 0), default=-1)
    if wild >= 0:
        literal = dataset[:wild].split("://", 1)[-1]
        last_part = max(dataset.rfind("/"), dataset.rfind("#"))
        if wild < last_part or len(literal.strip("/#:")) < 3:
            raise ConfigError(
                f"--dataset {dataset!r} covers too much: a waiver names one dataset, or "
                "datasets that differ in their last part only (staging.db#*, exports/*.csv)"
            )


def _waiver_for(
    violation: Violation,
    dataset: str,
    waivers: Sequence[dict[str, Any]],
    root: Path,
    now: float,
) -> str | None:
    """The id of a waiver in force that covers `violation` on `dataset`, if any."""
    for w in waivers:
        if w.get("revoked_at") or float(w["expires_at"]) <= now:
            continue
        if not fnmatch.fnmatchcase(violation.rule, w["rule"]):
            continue
        pattern = root_pattern(w["dataset"], root)
        names = spellings(dataset)
        if not (any(fnmatch.fnmatchcase(n, pattern) for n in names) or dataset == w["dataset"]):
            continue
        if w.get("zone") and w["zone"] != violation.zone:
            continue
        columns = w.get("columns")
        if columns and violation.column not in columns:
            continue
        return str(w["id"])
    return None


# -- recording ----------------------------------------------------------------------------------


def record(decision: Decision, project: Project) -> None:
    """Report the decision: a fact in a run (an event and an audit record), else a row and an
    audit record in the project's metadata database (created if need be, as a run would)."""
    data = decision.data()
    kind = facts.POLICY_VIOLATION if decision.outcome == "deny" else facts.POLICY_DECISION
    if facts.report(kind, data):
        return
    from lockgate.governance.audit import project_store
    from lockgate.store.audit import user_actor

    store = project_store(project)
    try:
        store.record_policy_decision(data, user_actor())
    finally:
        store.close()


def recorded_origins(project: Project, datasets: list[str]) -> set[str]:
    """The zones the data of `datasets` came from, as the project's store recorded."""
    from lockgate.store.store import Store

    store = Store.if_exists(project.db_url)
    if store is None:
        return set()
    try:
        return store.origins(datasets)
    finally:
        store.close()


def waivers_in_force(project: Project) -> list[dict[str, Any]]:
    """The project's waivers in force now, each marked `verified` when its MAC matches under
    the project's key; the gate honours only those: a row inserted or edited with SQL (a forged
    exception, a longer expiry, an undone revocation) is ignored, and said so on stderr."""
    from functools import partial

    from lockgate.privacy.keys import Keyring
    from lockgate.store.store import Store

    store = Store.if_exists(project.db_url, keys=partial(Keyring.for_project, project))
    if store is None:
        return []
    try:
        rows: list[dict[str, Any]] = store.waivers(active_at=time.time())
    finally:
        store.close()
    forged = [w["id"] for w in rows if not w["verified"]]
    if forged:
        sys.stderr.write(
            f"lockgate: ignoring waiver(s) {', '.join(forged)}: not signed with this project's "
            "key (written or changed outside lockgate)\n"
        )
    return rows


# -- the hook -----------------------------------------------------------------------------------


def gate(
    target: Dataset, schema: pa.Schema, sources: Sequence[Dataset], open_writer: gatehook.Opener
) -> Writer:
    """io.gatehook's gate: decide now when the schema is enough, else on the first batch."""
    from lockgate.config import Project

    project = Project.load()
    gov = governance(project)
    if needs_data(gov, target, schema, sources):
        return _FirstBatchWriter(gov, project, target, schema, sources, open_writer)
    decision, _ = decide(
        gov,
        target,
        schema,
        sources,
        waivers=lambda: waivers_in_force(project),
        origins_of=lambda names: recorded_origins(project, names),
    )
    record(decision, project)
    if decision.outcome == "deny":
        raise decision.error()
    return open_writer(schema)


class _FirstBatchWriter:
    """Holds the write until its first batch is seen, decides, then opens the target (and
    checks `values` patterns on every batch). An empty write is decided on its schema."""

    def __init__(
        self,
        gov: Governance,
        project: Project,
        target: Dataset,
        schema: pa.Schema,
        sources: Sequence[Dataset],
        open_writer: gatehook.Opener,
    ) -> None:
        self._gov, self._project = gov, project
        self._target, self._schema, self._sources = target, schema, list(sources)
        self._open = open_writer
        self._writer: Writer | None = None
        self._checks: list[ValueCheck] = []
        self._decision: Decision | None = None
        self._found: dict[str, str] = {}

    def _decide(self, sample: pa.RecordBatch | pa.Table | None) -> Writer:
        decision, checks = decide(
            self._gov,
            self._target,
            self._schema,
            self._sources,
            sample=sample,
            waivers=lambda: waivers_in_force(self._project),
            origins_of=lambda names: recorded_origins(self._project, names),
        )
        self._decision, self._checks = decision, checks
        if decision.outcome == "deny":
            record(decision, self._project)
            raise decision.error()
        if sample is not None:
            self._check_values(sample, record_ok=True)
        else:
            record(decision, self._project)
        # what the scan found stays with the data (a waiver or `untagged = "allow"` let it
        # through): Parquet keeps the tags, and the catalogue, reports and lineage see them
        self._found = {n: t for n, t in decision.scanned.items() if t}
        if self._found:
            self._schema = pa_schema_with(self._schema, self._found)
        self._writer = self._open(self._schema)
        return self._writer

    def _check_values(self, batch: pa.RecordBatch | pa.Table, record_ok: bool = False) -> None:
        decision = self._decision
        assert decision is not None
        bad = [c for c in self._checks if _mismatches(batch, c)]
        for check in bad:
            tag = dict(decision.columns).get(check.column)
            cls, form = split_tag(tag)
            violation = Violation(
                check.rule,
                check.column,
                tag,
                cls,
                form,
                decision.zone,
                check.severity,
                f"column {check.column!r} ({tag}) has values not matching {check.pattern!r}",
            )
            waiver = _waiver_for(
                violation,
                decision.dataset,
                [w for w in waivers_in_force(self._project) if w["verified"]],
                self._gov.root,
                time.time(),
            )
            if waiver is not None and check.severity == "error":
                decision.waived.append((violation, waiver))
            else:
                decision.violations.append(violation)
            self._checks.remove(check)
        if record_ok or bad:
            record(decision, self._project)
        if decision.blocking:
            raise decision.error()

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if self._writer is None:
            if batch.num_rows == 0:
                return
            writer = self._decide(batch)  # checks the first batch's values too
        else:
            writer = self._writer
            if self._checks:
                self._check_values(batch)
        if self._found:
            batch = _retagged(batch, self._schema)
        writer.write(batch)

    def commit(self) -> WriteResult:
        writer = self._writer if self._writer is not None else self._decide(None)
        result = writer.commit()
        return dataclasses.replace(result, found_tags=self._found) if self._found else result

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()

    def __enter__(self) -> _FirstBatchWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def pa_schema_with(schema: pa.Schema, tags: dict[str, str]) -> pa.Schema:
    """`schema` with `tags` set on the columns they name."""
    import pyarrow as pa

    from lockgate.model.classification import with_tag

    return pa.schema(
        [with_tag(f, tags[f.name]) if f.name in tags else f for f in schema],
        metadata=schema.metadata,
    )


def _retagged(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> Any:
    """`batch` carrying `schema`'s field metadata (same columns, no copy)."""
    import pyarrow as pa

    if batch.schema.names != schema.names:
        return batch
    if isinstance(batch, pa.Table):
        return pa.Table.from_arrays(batch.columns, schema=schema)
    return pa.RecordBatch.from_arrays(batch.columns, schema=schema)


def _mismatches(batch: pa.RecordBatch | pa.Table, check: ValueCheck) -> bool:
    """Some non-null value of the check's column does not match its pattern."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if check.column not in batch.schema.names:
        return False
    values = batch.column(check.column)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    ok = pc.match_substring_regex(values, check.pattern)
    return bool(pc.any(pc.invert(ok)).as_py() or False)


gatehook.install(gate)
