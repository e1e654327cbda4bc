"""`lockgate notify channels/test/list`: the `[notify]` channels and rules of lockgate.toml
(never a secret), a test message sent now, and the deliveries recorded. Registered on the main
`app` when `cli.main` is imported."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from lockgate.cli.main import JsonOpt, _console, _plain, app, fail
from lockgate.config import Project

notify_app = typer.Typer(
    no_args_is_help=True,
    help="Notifications (Slack, Teams, e-mail, webhooks) configured in lockgate.toml's \\[notify] "
    "table: list them, send a test message, see what was delivered.",
)
app.add_typer(notify_app, name="notify")

CHANNELS_HELP = (
    "List the channels and rules of lockgate.toml's \\[notify] table. Secrets are shown by name "
    "only, never their values."
)
TEST_HELP = (
    "Send a test message to CHANNEL now (one attempt, recorded like any notification). Exit "
    "code 1 and the reason on one line when it is not delivered."
)
LIST_HELP = "The latest notifications recorded (newest first): state, attempts, last error."


def _when(ts: float | None) -> str:
    return "-" if not ts else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _config(project: Project) -> Any:
    from lockgate.notify import load_config

    config = load_config(project)
    if config is None:
        where = project.config_file or project.root / "lockgate.toml"
        fail(f"{where} has no [notify] table; add channels and rules (see docs/notifications.md)")
    return config


@notify_app.command("channels", help=CHANNELS_HELP)
def channels(json_out: JsonOpt = False) -> None:
    """List channels and rules (help: CHANNELS_HELP)."""
    config = _config(Project.load())
    if json_out:
        doc = {
            "channels": [
                {"name": c.name, "type": c.kind, "target": c.describe(), "secrets": c.secrets()}
                for c in config.channels.values()
            ],
            "rules": [
                {
                    "rule": r.number,
                    "on": list(r.on),
                    "pipelines": list(r.pipelines) if r.pipelines is not None else None,
                    "channels": list(r.channels),
                    "template": r.template.source if r.template is not None else None,
                }
                for r in config.rules
            ],
            "sla": dict(config.sla),
            "base_url": config.base_url,
        }
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    from rich.table import Table

    from lockgate.cli.privacy import _print_table
    from lockgate.notify.watch import human_duration

    console = _console()
    if not config.channels:
        console.print(_plain("no channels; add one as [notify.channels.NAME] in lockgate.toml"))
    else:
        table = Table(box=None, pad_edge=False)
        for col in ("channel", "type", "sends to"):
            table.add_column(col)
        for c in config.channels.values():
            table.add_row(_plain(c.name), c.kind, _plain(c.describe()))
        _print_table(console, table)
    console.print()
    if not config.rules:
        console.print(
            _plain("no rules: nothing is sent; add [[notify.rules]] with on and channels")
        )
    else:
        table = Table(box=None, pad_edge=False)
        for col in ("rule", "on", "pipelines", "channels", "template"):
            table.add_column(col)
        for r in config.rules:
            table.add_row(
                str(r.number),
                ", ".join(r.on),
                _plain(", ".join(r.pipelines)) if r.pipelines is not None else "all",
                _plain(", ".join(r.channels)),
                "custom" if r.template is not None else "default",
            )
        _print_table(console, table)
    if config.sla:
        console.print()
        shown = ", ".join(f"{k} {human_duration(v)}" for k, v in config.sla.items())
        console.print(f"SLA deadlines: {_plain(shown)}")


@notify_app.command("test", help=TEST_HELP)
def test(
    channel: Annotated[
        str, typer.Argument(metavar="CHANNEL", help="A channel of \\[notify.channels].")
    ],
) -> None:
    """Send a test message (help: TEST_HELP)."""
    from lockgate import api
    from lockgate.errors import did_you_mean
    from lockgate.notify.delivery import send_now
    from lockgate.notify.messages import probe_message
    from lockgate.store.audit import user_actor

    project = Project.load()
    config = _config(project)
    found = config.channels.get(channel)
    if found is None:
        known = sorted(config.channels)
        hint = did_you_mean(channel, known, "channels:") if known else "; none is defined"
        fail(f"no channel {channel!r} in [notify.channels]{hint}")
    store = api.open_store(project)
    delivery = send_now(found, probe_message(project.root.name, channel), project, store)
    store.audit(
        "notify.test",
        channel,
        {"type": found.kind, "state": delivery.state, "error": delivery.last_error},
        actor=user_actor(),
    )
    if delivery.state != "sent":
        fail(f"channel {channel} ({found.kind}): {delivery.last_error}", code=1)
    _console().print(f"sent a test message to channel {_plain(channel)} ({found.kind})")


@notify_app.command("list", help=LIST_HELP)
def list_(
    run: Annotated[
        str | None,
        typer.Option("--run", metavar="RUN", help="Only this run's (an id or unique prefix)."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=10000, help="How many, at most.")
    ] = 50,
    json_out: JsonOpt = False,
) -> None:
    """List deliveries (help: LIST_HELP)."""
    from lockgate.store import notifications
    from lockgate.store.store import Store

    project = Project.load()
    store = Store.if_exists(project.db_url)  # reading creates no database
    rows: list[dict[str, Any]] = []
    if store is not None:
        try:
            run_id = run
            if run is not None:
                record = store.find_run(run)
                run_id = record["id"] if record is not None else run
            rows = notifications.recent(store, run_id, limit)
        finally:
            store.close()
    if json_out:
        sys.stdout.write(json.dumps({"notifications": rows}) + "\n")
        return
    console = _console()
    if not rows:
        console.print("no notifications recorded" + (f" for run {_plain(run)}" if run else ""))
        return
    from rich.table import Table

    from lockgate.cli.privacy import _print_table

    table = Table(box=None, pad_edge=False)
    for col in ("time", "event", "channel", "pipeline", "run", "task", "state", "tries", "detail"):
        table.add_column(col)
    for r in rows:
        detail = r["last_error"] if r["state"] != "sent" and r["last_error"] else r["subject"]
        table.add_row(
            _when(r["created_at"]),
            r["event"],
            _plain(f"{r['channel']} ({r['kind']})"),
            _plain(r["pipeline_id"] or "-"),
            _plain(r["run_id"] or "-"),
            _plain(r["task_id"] or "-"),
            r["state"],
            str(r["attempts"]),
            _plain(detail or ""),
        )
    _print_table(console, table)
