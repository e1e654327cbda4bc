"""Datasets: the catalogue (schemas with classification tags, zones, last writes), one
dataset's details, its lineage graph, and a run's lineage edges and data-quality results.

Who sees what: a caller with the global read permission sees every dataset. One who may read
some pipelines only (grants) sees the datasets that runs of those pipelines wrote or read, the
lineage edges those runs made (a graph is cut where the next edge belongs to another
pipeline), and their decisions and quality results; a dataset written outside any run
(`lockgate copy`) is shown to global readers only.

Datasets are named as their catalogue key (`io.catalogue.key`), passwords hidden; files and
SQLite databases inside the project folder relative to it (`data/orders.csv`,
`sqlite:///out/shop.db#orders`), so the server's own paths stay private. Any of those
spellings, a path relative to the project or a full URI, names a dataset in `?uri=`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from lockgate.auth.accounts import Principal
from lockgate.auth.roles import READ
from lockgate.errors import LockgateError
from lockgate.server import redaction
from lockgate.server.api.common import CursorQ, Limit, Page, decode_cursor, encode_cursor, iso
from lockgate.server.api.runs import RunId, State, load_run
from lockgate.server.deps import readable_pipelines, require
from lockgate.server.errors import ApiError, responses
from lockgate.server.paths import dataset_name, project_roots, relative
from lockgate.server.state import ServerState

if TYPE_CHECKING:
    from lockgate.governance.lineage import Edge

router = APIRouter(prefix="/api/v1", tags=["datasets"])

MAX_DEPTH = 10
"""Levels a lineage graph follows each way, at most."""
MAX_NODES = 500
"""Datasets one lineage graph holds, at most (`truncated` says it was cut)."""
DETAIL_DECISIONS = 10
"""The latest decisions shown with a dataset."""
DETAIL_QUALITY = 100
"""Quality results of its last write shown with a dataset."""
UriQ = Annotated[
    str,
    Query(
        min_length=1,
        max_length=2048,
        description="The dataset: as listed, a path relative to the project, or a URI.",
    ),
]
Reader = Annotated[Principal, Depends(require(READ))]


# -- how datasets are named ---------------------------------------------------------------------
def _roots(state: ServerState) -> tuple[str, ...]:
    return project_roots(str(state.project.root))


def shown(state: ServerState, key: str | None) -> str | None:
    """A catalogue key as the API shows it: relative to the project folder when inside it,
    passwords hidden."""
    return None if key is None else dataset_name(key, _roots(state))


def shown_text(state: ServerState, text: str | None) -> str | None:
    """`text` (a message, a zone pattern) with the project folder's path left out."""
    return None if text is None else str(relative(text, _roots(state)))


def storable(value: str, what: str) -> str:
    """`value` unless it holds what no database column can store (a NUL character, a lone
    surrogate); 422."""
    if "\x00" in value:
        raise ApiError(422, f"{what}: a NUL character is not allowed")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ApiError(422, f"{what}: not valid UTF-8 text") from None
    return value


def id_cursor(cursor: str | None) -> int | None:
    """The row id a cursor of an id-ordered page holds (a 64-bit integer); 422 otherwise."""
    found = decode_cursor(cursor, (int,))
    if found is None:
        return None
    if not 0 <= int(found[0]) < 1 << 63:
        raise ApiError(422, "cursor is not one this API gave out", "invalid_cursor")
    return int(found[0])


def dataset_key(state: ServerState, text: str, what: str = "uri") -> str:
    """The catalogue key of a dataset named as the API shows it, a path or a URI; 422 when
    it is none of those."""
    from lockgate.governance.lineage import dataset_key as key_of

    storable(text, what)
    try:
        return key_of(text, state.project.root)
    except LockgateError as exc:
        raise ApiError(422, f"{what}: {str(exc).splitlines()[0]}") from None
    except ValueError:  # urlsplit's own error (io.dataset.parse lets `http://[` through)
        raise ApiError(422, f"{what}: not a valid path or URI") from None


