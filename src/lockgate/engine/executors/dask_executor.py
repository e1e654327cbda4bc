"""The Dask executor: attempts run as futures on a dask.distributed cluster.

The engine stays the coordinator: it decides what is ready, enforces pools, concurrency and
timeouts, and records everything. This executor only ships attempts to the cluster (batched, one
`Client.map` per batch), brings back their outcomes and logs (`dask_worker.py` runs them there),
and stops what the engine gives up on. A worker that dies mid-attempt gives a `lost` attempt,
which the engine retries like any other (the cluster must not re-run it behind lockgate's back:
`distributed.scheduler.allowed-failures = 0`).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue
from typing import Any
from urllib.parse import urlsplit

from lockgate import __version__
from lockgate.engine.executors.base import Executor
from lockgate.engine.executors.dask_worker import (
    Returned,
    attempt_key,
    kill_shell,
    run_items,
    started_topic,
)
from lockgate.engine.executors.shipping import shipped, unshippable
from lockgate.engine.logcapture import LogSink
from lockgate.engine.work import (
    FAILED,
    KILL_GRACE_S,
    LOST,
    Outcome,
    Started,
    WorkItem,
    crashed,
)
from lockgate.errors import ConfigError, did_you_mean
from lockgate.network import is_loopback

log = logging.getLogger("lockgate.dask")

ADDRESS_ENV = "LOCKGATE_DASK_ADDRESS"
PLAINTEXT_ENV = "LOCKGATE_DASK_ALLOW_PLAINTEXT"
_KEYS = (
    "address",
    "upload",
    "workers",
    "threads_per_worker",
    "worker_resources",
    "allow_plaintext",
    "tls_ca_file",
    "tls_cert",
    "tls_key",
    "connect_timeout",
)


@dataclass(frozen=True, slots=True)
class DaskSettings:
    """The `[dask]` table of lockgate.toml, with `LOCKGATE_DASK_ADDRESS` over its address."""

    address: str | None = None
    """The scheduler (tcp://host:8786 or tls://host:8786); None: a local cluster is started."""
    upload: bool = False
    """Ship the pipeline file to the workers (Dask's upload) instead of needing it at the same
    path there."""
    workers: int | None = None
    """Local cluster only: worker processes (default: the CPU count, at most 4)."""
    threads_per_worker: int | None = None
    """Local cluster only: threads per worker (default: the concurrency shared among them)."""
    worker_resources: tuple[tuple[str, float], ...] = ()
    """Local cluster only: resources each worker offers (tasks' `resources` need them)."""
    allow_plaintext: bool = False
    """Allow a tcp:// scheduler on another machine (task data would cross the network in the
    clear): only on a private network."""
    tls_ca_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    connect_timeout: float = 10.0

    @classmethod
    def of(cls, table: Mapping[str, Any], root: Path | None = None) -> DaskSettings:
        """Checked settings from a `[dask]` table (paths relative to `root`); ConfigError."""
        for key in table:
            if key not in _KEYS:
                raise ConfigError(f"[dask]: unknown setting {key!r}{did_you_mean(key, _KEYS)}")
        address = os.environ.get(ADDRESS_ENV) or table.get("address") or None
        if address is not None and not isinstance(address, str):
            raise ConfigError(f"[dask] address must be text (tcp://host:8786), got {address!r}")
        plaintext = table.get("allow_plaintext", False)
        if os.environ.get(PLAINTEXT_ENV):
            plaintext = os.environ[PLAINTEXT_ENV].strip().lower() not in ("0", "false", "no", "")
        for key in ("upload", "allow_plaintext"):
            if not isinstance(table.get(key, False), bool):
                raise ConfigError(f"[dask] {key} must be true or false, got {table[key]!r}")
        for key in ("workers", "threads_per_worker"):
            value = table.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"[dask] {key} must be a whole number >= 1, got {value!r}")
            if value is not None and value < 1:
                raise ConfigError(f"[dask] {key} must be a whole number >= 1, got {value!r}")
        timeout = table.get("connect_timeout", 10.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError(f"[dask] connect_timeout must be seconds > 0, got {timeout!r}")
        paths = {}
        for key in ("tls_ca_file", "tls_cert", "tls_key"):
            value = table.get(key)
            if value is None:
                continue
            path = Path(str(value)) if root is None else root / str(value)
            if not path.is_file():
                raise ConfigError(f"[dask] {key}: no such file {str(path)!r}")
            paths[key] = str(path)
        from lockgate.model.settings import make_settings

        try:
            offered = make_settings({"resources": table.get("worker_resources")}).resources
        except Exception as exc:
            raise ConfigError(f"[dask] worker_resources: {exc}") from None
        settings = cls(
            address=address.strip() if address else None,
            upload=table.get("upload", False),
            workers=table.get("workers"),
            threads_per_worker=table.get("threads_per_worker"),
            worker_resources=offered,
            allow_plaintext=plaintext,
            connect_timeout=float(timeout),
            **paths,
        )
        settings.check_address()
        return settings

    def check_address(self) -> None:
        """ConfigError for an address that is malformed, or plaintext to another machine."""
        if self.address is None:
            return
        text = self.address if "://" in self.address else f"tcp://{self.address}"
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None:
            raise ConfigError(
                f"Dask scheduler address {self.address!r} is not tcp://HOST:PORT or "
                f"tls://HOST:PORT (set it with --dask-address, ${ADDRESS_ENV} or [dask] address)"
            )
        if parts.scheme == "tls" and not (self.tls_cert and self.tls_key and self.tls_ca_file):
            raise ConfigError(
                f"Dask scheduler address {self.address!r} uses TLS: set [dask] tls_ca_file, "
                "tls_cert and tls_key (the client certificate the scheduler accepts)"
            )
        if parts.scheme == "tcp" and not is_loopback(parts.hostname) and not self.allow_plaintext:
            raise ConfigError(
                f"the Dask scheduler at {self.address} would be reached without encryption: "
                "task inputs, results, logs and secrets rendered into commands would cross the "
                "network in the clear; use a tls:// address with [dask] tls_ca_file, tls_cert "
                f"and tls_key, or on a private network set [dask] allow_plaintext = true "
                f"(or {PLAINTEXT_ENV}=1)"
            )


class _Cluster:
    """A connection to one Dask cluster (or a local one it started), shared by every Dask
    executor of the process: connecting and checking the workers happen once."""

    def __init__(self, settings: DaskSettings, concurrency: int) -> None:
        import dask

        from distributed import Client

        self.settings = settings
        self.local: Any = None
        self._uploads: dict[tuple[str, int, int], str] = {}
        self._threads, self._threads_at = 1, -1e9
        self._lock = threading.Lock()
        self._folder = tempfile.mkdtemp(prefix="lockgate-upload-")
        if settings.address is None:
            from distributed import LocalCluster

            workers = settings.workers or max(1, min(4, os.cpu_count() or 1))
            threads = settings.threads_per_worker or max(1, -(-concurrency // workers))
            from distributed.security import Security

            # mutual TLS with credentials that exist only in this process: another local user
            # can neither read the attempts (and secrets rendered into them) nor submit code
            security = Security.temporary()
            quiet = {  # no dashboard or HTTP routes: nothing listens but the TLS comms
                "distributed.scheduler.allowed-failures": 0,
                "distributed.scheduler.http.routes": [],
                "distributed.worker.http.routes": [],
            }
            with dask.config.set(quiet):
                self.local = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=threads,
                    processes=True,
                    host="127.0.0.1",
                    protocol="tls://",
                    security=security,
                    dashboard_address=None,
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.ERROR,
                    resources=dict(settings.worker_resources) or None,
                )
            self.client = Client(self.local, set_as_default=False, security=security)
            self.label = f"a local Dask cluster ({workers} workers x {threads} threads)"
        else:
            self.label = f"the Dask scheduler at {settings.address}"
            try:
                self.client = Client(
                    settings.address,
                    timeout=settings.connect_timeout,
                    set_as_default=False,
                    security=self._security(),
                )
            except (OSError, TimeoutError) as exc:
                raise ConfigError(
                    f"cannot reach {self.label}: {_reason(exc)}; start it (`dask scheduler`) or "
                    f"fix the address (--dask-address, ${ADDRESS_ENV} or [dask] address)"
                ) from None
        try:
            self._check_workers()
        except BaseException:
            self.close()
            raise

    def _security(self) -> Any:
        settings = self.settings
        if not settings.address or not settings.address.startswith("tls://"):
            return None
        from distributed.security import Security

        return Security(
            tls_ca_file=settings.tls_ca_file,
            tls_client_cert=settings.tls_cert,
            tls_client_key=settings.tls_key,
            require_encryption=True,
        )

    def _check_workers(self) -> None:
        """At least one worker, every worker at this lockgate version, and a scheduler that
        leaves retries to lockgate."""
        try:
            self.client.wait_for_workers(1, timeout=self.settings.connect_timeout)
        except (TimeoutError, OSError):
            raise ConfigError(
                f"{self.label} has no workers: start some (`dask worker "
                f"{self.settings.address}`) with lockgate {__version__} installed"
            ) from None
        from lockgate.engine.executors.dask_worker import version_of_worker

        try:
            versions = self.client.run(version_of_worker)
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"the workers of {self.label} cannot import {exc.name or 'lockgate'}: install "
                f"lockgate {__version__} on them (the same image or virtualenv as here)"
            ) from None
        wrong = {w: v for w, v in versions.items() if v != __version__}
        if wrong:
            listed = ", ".join(f"{w} has {v}" for w, v in sorted(wrong.items()))
            raise ConfigError(
                f"lockgate versions differ between this coordinator ({__version__}) and "
                f"workers of {self.label} ({listed}): install lockgate {__version__} on them"
            )
        allowed = self.client.run_on_scheduler(_allowed_failures)
        if allowed:
            log.warning(
                "%s re-runs an attempt whose worker died up to %s times itself, so lockgate "
                "cannot record it as lost; start the scheduler with "
                "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0",
                self.label,
                allowed,
            )

    def threads(self) -> int:
        """Threads of all the cluster's workers (refreshed every few seconds)."""
        now = time.monotonic()
        if now - self._threads_at > 5:
            info = self.client.scheduler_info(n_workers=-1)
            found = sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())
            self._threads, self._threads_at = max(1, found), now
        return self._threads

    def offers(self, wanted: tuple[tuple[str, float], ...]) -> bool:
        """Whether some worker of the cluster has every resource in `wanted`."""
        info = self.client.scheduler_info(n_workers=-1)
        for worker in info.get("workers", {}).values():
            have = worker.get("resources") or {}
            if all(have.get(name, 0) >= amount for name, amount in wanted):
                return True
        return False

    def offered(self) -> str:
        info = self.client.scheduler_info(n_workers=-1)
        found = sorted(
            {
                f"{k}={v:g}"
                for w in info.get("workers", {}).values()
                for k, v in w.get("resources", {}).items()
            }
        )
        return ", ".join(found) or "none"

    def upload(self, file: str) -> str:
        """Ship `file` to every worker (and any that joins later: a worker plugin under a
        name made of its content's digest); the name it has in each worker's folder."""
        from distributed.diagnostics.plugin import UploadFile

        stat = os.stat(file)
        stamp = (file, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            name = self._uploads.get(stamp)
            if name is not None:
                return name
            data = Path(file).read_bytes()
            digest = hashlib.sha256(data).hexdigest()[:16]
            stem = re.sub(r"[^A-Za-z0-9_]", "_", Path(file).stem)
            name = f"lockgate_{digest}_{stem}{Path(file).suffix}"
            copy = os.path.join(self._folder, name)
            Path(copy).write_bytes(data)
            self.client.register_plugin(UploadFile(copy, load=False), name=f"lockgate-{name}")
            self._uploads[stamp] = name
            return name

    def alive(self) -> bool:
        """Whether the client still talks to its scheduler (it gives up reconnecting after a
        while, e.g. when the scheduler restarted)."""
        return self.client.status in ("running", "connecting")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=5)
        if self.local is not None:
            with contextlib.suppress(Exception):
                self.local.close(timeout=10)
        shutil.rmtree(self._folder, ignore_errors=True)


