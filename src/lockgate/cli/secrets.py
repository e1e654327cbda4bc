"""`lockgate secrets set/get/list/rm`: the project's encrypted secrets file, and a check that a
secret resolves through the configured backends. Values are read from standard input or a
hidden prompt, never from the command line; they are printed only with `get --reveal`."""

from __future__ import annotations

import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lockgate.cli.main import JsonOpt, _plain, app, fail
from lockgate.config import Project

if TYPE_CHECKING:
    from lockgate.secrets.localfile import SecretsFile

secrets_app = typer.Typer(
    no_args_is_help=True,
    help="Secrets for tasks and connections: kept encrypted in the project's secrets file, "
    "or read from the environment, Vault/OpenBao or AWS Secrets Manager (\\[secrets] in "
    "lockgate.toml). Tasks read them with ctx.secret(NAME) or {{ secret('NAME') }}.",
)
app.add_typer(secrets_app, name="secrets")

NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="The secret's name, e.g. warehouse/password.")
]


def _file(project: Project) -> SecretsFile:
    from lockgate.secrets.localfile import SecretsFile

    return SecretsFile.of(project)


def _audit(project: Project, action: str, name: str, detail: dict[str, object]) -> None:
    from lockgate.cli import audit as audit_cli

    audit_cli.record(project, action, name, detail)


def _read_value(name: str, from_file: Path | None) -> str:
    if from_file is not None:
        try:
            return from_file.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            fail(f"--from-file {from_file}: cannot read it: {exc.strerror}")
        except UnicodeDecodeError:
            fail(f"--from-file {from_file}: not UTF-8 text; store binary values base64-encoded")
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass(f"value of {name}: ")
        if getpass.getpass("again: ") != first:
            fail("the two values differ; nothing was changed")
        return first
    text = sys.stdin.read() if sys.stdin is not None else ""
    return text[:-1] if text.endswith("\n") else text


@secrets_app.command("set")
def set_secret(
    name: NameArg,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            metavar="FILE",
            help="Read the value from FILE (e.g. a private key) instead of standard input.",
        ),
    ] = None,
) -> None:
    """Store a secret in the project's encrypted secrets file (the value is read from standard
    input, a hidden prompt or --from-file; never from the command line)."""
    from lockgate.secrets import check_name

    project = Project.load()
    check_name(name)
    value = _read_value(name, from_file)
    from lockgate.secrets.chain import chain_for
    from lockgate.secrets.redaction import MIN_LENGTH

    chain = chain_for(project)  # a wrong [secrets] table is reported before anything changes
    replaced = _file(project).write(name, value)
    _audit(project, "secret.set", name, {"replaced": replaced})
    typer.echo(f"secret {_plain(name)} {'replaced' if replaced else 'set'} (encrypted)")
    if "file" not in [b.kind for b in chain.backends]:
        sys.stderr.write(
            'note: "file" is not in [secrets] backends of lockgate.toml: tasks will not find '
            "this secret until it is added there\n"
        )
    if len(value) < MIN_LENGTH:
        sys.stderr.write(
            f"note: values shorter than {MIN_LENGTH} characters are not redacted from logs by "
            "value (they would blank out ordinary words); use a longer secret\n"
        )


@secrets_app.command("get")
def get_secret(
    name: NameArg,
    reveal: Annotated[
        bool,
        typer.Option("--reveal", help="Print the value itself (else only where it was found)."),
    ] = False,
) -> None:
    """Check that a secret resolves through the configured backends, as a task would read
    it (the read is audited); --reveal prints its value."""
    from lockgate.secrets.chain import chain_for

    project = Project.load()
    found = chain_for(project).read(name)
    if reveal:
        _audit(project, "secret.reveal", name, {"source": found.backend})
        sys.stdout.write(found.value + "\n")
    else:
        typer.echo(
            f"secret {_plain(name)}: found in {found.backend} ({len(found.value)} characters; "
            "--reveal prints it)"
        )


@secrets_app.command("list")
def list_secrets(json_out: JsonOpt = False) -> None:
    """List the secrets of the encrypted secrets file (names and dates, never values) and the
    backends asked, in order."""
    from lockgate.secrets.chain import chain_for

    project = Project.load()
    chain = chain_for(project)
    names = _file(project).names()
    if json_out:
        doc = {"backends": [b.describe() for b in chain.backends], "file": names}
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    typer.echo("backends (asked in this order): " + ", ".join(b.describe() for b in chain.backends))
    if not names:
        typer.echo("the secrets file holds no secret (add one with `lockgate secrets set NAME`)")
        return
    for entry in names:
        when = entry["updated_at"]
        stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M") if when else "-"
        typer.echo(f"{_plain(entry['name'])}  set {stamp} UTC  key {entry['key_id'] or '-'}")


@secrets_app.command("rm")
def remove_secret(name: NameArg) -> None:
    """Remove a secret from the project's encrypted secrets file."""
    project = Project.load()
    if not _file(project).remove(name):
        fail(f"the secrets file holds no secret {name!r} (see `lockgate secrets list`)")
    _audit(project, "secret.remove", name, {})
    typer.echo(f"secret {_plain(name)} removed")
