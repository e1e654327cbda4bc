"""Commands of the server: `serve` (the REST API and web UI), `openapi` (the API's document)
and `cancel` (stop a run). `lockgate up` (cli/scheduling.py) serves with the scheduler through
`start_server`. Registered on the main `app` when `cli.main` is imported."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from lockgate.cli.main import app, fail
from lockgate.config import Project

HostOpt = Annotated[
    str,
    typer.Option(
        "--host",
        help="Address to listen on (default 127.0.0.1: this machine only). Another address "
        "serves the network: give --cert and --key.",
    ),
]
PortOpt = Annotated[
    int, typer.Option("--port", min=0, max=65535, help="TCP port (0: any free port).")
]
CertOpt = Annotated[
    str | None,
    typer.Option(
        "--cert", metavar="FILE", help="TLS certificate chain (PEM): serve HTTPS (with --key)."
    ),
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", metavar="FILE", help="The certificate's private key (PEM, unencrypted)."),
]
NoUiOpt = Annotated[
    bool, typer.Option("--no-ui", help="Serve the REST API only, not the web pages.")
]
MetricsPortOpt = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=0,
        max=65535,
        help="Also serve /metrics without authentication on 127.0.0.1:PORT (for a local "
        "Prometheus); /metrics on the main port needs a token.",
    ),
]


def _log_to_stderr() -> None:
    """The server's and the scheduler's logs: one line per event on stderr, with the time
    (what tasks log goes to their attempt logs)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    for name, level in (
        ("lockgate.scheduler", logging.INFO),
        ("lockgate.server", logging.INFO),
        ("uvicorn.error", logging.WARNING),
        ("uvicorn", logging.WARNING),
    ):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def start_server(
    *,
    with_scheduler: bool,
    host: str,
    port: int,
    cert: str | None,
    key: str | None,
    no_ui: bool,
    metrics_port: int | None,
    executor: str | None = None,
    concurrency: int | None = None,
    project: Project | None = None,
) -> NoReturn:
    """Serve until stopped (`lockgate serve`, `lockgate up`); exits with the server's status."""
    from lockgate.network import is_loopback
    from lockgate.server.serve import serve
    from lockgate.server.state import ServerSettings

    project = project or Project.load()
    if not is_loopback(host) and cert is None:
        sys.stderr.write(
            f"warning: --host {host} serves other machines over plain HTTP: passwords, session "
            "cookies and tokens would cross the network readable; give --cert and --key\n"
        )
    settings = ServerSettings(host=host, port=port, serve_ui=not no_ui)
    _log_to_stderr()
    code = serve(
        project,
        settings,
        with_scheduler=with_scheduler,
        executor=executor,
        concurrency=concurrency,
        cert=cert,
        key=key,
        metrics_port=metrics_port,
    )
    raise typer.Exit(code)


@app.command("serve")
def serve_command(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8080,
    cert: CertOpt = None,
    key: KeyOpt = None,
    no_ui: NoUiOpt = False,
    metrics_port: MetricsPortOpt = None,
) -> None:
    """Serve the REST API and the web UI of this project until Ctrl-C or SIGTERM.

    No scheduler runs here: triggered runs wait for `lockgate scheduler` (or use `lockgate up`,
    which runs both in one process)."""
    start_server(
        with_scheduler=False,
        host=host,
        port=port,
        cert=cert,
        key=key,
        no_ui=no_ui,
        metrics_port=metrics_port,
    )


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3 document the server serves at /api/openapi.json. Made from an application
    on an empty database in a temporary folder: the document never depends on (or touches)
    the project's state."""
    import tempfile

    from lockgate.server import metrics
    from lockgate.server.app import create_app
    from lockgate.server.state import ServerSettings
    from lockgate.store.store import Store

    with tempfile.TemporaryDirectory(prefix="lockgate-openapi-") as folder:
        root = Path(folder)
        (root / "lockgate.toml").write_text("", encoding="utf-8")
        store = Store(f"sqlite:///{root / 'openapi.db'}")
        try:
            app = create_app(Project.load(root), ServerSettings(), store=store)
            metrics.install(app)
            doc: dict[str, Any] = app.openapi()
        finally:
            store.close()
    return doc


@app.command()
def openapi(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FILE", help="Write it to FILE instead of stdout."),
    ] = None,
) -> None:
    """Print the OpenAPI 3 document of the REST API (JSON), for clients and API tools."""
    text = json.dumps(openapi_document(), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    temp = out.with_name(f".{out.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, out)
    sys.stderr.write(f"wrote {out}\n")


@app.command()
def cancel(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="A queued or running run (id or unique prefix).")
    ],
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the run has ended (it ends `cancelled`).")
    ] = False,
) -> None:
    """Cancel a run: a queued one at once; a running one is stopped by the process driving it
    (its scheduler, or a `lockgate run`) within a second or two, and ends `cancelled`.

    Recorded in the audit log with your OS user, as the API does with the API user."""
    from lockgate import api
    from lockgate.scheduler.wakeup import wake_schedulers
    from lockgate.store.audit import user_actor

    project = Project.load()
    store = api.open_store(project)
    record = store.find_run(run_id)
    if record is None:
        fail(f"no run {run_id!r}; list runs with `lockgate runs`")
    full_id = record["id"]
    state = store.request_cancel(full_id, user_actor())
    wake_schedulers(store)
    if state == "cancelled":
        sys.stdout.write(f"run {full_id} cancelled (it had not started)\n")
        return
    sys.stdout.write(f"run {full_id}: cancel requested; the process driving it stops it\n")
    if wait:
        sys.stdout.flush()
        try:
            final = api.wait_for_run(full_id, project)
        except KeyboardInterrupt:
            fail(f"stopped waiting; the cancel of run {full_id} stays requested", 130)
        sys.stdout.write(f"run {full_id}: {final['state']}\n")