def _allowed_failures(dask_scheduler: Any) -> int:
    """Run on the scheduler: how often it re-runs a task whose worker died."""
    return int(getattr(dask_scheduler, "allowed_failures", 0))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


_clusters: dict[DaskSettings, _Cluster] = {}
_clusters_lock = threading.Lock()


def cluster_for(settings: DaskSettings, concurrency: int) -> _Cluster:
    """The process's connection to the cluster of `settings` (made on first use)."""
    with _clusters_lock:
        cluster = _clusters.get(settings)
        if cluster is not None and not cluster.alive():  # e.g. its scheduler restarted
            cluster.close()
            cluster = None
        if cluster is None:
            cluster = _Cluster(settings, concurrency)
            if not _clusters:
                atexit.register(close_clusters)
            _clusters[settings] = cluster
        return cluster


def close_clusters() -> None:
    """Disconnect from every cluster, stopping the local ones this process started."""
    with _clusters_lock:
        found = list(_clusters.values())
        _clusters.clear()
    for cluster in found:
        cluster.close()


_STOP = object()
QUICK_S = 0.02
"""An attempt of a task function whose recent attempts all took less than this is 'quick'."""
PACK_MAX = 64
"""Most quick attempts one Dask task runs (one after the other)."""


class _Durations:
    """How long the recent attempts of each task function took (their own clock)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], deque[float]] = {}

    @staticmethod
    def _fn(item: WorkItem) -> tuple[str, str] | None:
        fn = item.fn
        if item.kind != "python" or fn is None:
            return None
        return (getattr(fn, "__module__", ""), getattr(fn, "__qualname__", repr(fn)))

    def note(self, item: WorkItem, outcome: Outcome) -> None:
        key = self._fn(item)
        if key is not None and outcome.ended_at >= outcome.started_at > 0:
            seen = self._seen.setdefault(key, deque(maxlen=5))
            seen.append(outcome.ended_at - outcome.started_at)

    def quick(self, item: WorkItem) -> bool:
        """Whether `item` may share a Dask task: a Python attempt without a timeout (its
        clock would start late) whose function's last attempts were all quick."""
        key = self._fn(item)
        if key is None or item.timeout is not None:
            return False
        seen = self._seen.get(key)
        return seen is not None and len(seen) >= 3 and max(seen) < QUICK_S


