"""Policies as data: rules that say which classifications a zone admits and in which form.

A rule names classes (globs over classification tags: `pii.*`, `pci.pan`), the zones it
guards (`where`: `below: prod`, `zones: [...]`, `outside: [...]` or `any: true`), optionally the
zones the data must come from (`from`), the forms a column of those classes may take there
(`allow`), a pattern every value must then match (`values`, e.g. a ZIP cut to 3 digits), and
a cap on how many such columns one dataset may carry (`max_columns`, data minimisation).
A column of a matching class in a form not allowed is a violation; `severity: warn` records
it without refusing the write. Rules come in packs (YAML files: the shipped `gdpr`, `hipaa`,
`pci`, `soc2` in governance/packs/, and a project's own files), enabled in lockgate.toml:

    [policy]
    packs = ["gdpr", "pci"]            # default: every shipped pack
    files = ["policies/ours.yaml"]     # more packs (a rule with a shipped id replaces it)
    disable = ["gdpr.max-personal-columns"]
    default_zone = "prod"
    untagged = "scan"                  # scan, block or allow (see gate.py)

The module is pure: evaluating a policy needs no I/O (`evaluate`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockgate.errors import ConfigError, did_you_mean
from lockgate.governance.zones import UNTAGGED, Zones

SHIPPED = ("gdpr", "hipaa", "pci", "soc2")
FORMS = (
    "raw",
    "tokenized",
    "hashed",
    "fpe",
    "encrypted",
    "masked",
    "truncated",
    "redacted",
    "nullified",
    "generalized",
    "faked",
)
"""The forms a classified column can take: raw, or the form its last transform left (the
suffix of its tag, `pii.email/tokenized`; privacy/transforms)."""
GROUPS: Mapping[str, frozenset[str]] = {
    "pseudonymised": frozenset({"tokenized", "hashed", "fpe", "encrypted"}),
    "removed": frozenset({"redacted", "nullified"}),
    "generalised": frozenset({"generalized"}),
    "synthetic": frozenset({"faked"}),
    "transformed": frozenset(FORMS) - {"raw"},
}
"""Names for groups of forms, usable in `allow` (British and American spellings alike)."""
_ALIASES = {"pseudonymized": "pseudonymised", "generalized": "generalised", "any": "transformed"}
RAW_FORMS = frozenset({"decrypted"})
"""Forms that put the value back in the clear: treated as raw."""
_RULE_KEYS = (
    "id",
    "title",
    "description",
    "reference",
    "classes",
    "where",
    "from",
    "allow",
    "values",
    "max_columns",
    "severity",
)
_PACK_KEYS = ("name", "title", "description", "rules", "evidence")
_POLICY_KEYS = ("packs", "files", "disable", "default_zone", "untagged")


@dataclass(frozen=True)
class Where:
    """The target zones a rule guards."""

    below: str | None = None
    zones: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()
    any: bool = False

    def matches(self, zone: str, zones: Zones) -> bool:
        if self.any:
            return True
        if self.zones and zone in self.zones:
            return True
        if self.outside and zone not in self.outside:
            return True
        return self.below is not None and zones.below(zone, self.below)

    def describe(self) -> str:
        if self.any:
            return "every zone"
        parts = []
        if self.below:
            parts.append(f"zones below {self.below}")
        if self.zones:
            parts.append(f"zones {', '.join(self.zones)}")
        if self.outside:
            parts.append(f"zones other than {', '.join(self.outside)}")
        return " or ".join(parts)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    classes: tuple[str, ...]
    where: Where
    allow: frozenset[str]
    """Forms admitted (expanded from group names); `raw` among them admits raw values."""
    severity: str = "error"
    sources: tuple[str, ...] = ()
    """`from`: the rule applies only when a source of the data is in one of these zones."""
    values: str | None = None
    max_columns: int | None = None
    reference: str = ""
    description: str = ""
    pack: str = ""

    def covers(self, cls: str) -> bool:
        return any(fnmatch.fnmatchcase(cls, pattern) for pattern in self.classes)

    def applies(self, zone: str, source_zones: Sequence[str], zones: Zones) -> bool:
        if not self.where.matches(zone, zones):
            return False
        return not self.sources or any(s in self.sources for s in source_zones)


@dataclass(frozen=True)
class Pack:
    name: str
    title: str
    description: str
    rules: tuple[Rule, ...]
    evidence: tuple[str, ...] = ()
    """What the pack's compliance report shows (governance/reports.py)."""
    file: str = ""