# -- what is shown --------------------------------------------------------------------------
class ColumnInfo(BaseModel):
    name: str
    type: str | None = None
    tag: str | None = None
    """Its classification tag (`pii.email`, `pii.email/tokenized`), null when unclassified."""
    classification: str | None = None
    form: str | None = None
    """How the value is protected (`tokenized`, `masked`...); null when raw or unclassified."""


class DatasetSummary(BaseModel):
    uri: str
    kind: str | None
    zone: str | None
    zone_reason: str | None
    """`last decision` (the zone the gate last placed a write in), or what lockgate.toml says
    (`pattern staging/*`, `connection NAME`, `default`)."""
    rows: int | None
    columns: list[ColumnInfo]
    classifications: list[str]
    pipeline: str | None
    last_run: str | None
    last_task: str | None
    updated_at: str | None


class QualityResult(BaseModel):
    id: int
    run_id: str
    pipeline: str | None
    task: str
    attempt: int
    dataset: str | None
    name: str
    kind: str
    severity: str
    status: Literal["passed", "failed"]
    failing_rows: int | None
    message: str | None
    examples: list[Any] = Field(default_factory=list)
    """A few failing rows; classified values masked (`***`), other PII redacted."""
    at: str | None


class Violation(BaseModel):
    rule: str | None
    column: str | None
    tag: str | None
    classification: str | None
    form: str | None
    zone: str | None
    severity: str | None
    message: str | None
    reference: str | None
    waiver: str | None = None
    """The waiver that let it through (in `waived`)."""


class Decision(BaseModel):
    id: int
    run_id: str | None
    """Null: a write made outside a run (`lockgate copy`)."""
    pipeline: str | None
    task: str | None
    attempt: int
    dataset: str
    zone: str
    zone_reason: str | None
    decision: Literal["allow", "waived", "deny"]
    outcome: Literal["allowed", "waived", "refused"]
    source_zones: list[str]
    origins: list[str]
    columns: list[ColumnInfo]
    violations: list[Violation]
    waived: list[Violation]
    ignored_waivers: list[str]
    """Waivers in force that are not signed with the project's key (forged): ignored."""
    policy: str | None
    """The fingerprint of the zones and rules that decided."""
    at: str | None


class DatasetDetail(DatasetSummary):
    in_catalogue: bool
    """False: known from lineage (read, never written by lockgate) or from the gate's
    decisions only (every write refused)."""
    decisions: list[Decision]
    """The gate's latest decisions on writes of it, newest first."""
    quality: list[QualityResult]
    """The data-quality results of the run that wrote it last, on this dataset."""


class LineageNode(BaseModel):
    uri: str
    distance: int
    """Levels from the dataset asked for: negative upstream, positive downstream."""
    kind: str | None = None
    rows: int | None = None
    updated_at: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class LineageEdge(BaseModel):
    input: str
    output: str
    pipeline: str | None
    task: str
    last_run: str
    last_at: str | None
    runs: int
    """How many runs made this output from this input with this task."""


class LineageGraph(BaseModel):
    uri: str
    depth: int
    direction: Literal["up", "down", "both"]
    truncated: bool
    """The graph goes on past `depth` levels or the node cap."""
    nodes: list[LineageNode]
    edges: list[LineageEdge]


class RunLineageEdge(BaseModel):
    id: int
    task: str
    input: str
    output: str
    at: str | None


# -- conversions ----------------------------------------------------------------------------
def _column(entry: dict[str, Any]) -> ColumnInfo:
    from lockgate.governance.policy import split_tag

    tag = entry.get("tag")
    cls, form = split_tag(tag)
    return ColumnInfo(
        name=str(entry.get("name")),
        type=entry.get("type"),
        tag=tag,
        classification=cls,
        form=form,
    )


def _placement(state: ServerState, key: str) -> tuple[str | None, str | None]:
    from lockgate.governance.gate import governance

    try:
        placed = governance(state.project).zones.place(key)
    except (LockgateError, ValueError):  # a broken lockgate.toml: the zone is not known
        return None, None
    return placed.zone, shown_text(state, placed.reason)


