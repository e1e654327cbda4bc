"""`lockgate audit verify/export/checkpoint/prune/show`: the tamper-evident audit chain, and
`record`, which the other commands use to audit what a user did. Registered on the main `app`
when `cli.main` is imported."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lockgate.cli.main import JsonOpt, _console, _plain, app, fail
from lockgate.config import Project

if TYPE_CHECKING:
    from lockgate.store.audit import Checkpoint
    from lockgate.store.store import Store

audit_app = typer.Typer(
    no_args_is_help=True,
    help="The tamper-evident audit log: verify it, export it for a SIEM, checkpoint and prune it.",
)
app.add_typer(audit_app, name="audit")

DestOpt = Annotated[
    str | None,
    typer.Option(
        "--checkpoints",
        metavar="DIR|s3://bucket/prefix",
        help="Also check the checkpoints exported there (default: [audit] export).",
    ),
]


def record(
    project: Project,
    action: str,
    target: str | None = None,
    detail: Any = None,
    *,
    run_id: str | None = None,
    store: Store | None = None,
) -> None:
    """Append what the user did to the audit chain (actor `user@host`); never secret values."""
    from lockgate import api
    from lockgate.store.audit import user_actor

    db = store if store is not None else api.open_store(project)
    db.audit(action, target, detail, actor=user_actor(), run_id=run_id)


def _exported(project: Project, given: str | None) -> list[Checkpoint]:
    from lockgate.governance.audit import exported_for

    return exported_for(project, given)


@audit_app.command("verify")
def verify(checkpoints: DestOpt = None, json_out: JsonOpt = False) -> None:
    """Check the whole chain: every record's hash, MAC and link, the head, and the signed
    checkpoints (also exported ones). Exit 0 when intact; 1 with the first bad record."""
    from lockgate import api

    project = Project.load()
    exported = _exported(project, checkpoints)
    finding = api.open_store(project).audit_verify(exported)
    if json_out:
        sys.stdout.write(json.dumps(finding.to_json()) + "\n")
    else:
        sys.stdout.write(finding.message + "\n")
    raise typer.Exit(0 if finding.ok else 1)


@audit_app.command("export")
def export(
    since: Annotated[
        str | None,
        typer.Option(metavar="WHEN", help="From this date (ISO 8601) or duration back (7d)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="WHEN", help="Before this date or duration back.")
    ] = None,
    out: Annotated[
        str, typer.Option("--out", "-o", metavar="FILE", help="Where to write (- is stdout).")
    ] = "-",
) -> None:
    """Write the audit log as JSON lines for a SIEM: one line per audited event (a batch of
    engine events becomes one line each), with seq, ts (ISO 8601), actor, action, run_id,
    task_id, kind, state, target and detail."""
    from lockgate import api
    from lockgate.governance.audit import export_lines, parse_when

    project = Project.load()
    now = time.time()
    start = parse_when(since, "--since", now) if since is not None else None
    end = parse_when(until, "--until", now) if until is not None else None
    store = api.open_store(project)
    lines = (json.dumps(line, default=str) + "\n" for line in export_lines(store, start, end))
    if out == "-":
        sys.stdout.writelines(lines)
        sys.stdout.flush()
        return
    count = _write_private(Path(out), lines)
    sys.stderr.write(f"wrote {count} line(s) to {out}\n")


def _write_private(path: Path, lines: Any) -> int:
    """Write lines to `path` (0600), atomically: a failure leaves the old file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")
    count = 0
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            for text in lines:
                stream.write(text)
                count += 1
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return count


