"""What the server keeps while it runs: the project, its store, the pipelines folder as
loaded, the request audit queue and the login rate limiter."""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.model.pipeline import Pipeline
    from lockgate.scheduler.registry import Registry
    from lockgate.store.store import Store

log = logging.getLogger("lockgate.server")

RELOAD_S = 2.0
"""The pipelines folder is loaded again at most this often (discovery caches by content)."""


@dataclass
class ServerSettings:
    """How the server was started (the CLI's options)."""

    host: str = "127.0.0.1"
    port: int = 8080
    tls: bool = False
    """Serving HTTPS: cookies are `Secure` and responses carry HSTS."""
    max_body_bytes: int = 1 << 20
    login_attempts_per_minute: int = 10
    cookie_secure: bool | None = None
    """Force the cookies' `Secure` flag; default: only under TLS (a plain-HTTP loopback
    server's cookies would not be sent back otherwise)."""
    serve_ui: bool = True

    @property
    def secure_cookies(self) -> bool:
        return self.tls if self.cookie_secure is None else self.cookie_secure


class AuditQueue:
    """Request records for the audit chain, written by a background thread in one transaction
    every `interval` seconds (a request does not wait for it). State changes are audited by
    the operation itself, in its own transaction; this records who called what."""

    def __init__(self, store: Store, interval: float = 0.2) -> None:
        self.store = store
        self.interval = interval
        self._items: list[tuple[str, str, str | None, str | None, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def put(self, actor: str, action: str, target: str | None, detail: Any) -> None:
        with self._lock:
            self._items.append((actor, action, target, None, detail))
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="lockgate-server-audit", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.interval)
            self.flush()

    def flush(self) -> None:
        with self._lock:
            items, self._items = self._items, []
        if not items:
            return
        try:
            self.store.audit_batch(items)
        except Exception:  # the database is down: keep them for the next flush
            log.exception("could not write %d request audit records; retrying", len(items))
            with self._lock:
                self._items[:0] = items

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()


class RateLimiter:
    """At most `limit` events per `window` seconds per key (login attempts per client)."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> float:
        """Record an event; 0 when allowed, else the seconds until the next is allowed."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            seen = self._seen.setdefault(key, collections.deque())
            while seen and seen[0] <= moment - self.window:
                seen.popleft()
            if len(seen) >= self.limit:
                return seen[0] + self.window - moment
            seen.append(moment)
            if len(self._seen) > 10_000:  # forget idle clients
                for k in [k for k, v in self._seen.items() if not v][:5000]:
                    del self._seen[k]
            return 0.0


@dataclass
class ServerState:
    project: Project
    store: Store
    settings: ServerSettings = field(default_factory=ServerSettings)
    registry: Registry | None = None
    """The scheduler's registry when serving with it (`lockgate up`), else the server's own."""
    audit: AuditQueue = field(init=False)
    logins: RateLimiter = field(init=False)
    _loaded_at: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _own_registry: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.audit = AuditQueue(self.store)
        self.logins = RateLimiter(self.settings.login_attempts_per_minute)
        if self.registry is None:
            from lockgate.scheduler.registry import Registry

            self.registry = Registry(self.project.pipelines_dir)
            self._own_registry = True

    def pipelines(self) -> dict[str, Pipeline]:
        """The pipelines of the folder, loaded again when `RELOAD_S` has passed."""
        assert self.registry is not None
        if self._own_registry and time.monotonic() - self._loaded_at >= RELOAD_S:
            with self._lock:
                if time.monotonic() - self._loaded_at >= RELOAD_S:
                    self.registry.reload()
                    self._loaded_at = time.monotonic()
        return self.registry.pipelines

    def load_errors(self) -> dict[str, str]:
        assert self.registry is not None
        self.pipelines()
        return {path: str(err) for path, err in self.registry.errors.items()}

    def close(self) -> None:
        self.audit.close()