def summaries(
    state: ServerState, rows: list[dict[str, Any]], allowed: set[str] | None
) -> list[DatasetSummary]:
    """Catalogue rows as shown: zones (the last decision's, else lockgate.toml's) and the
    last write's pipeline, both in one query for the page."""
    store = state.store
    zones = store.latest_zones_of([r["uri"] for r in rows])
    runs = store.get_runs(sorted({r["run_id"] for r in rows if r.get("run_id")}))
    out = []
    for row in rows:
        key = row["uri"]
        zone, reason = (zones[key], "last decision") if key in zones else _placement(state, key)
        pipeline = (runs.get(row.get("run_id") or "") or {}).get("pipeline_id")
        hidden = allowed is not None and pipeline not in allowed
        columns = [_column(c) for c in row.get("schema") or ()]
        out.append(
            DatasetSummary(
                uri=shown(state, key) or key,
                kind=row.get("kind"),
                zone=zone,
                zone_reason=reason,
                rows=row.get("rows"),
                columns=columns,
                classifications=sorted({c.classification for c in columns if c.classification}),
                pipeline=None if hidden else pipeline,
                last_run=None if hidden else row.get("run_id"),
                last_task=None if hidden else row.get("task_id"),
                updated_at=iso(row.get("updated_at")),
            )
        )
    return out


def quality_result(state: ServerState, row: dict[str, Any]) -> QualityResult:
    """A stored quality result as shown: its message and examples redacted."""
    detail = row.get("detail") or {}
    examples = detail.get("examples") if isinstance(detail, dict) else None
    message = detail.get("message") if isinstance(detail, dict) else None
    return QualityResult(
        id=row["id"],
        run_id=row["run_id"],
        pipeline=row.get("pipeline_id"),
        task=row["task_id"],
        attempt=int(row["attempt"]),
        dataset=shown(state, row.get("dataset")),
        name=row["name"],
        kind=row["check_kind"],
        severity=row["severity"],
        status="passed" if row["passed"] else "failed",
        failing_rows=row.get("failing_rows"),
        message=redaction.text(shown_text(state, str(message))) if message is not None else None,
        examples=redaction.json_value(list(examples or [])),
        at=iso(row.get("ts")),
    )


OUTCOMES: dict[str, Literal["allowed", "waived", "refused"]] = {
    "allow": "allowed",
    "waived": "waived",
    "deny": "refused",
}
"""The gate's recorded decisions and how the API names them."""


def _violation(state: ServerState, item: Any) -> Violation:
    doc = item if isinstance(item, dict) else {}
    message = doc.get("message")
    return Violation(
        rule=doc.get("rule"),
        column=doc.get("column"),
        tag=doc.get("tag"),
        classification=doc.get("class"),
        form=doc.get("form"),
        zone=doc.get("zone"),
        severity=doc.get("severity"),
        message=redaction.text(shown_text(state, str(message))) if message else message,
        reference=doc.get("reference"),
        waiver=doc.get("waiver"),
    )


def decision(state: ServerState, row: dict[str, Any]) -> Decision:
    """A recorded gate decision as shown (dataset names relative, messages redacted)."""
    detail = row.get("detail")
    if not isinstance(detail, dict):
        detail = {}
    outcome: Literal["allow", "waived", "deny"] = (
        row["decision"] if row["decision"] in ("allow", "waived") else "deny"
    )
    return Decision(
        id=row["id"],
        run_id=row.get("run_id"),
        pipeline=row.get("pipeline_id"),
        task=row.get("task_id"),
        attempt=int(row.get("attempt") or 0),
        dataset=shown(state, row["dataset"]) or row["dataset"],
        zone=row["zone"],
        zone_reason=shown_text(state, detail.get("zone_reason")),
        decision=outcome,
        outcome=OUTCOMES[outcome],
        source_zones=[str(z) for z in detail.get("source_zones") or ()],
        origins=[str(z) for z in detail.get("origins") or ()],
        columns=[_column(c) for c in detail.get("columns") or () if isinstance(c, dict)],
        violations=[_violation(state, v) for v in detail.get("violations") or ()],
        waived=[_violation(state, v) for v in detail.get("waived") or ()],
        ignored_waivers=[str(w) for w in detail.get("ignored_waivers") or ()],
        policy=detail.get("policy"),
        at=iso(row.get("ts")),
    )


