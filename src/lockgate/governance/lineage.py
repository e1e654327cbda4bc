"""The lineage graph around a dataset, from the store's `lineage` edges and `datasets`
catalogue: what `lockgate lineage DATASET` shows.

The walk goes level by level, upstream (what the dataset was made from), downstream (what was
made from it) or both, with indexed queries only (`store/catalogue.py`); it ends at `depth`
levels or `max_nodes` datasets, whichever comes first, so a cycle or a huge graph always
terminates (`truncated` says the graph was cut).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate.errors import DataError, NotFoundError

if TYPE_CHECKING:
    from lockgate.store.store import Store

DEFAULT_DEPTH = 5
MAX_DEPTH = 50
MAX_NODES = 500
"""Datasets a walk visits at most (the graph shown is cut past them)."""
SUGGESTIONS = 3
SUGGEST_FROM = 5000
"""Catalogue keys compared with an unknown name (the first ones in key order)."""


@dataclass(frozen=True)
class Edge:
    """A task that made `output` from `input`: its pipeline and task, its last run (id and
    time) and how many runs did."""

    input: str
    output: str
    pipeline_id: str | None
    task_id: str
    run_id: str
    ts: float
    runs: int

    @property
    def job(self) -> str:
        return f"{self.pipeline_id}.{self.task_id}" if self.pipeline_id else self.task_id

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "output": self.output,
            "pipeline": self.pipeline_id,
            "task": self.task_id,
            "last_run": self.run_id,
            "last_ts": self.ts,
            "runs": self.runs,
        }


@dataclass
class Graph:
    """The datasets around `root`: each with its distance (negative upstream, positive
    downstream) and catalogue row when lockgate wrote it, and the edges between them."""

    root: str
    depth: int
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    upstream: list[Edge] = field(default_factory=list)
    downstream: list[Edge] = field(default_factory=list)
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.root,
            "depth": self.depth,
            "truncated": self.truncated,
            "datasets": [
                {"uri": uri, **info} for uri, info in sorted(self.datasets.items(), key=_order)
            ],
            "upstream": [e.to_json() for e in self.upstream],
            "downstream": [e.to_json() for e in self.downstream],
        }


def _order(item: tuple[str, dict[str, Any]]) -> tuple[int, str]:
    return (int(item[1].get("distance", 0)), item[0])


def dataset_key(text: str, root: Path) -> str:
    """The catalogue key of a dataset given as a path (relative to the project folder), a
    URI or a key (`io.catalogue.key`'s one spelling)."""
    from lockgate.io.catalogue import key

    if not isinstance(text, str) or not text.strip():
        raise DataError("give a dataset: a path, a URI or a name `lockgate lineage` showed")
    # plain and sqlite paths taken from the project folder
    return key(text.strip(), root)


def resolve(store: Store, text: str, root: Path) -> str:
    """The catalogue key of `text` if the store knows that dataset (in the catalogue or in
    lineage); else NotFoundError suggesting close names from the catalogue."""
    found = dataset_key(text, root)
    if store.dataset(found) is not None or store.in_lineage(found):
        return found
    raise NotFoundError(
        f"dataset {found} is not in this project's catalogue or lineage (no run wrote or read "
        f"it){_suggest(store, text, found)}"
    )


def _suggest(store: Store, text: str, found: str) -> str:
    import difflib

    names = store.dataset_names(limit=SUGGEST_FROM)
    if not names:
        return "; run a pipeline that reads or writes it first"
    # the same file or table name elsewhere, then a close whole key, then a close name
    base = _tail(text)
    tails: dict[str, list[str]] = {}
    for name in names:
        tails.setdefault(_tail(name), []).append(name)
    close = list(tails.get(base, []))
    close.extend(difflib.get_close_matches(found, names, n=SUGGESTIONS, cutoff=0.85))
    for tail in difflib.get_close_matches(base, list(tails), n=SUGGESTIONS, cutoff=0.75):
        close.extend(tails[tail])
    close = [c for c in dict.fromkeys(close) if c != found][:SUGGESTIONS]
    if not close:
        return "; `lockgate lineage` takes a path, a URI or a catalogue name"
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def walk(
    store: Store,
    root: str,
    *,
    upstream: bool = True,
    downstream: bool = True,
    depth: int = DEFAULT_DEPTH,
    max_nodes: int = MAX_NODES,
) -> Graph:
    """The lineage graph around the dataset `root` (a catalogue key), `depth` levels each way
    asked for, at most `max_nodes` datasets."""
    if not 1 <= depth <= MAX_DEPTH:
        raise DataError(f"--depth must be from 1 to {MAX_DEPTH}, got {depth}")
    graph = Graph(root, depth)
    graph.datasets[root] = {"distance": 0}
    for up, wanted in ((True, upstream), (False, downstream)):
        if wanted:
            _walk_one_way(store, graph, up, depth, max_nodes)
    for uri, row in store.datasets_info(list(graph.datasets)).items():
        graph.datasets[uri].update(
            kind=row["kind"],
            rows=row["rows"],
            updated_at=row["updated_at"],
            tags={c["name"]: c["tag"] for c in row.get("schema") or () if c.get("tag")},
        )
    return graph


def _walk_one_way(store: Store, graph: Graph, up: bool, depth: int, max_nodes: int) -> None:
    edges = graph.upstream if up else graph.downstream
    frontier = [graph.root]
    seen_edges: set[tuple[str, str, str | None, str]] = set()
    for level in range(1, depth + 1):
        if not frontier:
            return
        found = store.lineage_edges(frontier, upstream=up)
        next_frontier: list[str] = []
        for row in found:
            edge = Edge(
                row["input_uri"],
                row["output_uri"],
                row["pipeline_id"],
                row["task_id"],
                row["run_id"],
                float(row["ts"]),
                int(row["runs"]),
            )
            ident = (edge.input, edge.output, edge.pipeline_id, edge.task_id)
            if ident in seen_edges:
                continue
            other = edge.input if up else edge.output
            if other not in graph.datasets:
                if len(graph.datasets) >= max_nodes:
                    graph.truncated = True
                    continue
                graph.datasets[other] = {"distance": -level if up else level}
                next_frontier.append(other)
            seen_edges.add(ident)
            edges.append(edge)
        frontier = next_frontier
    if frontier and store.lineage_edges(frontier, upstream=up, limit=1):
        graph.truncated = True  # more lies beyond the depth asked for


def _tail(name: str) -> str:
    """A dataset's own name: its table (`#table`), else its file name, in lower case."""
    if "#" in name:
        return name.rsplit("#", 1)[1].lower()
    return os.path.basename(name.rstrip("/")).lower()