@dataclass(slots=True)
class _Sent:
    """One Dask task of this run: the attempts it runs (one, or a pack of quick ones)."""

    items: list[WorkItem]
    future: Any = None


class DaskExecutor(Executor):
    """Runs attempts (Python and shell) on a Dask cluster; see the module's docstring.

    One Dask task per attempt costs the cluster a few milliseconds of its own bookkeeping,
    which caps it at several hundred attempts a second. So attempts of task functions seen to
    take under `QUICK_S` (and without a timeout) are packed: up to `PACK_MAX` of them run one
    after the other in one Dask task, spread over the cluster's threads. An attempt of a
    function whose recent attempts were not all quick is never packed."""

    name = "dask"
    runs_tasks_here = False
    reports_starts = True
    JOIN_S = 10.0
    """How long `shutdown` waits for its threads (a call stuck on a dead cluster is left)."""

    def __init__(self, concurrency: int, settings: DaskSettings | None = None) -> None:
        super().__init__(concurrency)
        self.settings = settings or DaskSettings.of({})
        self._cluster: _Cluster | None = None
        self._commands: SimpleQueue[Any] = SimpleQueue()
        self._done: SimpleQueue[Any] = SimpleQueue()
        self._lock = threading.Lock()
        self._sent: dict[str, _Sent] = {}
        self._where: dict[tuple[str, int], str] = {}
        self._abandoned: dict[str, list[WorkItem]] = {}
        """Attempts the engine gave up on, by Dask key: their log is still kept if they end."""
        self._durations = _Durations()
        self._packs = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._topics: set[str] = set()

    def prepare(self) -> None:
        """Connect to the cluster and check its workers (ConfigError naming what is wrong)."""
        if self._cluster is None or not self._cluster.alive():
            self._cluster = cluster_for(self.settings, self.capacity)

    def start(self, report: Any) -> None:
        super().start(report)
        self.prepare()
        for target, name in ((self._submitting, "submit"), (self._collecting, "collect")):
            thread = threading.Thread(target=target, daemon=True, name=f"lockgate-dask-{name}")
            thread.start()
            self._threads.append(thread)

    def submit(self, item: WorkItem) -> None:
        topic = started_topic(item.ctx.run_id)
        if topic not in self._topics:  # before the attempt is sent: the stream keeps order
            self._topics.add(topic)
            assert self._cluster is not None
            with contextlib.suppress(Exception):
                self._cluster.client.subscribe_topic(topic, self._on_started)
        self._commands.put(item)

    def cancel(self, key: tuple[str, int], reason: str) -> None:
        self._commands.put((key, reason))

    def shutdown(self) -> None:
        """Stop this run's threads; attempts the engine gave up on are cancelled on the
        cluster (a Python attempt already running there finishes unseen)."""
        self._commands.put(_STOP)
        submitter, collector = self._threads or (None, None)
        if submitter is not None:  # it handles the cancellations queued before the stop
            submitter.join(self.JOIN_S)
        self._wait_for_killed()
        self._done.put(_STOP)
        if collector is not None:
            collector.join(self.JOIN_S)
        self._threads = []
        with self._lock:
            left = [sent.future for sent in self._sent.values() if sent.future is not None]
            self._sent.clear()
            self._where.clear()
            self._abandoned.clear()
        if self._cluster is not None and self._cluster.alive():
            with contextlib.suppress(Exception):
                if left:
                    self._cluster.client.cancel(left)
                for topic in self._topics:
                    self._cluster.client.unsubscribe_topic(topic)
        self._topics = set()

    def _wait_for_killed(self) -> None:
        """Give shell attempts stopped on their workers the time to end and send their log
        (what they printed before their timeout is what one looks for)."""
        deadline = time.monotonic() + KILL_GRACE_S + 3
        while time.monotonic() < deadline:
            with self._lock:
                if not any(i.kind == "shell" for left in self._abandoned.values() for i in left):
                    return
            time.sleep(0.02)

    def _on_started(self, event: tuple[float, Any]) -> None:
        """A worker began an attempt that has a timeout (in the client's event loop)."""
        task_id, attempt = event[1]
        assert self._report is not None
        self._report(Started(str(task_id), int(attempt)))  # type: ignore[arg-type]

    # -- the submitting thread ----------------------------------------------------------------
    def _submitting(self) -> None:
        while True:
            batch = [self._commands.get()]
            while not self._commands.empty():
                batch.append(self._commands.get())
            items = [c for c in batch if isinstance(c, WorkItem)]
            try:
                if items:
                    self._send(items)
                for command in batch:
                    if isinstance(command, tuple):
                        self._stop(*command)
            except Exception as exc:  # never leave the engine waiting: what was not sent is lost
                self.report_all(
                    [self._unsent(item, exc) for item in items if self._untracked(item)]
                )
                log.warning("lockgate's Dask submitter: %s", _reason(exc))
            if any(c is _STOP for c in batch):
                return

    def _untracked(self, item: WorkItem) -> bool:
        with self._lock:
            return item.key not in self._where

    def _unsent(self, item: WorkItem, exc: BaseException) -> Outcome:
        assert self._cluster is not None
        return _lost(item, f"could not reach {self._cluster.label}: {_reason(exc)}")

    def _send(self, items: list[WorkItem]) -> None:
        """Submit attempts that arrived together: grouped by the resources they need, quick
        ones packed, one `Client.map` per group."""
        assert self._cluster is not None
        cluster = self._cluster
        if not cluster.alive():
            why = f"{cluster.label} is unreachable (the client gave up reconnecting)"
            self.report_all([_lost(item, why) for item in items])
            return
        singles: dict[tuple[tuple[str, float], ...], list[tuple[WorkItem, Any]]] = {}
        quick: dict[tuple[tuple[str, float], ...], list[tuple[WorkItem, Any]]] = {}
        refused: list[Outcome] = []
        for item in items:
            try:
                upload = None
                if self.settings.upload and item.kind != "shell" and item.pipeline_file:
                    upload = cluster.upload(item.pipeline_file)
                shipment = (item.task_id, item.attempt, shipped(item), upload)
            except Exception as exc:
                refused.append(unshippable(item, exc, self.name))
                continue
            if item.resources and not cluster.offers(item.resources):
                refused.append(_no_worker_offers(item, cluster))
                continue
            group = quick if self._durations.quick(item) else singles
            group.setdefault(item.resources, []).append((item, shipment))
        self.report_all(refused)
        for resources, found in singles.items():
            self._map(resources, [[one] for one in found])
        for resources, found in quick.items():
            size = max(1, min(PACK_MAX, -(-len(found) // cluster.threads())))
            self._map(resources, [found[i : i + size] for i in range(0, len(found), size)])

    def _map(
        self, resources: tuple[tuple[str, float], ...], packs: list[list[tuple[WorkItem, Any]]]
    ) -> None:
        assert self._cluster is not None
        cluster = self._cluster
        keys = [self._key(pack) for pack in packs]
        with self._lock:
            for key, pack in zip(keys, packs, strict=True):
                self._sent[key] = _Sent([item for item, _ in pack])
                for item, _ in pack:
                    self._where[item.key] = key
        try:
            futures = cluster.client.map(
                run_items,
                [__version__] * len(packs),
                [[shipment for _, shipment in pack] for pack in packs],
                key=keys,
                resources=dict(resources) or None,
                pure=False,
            )
        except Exception as exc:  # the client lost the scheduler
            self.report_all([self._unsent(item, exc) for key in keys for item in self._forget(key)])
            return
        with self._lock:
            for key, future in zip(keys, futures, strict=True):
                sent = self._sent.get(key)
                if sent is not None:
                    sent.future = future
        for future in futures:
            future.add_done_callback(self._done.put)

    def _key(self, pack: list[tuple[WorkItem, Any]]) -> str:
        """The Dask key of a task: an attempt's own name, or a numbered pack of this run."""
        first = pack[0][0]
        key = attempt_key(first.ctx.run_id, first.task_id, first.attempt)
        return key if len(pack) == 1 else f"{key}-pack{next(self._packs)}-of-{len(pack)}"

    def _stop(self, key: tuple[str, int], reason: str) -> None:
        """Stop attempt `key`: a shell task's process on its worker, the Dask task when no
        other attempt shares it (a quick attempt in a pack just has its outcome ignored)."""
        assert self._cluster is not None
        with self._lock:
            dask_key = self._where.pop(key, None)
            sent = self._sent.get(dask_key) if dask_key is not None else None
            if dask_key is None or sent is None:
                return
            item = next(i for i in sent.items if i.key == key)
            sent.items.remove(item)
            self._abandoned.setdefault(dask_key, []).append(item)
            future = sent.future if not sent.items else None
        client = self._cluster.client
        if item.kind == "shell":  # its process group is stopped on whichever worker holds it
            # in a thread of its own: `Client.run` waits for every worker, and one that does
            # not answer must not hold up the run's end
            threading.Thread(
                target=_kill_everywhere, args=(client, dask_key, reason), daemon=True
            ).start()
        if future is not None and item.kind != "shell":  # a shell attempt ends once killed
            with contextlib.suppress(Exception):
                future.cancel(reason=reason)

    # -- the collecting thread ----------------------------------------------------------------
    def _collecting(self) -> None:
        while True:
            batch = [self._done.get()]
            while not self._done.empty():
                batch.append(self._done.get())
            futures = [f for f in batch if f is not _STOP]
            stop = len(futures) < len(batch)
            del batch  # no reference kept while waiting: Dask may release the results
            if futures:
                try:
                    self._collect(futures)
                except Exception as exc:  # never leave the engine waiting for these attempts
                    log.warning("lockgate's Dask collector: %s", _reason(exc))
                    self.report_all(
                        [crashed(item, exc) for f in futures for item in self._forget(f.key)]
                    )
            del futures
            if stop:
                return

    def _collect(self, futures: list[Any]) -> None:
        assert self._cluster is not None
        finished = [f for f in futures if f.status == "finished"]
        results: dict[str, Any] = {}
        if finished:
            try:
                gathered = self._cluster.client.gather(finished)
                results = dict(zip((f.key for f in finished), gathered, strict=True))
            except Exception:  # one result was lost with its worker: take them one by one
                for future in finished:
                    try:
                        results[future.key] = future.result(timeout=self.settings.connect_timeout)
                    except Exception as exc:
                        results[future.key] = exc
        outcomes: list[Outcome] = []
        for future in futures:
            got = results.pop(future.key, None)
            status = future.status
            if got is None and status not in ("finished", "cancelled"):
                got = _exception(future)
            future.release()  # the result is ours now: Dask never recomputes it
            items = {item.key: item for item in self._forget(future.key)}
            abandoned = {item.key: item for item in self._abandon_done(future.key)}
            if isinstance(got, list):
                outcomes += self._returned(got, items, abandoned)
            elif status == "cancelled":
                why = f"{self._cluster.label} dropped the attempt (restarted?)"
                outcomes += [_lost(item, why) for item in items.values()]
            else:
                error = got if isinstance(got, BaseException) else RuntimeError(repr(got))
                outcomes += [self._failure(item, error) for item in items.values()]
        self.report_all(outcomes)

    def _returned(
        self,
        returned: list[Returned],
        items: dict[tuple[str, int], WorkItem],
        abandoned: dict[tuple[str, int], WorkItem],
    ) -> list[Outcome]:
        """Outcomes of the attempts in `items` (their logs stored); an abandoned attempt that
        ended anyway (e.g. killed at its timeout) only has its log stored."""
        outcomes = []
        for one in returned:
            key = one.outcome_key
            item = items.get(key) or abandoned.get(key)
            if item is None:
                continue
            try:
                self._write_log(item, one.log)
            except OSError as exc:  # e.g. a full disk: the attempt fails, as it would here
                if key in items:
                    outcomes.append(crashed(item, exc))
                continue
            if key in items:
                self._durations.note(item, one.outcome)
                outcomes.append(one.outcome)
        return outcomes

    def _failure(self, item: WorkItem, exc: BaseException) -> Outcome:
        from distributed.scheduler import KilledWorker

        now = time.time()
        if isinstance(exc, KilledWorker):
            return _lost(item, "the Dask worker running it died (killed, out of memory, or gone)")
        if isinstance(exc, ModuleNotFoundError):
            return Outcome(
                item.task_id,
                item.attempt,
                FAILED,
                None,
                f"a Dask worker cannot import {exc.name}: install lockgate {__version__} and "
                "what the task imports on every worker (the same image or virtualenv)",
                now,
                now,
                True,
            )
        return Outcome(
            item.task_id,
            item.attempt,
            FAILED,
            None,
            f"the Dask cluster could not run the attempt: {type(exc).__name__}: {_reason(exc)}",
            now,
            now,
        )

    def _forget(self, key: str) -> list[WorkItem]:
        """The attempts of Dask task `key` still awaited, no longer tracked."""
        with self._lock:
            sent = self._sent.pop(key, None)
            if sent is None:
                return []
            for item in sent.items:
                self._where.pop(item.key, None)
            return sent.items

    def _abandon_done(self, key: str) -> list[WorkItem]:
        with self._lock:
            return self._abandoned.pop(key, [])

    def _write_log(self, item: WorkItem, data: bytes) -> None:
        path = item.ctx.log_path
        if path is None or not data:
            return
        sink = LogSink(path)  # redacted again with what this process knows
        sink.write(data.decode("utf-8", "replace"))
        sink.close()


def _kill_everywhere(client: Any, key: str, reason: str) -> None:
    with contextlib.suppress(Exception):
        client.run(kill_shell, key, reason, on_error="ignore")


def _exception(future: Any) -> BaseException:
    try:
        exc = future.exception(timeout=5)
    except Exception as err:
        return err
    return exc if isinstance(exc, BaseException) else RuntimeError(str(exc))


def _lost(item: WorkItem, why: str) -> Outcome:
    now = time.time()
    return Outcome(item.task_id, item.attempt, LOST, None, why, now, now)


def _no_worker_offers(item: WorkItem, cluster: _Cluster) -> Outcome:
    now = time.time()
    wanted = ", ".join(f"{k}={v:g}" for k, v in item.resources)
    return Outcome(
        item.task_id,
        item.attempt,
        FAILED,
        None,
        f"no worker of {cluster.label} offers the resources task {item.task_id!r} needs "
        f"({wanted}; offered: {cluster.offered()}): start workers with "
        f'`dask worker ... --resources "{wanted.replace(", ", " ")}"`, or change the task\'s '
        "resources",
        now,
        now,
    )
