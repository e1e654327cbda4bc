"""Data-plane commands: `copy` (any dataset to any other). Registered on the main `app` when
`cli.main` is imported; the connectors (pyarrow, drivers) load only when a command runs."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from lockgate.cli.main import _console, _plain, app, fail

COPY_HELP = "\n\n".join(
    (
        "Copy any dataset to any other: files (CSV, Parquet, JSONL), S3, SQLite, PostgreSQL; "
        "HTTP JSON APIs as sources.",
        "SRC and DST are dataset URIs (file:///data/x.parquet, s3://bucket/key.csv, "
        "sqlite:///app.db#orders, postgresql://user@host/db#public.orders, https://api/...) "
        "or file paths, relative to the working folder.",
        "Streamed batch by batch (memory stays flat at any size) and atomic: DST changes only "
        "when every row is written, so a failure leaves it as it was. Parquet keeps the "
        "columns' classification tags.",
        "Example: lockgate copy orders.csv sqlite:///shop.db#orders --mode append",
    )
)


@app.command(help=COPY_HELP)
def copy(
    source: Annotated[
        str, typer.Argument(metavar="SRC", help="The dataset to read: a URI or a file path.")
    ],
    target: Annotated[
        str, typer.Argument(metavar="DST", help="The dataset to write: a URI or a file path.")
    ],
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            "-m",
            metavar="MODE",
            help="overwrite (replace DST), append (add rows), or upsert (SQL targets: insert "
            "or update rows by --key).",
        ),
    ] = "overwrite",
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            "-k",
            metavar="COL",
            help="A key column of --mode upsert (repeat for a key of several columns).",
        ),
    ] = None,
    format_: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="F",
            help="SRC's format (csv, parquet, jsonl) when its name does not say it.",
        ),
    ] = None,
    target_format: Annotated[
        str | None,
        typer.Option(
            "--target-format",
            metavar="F",
            help="DST's format (csv, parquet, jsonl) when its name does not say it.",
        ),
    ] = None,
    source_connection: Annotated[
        str | None,
        typer.Option(
            "--source-connection",
            metavar="NAME",
            help="A named connection (lockgate connections list) for SRC's endpoint and "
            "credentials.",
        ),
    ] = None,
    target_connection: Annotated[
        str | None,
        typer.Option("--target-connection", metavar="NAME", help="A named connection for DST."),
    ] = None,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            metavar="",
            help='Print {"source", "target", "rows", "mode", "bytes", "seconds", '
            '"rows_per_second", "schema"} as one line.',
        ),
    ] = False,
) -> None:
    """Copy a dataset (help: COPY_HELP)."""
    from lockgate.cli.privacy import _clean_exit_on_sigterm
    from lockgate.config import Project
    from lockgate.io.catalogue import record_write, with_catalogue_tags
    from lockgate.io.connect import resolved
    from lockgate.io.copy import copy as copy_dataset
    from lockgate.io.dataset import WRITE_MODES, Dataset, display

    if mode not in WRITE_MODES:
        fail(f"--mode {mode!r} is not a write mode; use one of {', '.join(WRITE_MODES)}")
    keys = tuple(key or ())
    if mode == "upsert" and not keys:
        fail("--mode upsert needs the key columns: --key id (repeat for several)")
    if keys and mode != "upsert":
        fail(f"--key is for --mode upsert; with --mode {mode} it would be ignored")
    # a dataset named through a connection is resolved first, so it is shown and recorded
    # by its full URI (password hidden)
    src = resolved(Dataset(source, format=format_, connection=source_connection))
    dst = resolved(Dataset(target, format=target_format, connection=target_connection))
    src.location  # noqa: B018  (a bad URI is an error before anything is opened)
    dst.location  # noqa: B018
    project = Project.load()
    src = with_catalogue_tags(src, project)
    shown = display(dst.uri)
    with (
        _clean_exit_on_sigterm(),
        _rows_progress(f"copying to {shown}", enabled=not json_out) as progress,
    ):
        done = copy_dataset(src, dst, mode=mode, keys=keys, progress=progress)
    record_write(project, dst, done.schema, done.rows)
    speed = done.rows / done.seconds if done.seconds > 0 else 0.0
    if json_out:
        doc = {**done.to_json(), "rows_per_second": round(speed)}
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    _console().print(
        f"copied {done.rows:,} row(s) in {done.seconds:.2f}s ({speed:,.0f} rows/s) "
        f"-> {_plain(done.written.target)} ({mode})",
        soft_wrap=True,  # one line however long, for logs and scripts
    )


@contextmanager
def _rows_progress(what: str, *, enabled: bool = True) -> Iterator[Callable[[int], None] | None]:
    """A row counter with speed on stderr, only when stderr is a terminal: `callback(rows)`."""
    if not (enabled and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"):
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,.0f} rows"),
        TextColumn("{task.fields[speed]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(_plain(what), total=None, speed="")

    def advance(rows: int) -> None:
        speed = bar.tasks[0].speed if bar.tasks else None
        bar.update(task, completed=rows, speed=f"({speed:,.0f} rows/s)" if speed else "")

    with bar:
        yield advance
