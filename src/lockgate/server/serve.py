"""Serving the application with uvicorn: `lockgate serve` (API and UI) and `lockgate up` (the
same with the scheduler in the process).

Everything that can be wrong with the command line is found before anything starts: the
certificate and key are loaded and matched, and the listening sockets are bound here (a port in
use is a one-line error naming it), then the scheduler starts, then uvicorn serves on the bound
sockets. SIGINT or SIGTERM stops it gracefully: no new connections, requests in progress get
`GRACE_S`, the scheduler's runs go back to the queue (as when `lockgate scheduler` stops), the
request audit queue is flushed. A second Ctrl-C forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lockgate.errors import ConfigError

if TYPE_CHECKING:
    from lockgate.config import Project
    from lockgate.scheduler.daemon import Scheduler
    from lockgate.server.state import ServerSettings

log = logging.getLogger("lockgate.server")

GRACE_S = 5.0
"""How long requests in progress (a log tail, say) may take to finish once stopping."""
SCHEDULER_STOP_S = 60.0
"""How long the scheduler may take to hand its runs back to the queue."""


def check_tls(cert: str | None, key: str | None) -> None:
    """The certificate and key files exist, are readable, are PEM and belong together; a
    one-line ConfigError naming the option and the file otherwise. An expired certificate is
    served but warned about."""
    if cert is None and key is None:
        return
    if cert is None or key is None:
        raise ConfigError(
            "--cert and --key go together: give the certificate (PEM) and its private key"
        )
    for option, path in (("--cert", cert), ("--key", key)):
        if not os.path.exists(path):
            raise ConfigError(f"{option} {path}: no such file")
        if not os.path.isfile(path):
            raise ConfigError(f"{option} {path}: not a file")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"{option} {path}: not readable by this user; fix its permissions")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    with open(cert, "rb") as fh:
        cert_pem = fh.read()
    with open(key, "rb") as fh:
        key_pem = fh.read()
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise ConfigError(
            f"--cert {cert}: not a PEM certificate (it should start with "
            "-----BEGIN CERTIFICATE-----)"
        ) from None
    try:
        serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise ConfigError(
            f"--key {key}: the private key is encrypted; give an unencrypted key "
            "(e.g. `openssl pkey -in KEY -out KEY.plain`) with owner-only permissions"
        ) from None
    except (ValueError, Exception):
        raise ConfigError(
            f"--key {key}: not a PEM private key (it should start with -----BEGIN ... "
            "PRIVATE KEY-----)"
        ) from None
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc).lower():
            raise ConfigError(
                f"--key {key} is not the private key of the certificate in --cert {cert}"
            ) from None
        raise ConfigError(f"cannot use --cert {cert} with --key {key}: {exc.reason}") from None
    expires = certificate.not_valid_after_utc
    if expires <= datetime.now(UTC):
        sys.stderr.write(
            f"warning: the certificate in {cert} expired on {expires:%Y-%m-%d}; clients will "
            "refuse it\n"
        )


def bind(host: str, port: int, option: str = "--port") -> socket.socket:
    """A TCP socket bound to (host, port), not listening yet; one-line errors for a port in
    use, a port that needs privileges and an address that is not this machine's."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise ConfigError(
            f"--host {host}: unknown host name; give an address of this machine"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        where = f"[{host}]" if ":" in host else host
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {where} is in use: stop what listens there or choose "
                f"another port with {option}"
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"port {port} needs privileges to listen on: choose a port above 1023 with {option}"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(
                f"--host {host} is not an address of this machine; give one of its addresses"
            ) from None
        raise ConfigError(f"cannot listen on {where}:{port}: {exc.strerror}") from None
    sock.set_inheritable(False)
    return sock


def url_of(host: str, port: int, tls: bool) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{'https' if tls else 'http'}://{shown}:{port}/"


def _login_hint(store: Any) -> str:
    """Where to get a login, for the start line (never a secret)."""
    users = store.users(limit=2)
    if not users:
        return "no user yet: `lockgate users add NAME --role admin` makes one"
    if any(u["name"] == "admin" and u.get("must_change_password") for u in users):
        return (
            "log in as admin with the one-time password `lockgate init` printed "
            "(`lockgate users password admin` makes a new one)"
        )
    return "log in as one of `lockgate users list`; API tokens: `lockgate tokens create`"


def _uvicorn_server(app: Any, cert: str | None, key: str | None, on_started: Any) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn without its own signal handling (`serve` handles signals for the whole
        process, and does not re-raise them once stopped: exit code 0 after SIGTERM)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and on_started is not None:
                on_started()

    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,  # every request is in the audit log with its user
        proxy_headers=False,  # a client's X-Forwarded-For is not trusted (audit, rate limits)
        server_header=False,
        ws="none",
        timeout_graceful_shutdown=int(GRACE_S),
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
    return Server(config)


async def _serve_all(servers: list[tuple[Any, socket.socket]]) -> None:
    """Serve every (server, socket); when the first one ends (stopped, or failed), stop the
    others too."""
    tasks = [asyncio.ensure_future(server.serve(sockets=[sock])) for server, sock in servers]
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for server, _sock in servers:
        server.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        error = task.exception()
        if error is not None:
            raise error


