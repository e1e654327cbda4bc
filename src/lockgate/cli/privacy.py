"""Commands of the privacy engine: `scan`, `mask`, `redact`, `keys list` and `keys rotate`.
Registered on the main `app` when `cli.main` is imported; the engine (pyarrow and the
recognizers) loads only when one of them runs."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from lockgate.cli.main import JsonOpt, _console, _plain, app, fail
from lockgate.config import Project

keys_app = typer.Typer(
    no_args_is_help=True,
    help="The project's keys, which tokenize, hash, fake, fpe and encrypt use (never shown).",
)
app.add_typer(keys_app, name="keys")


def _help(*paragraphs: str) -> str:
    """Command help as paragraphs (typer keeps line breaks inside a docstring's paragraphs)."""
    return "\n\n".join(paragraphs)


SCAN_HELP = _help(
    "Find the columns that hold PII or secrets, with a confidence for each.",
    "Each column is classified from a sample of its rows, drawn from the whole file, and from "
    "its name: pii.email, pii.phone, pii.ssn, pci.pan, pii.iban, pii.ip, pii.dob, pii.name, "
    "pii.address, secret.* (keys, tokens, passwords), free_text (longer text with PII inside) "
    "or nothing (-).",
    "Example: lockgate scan customers.csv (--json for scripts); then `lockgate mask IN OUT "
    "--auto` masks what scan finds.",
)
MASK_HELP = _help(
    "Copy a table with its sensitive columns masked, tokenized, encrypted or generalised.",
    "Say what to do in a rules file (--rules), or let scan decide (--auto): emails, phones, "
    "names and IPs are tokenized (joins still match), cards and IBANs keep their last 4 "
    "characters, dates of birth their year, other PII and secrets are redacted, and free "
    "text keeps all but its PII. Keyed operations use the project's keys (`lockgate keys "
    "list`).",
    "The file is streamed in batches (memory stays flat at any size) and OUT appears only "
    "when all of it is written.",
    "Example: lockgate mask customers.csv masked.parquet --rules rules.yaml",
)
REDACT_HELP = _help(
    "Replace the PII and secrets in a text or log file, line by line.",
    "Each email, phone number, card number, IP and the like becomes a placeholder such as "
    "\\[EMAIL], and each token, key and password ***; every other byte is kept as it was, "
    "line endings and invalid UTF-8 included. Streamed: memory stays flat at any size.",
    "Example: kubectl logs api | lockgate redact - - > api.log",
)
KEYS_LIST_HELP = _help(
    "List the keys: id, source, when made, and the current one (which new values use).",
    "Keys come from the key file `lockgate init` creates (.lockgate/keys.json, owner-only) and "
    "from LOCKGATE_KEYS; the keys themselves are never shown.",
)
KEYS_ROTATE_HELP = _help(
    "Add a new key to the key file and make it current.",
    "New values use the new key; values encrypted before still decrypt, as the old keys stay. "
    "Tokens, hashes, fakes and fpe output change with the key: pin the old key id (option "
    "`key` of those operations) where they must keep matching older data.",
)

SampleOpt = Annotated[
    int,
    typer.Option(
        "--sample-size",
        "-n",
        min=1,
        metavar="N",
        help="Rows sampled to classify each column (more: slower, surer).",
    ),
]


# -- scan ---------------------------------------------------------------------------------------
@app.command(help=SCAN_HELP)
def scan(
    source: Annotated[
        str,
        typer.Argument(
            metavar="FILE",
            help="The table to classify: a .csv, .parquet or .jsonl file (.gz, .bz2, .zst too).",
        ),
    ],
    sample_size: SampleOpt = 1000,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", min=0, metavar="S", help="Which rows are sampled: same seed, same sample."
        ),
    ] = 0,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            metavar="",
            help='Print {"source", "rows_sampled", "columns": [{"name", "classification", '
            '"confidence"}]} as one line.',
        ),
    ] = False,
) -> None:
    """Classify the columns of a file (help: SCAN_HELP)."""
    from lockgate.privacy.scan import scan as scan_file
    from lockgate.privacy.tasks import scan_doc

    doc = scan_doc(scan_file(source, sample_size=sample_size, seed=seed))
    if json_out:
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    table.add_column("column", overflow="fold")
    table.add_column("classification")
    table.add_column("confidence", justify="right")
    for col in doc["columns"]:
        kind = col["classification"]
        table.add_row(
            _plain(str(col["name"])),
            f"[bold]{_plain(kind)}[/]" if kind else "-",
            f"{col['confidence']:.2f}",
        )
    console = _console()
    _print_table(console, table)
    found = sum(1 for c in doc["columns"] if c["classification"])
    console.print(
        f"{found} of {len(doc['columns'])} column(s) classified, "
        f"from {doc['rows_sampled']:,} sampled row(s)",
        soft_wrap=True,
    )