# -- access ---------------------------------------------------------------------------------
def visible(state: ServerState, who: Principal) -> set[str] | None:
    """The pipelines whose datasets `who` may see: None for all (global read)."""
    return readable_pipelines(state, who)


def known_dataset(state: ServerState, who: Principal, text: str) -> tuple[str, set[str] | None]:
    """The key of a dataset the catalogue, lineage or the gate's decisions know and `who` may
    see, and the pipelines they may read (None: all); 404 or 403 otherwise."""
    key = dataset_key(state, text)
    store = state.store
    if store.dataset(key) is None and not store.in_lineage(key) and not store.dataset_decided(key):
        raise ApiError(
            404,
            f"no dataset {shown(state, key)!r} in the catalogue, lineage or policy decisions (no "
            "run wrote, read or tried to write it); GET /api/v1/datasets lists them",
        )
    allowed = visible(state, who)
    if allowed is not None and not store.dataset_visible(key, sorted(allowed)):
        raise ApiError(
            403,
            f"no pipeline you may read wrote, read or tried to write dataset {shown(state, key)!r}",
        )
    return key, allowed


# -- endpoints ------------------------------------------------------------------------------
@router.get("/datasets", response_model=Page[DatasetSummary], responses=responses(401, 403, 422))
def list_datasets(
    state: State, who: Reader, cursor: CursorQ = None, limit: Limit = 50
) -> Page[DatasetSummary]:
    """The dataset catalogue in name order: every dataset lockgate wrote, with its columns
    and their classification tags, its zone and its last write."""
    after = decode_cursor(cursor, (str,))
    start = dataset_key(state, after[0], "cursor") if after else ""
    allowed = visible(state, who)
    rows, nxt = state.store.catalogue_page(
        start, limit, pipelines=None if allowed is None else sorted(allowed)
    )
    return Page[DatasetSummary](
        items=summaries(state, rows, allowed),
        next_cursor=encode_cursor(shown(state, nxt)) if nxt is not None else None,
    )


@router.get(
    "/datasets/detail", response_model=DatasetDetail, responses=responses(401, 403, 404, 422)
)
def show_dataset(uri: UriQ, state: State, who: Reader) -> DatasetDetail:
    """One dataset: its columns with their tags, the gate's latest decisions on it and the
    quality results of the run that wrote it last."""
    key, allowed = known_dataset(state, who, uri)
    store = state.store
    row = store.dataset(key)
    pipes = None if allowed is None else sorted(allowed)
    found = row or {"uri": key, "kind": None, "schema": None, "rows": None, "run_id": None}
    [summary] = summaries(state, [found], allowed)
    decided, _ = store.decisions_page(dataset=key, pipelines=pipes, limit=DETAIL_DECISIONS)
    quality: list[QualityResult] = []
    if summary.last_run is not None:
        results, _ = store.run_quality_page(summary.last_run, limit=DETAIL_QUALITY, dataset=key)
        quality = [quality_result(state, r) for r in results]
    return DatasetDetail(
        **summary.model_dump(),
        in_catalogue=row is not None,
        decisions=[decision(state, d) for d in decided],
        quality=quality,
    )


def _reachable(
    root: str, edges: list[Edge], up: bool, down: bool
) -> tuple[dict[str, int], list[Edge]]:
    """The datasets reachable from `root` over `edges` (up: against them, down: along them)
    with their distances, and the edges on the way: a graph cut to the edges a caller may
    see."""
    distance = {root: 0}
    kept: dict[int, Edge] = {}
    for sign, wanted in ((-1, up), (1, down)):
        if not wanted:
            continue
        around: dict[str, list[tuple[int, Edge]]] = {}
        for i, edge in enumerate(edges):
            near = edge.output if sign < 0 else edge.input
            around.setdefault(near, []).append((i, edge))
        frontier, level, seen = [root], 0, {root}
        while frontier:
            level += 1
            nxt = []
            for name in frontier:
                for i, edge in around.get(name, ()):
                    far = edge.input if sign < 0 else edge.output
                    kept[i] = edge
                    if far not in seen:
                        seen.add(far)
                        distance.setdefault(far, sign * level)
                        nxt.append(far)
            frontier = nxt
    return distance, [kept[i] for i in sorted(kept)]


