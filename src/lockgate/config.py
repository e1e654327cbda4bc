"""The project: where pipelines, state and logs live, and its settings (lockgate.toml + env)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockgate.engine.executors import check_executor
from lockgate.errors import ConfigError, did_you_mean

CONFIG_FILE = "lockgate.toml"
STATE_DIR = ".lockgate"
DEFAULT_CONCURRENCY = 16
TABLES = ("zones", "policy", "audit", "lineage", "secrets", "notify", "webhooks", "dask")
"""Top-level tables of lockgate.toml read by the modules that use them (governance, secrets,
notifications, inbound webhooks), each checked there."""
_KEYS = {
    "pipelines",
    "db_url",
    "executor",
    "concurrency",
    "result_max_bytes",
    "logs",
    "keys_file",
    "artifacts",
}


@dataclass
class Project:
    """Settings of one lockgate project, resolved to absolute paths."""

    root: Path
    config_file: Path | None = None
    pipelines_dir: Path = field(default=Path("pipelines"))
    db_url: str = ""
    logs_dir: Path = field(default=Path(".lockgate/logs"))
    executor: str = "threads"
    concurrency: int = DEFAULT_CONCURRENCY
    result_max_bytes: int = 1 << 20
    pools: dict[str, int] = field(default_factory=dict)
    keys_file: Path = field(default=Path(".lockgate/keys.json"))
    """The privacy keyring's key file (setting `keys_file`, relative to the root)."""
    artifacts: str = ".lockgate/artifacts"
    """Where tables returned by Python tasks are kept: a folder (relative to the root) or an
    `s3://bucket/prefix` (setting `artifacts`)."""
    connections: dict[str, Any] = field(default_factory=dict)
    """The `[connections.NAME]` tables of lockgate.toml, as written (io/connections.py reads
    them)."""
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The other tables of lockgate.toml as written (`TABLES`): `zones`, `policy`, `audit`,
    `lineage` (governance/), `secrets` (secrets/), `notify` (notify/), `webhooks`
    (server/api/hooks.py) and `dask` (engine/executors/dask_executor.py), each read and
    checked by the module that uses it."""

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @classmethod
    def load(cls, start: str | os.PathLike[str] | None = None) -> Project:
        """The project containing `start` (default: the running attempt's project, else the
        working folder).

        The nearest folder upwards with a lockgate.toml is the project root; without one, the
        working folder is, and state goes to ./.lockgate. LOCKGATE_DB_URL overrides db_url.
        """
        from lockgate.model.workplace import project_root

        here = Path(start or project_root() or os.getcwd()).resolve()
        root, config_file = here, None
        for folder in (here, *here.parents):
            if (folder / CONFIG_FILE).is_file():
                root, config_file = folder, folder / CONFIG_FILE
                break
        settings: dict[str, Any] = {}
        pools: dict[str, Any] = {}
        if config_file is not None:
            try:
                doc = tomllib.loads(config_file.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{config_file}: invalid TOML: {exc}") from None
            settings = dict(doc.get("lockgate", {}))
            pools = dict(doc.get("pools", {}))
            for key in sorted(set(settings) - _KEYS):
                raise ConfigError(
                    f"{config_file}: unknown setting {key!r} in [lockgate]{did_you_mean(key, sorted(_KEYS))}"
                )
            for key in sorted(set(doc) - {"lockgate", "pools", "connections", *TABLES}):
                raise ConfigError(
                    f"{config_file}: unknown table or key {key!r} at the top level; "
                    "settings go under [lockgate], pool sizes under [pools], named "
                    f"connections under [connections.NAME], and "
                    f"{', '.join(f'[{t}]' for t in TABLES)}"
                )
        project = cls(root=root, config_file=config_file)
        if config_file is not None:
            connections = doc.get("connections", {})
            if not isinstance(connections, dict):
                raise ConfigError(f"{config_file}: connections must be tables: [connections.NAME]")
            project.connections = connections
            for name in TABLES:
                table = doc.get(name, {})
                if not isinstance(table, dict):
                    raise ConfigError(f"{config_file}: {name} must be a table: [{name}]")
                project.tables[name] = table
        artifacts = str(settings.get("artifacts", f"{STATE_DIR}/artifacts"))
        if "://" in artifacts and not artifacts.startswith("s3://"):
            raise ConfigError(
                f"{config_file}: artifacts must be a folder or s3://bucket/prefix, got {artifacts!r}"
            )
        project.artifacts = artifacts if "://" in artifacts else str(root / artifacts)
        project.pipelines_dir = root / settings.get("pipelines", "pipelines")
        project.logs_dir = root / settings.get("logs", f"{STATE_DIR}/logs")
        project.keys_file = root / settings.get("keys_file", f"{STATE_DIR}/keys.json")
        db_url = os.environ.get("LOCKGATE_DB_URL") or settings.get("db_url")
        project.db_url = db_url or f"sqlite:///{root / STATE_DIR / 'lockgate.db'}"
        if os.environ.get("LOCKGATE_EXECUTOR"):
            project.executor, source = os.environ["LOCKGATE_EXECUTOR"], "LOCKGATE_EXECUTOR"
        else:
            project.executor, source = settings.get("executor", "threads"), str(config_file)
        try:
            check_executor(project.executor)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        project.concurrency = _positive_int(
            settings.get("concurrency", DEFAULT_CONCURRENCY), "concurrency", config_file
        )
        project.result_max_bytes = _positive_int(
            settings.get("result_max_bytes", 1 << 20), "result_max_bytes", config_file
        )
        project.pools = {
            name: _positive_int(v, f"pools.{name}", config_file) for name, v in pools.items()
        }
        return project


def _positive_int(value: Any, name: str, where: Path | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: {name} must be a whole number >= 1, got {value!r}")
    return value


def parse_duration(text: str) -> float:
    """Seconds in '30d', '12h', '15m', '45s' or '2w'."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    if len(text) >= 2 and text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        return float(text[:-1]) * units[text[-1]]
    raise ConfigError(f"invalid duration {text!r}: use a number and a unit, e.g. 30d, 12h, 15m")
