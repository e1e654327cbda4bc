"""`lockgate connections add/list/show/rm`: named connections, their secrets sealed in the store
and never printed. Registered on the main `app` when `cli.main` is imported."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from lockgate.cli.main import JsonOpt, _console, _pairs, _plain, app, fail
from lockgate.config import Project

connections_app = typer.Typer(
    no_args_is_help=True,
    help="Named connections to databases, buckets and APIs; their secrets are stored "
    "encrypted and never shown.",
)
app.add_typer(connections_app, name="connections")


def _help(*paragraphs: str) -> str:
    return "\n\n".join(paragraphs)


ADD_HELP = _help(
    "Add a named connection to the project's store.",
    "URL is the base: postgresql://user@host:5432/db, sqlite:///path.db, s3://bucket/prefix or "
    "https://api.example.com/v1. Datasets then name their part relative to it: a table "
    "(orders), an object key (exports/orders.parquet) or an API path (orders).",
    "Secrets (--secret password, key, secret, token or headers) are read from standard input, "
    "one line each in the order given, or asked for without echo on a terminal: never from "
    "the command line. They are encrypted with the project's keys; a password written in URL "
    "is moved there too.",
    "Example: printf '%s\\n' \"$PG_PASSWORD\" | lockgate connections add warehouse "
    "postgresql://etl@db:5432/dw --secret password",
)
LIST_HELP = _help(
    "List the connections of lockgate.toml and of the store.",
    "Secrets are never shown: only which secret fields are set.",
)
SHOW_HELP = "Show one connection: URL, options and which secrets are set (never their values)."
RM_HELP = "Remove a connection from the store (those of lockgate.toml are removed there)."


@contextmanager
def _store(project: Project) -> Iterator[Any]:
    from lockgate import api

    store = api.open_store(project)
    try:
        yield store.db
    finally:
        store.close()


def _option_value(text: str) -> Any:
    """`--option` values: JSON objects, arrays, numbers and booleans as such, else the text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, dict | list | int | float | bool) else text


def _read_secrets(fields: list[str], name: str) -> dict[str, str]:
    """One value per field: lines of standard input, or hidden prompts on a terminal."""
    if not fields:
        return {}
    if any("=" in f for f in fields):  # the value is not echoed: it must not reach a log
        fail(
            "--secret takes a field name only (e.g. --secret password); its value is read "
            "from standard input or a hidden prompt, never from the command line"
        )
    if len(set(fields)) != len(fields):
        fail("each --secret field may be given once")
    if sys.stdin is not None and sys.stdin.isatty():
        return {f: getpass.getpass(f"{f} of connection {name}: ") for f in fields}
    lines = (sys.stdin.read() if sys.stdin is not None else "").splitlines()
    if len(lines) < len(fields):
        fail(
            f"expected {len(fields)} secret value(s) on standard input, one line each for "
            f"{', '.join(fields)}; got {len(lines)}"
        )
    return dict(zip(fields, lines, strict=False))


@connections_app.command("add", help=ADD_HELP)
def add(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The connection's name, e.g. warehouse.")
    ],
    url: Annotated[str, typer.Argument(metavar="URL", help="Its base URL (see above).")],
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            metavar="KEY=VALUE",
            help="An option (repeatable): endpoint_url, region, headers (JSON), ...",
        ),
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            "--secret",
            "-s",
            metavar="FIELD",
            help="A secret field to read from stdin or a hidden prompt (repeatable).",
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", metavar="", help="Redefine the connection if it exists.")
    ] = False,
) -> None:
    """Add a connection (help: ADD_HELP)."""
    from lockgate.io.connections import check_name, kind_of, save, split_password

    check_name(name)
    kind = kind_of(url)
    if split_password(url)[1] is not None:  # said first: it holds even if the add fails
        fields = "--secret key --secret secret" if kind == "s3" else "--secret password"
        sys.stderr.write(
            "warning: the URL holds a password, which the command line exposes to shell "
            "history and `ps`; lockgate stores it encrypted and keeps it out of the stored "
            f"URL, but give it with {fields} (read from standard input or a hidden prompt) "
            "instead, and change it if others can read this machine's history\n"
        )
    options = {k: _option_value(v) for k, v in _pairs(option, "--option").items()}
    secrets = _read_secrets(list(secret or []), name)
    project = Project.load()
    with _store(project) as db:
        conn = save(db, project, name, url, options=options, secrets=secrets, replace=replace)
    fields = ", ".join(conn.secret_fields) or "none"
    verb = "replaced" if conn.created_at != conn.updated_at else "added"
    _console().print(
        f"connection {_plain(name)} {verb} ({conn.kind}, {_plain(conn.url)}; secrets: {fields})"
    )