@dataclass(frozen=True)
class Violation:
    """One column (or, for `max_columns`, one dataset) a rule refuses in the target zone."""

    rule: str
    column: str | None
    tag: str | None
    cls: str | None
    form: str | None
    zone: str
    severity: str
    message: str
    reference: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "column": self.column,
            "tag": self.tag,
            "class": self.cls,
            "form": self.form,
            "zone": self.zone,
            "severity": self.severity,
            "message": self.message,
            "reference": self.reference,
        }


@dataclass(frozen=True)
class ValueCheck:
    """Every non-null value of `column` must match `pattern` (rule `rule`)."""

    rule: str
    column: str
    pattern: str
    severity: str


@dataclass
class Evaluation:
    violations: list[Violation] = field(default_factory=list)
    value_checks: list[ValueCheck] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    """Ids of the rules that applied to this write."""


@dataclass(frozen=True)
class Policy:
    packs: tuple[Pack, ...]
    untagged: str = "scan"

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(r for p in self.packs for r in p.rules)

    def pack(self, name: str) -> Pack:
        for p in self.packs:
            if p.name == name:
                return p
        raise ConfigError(
            f"no policy pack {name!r} is enabled{did_you_mean(name, [p.name for p in self.packs])}"
        )


def split_tag(tag: str | None) -> tuple[str | None, str | None]:
    """`pii.email/tokenized` -> (`pii.email`, `tokenized`); raw -> (`pii.email`, None)."""
    if not tag or tag == "none":
        return None, None
    cls, _, form = tag.partition("/")
    if not form or form in RAW_FORMS:
        return cls, None
    return cls, form


def evaluate(
    policy: Policy,
    zones: Zones,
    zone: str,
    source_zones: Sequence[str],
    columns: Iterable[tuple[str, str | None]],
) -> Evaluation:
    """What `policy` says about writing columns `(name, tag)` into `zone` from data of
    `source_zones`. Pure: the gate (gate.py) and `lockgate policy check` share it."""
    out = Evaluation()
    cols = list(columns)
    for rule in policy.rules:
        if not rule.applies(zone, source_zones, zones):
            continue
        matched = 0
        for name, tag in cols:
            cls, form = split_tag(tag)
            if cls is None or not rule.covers(cls):
                continue
            if rule.id not in out.rules:
                out.rules.append(rule.id)
            matched += 1
            if (form or "raw") in rule.allow:
                # a removed value ([REDACTED], null) has nothing left to check
                if rule.values and form is not None and form not in GROUPS["removed"]:
                    out.value_checks.append(ValueCheck(rule.id, name, rule.values, rule.severity))
                continue
            shown = "raw" if form is None else form
            allowed = ", ".join(sorted(rule.allow)) or "none: not admitted at all"
            out.violations.append(
                Violation(
                    rule.id,
                    name,
                    tag,
                    cls,
                    form,
                    zone,
                    rule.severity,
                    f"column {name!r} holds {cls} ({shown}); {rule.title} "
                    f"(allowed in {zone}: {allowed})",
                    rule.reference,
                )
            )
        if rule.max_columns is not None and matched > rule.max_columns:
            if rule.id not in out.rules:
                out.rules.append(rule.id)
            out.violations.append(
                Violation(
                    rule.id,
                    None,
                    None,
                    None,
                    None,
                    zone,
                    rule.severity,
                    f"{matched} columns of {', '.join(rule.classes)} in one dataset, more than "
                    f"{rule.max_columns}; {rule.title}",
                    rule.reference,
                )
            )
    return out


# -- loading ------------------------------------------------------------------------------------


