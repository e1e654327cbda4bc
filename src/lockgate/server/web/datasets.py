"""The dataset catalogue (classification tags as chips) and one dataset's page: its columns,
tags, last write and a lineage graph (upstream datasets and tasks -> it -> downstream)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response

from lockgate.auth.accounts import Principal
from lockgate.auth.roles import READ
from lockgate.server.api.common import CursorQ
from lockgate.server.api.datasets import (
    LineageGraph,
    dataset_lineage,
    list_datasets,
    show_dataset,
)
from lockgate.server.deps import require, server_state
from lockgate.server.paths import dataset_name
from lockgate.server.web import svg
from lockgate.server.web.errorpages import PageRoute
from lockgate.server.web.render import cut_left, render, roots_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE = 50
LINEAGE_DEPTH = 3


def chip_class(tag: str | None) -> str:
    """The chip colour of a classification tag: protected forms, then its family."""
    if not tag:
        return "chip"
    if "/" in tag:
        return "chip chip-safe"
    family = tag.split(".", 1)[0]
    if family in ("pii", "pci", "phi", "secret"):
        return f"chip chip-{family}"
    return "chip chip-other"


@router.get("/datasets")
def datasets_page(
    request: Request,
    who: Annotated[Principal, Depends(require(READ))],
    cursor: CursorQ = None,
) -> Response:
    """The catalogue in name order, a page at a time (the API's list: a user with grants
    only sees the datasets of the pipelines they may read)."""
    state = server_state(request)
    page = list_datasets(state, who, cursor=cursor, limit=PAGE)
    items = [{"d": d, "tags": sorted({c.tag for c in d.columns if c.tag})} for d in page.items]
    return render(
        request,
        "datasets.html",
        {
            "items": items,
            "cursor": cursor,
            "next_cursor": page.next_cursor,
            "chip_class": chip_class,
        },
    )


def lineage_graph(graph: LineageGraph, roots: Sequence[str] = ()) -> svg.Graph:
    """The lineage graph as boxes: datasets on even columns (named as every page names
    them: relative to the project folder `roots`, cut from the left to fit), the tasks between
    them on odd ones, the dataset asked for in the middle."""
    distance = {n.uri: n.distance for n in graph.nodes}
    nodes: dict[str, svg.Node] = {}
    edges: list[svg.Edge] = []
    for uri, d in distance.items():
        name = dataset_name(uri, roots)
        nodes["d:" + uri] = svg.Node(
            key="d:" + uri,
            text=cut_left(name, svg.LABEL_CHARS),
            layer=2 * d,
            kind="dataset",
            state="root" if uri == graph.uri else "dataset",
            href=None if uri == graph.uri else f"/datasets/view?uri={quote(uri, safe='')}",
            title=name,
        )
    for e in graph.edges:
        if e.input not in distance or e.output not in distance:
            continue
        upstream = distance[e.output] <= 0 and distance[e.input] < 0
        layer = 2 * distance[e.output] - 1 if upstream else 2 * distance[e.input] + 1
        job = f"{e.pipeline}.{e.task}" if e.pipeline else e.task
        key = f"t:{job}@{layer}"
        if key not in nodes:
            nodes[key] = svg.Node(
                key=key,
                text=e.task,
                sub=e.pipeline or "",
                layer=layer,
                kind="job",
                state="job",
                href=f"/pipelines/{e.pipeline}" if e.pipeline else None,
                title=f"{job} · {e.runs} run(s), last {e.last_run}",
            )
        edges += [svg.Edge("d:" + e.input, key), svg.Edge(key, "d:" + e.output)]
    low = min((n.layer for n in nodes.values()), default=0)
    for n in nodes.values():
        n.layer -= low
    unique = list({(e.source, e.target): e for e in edges}.values())
    return svg.layout(list(nodes.values()), unique)


@router.get("/datasets/view")
def dataset_page(
    request: Request,
    who: Annotated[Principal, Depends(require(READ))],
    uri: Annotated[str, Query(min_length=1, max_length=2048)],
) -> Response:
    """A dataset: columns with their classification tags, its zone and last write, the gate's
    latest decisions on it, its quality results, and its lineage."""
    state = server_state(request)
    detail = show_dataset(uri, state, who)
    graph = dataset_lineage(uri, state, who, depth=LINEAGE_DEPTH, direction="both")
    return render(
        request,
        "dataset.html",
        {
            "d": detail,
            "tags": sorted({c.tag for c in detail.columns if c.tag}),
            "graph": lineage_graph(graph, roots_of(request)),
            "lineage": graph,
            "chip_class": chip_class,
        },
    )