@connections_app.command("list", help=LIST_HELP)
def list_(json_out: JsonOpt = False) -> None:
    """List connections (help: LIST_HELP)."""
    from lockgate.io.connections import all_connections

    project = Project.load()
    with _store(project) as db:
        found, hidden = all_connections(project, db)
    if json_out:
        rows = [c.to_json() for c in found.values()]
        rows += [{**c.to_json(), "hidden_by": "lockgate.toml"} for c in hidden.values()]
        sys.stdout.write(json.dumps({"connections": rows}) + "\n")
        return
    if not found and not hidden:
        _console().print(
            "no connections; add one with `lockgate connections add NAME URL` or a "
            "[connections.NAME] table in lockgate.toml"
        )
        return
    from rich.table import Table

    from lockgate.cli.privacy import _print_table

    table = Table(box=None, pad_edge=False)
    for col in ("name", "kind", "url", "secrets", "source"):
        table.add_column(col)
    for conn in found.values():
        table.add_row(
            _plain(conn.name), conn.kind, _plain(conn.to_json()["url"]), _secrets(conn), conn.source
        )
    for conn in hidden.values():
        table.add_row(
            _plain(conn.name),
            conn.kind,
            _plain(conn.to_json()["url"]),
            _secrets(conn),
            "store (hidden by lockgate.toml)",
        )
    _print_table(_console(), table)


def _secrets(conn: Any) -> str:
    if conn.secret_env or conn.secret_refs:
        shown = {f: f"${v}" for f, v in conn.secret_env.items()}
        shown.update({f: f"secret {v}" for f, v in conn.secret_refs.items()})
        return ", ".join(f"{f} ({v})" for f, v in sorted(shown.items()))
    return ", ".join(conn.secret_fields) or "-"


@connections_app.command("show", help=SHOW_HELP)
def show(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The connection's name.")],
    json_out: JsonOpt = False,
) -> None:
    """Show one connection (help: SHOW_HELP)."""
    import datetime as dt

    from lockgate.io.connections import lookup

    project = Project.load()
    with _store(project) as db:
        conn = lookup(project, name, db)
    doc = conn.to_json()
    if json_out:
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    lines = [
        f"name     {conn.name}",
        f"kind     {conn.kind}",
        f"url      {doc['url']}",
        f"source   {conn.source}",
        f"secrets  {_secrets(conn)}" + (" (encrypted)" if conn.sealed else ""),
    ]
    for key, value in doc["options"].items():
        shown = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"option   {key}={shown}")
    for label, stamp in (("created", conn.created_at), ("updated", conn.updated_at)):
        if stamp:
            when = dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat(timespec="seconds")
            lines.append(f"{label}  {when}")
    sys.stdout.write("".join(f"{line}\n" for line in lines))


@connections_app.command("rm", help=RM_HELP)
def rm(name: Annotated[str, typer.Argument(metavar="NAME", help="The connection's name.")]) -> None:
    """Remove a stored connection (help: RM_HELP)."""
    from lockgate.io.connections import remove

    project = Project.load()
    with _store(project) as db:
        remove(db, project, name)
    _console().print(f"connection {_plain(name)} removed")