@contextlib.contextmanager
def _closing(socks: list[socket.socket]) -> Iterator[None]:
    try:
        yield
    finally:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()


class _SchedulerThread:
    """The scheduler's loop in a thread of the serving process; `failed` when it ended by
    itself (then the server stops too, so a supervisor restarts the whole process)."""

    def __init__(self, scheduler: Scheduler, on_died: Callable[[], None]) -> None:
        self.scheduler = scheduler
        self.on_died = on_died
        self.failed = False
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, name="lockgate-scheduler", daemon=True)

    def _serve(self) -> None:
        try:
            self.scheduler.serve()
        except BaseException:
            log.exception("the scheduler stopped on an error")
            self.failed = True
        if not self.stopping:
            self.failed = True
            self.on_died()

    def stop(self) -> None:
        self.stopping = True
        self.scheduler.stop()

    def join(self) -> None:
        self.stopping = True
        self.scheduler.stop()
        if not self.scheduler.wait_stopped(SCHEDULER_STOP_S):
            log.error("the scheduler did not stop within %.0f s", SCHEDULER_STOP_S)
        self.thread.join(5)


def serve(
    project: Project,
    settings: ServerSettings,
    *,
    with_scheduler: bool,
    executor: str | None = None,
    concurrency: int | None = None,
    cert: str | None = None,
    key: str | None = None,
    metrics_port: int | None = None,
    out: Any = None,
) -> int:
    """Serve the project's API and UI (and run its scheduler) until SIGINT/SIGTERM; the exit
    status: 0 when stopped, 1 when the scheduler died (the server stops with it)."""
    from lockgate.server.app import create_app

    out = out or sys.stdout
    check_tls(cert, key)
    settings.tls = cert is not None
    socks = [bind(settings.host, settings.port)]
    with _closing(socks):
        if metrics_port is not None:
            socks.append(bind("127.0.0.1", metrics_port, "--metrics-port"))
        scheduler: Scheduler | None = None
        if with_scheduler:
            from lockgate.scheduler.daemon import Scheduler

            scheduler = Scheduler(project, executor=executor, concurrency=concurrency)
            scheduler.start()
        try:
            if scheduler is not None:
                app = create_app(
                    project, settings, store=scheduler.store, registry=scheduler.registry
                )
            else:
                app = create_app(project, settings)
        except BaseException:
            if scheduler is not None:
                scheduler.stop()
                scheduler.serve()  # ends at once: unregisters, stops the watcher
            raise
        state = app.state.lockgate
        return _run(app, state, socks, scheduler, cert, key, metrics_port, out)


def _run(
    app: Any,
    state: Any,
    socks: list[socket.socket],
    scheduler: Scheduler | None,
    cert: str | None,
    key: str | None,
    metrics_port: int | None,
    out: Any,
) -> int:
    from lockgate.server import metrics

    settings = state.settings
    host, port = settings.host, socks[0].getsockname()[1]
    settings.port = port  # the port the OS chose for --port 0
    url = url_of(host, port, settings.tls)
    servers: list[tuple[Any, socket.socket]] = []
    runner: _SchedulerThread | None = None

    def started() -> None:
        line = f"lockgate serving {url} " + (
            "with the scheduler" if scheduler is not None else "(API and UI)"
        )
        if metrics_port is not None:
            line += f", metrics on http://127.0.0.1:{socks[1].getsockname()[1]}/metrics"
        line += "; " + _login_hint(state.store)
        if scheduler is None and not state.store.live_schedulers():
            line += "; no scheduler runs: triggered runs wait for `lockgate scheduler`"
        out.write(line + "\n")
        out.flush()

    def stop_servers() -> None:
        for server, _ in servers:
            server.should_exit = True

    board = metrics.install(app)  # /metrics, if the application does not have it yet
    servers.append((_uvicorn_server(app, cert, key, started), socks[0]))
    if metrics_port is not None:
        servers.append((_uvicorn_server(metrics.loopback_app(board), None, None, None), socks[1]))
    if scheduler is not None:
        runner = _SchedulerThread(scheduler, stop_servers)
    pressed = 0
    served = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal pressed
        pressed += 1
        if pressed > 1 and served:  # waiting for the scheduler to hand its runs back
            raise KeyboardInterrupt
        if pressed == 1:
            sys.stderr.write(
                "stopping: requests in progress finish"
                + ("; runs in progress are queued again" if scheduler is not None else "")
                + " (Ctrl-C again to force)\n"
            )
            stop_servers()
            if runner is not None:
                runner.stop()
        else:
            for server, _ in servers:
                server.force_exit = True

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if runner is not None:
            runner.thread.start()
        asyncio.run(_serve_all(servers))
        served = True
    finally:
        try:
            if runner is not None:
                runner.join()
        finally:
            state.close()  # the request audit queue, flushed (also after a forced exit)
            for sig, old in previous.items():
                signal.signal(sig, old)
    if runner is not None and runner.failed:
        sys.stderr.write("error: the scheduler stopped on an error (see the log above)\n")
        return 1
    sys.stderr.write("lockgate stopped\n")
    return 0