# -- mask ---------------------------------------------------------------------------------------
def _list_ops(value: bool) -> None:
    if not value:
        return
    from rich.table import Table

    from lockgate.privacy.transforms import OPERATIONS

    table = Table(box=None, pad_edge=False)
    for col in ("op", "what it does", "options"):
        table.add_column(col, overflow="fold")
    for name, operation in OPERATIONS.items():
        # `object` options take Python objects: no use in a rules file
        options = ", ".join(o.name for o in operation.options if o.kind != "object") or "-"
        table.add_row(name, _plain(operation.summary), _plain(options))
    console = _console()
    _print_table(console, table)
    console.print("options of each: docs/privacy.md")
    raise typer.Exit(0)


@app.command(help=MASK_HELP)
def mask(
    input_: Annotated[
        Path,
        typer.Argument(
            metavar="IN",
            help="The table to mask: a .csv, .parquet or .jsonl file.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Argument(
            metavar="OUT",
            help="The file to write; its extension chooses the format (.parquet keeps the "
            "classification tags).",
            show_default=False,
        ),
    ],
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            "-r",
            metavar="RULES.yaml",
            help="A rules file: which column gets which operation (see --list-ops).",
        ),
    ] = None,
    auto: Annotated[
        bool,
        typer.Option(
            "--auto",
            metavar="",
            help="Scan first, then mask every classified column (with --rules: every one the "
            "rules do not name).",
        ),
    ] = False,
    sample_size: SampleOpt = 1000,
    list_ops: Annotated[
        bool,
        typer.Option(
            "--list-ops",
            metavar="",
            is_eager=True,
            callback=_list_ops,
            help="List the operations rules can use, and exit.",
        ),
    ] = False,
) -> None:
    """Mask a file with rules or what scan finds (help: MASK_HELP)."""
    from lockgate.privacy.masking import load_rules, mask_file
    from lockgate.privacy.tasks import mask_doc, project_keyring

    if rules is None and not auto:
        fail("give --rules RULES.yaml, or --auto to mask what `lockgate scan` finds")
    plan = load_rules(rules) if rules is not None else None
    keyring = project_keyring(Project.load())
    with _clean_exit_on_sigterm(), _progress(f"masking {input_.name}") as progress:
        summary = mask_file(
            input_,
            output,
            rules=plan,
            auto=auto,
            keyring=keyring,
            sample_size=sample_size,
            progress=progress,
        )
    doc = mask_doc(summary)
    from rich.table import Table

    console = _console()
    tags = doc["tags"]
    if doc["columns_by_op"]:
        table = Table(box=None, pad_edge=False)
        for col in ("op", "columns"):
            table.add_column(col, overflow="fold")
        for op, columns in doc["columns_by_op"].items():
            shown = ", ".join(f"{c} ({tags[c]})" if c in tags else c for c in columns)
            table.add_row(op, _plain(shown))
        _print_table(console, table)
    changed = sum(len(c) for c in doc["columns_by_op"].values())
    # decrypt and fpe_decrypt restore values: "masked" would say the opposite
    console.print(
        f"wrote {_plain(str(output))}: {doc['rows']:,} row(s), {changed} column(s) transformed "
        f"in {doc['seconds']:.2f}s",
        soft_wrap=True,
    )