def load_policy(tables: Mapping[str, Any], root: Path, where: str = "lockgate.toml") -> Policy:
    """The project's policy: the packs `[policy] packs` enables (default: every shipped
    one), then its own `files`, minus the rules it `disable`s."""
    table = tables.get("policy") or {}
    for key in table:
        if key not in _POLICY_KEYS:
            raise ConfigError(
                f"{where}: [policy] unknown key {key!r}{did_you_mean(key, _POLICY_KEYS)}"
            )
    names = table.get("packs", list(SHIPPED))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f'{where}: [policy] packs must be a list of names, e.g. ["gdpr", "pci"]')
    packs: list[Pack] = []
    for name in names:
        if name not in SHIPPED:
            raise ConfigError(
                f"{where}: [policy] packs: no shipped pack {name!r}{did_you_mean(name, SHIPPED)}; "
                "a pack of your own goes in [policy] files"
            )
        packs.append(shipped_pack(name))
    files = table.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ConfigError(f"{where}: [policy] files must be a list of paths")
    for file in files:
        path = Path(file) if Path(file).is_absolute() else root / file
        packs.append(load_pack(path))
    disabled = set(table.get("disable", []))
    # a later rule with the same id replaces an earlier one (a project's file over a pack)
    by_id: dict[str, Rule] = {}
    for pack in packs:
        for rule in pack.rules:
            by_id[rule.id] = rule
    unknown = sorted(disabled - set(by_id))
    if unknown:
        raise ConfigError(
            f"{where}: [policy] disable names no enabled rule: {unknown[0]!r}"
            f"{did_you_mean(unknown[0], sorted(by_id))}"
        )
    kept = []
    for pack in packs:
        rules = tuple(r for r in pack.rules if r.id not in disabled and by_id[r.id] is r)
        kept.append(Pack(pack.name, pack.title, pack.description, rules, pack.evidence, pack.file))
    untagged = table.get("untagged", "scan")
    if untagged not in UNTAGGED:
        raise ConfigError(f"{where}: [policy] untagged must be one of {', '.join(UNTAGGED)}")
    return Policy(tuple(kept), untagged)


def shipped_pack(name: str) -> Pack:
    """A pack shipped with lockgate (governance/packs/NAME.yaml)."""
    from importlib import resources

    ref = resources.files("lockgate.governance") / "packs" / f"{name}.yaml"
    return parse_pack(ref.read_text(encoding="utf-8"), f"lockgate/governance/packs/{name}.yaml")


def load_pack(path: Path) -> Pack:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the policy file: {exc.strerror or exc}") from None
    return parse_pack(text, str(path))


def parse_pack(text: str, file: str) -> Pack:
    """A pack from its YAML text; ConfigError naming the file and the rule when malformed."""
    import yaml

    try:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file}{at}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{file}: a policy pack is a mapping with name and rules")
    for key in doc:
        if key not in _PACK_KEYS:
            raise ConfigError(f"{file}: unknown key {key!r}{did_you_mean(key, _PACK_KEYS)}")
    name = doc.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
        raise ConfigError(f"{file}: name must be a short lower-case word, e.g. name: ours")
    rules = doc.get("rules") or []
    if not isinstance(rules, list):
        raise ConfigError(f"{file}: rules must be a list")
    parsed = tuple(_rule(item, i, name, file) for i, item in enumerate(rules))
    ids = [r.id for r in parsed]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"{file}: rule id {dupes[0]!r} is used twice")
    evidence = doc.get("evidence") or []
    if not isinstance(evidence, list) or not all(isinstance(e, str) for e in evidence):
        raise ConfigError(f"{file}: evidence must be a list of section names")
    return Pack(
        name,
        str(doc.get("title") or name),
        str(doc.get("description") or ""),
        parsed,
        tuple(evidence),
        file,
    )