@router.get(
    "/datasets/lineage", response_model=LineageGraph, responses=responses(401, 403, 404, 422)
)
def dataset_lineage(
    uri: UriQ,
    state: State,
    who: Reader,
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH, description="Levels each way.")] = 3,
    direction: Annotated[
        Literal["up", "down", "both"],
        Query(description="up: what it was made from; down: what was made from it."),
    ] = "both",
) -> LineageGraph:
    """The lineage graph around a dataset: the datasets it was made from and those made from
    it, with the tasks between them (last run, how many runs), bounded by `depth` and
    a cap of datasets."""
    from lockgate.governance.lineage import walk

    key, allowed = known_dataset(state, who, uri)
    up, down = direction in ("up", "both"), direction in ("down", "both")
    graph = walk(state.store, key, upstream=up, downstream=down, depth=depth, max_nodes=MAX_NODES)
    edges = [*graph.upstream, *graph.downstream]
    distances = {name: int(info.get("distance", 0)) for name, info in graph.datasets.items()}
    if allowed is not None:
        readable = [e for e in edges if e.pipeline_id in allowed]
        distances, edges = _reachable(key, readable, up, down)
    nodes = [
        LineageNode(
            uri=shown(state, name) or name,
            distance=distances[name],
            kind=graph.datasets[name].get("kind"),
            rows=graph.datasets[name].get("rows"),
            updated_at=iso(graph.datasets[name].get("updated_at")),
            tags=dict(graph.datasets[name].get("tags") or {}),
        )
        for name in sorted(distances, key=lambda n: (distances[n], n))
    ]
    return LineageGraph(
        uri=shown(state, key) or key,
        depth=depth,
        direction=direction,
        truncated=graph.truncated,
        nodes=nodes,
        edges=[
            LineageEdge(
                input=shown(state, e.input) or e.input,
                output=shown(state, e.output) or e.output,
                pipeline=e.pipeline_id,
                task=e.task_id,
                last_run=e.run_id,
                last_at=iso(e.ts),
                runs=e.runs,
            )
            for e in edges
        ],
    )


@router.get(
    "/runs/{run_id}/lineage",
    response_model=Page[RunLineageEdge],
    responses=responses(401, 403, 404, 422),
)
def run_lineage(
    run_id: RunId, state: State, who: Reader, cursor: CursorQ = None, limit: Limit = 200
) -> Page[RunLineageEdge]:
    """A run's lineage: each dataset a task wrote with each dataset it was made from."""
    load_run(state, who, run_id)
    rows, nxt = state.store.run_lineage_page(run_id, id_cursor(cursor) or 0, limit)
    return Page[RunLineageEdge](
        items=[
            RunLineageEdge(
                id=r["id"],
                task=r["task_id"],
                input=shown(state, r["input_uri"]) or r["input_uri"],
                output=shown(state, r["output_uri"]) or r["output_uri"],
                at=iso(r["ts"]),
            )
            for r in rows
        ],
        next_cursor=encode_cursor(nxt) if nxt is not None else None,
    )


@router.get(
    "/runs/{run_id}/quality",
    response_model=Page[QualityResult],
    responses=responses(401, 403, 404, 422),
)
def run_quality(
    run_id: RunId, state: State, who: Reader, cursor: CursorQ = None, limit: Limit = 200
) -> Page[QualityResult]:
    """A run's data-quality results in the order its checks ran (examples masked)."""
    load_run(state, who, run_id)
    rows, nxt = state.store.run_quality_page(run_id, id_cursor(cursor) or 0, limit)
    return Page[QualityResult](
        items=[quality_result(state, r) for r in rows],
        next_cursor=encode_cursor(nxt) if nxt is not None else None,
    )