# -- redact -------------------------------------------------------------------------------------
@app.command(help=REDACT_HELP)
def redact(
    input_: Annotated[
        str, typer.Argument(metavar="IN", help="A text or log file; - reads standard input.")
    ],
    output: Annotated[
        str, typer.Argument(metavar="OUT", help="The file to write; - writes standard output.")
    ],
    entities: Annotated[
        str | None,
        typer.Option(
            "--entities",
            "-e",
            metavar="TYPES",
            help="Only these types, comma-separated, e.g. email,ip,jwt, or a preset: logs "
            "(secrets, e-mails, IPs, cards, SSNs, IBANs: fastest on log files), secrets, all "
            "(the default: every PII and secret type).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            help="Processes redacting in parallel (default: one per CPU for inputs of 32 MB "
            "or more, else 1).",
        ),
    ] = None,
) -> None:
    """Redact a text file (help: REDACT_HELP)."""
    from lockgate.privacy.textredact import redact_file

    kinds = [e.strip() for e in entities.split(",") if e.strip()] if entities else None
    if entities is not None and not kinds:
        fail("--entities names no type; give e.g. --entities email,ip")
    quiet = output == "-" and sys.stdout.isatty()  # the bar would mix with the text
    with _clean_exit_on_sigterm(), _progress(f"redacting {input_}", enabled=not quiet) as progress:
        summary = redact_file(input_, output, entities=kinds, progress=progress, workers=workers)
    if output == "-":
        return
    doc = summary.to_json()
    spans = ", ".join(f"{n} {kind}" for kind, n in doc["spans"].items()) or "nothing found"
    _console().print(
        f"wrote {_plain(output)}: {doc['lines']:,} line(s), {doc['lines_changed']:,} changed "
        f"({_plain(spans)})",
        soft_wrap=True,  # one line however long, for logs and scripts
    )


# -- keys ---------------------------------------------------------------------------------------
@keys_app.command("list", help=KEYS_LIST_HELP)
def keys_list(json_out: JsonOpt = False) -> None:
    """List the project's keys, never their material (help: KEYS_LIST_HELP)."""
    from lockgate.privacy.keys import Keyring

    infos = Keyring.for_project(Project.load()).describe()
    if json_out:
        rows = [
            {
                "id": k.id,
                "source": k.source,
                "created": k.created,
                "current": k.current,
                "kms_key_id": k.kms_key_id,
            }
            for k in infos
        ]
        sys.stdout.write(json.dumps({"keys": rows}) + "\n")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("key", "source", "created", "current"):
        table.add_column(col)
    for k in infos:
        source = f"kms ({k.kms_key_id})" if k.kms_key_id else k.source
        table.add_row(k.id, _plain(source), k.created or "-", "*" if k.current else "")
    _print_table(_console(), table)


@keys_app.command("rotate", help=KEYS_ROTATE_HELP)
def keys_rotate() -> None:
    """Rotate the project's keys (help: KEYS_ROTATE_HELP)."""
    from lockgate.privacy.keys import Keyring

    project = Project.load()
    keyring = Keyring.for_project(project)
    old = keyring.current
    new = keyring.rotate()
    from lockgate.cli import audit as audit_cli

    audit_cli.record(project, "keys.rotate", new, {"old": old, "new": new})
    where = f" in {_plain(os.path.relpath(keyring.path))}" if keyring.path is not None else ""
    _console().print(f"new current key {new}{where} (was {old}; {old} is kept for decrypting)")


# -- SIGTERM ----------------------------------------------------------------------------------
TERMINATED = 128 + signal.SIGTERM
"""Exit code after SIGTERM (143), as a shell reports a process that TERM ended."""


@contextmanager
def _clean_exit_on_sigterm() -> Iterator[None]:
    """While the block runs, SIGTERM (how schedulers and `kill` stop a task) raises SystemExit
    in the main thread instead of killing the process outright, so the writers' cleanup runs:
    the temporary output file is removed and an existing OUT is left as it was."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(TERMINATED)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (a command called from a worker): nothing to do
        yield
        return
    try:
        yield
    except SystemExit as exc:
        if exc.code == TERMINATED:
            sys.stderr.write("terminated: nothing written, the temporary file removed\n")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- output -----------------------------------------------------------------------------------
def _print_table(console: Any, table: Any) -> None:
    """Print a rich table; when stdout is not a terminal, without the trailing spaces that pad
    its cells (they make diffs and `grep $` in logs and scripts awkward)."""
    if sys.stdout.isatty():
        console.print(table)
        return
    with console.capture() as captured:
        console.print(table)
    lines = [line.rstrip() for line in captured.get().splitlines()]
    sys.stdout.write("".join(f"{line}\n" for line in lines))


# -- progress -----------------------------------------------------------------------------------
@contextmanager
def _progress(what: str, *, enabled: bool = True) -> Iterator[Callable[[int, Any], None] | None]:
    """A progress bar on stderr, only when stderr is a terminal: `callback(done, total)`."""
    if not (enabled and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"):
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(_plain(what), total=None)

    def advance(done: int, total: Any) -> None:
        bar.update(task, completed=done, total=total or None)

    with bar:
        yield advance
