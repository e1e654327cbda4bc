"""Zones: where datasets live, ordered by trust, and which zone a dataset belongs to.

A zone is a named place with a trust level (`prod` 100 ... `public` 0). Data may always flow
to a zone of equal or higher trust; flowing to a lower one is what the policy gate checks.
A dataset's zone comes, first match wins, from its own `zone` (in the pipeline), from the
`connections` a zone lists in lockgate.toml, from the `datasets` patterns a zone lists, and
otherwise from `[policy] default_zone` (default `prod`: the gate guards the boundaries a
project declares, and an undeclared place is treated as the most trusted one, so nothing
changes for a project that declares none; `lockgate policy check` lists undeclared datasets).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lockgate.errors import ConfigError, did_you_mean

BUILTIN_TRUST: Mapping[str, int] = {
    "prod": 100,
    "phi": 100,
    "cde": 100,
    "staging": 60,
    "analytics": 50,
    "ci": 40,
    "dev": 30,
    "public": 0,
}
"""Zones every project has (trust can be changed in lockgate.toml). `phi` holds protected
health information (HIPAA), `cde` is PCI DSS's cardholder-data environment."""
UNTAGGED = ("scan", "block", "allow")
"""What the gate does with columns that carry no classification written to a lower zone."""
_ZONE_KEYS = ("trust", "datasets", "connections", "untagged", "description")


@dataclass(frozen=True)
class Zone:
    name: str
    trust: int
    datasets: tuple[str, ...] = ()
    """Patterns (globs) of dataset keys, rooted at the project folder."""
    connections: tuple[str, ...] = ()
    untagged: str | None = None
    """Overrides `[policy] untagged` for writes into this zone."""
    description: str = ""


@dataclass(frozen=True)
class Placement:
    """Which zone a dataset is in, and why (shown in decisions and `policy check`)."""

    zone: str
    reason: str

    @property
    def declared(self) -> bool:
        return self.reason != "default"


@dataclass(frozen=True)
class Zones:
    zones: Mapping[str, Zone]
    default: str

    def get(self, name: str) -> Zone:
        zone = self.zones.get(name)
        if zone is None:
            raise ConfigError(
                f"unknown zone {name!r}{did_you_mean(name, sorted(self.zones))}; define it in "
                f"lockgate.toml as [zones.{name}] with a trust level"
            )
        return zone

    @property
    def top(self) -> int:
        """The highest trust of any zone (where data of unknown origin is assumed to come from)."""
        return max(z.trust for z in self.zones.values())

    def trust(self, name: str) -> int:
        return self.get(name).trust

    def below(self, name: str, than: str) -> bool:
        """Zone `name` is less trusted than zone `than`."""
        return self.trust(name) < self.trust(than)

    def downwards(self, zone: str, sources: Sequence[Placement]) -> bool:
        """Data from `sources` written into `zone` goes to a less trusted place. A source
        nobody declared (or no known source: a table a task returned) may come from anywhere,
        so it counts as the most trusted zone."""
        trusts = [self.trust(s.zone) if s.declared else self.top for s in sources]
        return self.trust(zone) < max(trusts, default=self.top)

    def untagged_mode(self, zone: str, default: str) -> str:
        """What writes into `zone` do with untagged columns coming down: scan, block, allow."""
        return self.get(zone).untagged or default

    def place(self, key: str, zone: str | None = None, connection: str | None = None) -> Placement:
        """The zone of the dataset spelt `key` (io.catalogue.key), given its own `zone` and
        the named connection it uses. A pipeline may put a dataset in a zone less trusted than
        lockgate.toml does (or than the default zone), never in a more trusted one: that would
        let it switch the gate off for its own writes."""
        configured = self._configured(key, connection)
        if zone:
            self.get(zone)
            if self.trust(zone) > self.trust(configured.zone):
                where = (
                    f"lockgate.toml puts it in {configured.zone} ({configured.reason})"
                    if configured.declared
                    else f"undeclared datasets are in default_zone {configured.zone}"
                )
                raise ConfigError(
                    f"dataset {key}: zone {zone} is more trusted than where {where}; a pipeline "
                    "may only move a dataset to a less trusted zone (change lockgate.toml instead)"
                )
            return Placement(zone, "dataset")
        return configured

    def _configured(self, key: str, connection: str | None) -> Placement:
        """Where lockgate.toml (or the default) puts the dataset."""
        if connection:
            for z in self.zones.values():
                if connection in z.connections:
                    return Placement(z.name, f"connection {connection}")
        names = spellings(key)
        matches = [
            (z.trust, z.name, pattern)
            for z in self.zones.values()
            for pattern in z.datasets
            if any(fnmatch.fnmatchcase(name, pattern) for name in names)
        ]
        if matches:  # a dataset two zones claim is in the less trusted one
            _, name, pattern = min(matches)
            return Placement(name, f"pattern {pattern}")
        return Placement(self.default, "default")


