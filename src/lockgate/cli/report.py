"""`lockgate report PACK`: a compliance report (GDPR, HIPAA, PCI DSS, SOC 2) from the store and
the audit chain. Registered on the main `app` when `cli.main` is imported."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from lockgate.cli.main import app, fail
from lockgate.config import Project


@app.command()
def report(
    pack: Annotated[str, typer.Argument(help="gdpr, hipaa, pci or soc2 (or a pack of yours).")],
    since: Annotated[
        str | None, typer.Option(help="Start of the period: a date or a duration (30d).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="End of the period (default now).")] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="html, json or md (default: from --out's name, else html)."
        ),
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Write to this file (default stdout).")
    ] = None,
) -> None:
    """Write a compliance report: datasets by zone and classification, policy decisions,
    waivers, masking coverage, changes and access, and the audit chain's verification."""
    from lockgate import api
    from lockgate.governance.audit import parse_when
    from lockgate.governance.reports import FORMATS, write_report
    from lockgate.store.audit import user_actor

    if format is None:
        suffix = Path(out or "").suffix.lstrip(".").lower()
        format = {"htm": "html", "markdown": "md"}.get(suffix, suffix)
        format = format if format in FORMATS else "html"
    if format not in FORMATS:
        fail(f"--format {format!r}: use one of {', '.join(FORMATS)}")
    project = Project.load()
    now = time.time()
    start = parse_when(since, "--since", now) if since else None
    end = parse_when(until, "--until", now) if until else None
    to_file = out is not None and out != "-"
    doc, text = write_report(
        project,
        api.open_store(project),
        pack,
        since=start,
        until=end,
        fmt=format,
        out=Path(out) if to_file and out else None,
        actor=user_actor(),
    )
    if not to_file:
        typer.echo(text, nl=False)
        return
    verified = doc["sections"].get("audit", {}).get("verified")
    chain = (
        ""
        if verified is None
        else ("; audit chain verified" if verified else "; AUDIT CHAIN BROKEN")
    )
    typer.echo(f"{doc['title']} report written to {out}{chain}")