@audit_app.command("checkpoint")
def checkpoint(
    export_to: Annotated[
        str | None,
        typer.Option(
            "--export",
            metavar="DIR|s3://bucket/prefix",
            help="Export every checkpoint not exported yet there (default: [audit] export).",
        ),
    ] = None,
) -> None:
    """Sign a checkpoint of the chain now, and export the checkpoints not exported yet (one
    JSON file each, checkpoint-<seq>.json): kept out of the database's reach, they expose a
    rewritten or truncated chain."""
    from lockgate import api
    from lockgate.governance.audit import check_destination, export_checkpoints, settings

    project = Project.load()
    destination = export_to or settings(project).export
    if destination is not None:
        destination = check_destination(destination, "--export")
    store = api.open_store(project)
    cp = store.audit_checkpoint()
    if cp is None:
        sys.stdout.write("the audit chain is empty: nothing to checkpoint\n")
    else:
        sys.stdout.write(
            f"checkpoint at record {cp.seq} (hash {cp.hash[:16]}..., key {cp.key_id})\n"
        )
    if destination is None:
        return
    written = export_checkpoints(store, destination)
    sys.stdout.write(f"exported {len(written)} checkpoint(s) to {destination}\n")


@audit_app.command("prune")
def prune(
    keep: Annotated[
        str, typer.Option("--keep", metavar="AGE", help="Keep records younger than this (365d).")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete old audit records, cutting only at a signed checkpoint made before the cutoff
    (never past it); that checkpoint stays as the anchor verification starts from. The chain
    must verify first; the prune itself is recorded in it."""
    from lockgate import api
    from lockgate.config import parse_duration
    from lockgate.governance.audit import iso
    from lockgate.store.audit import user_actor

    project = Project.load()
    cutoff = time.time() - parse_duration(keep)
    store = api.open_store(project)
    anchors = [cp for cp in store.audit_checkpoints() if cp.ts <= cutoff]
    if not anchors:
        sys.stdout.write(
            f"nothing to prune: no checkpoint was made before {iso(cutoff)} (pruning cuts only "
            "at a checkpoint; `lockgate audit checkpoint` makes one)\n"
        )
        return
    anchor = anchors[-1]
    count = store.chain.count(upto=anchor.seq)
    if count == 0:
        sys.stdout.write(f"nothing to prune: the chain starts after record {anchor.seq}\n")
        return
    finding = store.audit_verify(_exported(project, None))
    if not finding.ok:
        fail(
            f"the audit chain does not verify ({finding.message}); pruning would delete the "
            "evidence: investigate first"
        )
    if not yes:
        if not sys.stdin.isatty():
            fail(
                f"this deletes {count} audit record(s) up to record {anchor.seq}; "
                "pass --yes to confirm"
            )
        typer.confirm(
            f"delete {count} audit record(s) up to record {anchor.seq} ({iso(anchor.ts)})?",
            abort=True,
        )
    done = store.audit_prune(cutoff, actor=user_actor())
    sys.stdout.write(
        f"deleted {done.records} audit record(s) up to record {done.anchor} and "
        f"{done.checkpoints} older checkpoint(s); verification starts at the checkpoint "
        f"{done.anchor}\n"
    )


@audit_app.command("show")
def show(
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=10000, help="How many records.")
    ] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Show the newest audit records."""
    from lockgate import api
    from lockgate.governance.audit import iso, summary

    project = Project.load()
    records = api.open_store(project).chain.latest(limit)
    if json_out:
        doc = {
            "records": [
                {
                    "seq": r.seq,
                    "ts": iso(r.ts),
                    "actor": r.actor,
                    "action": r.action,
                    "target": r.target,
                    "run_id": r.run_id,
                    "summary": summary(r),
                }
                for r in records
            ]
        }
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    if not records:
        _console().print("the audit log is empty")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("seq", "time", "actor", "action", "target", "detail"):
        table.add_column(col, overflow="fold", no_wrap=col not in ("detail", "target"))
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.ts))
        target = r.target or (f"run {r.run_id}" if r.run_id else "-")
        table.add_row(
            str(r.seq), when, _plain(r.actor), r.action, _plain(target), _plain(summary(r))
        )
    _console().print(table)