def spellings(key: str) -> set[str]:
    """The names a zone pattern may match a dataset key by: the key; a SQLite database or a
    server's database without its table; a URL without its user (and hidden password), its
    query, or PostgreSQL's default port, with its host in lower case and `postgres://` as
    `postgresql://`."""
    out = {key}
    if "://" in key and not key.startswith("sqlite:"):
        parts = urlsplit(key)
        scheme = (
            "postgresql" if parts.scheme in ("postgres", "postgresql+psycopg") else parts.scheme
        )
        host = (parts.hostname or "").lower()
        port = parts.port if parts.port not in (None, 5432) or scheme != "postgresql" else None
        netloc = host + (f":{port}" if port else "")
        out.add(urlunsplit((scheme, netloc, parts.path, "", parts.fragment)))
    for name in list(out):
        out.add(name.split("#", 1)[0])
    return out


def load_zones(tables: Mapping[str, Any], root: Path, where: str = "lockgate.toml") -> Zones:
    """The project's zones from its `[zones.NAME]` and `[policy]` tables (as written in
    lockgate.toml, `Project.tables`), over the built-in ones."""
    table = tables.get("zones") or {}
    zones = {name: Zone(name, trust) for name, trust in BUILTIN_TRUST.items()}
    for name, spec in table.items():
        at = f"{where}: [zones.{name}]"
        if not isinstance(spec, dict):
            raise ConfigError(f"{at} must be a table, e.g. trust = 60")
        for key in spec:
            if key not in _ZONE_KEYS:
                raise ConfigError(f"{at}: unknown key {key!r}{did_you_mean(key, _ZONE_KEYS)}")
        trust = spec.get("trust", BUILTIN_TRUST.get(name))
        if trust is None:
            raise ConfigError(f"{at}: a new zone needs a trust level, e.g. trust = 50")
        if isinstance(trust, bool) or not isinstance(trust, int) or not 0 <= trust <= 1000:
            raise ConfigError(f"{at}: trust must be a whole number from 0 to 1000, got {trust!r}")
        untagged = spec.get("untagged")
        if untagged is not None and untagged not in UNTAGGED:
            raise ConfigError(f"{at}: untagged must be one of {', '.join(UNTAGGED)}")
        zones[name] = Zone(
            name,
            trust,
            datasets=tuple(root_pattern(p, root) for p in _strings(spec, "datasets", at)),
            connections=_strings(spec, "connections", at),
            untagged=untagged,
            description=str(spec.get("description", "")),
        )
    policy = tables.get("policy") or {}
    default = policy.get("default_zone", "prod")
    if default not in zones:
        raise ConfigError(
            f"{where}: [policy] default_zone {default!r} is not a zone"
            f"{did_you_mean(default, sorted(zones))}"
        )
    return Zones(zones, default)


def _strings(spec: Mapping[str, Any], key: str, at: str) -> tuple[str, ...]:
    value = spec.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{at}: {key} must be a list of strings")
    return tuple(value)


def root_pattern(pattern: str, root: Path) -> str:
    """A dataset pattern spelt as the catalogue spells datasets (io.catalogue.key): a relative
    path, or a relative SQLite database, is made absolute under the project folder."""
    if "://" not in pattern:
        path = Path(pattern).expanduser()
        return os.path.normpath(path if path.is_absolute() else root / path)
    scheme, rest = pattern.split("://", 1)
    if scheme.lower() == "sqlite" and rest.startswith("/"):
        path_part, _, table = rest[1:].partition("#")
        path = Path(path_part)
        full = os.path.normpath(path if path.is_absolute() else root / path)
        return f"sqlite:///{full}" + (f"#{table}" if table else "")
    return pattern
