"""`lockgate lineage DATASET`: the datasets a dataset was made from and those made from it, with
the jobs (pipeline.task, last run) between them; `lockgate lineage --subject ID`: where one
person's data went (GDPR). Registered on the main `app` when `cli.main` is imported."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lockgate.cli.main import JsonOpt, _console, _plain, _shown_path, app, fail
from lockgate.config import Project
from lockgate.errors import NotFoundError

if TYPE_CHECKING:
    from lockgate.governance.lineage import Edge, Graph
    from lockgate.governance.subjects import SubjectReport
    from lockgate.store.store import Store


@app.command("lineage")
def lineage(
    dataset: Annotated[
        str | None,
        typer.Argument(help="A path (relative to the project), a dataset URI or catalogue name."),
    ] = None,
    upstream: Annotated[
        bool, typer.Option("--upstream", help="Only what the dataset was made from.")
    ] = False,
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Only what was made from the dataset.")
    ] = False,
    depth: Annotated[
        int, typer.Option("--depth", min=1, max=50, help="Levels to follow each way.")
    ] = 5,
    subject: Annotated[
        str | None,
        typer.Option(
            "--subject",
            metavar="ID",
            help="Find where this person's data went (an e-mail, a customer id...); - reads "
            "it from standard input, so it stays out of the shell history.",
        ),
    ] = None,
    classification: Annotated[
        str | None,
        typer.Option(
            "--class", metavar="CLASS", help="With --subject: only columns of this class."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a dataset's lineage, or find a data subject's values in every dataset."""
    project = Project.load()
    if subject is not None:
        if dataset is not None or upstream or downstream:
            fail("--subject searches every dataset: give no DATASET, --upstream or --downstream")
        _subject(project, subject, classification, json_out)
        return
    if classification is not None:
        fail("--class goes with --subject (the class of the columns to search)")
    if dataset is None:
        fail("give a dataset (a path, a URI or a catalogue name), or --subject ID")
    from lockgate.governance.lineage import resolve, walk

    store = _store(project)
    both = upstream == downstream
    graph = walk(
        store,
        resolve(store, dataset, project.root),
        upstream=upstream or both,
        downstream=downstream or both,
        depth=depth,
    )
    if json_out:
        sys.stdout.write(json.dumps(graph.to_json()) + "\n")
        return
    _show_graph(graph, upstream or both, downstream or both)


def _store(project: Project) -> Store:
    """The project's metadata DB; NotFoundError when it has none yet (never creates one)."""
    import os

    from lockgate import api

    if project.db_url.startswith("sqlite:///") and not os.path.exists(
        project.db_url[len("sqlite:///") :]
    ):
        raise NotFoundError(
            "this project has no metadata database yet, so no lineage: run a pipeline first"
        )
    return api.open_store(project)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _name(uri: str) -> str:
    return _plain(_shown_path(uri) if "://" not in uri else uri)


def _job(edge: Edge) -> str:
    runs = f", {edge.runs} runs" if edge.runs > 1 else ""
    return f"[cyan]{_plain(edge.job)}[/] (last run {_plain(edge.run_id)}, {_when(edge.ts)}{runs})"


def _show_graph(graph: Graph, upstream: bool, downstream: bool) -> None:
    console = _console()
    info = graph.datasets[graph.root]
    tags = ", ".join(f"{k}={v}" for k, v in (info.get("tags") or {}).items())
    about = [str(info["kind"])] if info.get("kind") else []
    if info.get("rows") is not None:
        about.append(f"{info['rows']:,} row(s)")
    if tags:
        about.append(tags)
    suffix = f" ({_plain('; '.join(about))})" if about else ""
    console.print(f"[bold]{_name(graph.root)}[/]{suffix}")
    for wanted, edges, title, arrow in (
        (upstream, graph.upstream, "upstream (made from)", "<-"),
        (downstream, graph.downstream, "downstream (made into)", "->"),
    ):
        if not wanted:
            continue
        console.print(f"{title}:")
        if not edges:
            console.print("  (none recorded)")
            continue
        children: dict[str, list[Edge]] = {}
        for edge in edges:
            near = edge.output if arrow == "<-" else edge.input
            children.setdefault(near, []).append(edge)
        _tree(console, graph, children, graph.root, arrow, 1, {graph.root})
    if graph.truncated:
        console.print(
            f"(the graph goes on: past {graph.depth} level(s) or too many datasets; "
            "use --depth, or start from another dataset)"
        )


def _tree(
    console: Any,
    graph: Graph,
    children: dict[str, list[Edge]],
    node: str,
    arrow: str,
    level: int,
    path: set[str],
) -> None:
    for edge in children.get(node, []):
        far = edge.input if arrow == "<-" else edge.output
        pad = "  " * level
        cycle = " (cycle)" if far in path else ""
        console.print(f"{pad}{arrow} {_job(edge)} {arrow} {_name(far)}{cycle}")
        if not cycle:
            _tree(console, graph, children, far, arrow, level + 1, path | {far})


# -- subjects -----------------------------------------------------------------------------------
def _known_class(store: Any, classification: str) -> None:
    """`--class` names a class the catalogue holds, or one the scanner knows; else a
    one-line error with the closest (a misspelt class would search nothing, silently)."""
    from lockgate.errors import did_you_mean
    from lockgate.governance.policy import split_tag
    from lockgate.privacy.entities import FREE_TEXT, Entity

    known = {e.classification for e in Entity} | {FREE_TEXT}
    for row in store.catalogue_entries():
        known.update(c for f in row["schema"] or () if (c := split_tag(f.get("tag"))[0]))
    if classification not in known:
        fail(
            f"--class {classification!r} is in no dataset of the catalogue and is not a class "
            f"lockgate finds{did_you_mean(classification, sorted(known))}"
        )


def _subject(project: Project, subject: str, classification: str | None, json_out: bool) -> None:
    from lockgate.governance.subjects import find_subject

    if subject == "-":
        subject = sys.stdin.readline().rstrip("\r\n")
    if not subject.strip():
        fail("--subject: give the subject's identifier (an e-mail address, a customer id...)")
    if classification is not None and (
        "/" in classification or "." not in classification.strip(".")
    ):
        fail(
            f"--class {classification!r} is not a classification; give one such as pii.email "
            "(without a /form: both raw and tokenized columns of it are searched)"
        )
    store = _store(project)
    if classification is not None:
        _known_class(store, classification)
    report = find_subject(project, store, subject, classification)
    if json_out:
        sys.stdout.write(json.dumps(report.to_json()) + "\n")
        return
    _show_subject(report)


def _show_subject(report: SubjectReport) -> None:
    console = _console()
    scope = f"columns of class {report.classification}" if report.classification else "columns"
    keys = ", ".join(report.key_ids) or "none (no keyring: tokenized columns not searched)"
    console.print(
        f"searched {report.searched} dataset(s) with classified {scope} for the subject "
        f"(tokens of key(s) {_plain(keys)}):"
    )
    if not report.matches:
        console.print("  the subject was not found")
    for m in report.matches:
        console.print(
            f"  {_name(m.dataset)}  column {_plain(m.column)} ({_plain(m.tag)}, {m.form}): "
            f"{m.rows:,} row(s)"
        )
    if report.paths:
        console.print("lineage between them:")
        for edge in report.paths:
            console.print(f"  {_name(edge.input)} -> {_job(edge)} -> {_name(edge.output)}")
    for uri, reason in report.skipped:
        console.print(f"[yellow]not searched[/]: {_name(uri)}: {_plain(reason)}")
    if report.truncated:
        console.print("(the catalogue has more datasets than one search reads)")
