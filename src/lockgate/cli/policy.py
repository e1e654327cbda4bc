"""`lockgate policy ...`: zones, policy packs, the static check of a pipeline, waivers and the
gate's decisions. Registered on the main `app` when `cli.main` is imported."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from lockgate.cli.main import JsonOpt, _console, _load, _plain, app, fail
from lockgate.config import Project

policy_app = typer.Typer(
    no_args_is_help=True,
    help="Zones, policy packs and the gate: check a pipeline before it runs, list decisions, "
    "manage waivers.",
)
app.add_typer(policy_app, name="policy")


def _echo_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2, default=str))


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _store(project: Project) -> Any:
    from lockgate import api

    return api.open_store(project)


@policy_app.command("check")
def check(
    pipeline: Annotated[str, typer.Argument(help="A pipeline id or file.")],
    strict: Annotated[
        bool,
        typer.Option(help="Also fail (exit 1) when a write can only be judged when it runs."),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Evaluate a pipeline's writes against the zones and policies before it runs.

    Each copy, sql and mask task is judged from its declared datasets and zones, the tags
    declared or recorded in the catalogue, the schemas of local sources, the tags masking
    leaves and the waivers in force. Exit code 1 when a write would be refused (for CI);
    writes only the run can judge are listed as run-time (with --strict, they fail too)."""
    from lockgate.governance.static import check_pipeline

    project = Project.load()
    pipe = _load(pipeline, project)
    writes = check_pipeline(pipe, project)
    denied = [w for w in writes if w.verdict == "deny"]
    later = [w for w in writes if w.verdict == "unknown"]
    failed = bool(denied or (strict and later))
    if json_out:
        _echo_json({"pipeline": pipe.id, "ok": not failed, "writes": [w.to_json() for w in writes]})
        raise typer.Exit(1 if failed else 0)
    console = _console()
    if not writes:
        console.print(f"{pipe.id}: no copy, sql or mask task writes a dataset; nothing to check")
        raise typer.Exit(0)
    marks = {"allow": "ok", "warn": "warn", "deny": "DENY", "unknown": "run-time"}
    for w in writes:
        froms = ", ".join(sorted({s["zone"] for s in w.sources})) or "-"
        console.print(
            f"{marks[w.verdict]:8} {_plain(w.task)}: {w.action} -> {_plain(w.target)} "
            f"(zone {w.zone}, data from {froms})"
        )
        for v in w.violations:
            console.print(f"         {v.severity}: {_plain(v.message)} ({v.rule})")
        for note in w.notes:
            console.print(f"         note: {_plain(note)}")
    verdict = f"{len(denied)} would be refused" if denied else "none would be refused"
    if later:
        verdict += f", {len(later)} can only be judged when it runs"
    console.print(f"{pipe.id}: {len(writes)} write(s) checked; {verdict}")
    raise typer.Exit(1 if failed else 0)