def _rule(item: Any, index: int, pack: str, file: str) -> Rule:
    at = f"{file}: rules[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{at} must be a mapping with id, classes, where and allow")
    rid = item.get("id")
    if not isinstance(rid, str) or not rid:
        raise ConfigError(f"{at} needs an id, e.g. id: {pack}.my-rule")
    at = f"{file}: rule {rid}"
    for key in item:
        if key not in _RULE_KEYS:
            raise ConfigError(f"{at}: unknown key {key!r}{did_you_mean(key, _RULE_KEYS)}")
    classes = item.get("classes")
    if isinstance(classes, str):
        classes = [classes]
    if not classes or not all(isinstance(c, str) and c for c in classes):
        raise ConfigError(f"{at}: classes must list classifications, e.g. [pii.email, pci.*]")
    severity = item.get("severity", "error")
    if severity not in ("error", "warn"):
        raise ConfigError(f"{at}: severity must be error or warn")
    values = item.get("values")
    if values is not None:
        if not isinstance(values, str):
            raise ConfigError(f"{at}: values must be a regular expression")
        _check_pattern(values, at)
    cap = item.get("max_columns")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
        raise ConfigError(f"{at}: max_columns must be a whole number >= 0")
    allow = item.get("allow", [] if cap is None else list(FORMS))
    if isinstance(allow, str):
        allow = [allow]
    if not isinstance(allow, list):
        raise ConfigError(f"{at}: allow must list forms, e.g. [tokenized, truncated]")
    sources = item.get("from", [])
    if isinstance(sources, str):
        sources = [sources]
    return Rule(
        rid,
        str(item.get("title") or item.get("description") or rid),
        tuple(classes),
        _where(item.get("where"), at),
        _forms(allow, at),
        severity,
        tuple(sources),
        values,
        cap,
        str(item.get("reference") or ""),
        str(item.get("description") or ""),
        pack,
    )


RE2_UNSUPPORTED = re.compile(r"\(\?[=!<]|\\[1-9]|\(\?P=")
"""Look-around and back-references: Python's `re` takes them, RE2 (Arrow's regex engine,
which checks `values` on every batch) does not."""


def _check_pattern(pattern: str, at: str) -> None:
    """`values` patterns run on RE2, one match per value: refuse now what it cannot run
    (without importing Arrow: loading a policy stays cheap)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{at}: values is not a valid regular expression: {exc}") from None
    if RE2_UNSUPPORTED.search(pattern):
        raise ConfigError(
            f"{at}: values is not a regular expression RE2 can run (no look-around or "
            "back-references; anchor it with ^...$)"
        )


def _where(value: Any, at: str) -> Where:
    if value is None or value == "any":
        return Where(any=True)
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{at}: where must be a mapping such as {{below: prod}}")
    unknown = sorted(set(value) - {"below", "zones", "outside", "any"})
    if unknown:
        raise ConfigError(f"{at}: where: unknown key {unknown[0]!r}; use below, zones or outside")

    def names(key: str) -> tuple[str, ...]:
        got = value.get(key, [])
        got = [got] if isinstance(got, str) else got
        if not isinstance(got, list) or not all(isinstance(g, str) for g in got):
            raise ConfigError(f"{at}: where.{key} must list zone names")
        return tuple(got)

    below = value.get("below")
    if below is not None and not isinstance(below, str):
        raise ConfigError(f"{at}: where.below must be a zone name")
    return Where(below, names("zones"), names("outside"), bool(value.get("any", False)))


def _forms(allow: Sequence[Any], at: str) -> frozenset[str]:
    out: set[str] = set()
    for item in allow:
        name = _ALIASES.get(str(item), str(item))
        if name in GROUPS:
            out |= GROUPS[name]
        elif name in FORMS:
            out.add(name)
        else:
            known = [*FORMS, *GROUPS]
            raise ConfigError(f"{at}: allow: unknown form {item!r}{did_you_mean(item, known)}")
    return frozenset(out)


def check_zones(policy: Policy, zones: Zones) -> None:
    """Every zone a rule names exists (called once the project's zones are known)."""
    for rule in policy.rules:
        for name in (rule.where.below, *rule.where.zones, *rule.where.outside, *rule.sources):
            if name is not None and name not in zones.zones:
                raise ConfigError(
                    f"policy rule {rule.id} names zone {name!r}, which is not defined"
                    f"{did_you_mean(name, sorted(zones.zones))}; add [zones.{name}] to lockgate.toml"
                )
