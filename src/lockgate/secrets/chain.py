"""The secret chain: the project's backends asked in order (`[secrets] backends`), each read
audited by name and its value registered for redaction.

    [secrets]
    backends = ["env", "file", "vault", "aws"]   # default: ["env", "file"]
    cache_seconds = 60                           # how long a value read is reused (0: never)
    [secrets.vault]
    url = "https://vault.internal:8200"
    ...
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lockgate.errors import ConfigError, SecretError, did_you_mean
from lockgate.secrets import redaction
from lockgate.secrets.base import SecretBackend, check_name

if TYPE_CHECKING:
    from lockgate.config import Project

KINDS: dict[str, str] = {
    "env": "lockgate.secrets.env:EnvBackend",
    "file": "lockgate.secrets.localfile:FileBackend",
    "vault": "lockgate.secrets.vault:VaultBackend",
    "aws": "lockgate.secrets.aws:AwsBackend",
}
DEFAULT_ORDER = ("env", "file")
DEFAULT_CACHE_SECONDS = 60.0
_KEYS = {"backends", "cache_seconds", *KINDS}


@dataclass(frozen=True)
class Read:
    """A secret read: its value and the backend that had it."""

    value: str
    backend: str


class SecretChain:
    """Asks each backend in turn; the first that holds the secret answers."""

    def __init__(
        self,
        backends: list[SecretBackend],
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        on_read: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.backends = backends
        self.cache_seconds = cache_seconds
        self.on_read = on_read
        """Audits a read outside a task: `(name, {"name", "source"})`."""
        self._cache: dict[str, tuple[float, Read]] = {}
        self._lock = threading.Lock()

    def read(self, name: str) -> Read:
        """The secret `name` and its backend; SecretError when no backend holds it (naming
        every place looked in) or a backend cannot answer."""
        check_name(name)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and cached[0] > now:
            found = cached[1]
        else:
            found = self._ask(name)
            if self.cache_seconds > 0:
                with self._lock:
                    self._cache[name] = (now + self.cache_seconds, found)
        redaction.register(found.value)
        self._audit(name, found.backend)
        return found

    def get(self, name: str) -> str:
        return self.read(name).value

    def _ask(self, name: str) -> Read:
        for backend in self.backends:
            try:
                value = backend.get(name)
            except SecretError:
                raise
            except Exception as exc:  # a backend's own failure: one line, never a value
                raise SecretError(
                    f"secret {name!r}: {backend.describe()} failed: "
                    f"{redaction.redact(f'{type(exc).__name__}: {exc}')}"
                ) from None
            if value is not None:
                return Read(value, backend.kind)
        looked = "; ".join(b.where_is(name) for b in self.backends) or "no backend configured"
        raise SecretError(
            f"secret {name!r} not found; looked in: {looked}. Set it with `lockgate secrets set "
            f"{name}` or in one of those backends"
        )

    def _audit(self, name: str, backend: str) -> None:
        from lockgate.model import facts

        data = {"name": name, "source": backend}
        if not facts.report(facts.SECRET_READ, data) and self.on_read is not None:
            self.on_read(name, data)


def build(project: Project) -> SecretChain:
    """The chain configured by the project's `[secrets]` table (ConfigError when it is wrong)."""
    table = project.tables.get("secrets", {})
    where = str(project.config_file or "lockgate.toml")
    for key in sorted(set(table) - _KEYS):
        raise ConfigError(
            f"{where}: unknown setting {key!r} in [secrets]{did_you_mean(key, sorted(_KEYS))}"
        )
    order = table.get("backends", list(DEFAULT_ORDER))
    if (
        not isinstance(order, list)
        or not order
        or not all(isinstance(k, str) for k in order)
        or len(set(order)) != len(order)
    ):
        raise ConfigError(
            f"{where}: [secrets] backends must be a non-empty list of distinct names, e.g. "
            '["env", "file"]'
        )
    for kind in order:
        if kind not in KINDS:
            raise ConfigError(
                f"{where}: unknown secret backend {kind!r} in [secrets] backends"
                f"{did_you_mean(kind, sorted(KINDS))}"
            )
    for kind in KINDS:
        if kind in table and kind not in order:
            raise ConfigError(
                f"{where}: [secrets.{kind}] is set but {kind!r} is not in [secrets] backends; "
                "add it there (the list is the order in which backends are asked)"
            )
    cache = table.get("cache_seconds", DEFAULT_CACHE_SECONDS)
    if isinstance(cache, bool) or not isinstance(cache, int | float) or cache < 0:
        raise ConfigError(f"{where}: [secrets] cache_seconds must be a number >= 0")
    backends = []
    for kind in order:
        settings = table.get(kind, {})
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{where}: [secrets.{kind}] must be a table")
        module, _, cls = KINDS[kind].partition(":")
        backend_cls = getattr(importlib.import_module(module), cls)
        backends.append(backend_cls.from_settings(settings, where, project))
    return SecretChain(
        backends, cache_seconds=float(cache), on_read=lambda n, d: audit_read(project, n, d)
    )


_chains: dict[tuple[str, float], SecretChain] = {}
_chains_lock = threading.Lock()


def chain_for(project: Project) -> SecretChain:
    """The project's chain, built once per version of its lockgate.toml (clients reused)."""
    stamp = 0.0
    if project.config_file is not None:
        try:
            stamp = project.config_file.stat().st_mtime
        except OSError:
            stamp = -1.0
    key = (str(project.root), stamp)
    with _chains_lock:
        chain = _chains.get(key)
    if chain is None:
        chain = build(project)
        with _chains_lock:
            _chains[key] = chain
    return chain


def audit_read(project: Project, name: str, data: dict[str, Any]) -> None:
    """Audit a secret read outside a task (a task's reads are facts of its attempt, which the
    engine's events carry into the audit chain): directly into the project's store when it
    has one (no database is created for it)."""
    from lockgate.store.audit import user_actor
    from lockgate.store.store import Store

    def keys() -> Any:
        from lockgate.privacy.keys import Keyring

        return Keyring.for_project(project, create=True)

    store = Store.if_exists(project.db_url, keys=keys)
    if store is None:
        return
    try:
        store.audit("secret.read", name, data, actor=user_actor())
    finally:
        store.close()