@policy_app.command("show")
def show(
    pack: Annotated[str | None, typer.Argument(help="A pack name (default: every pack).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """The enabled policy packs and their rules: classes, zones, allowed forms, references."""
    from lockgate.governance.gate import governance

    gov = governance(Project.load())
    packs = [gov.policy.pack(pack)] if pack else list(gov.policy.packs)
    if json_out:
        _echo_json(
            [
                {
                    "name": p.name,
                    "title": p.title,
                    "file": p.file,
                    "rules": [
                        {
                            "id": r.id,
                            "title": r.title,
                            "classes": list(r.classes),
                            "where": r.where.describe(),
                            "from": list(r.sources),
                            "allow": sorted(r.allow),
                            "values": r.values,
                            "max_columns": r.max_columns,
                            "severity": r.severity,
                            "reference": r.reference,
                        }
                        for r in p.rules
                    ],
                }
                for p in packs
            ]
        )
        return
    console = _console()
    for p in packs:
        console.print(f"[bold]{_plain(p.name)}[/bold]: {_plain(p.title)} ({len(p.rules)} rule(s))")
        for r in p.rules:
            allow = ", ".join(sorted(r.allow)) or "nothing"
            cap = f"; at most {r.max_columns} column(s)" if r.max_columns is not None else ""
            src = f", data from {', '.join(r.sources)}" if r.sources else ""
            console.print(
                f"  {r.id} ({r.severity}): {', '.join(r.classes)} in {r.where.describe()}{src}: "
                f"{allow}{cap}"
            )
            if r.reference:
                console.print(f"      {_plain(r.reference)}")


@policy_app.command("zones")
def zones(json_out: JsonOpt = False) -> None:
    """The project's zones, most trusted first, with what places datasets in them."""
    from lockgate.governance.gate import governance

    gov = governance(Project.load())
    items = sorted(gov.zones.zones.values(), key=lambda z: (-z.trust, z.name))
    if json_out:
        _echo_json(
            {
                "default_zone": gov.zones.default,
                "untagged": gov.policy.untagged,
                "zones": [
                    {
                        "name": z.name,
                        "trust": z.trust,
                        "datasets": list(z.datasets),
                        "connections": list(z.connections),
                        "untagged": z.untagged or gov.policy.untagged,
                    }
                    for z in items
                ],
            }
        )
        return
    console = _console()
    for z in items:
        places = [*z.datasets, *(f"connection {c}" for c in z.connections)]
        default = " (default for undeclared datasets)" if z.name == gov.zones.default else ""
        console.print(
            f"{z.name:10} trust {z.trust:>4}{default}"
            + (f": {_plain(', '.join(places))}" if places else "")
        )


@policy_app.command("waive")
def waive(
    rule: Annotated[str, typer.Option(help="The rule id waived (a pattern: pci.*).")],
    dataset: Annotated[
        str, typer.Option(help="The target dataset (URI, path or pattern) the waiver covers.")
    ],
    owner: Annotated[str, typer.Option(help="Who answers for the exception.")],
    reason: Annotated[str, typer.Option(help="Why it is needed (kept in the audit log).")],
    expires: Annotated[
        str, typer.Option(help="When it ends: a date (2026-12-31) or a duration (30d).")
    ],
    column: Annotated[
        list[str] | None, typer.Option(help="Only this column (repeat for several).")
    ] = None,
    zone: Annotated[str | None, typer.Option(help="Only writes into this zone.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Record an exception to a rule: explicit, reasoned, owned, expiring and audited."""
    from lockgate.errors import ConfigError
    from lockgate.governance.gate import check_waiver_scope, governance
    from lockgate.governance.waivers import dataset_pattern, expiry
    from lockgate.store.audit import user_actor

    project = Project.load()
    gov = governance(project)
    check_waiver_scope(rule, dataset, gov.policy)
    if zone is not None:
        gov.zones.get(zone)
    try:
        until = expiry(expires)
    except ConfigError as exc:
        fail(str(exc))
    store = _store(project)
    row = store.add_waiver(
        rule=rule,
        dataset=dataset_pattern(dataset, project.root),
        columns=list(column) if column else None,
        zone=zone,
        owner=owner,
        reason=reason,
        expires_at=until,
        actor=user_actor(),
    )
    if json_out:
        _echo_json(row)
        return
    cols = ", ".join(row["columns"]) if row.get("columns") else "every column"
    typer.echo(
        f"waiver {row['id']}: rule {rule} on {row['dataset']} ({cols}) until "
        f"{_when(row['expires_at'])}, owner {owner}"
    )


@policy_app.command("waivers")
def waivers(
    all_: Annotated[bool, typer.Option("--all", help="Also expired and revoked ones.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List the waivers in force (with --all, every waiver ever recorded)."""
    from lockgate.governance.waivers import status

    store = _store(Project.load())
    rows = store.waivers() if all_ else store.waivers(active_at=time.time())
    if json_out:
        _echo_json(rows)
        return
    if not rows:
        typer.echo("no waivers" + ("" if all_ else " in force"))
        return
    now = time.time()
    for w in rows:
        state = status(w, now)  # FORGED: not signed with the project's key; the gate ignores it
        cols = ", ".join(w["columns"]) if w.get("columns") else "every column"
        typer.echo(
            f"{w['id']}  {state:7}  {w['rule']} on {w['dataset']} ({cols}); owner {w['owner']}; "
            f"until {_when(w['expires_at'])}; reason: {w['reason']}"
        )


@policy_app.command("revoke")
def revoke(waiver_id: Annotated[str, typer.Argument(help="The waiver's id (w-...).")]) -> None:
    """End a waiver now (audited)."""
    from lockgate.store.audit import user_actor

    row = _store(Project.load()).revoke_waiver(waiver_id, user_actor())
    typer.echo(f"waiver {row['id']} revoked")


@policy_app.command("decisions")
def decisions(
    run: Annotated[str | None, typer.Option(help="Only this run's decisions.")] = None,
    since: Annotated[str | None, typer.Option(help="Only the last while (7d, 12h).")] = None,
    denied: Annotated[bool, typer.Option("--denied", help="Only refused writes.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many (newest first).")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """The gate's decisions on dataset writes, newest first."""
    from lockgate.config import parse_duration

    start = time.time() - parse_duration(since) if since else None
    rows = _store(Project.load()).policy_decisions(
        since=start, run_id=run, decision="deny" if denied else None, limit=limit
    )
    if json_out:
        _echo_json(rows)
        return
    if not rows:
        typer.echo("no policy decisions recorded")
        return
    for d in rows:
        detail = d.get("detail") or {}
        where = f"run {d['run_id']} task {d['task_id']}" if d.get("run_id") else "outside a run"
        typer.echo(
            f"{_when(d['ts'])}  {d['decision']:6}  {d['dataset']} (zone {d['zone']}), {where}"
        )
        for v in detail.get("violations") or ():
            typer.echo(f"    {v.get('severity')}: {v.get('message')} [{v.get('rule')}]")
        for v in detail.get("waived") or ():
            typer.echo(f"    waived by {v.get('waiver')}: {v.get('message')} [{v.get('rule')}]")
