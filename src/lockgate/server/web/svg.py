"""Geometry of the pictures drawn on the server as SVG: layered graphs (a pipeline's tasks,
a dataset's lineage) laid out left to right, and a run's Gantt timeline. The templates turn
these into SVG elements; colours come from CSS classes (one per state), so both themes apply."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lockgate.server.web.render import duration

NODE_W = 176
NODE_H = 38
GAP_X = 64
GAP_X_MAX = 112
"""Columns of a small graph are spread up to this far apart to use the card's width."""
GAP_Y = 16
PAD = 12
LABEL_CHARS = 21
SWEEPS = 4
"""Barycentre passes (down and up) that reorder each layer to untangle edges."""
ROOM = 1240
"""The width a graph gets in a full-width card on a desktop screen (the page is 1280 px at
most): a smaller graph is drawn larger, up to `MAX_SCALE`, and centred; a wider one keeps its
size and scrolls."""
MAX_SCALE = 1.25
MAX_HEIGHT = 440
"""A graph is not scaled up past this height (its box scrolls at 460 px)."""


def label(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Node:
    key: str
    text: str
    layer: int
    kind: str = "task"
    state: str = "none"
    href: str | None = None
    title: str = ""
    sub: str = ""
    """A second, smaller line (a job's pipeline)."""
    x: float = 0
    y: float = 0
    w: float = NODE_W
    h: float = NODE_H

    @property
    def short(self) -> str:
        return label(self.text, LABEL_CHARS - 2 if self.kind == "job" else LABEL_CHARS)

    @property
    def sub_short(self) -> str:
        return label(self.sub, LABEL_CHARS + 4)

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass
class Edge:
    source: str
    target: str
    path: str = ""
    title: str = ""


@dataclass
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: float = 0
    height: float = 0
    """The drawing's own size (its viewBox)."""
    scale: float = 1.0
    """How much larger than its own size it is shown."""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def shown_width(self) -> float:
        return round(self.width * self.scale, 1)

    @property
    def shown_height(self) -> float:
        return round(self.height * self.scale, 1)

    @property
    def fits(self) -> bool:
        """It fits the card's width (so it may shrink with the window instead of scrolling)."""
        return self.width <= ROOM


def _order_layers(nodes: dict[str, Node], edges: Sequence[Edge]) -> list[list[str]]:
    depth = max((n.layer for n in nodes.values()), default=-1) + 1
    layers: list[list[str]] = [[] for _ in range(depth)]
    for key, node in nodes.items():
        layers[node.layer].append(key)
    ups: dict[str, list[str]] = {k: [] for k in nodes}
    downs: dict[str, list[str]] = {k: [] for k in nodes}
    for e in edges:
        if e.source in nodes and e.target in nodes:
            downs[e.source].append(e.target)
            ups[e.target].append(e.source)
    pos = {k: float(i) for layer in layers for i, k in enumerate(layer)}

    def sweep(order: Iterable[int], links: dict[str, list[str]]) -> None:
        for i in order:
            layer = layers[i]

            def centre(k: str, layer: list[str] = layer) -> float:
                near = [pos[o] for o in links[k]]
                return sum(near) / len(near) if near else pos[k]

            layer.sort(key=centre)
            for j, k in enumerate(layer):
                pos[k] = float(j)

    for _ in range(SWEEPS):
        sweep(range(1, depth), ups)
        sweep(range(depth - 2, -1, -1), downs)
    return layers


def _gap_x(columns: int) -> float:
    """The space between columns: wider for a graph of few columns, so that, scaled up to at
    most `MAX_SCALE`, it fills more of the card."""
    if columns < 2:
        return GAP_X
    spare = ROOM / MAX_SCALE - columns * NODE_W - 2 * PAD
    return max(GAP_X, min(GAP_X_MAX, spare / (columns - 1)))


def _scale(width: float, height: float) -> float:
    """How much larger a graph is shown: enough to fill the card, at most `MAX_SCALE`, never
    past `MAX_HEIGHT` tall, never smaller than its own size."""
    if not width or not height or width >= ROOM:
        return 1.0
    return round(max(1.0, min(MAX_SCALE, ROOM / width, MAX_HEIGHT / height)), 3)


def layout(nodes: list[Node], edges: list[Edge]) -> Graph:
    """Place `nodes` (each with its layer) in columns left to right, each column centred,
    rows ordered to keep edges short; edges become cubic curves between box sides."""
    by_key = {n.key: n for n in nodes}
    layers = _order_layers(by_key, edges)
    gap_x = _gap_x(len(layers))
    tallest = max((len(layer) for layer in layers), default=0)
    height = tallest * (NODE_H + GAP_Y) - GAP_Y + 2 * PAD if tallest else 0
    for i, layer in enumerate(layers):
        column = len(layer) * (NODE_H + GAP_Y) - GAP_Y
        top = (height - column) / 2
        for j, key in enumerate(layer):
            node = by_key[key]
            node.x = PAD + i * (NODE_W + gap_x)
            node.y = top + j * (NODE_H + GAP_Y)
    width = len(layers) * (NODE_W + gap_x) - gap_x + 2 * PAD if layers else 0
    kept = []
    for e in edges:
        a, b = by_key.get(e.source), by_key.get(e.target)
        if a is None or b is None:
            continue
        x1, y1 = a.x + a.w, a.cy
        x2, y2 = b.x, b.cy
        if x2 <= x1:  # an edge back to an earlier column: loop under the boxes
            low = max(a.y + a.h, b.y + b.h) + GAP_Y / 2
            e.path = (
                f"M{x1:.1f},{y1:.1f} C{x1 + 40:.1f},{low:.1f} {x2 - 40:.1f},{low:.1f} "
                f"{x2:.1f},{y2:.1f}"
            )
        else:
            bend = (x2 - x1) / 2
            e.path = (
                f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} "
                f"{x2 - 6:.1f},{y2:.1f}"
            )
        kept.append(e)
    return Graph(nodes, kept, width, height, _scale(width, height))


def task_graph(
    tasks: Sequence[tuple[str, int, Sequence[str]]],
    states: dict[str, str],
    href: str | None = None,
) -> Graph:
    """A pipeline's tasks (id, layer, upstream ids), coloured by `states`; each node links to
    `href` + task id when given."""
    nodes = [
        Node(
            key=tid,
            text=tid,
            layer=layer,
            state=states.get(tid, "none"),
            href=f"{href}{tid}" if href else None,
            title=tid,
        )
        for tid, layer, _ in tasks
    ]
    edges = [Edge(up, tid) for tid, _, ups in tasks for up in ups]
    return layout(nodes, edges)


# -- the Gantt timeline ---------------------------------------------------------------------
GANTT_LABEL_W = 180
GANTT_W = ROOM - GANTT_LABEL_W - 24
GANTT_ROW = 26
GANTT_BAR = 16
GANTT_AXIS = 28
GANTT_ROWS = 300
"""Tasks drawn in a timeline at most (the task table lists every one)."""


@dataclass
class Bar:
    task: str
    attempt: int
    state: str
    x: float
    w: float
    y: float
    title: str
    href: str


@dataclass
class Tick:
    x: float
    text: str


@dataclass
class Gantt:
    rows: list[tuple[str, float, str]]
    """(task, y of the row's middle, short label)."""
    bars: list[Bar]
    ticks: list[Tick]
    width: float
    height: float
    label_w: float = GANTT_LABEL_W
    cut: int = 0
    """Tasks that ran but are not drawn (past `GANTT_ROWS`)."""


def _parse(value: str | None) -> float | None:
    if not value:
        return None
    found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if found.tzinfo is None:
        found = found.replace(tzinfo=UTC)
    return found.timestamp()


def _step(span: float) -> float:
    """A round tick interval giving about 6 ticks over `span` seconds."""
    for step in (
        0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600,
        7200, 10800, 21600, 43200, 86400,
    ):  # fmt: skip
        if span / step <= 7:
            return step
    return 86400 * max(1, round(span / 86400 / 6))


def _tick_text(offset: float, step: float) -> str:
    if step < 0.1:
        return f"{offset:.2f}s"
    if step < 1:
        return f"{offset:.1f}s"
    if offset < 60 or step < 60:
        return f"{offset:.0f}s" if offset < 60 else f"{int(offset // 60)}m{int(offset % 60):02d}s"
    if offset < 3600:
        return f"{int(offset // 60)}m"
    return f"{int(offset // 3600)}h{int(offset % 3600 // 60):02d}"


def gantt(
    order: Sequence[str],
    attempts: Sequence[dict[str, object]],
    run_start: str | None,
    run_end: str | None,
    now: float,
    log_href: str,
) -> Gantt | None:
    """Bars for `attempts` (task, attempt, state, started_at, ended_at as ISO text) on one
    row per task of `order`, from the run's start to its end (or `now` while it runs)."""
    spans = []
    for a in attempts:
        start = _parse(str(a["started_at"])) if a.get("started_at") else None
        if start is None:
            continue
        end = _parse(str(a["ended_at"])) if a.get("ended_at") else None
        spans.append((a, start, end if end is not None else now))
    if not spans:
        return None
    first, last = _parse(run_start), _parse(run_end)
    t0 = min([s for _, s, _ in spans] + ([first] if first is not None else []))
    t1 = max([e for _, _, e in spans] + ([last] if last is not None else []))
    total = max(t1 - t0, 0.001)
    tasks = list(dict.fromkeys([*order, *(str(a["task"]) for a, _, _ in spans)]))
    started = {str(a["task"]) for a, _, _ in spans}
    ran = [t for t in tasks if t in started]
    shown = ran[:GANTT_ROWS]
    row_of = {t: i for i, t in enumerate(shown)}
    scale = GANTT_W / total
    bars = []
    for a, start, end in spans:
        task = str(a["task"])
        if task not in row_of:
            continue
        y = GANTT_AXIS + row_of[task] * GANTT_ROW + (GANTT_ROW - GANTT_BAR) / 2
        x = GANTT_LABEL_W + (start - t0) * scale
        w = max((end - start) * scale, 2.0)
        n = int(str(a["attempt"]))
        bars.append(
            Bar(
                task=task,
                attempt=n,
                state=str(a["state"]),
                x=round(x, 1),
                w=round(w, 1),
                y=round(y, 1),
                title=f"{task} · attempt {n} · {a['state']} · {duration(end - start)}",
                href=f"{log_href}{task}/attempts/{n}/log",
            )
        )
    step = _step(total)
    ticks = []
    k = 0
    while k * step <= total + 1e-9 and k < 50:
        ticks.append(Tick(round(GANTT_LABEL_W + k * step * scale, 1), _tick_text(k * step, step)))
        k += 1
    rows = [
        (t, GANTT_AXIS + i * GANTT_ROW + GANTT_ROW / 2, label(t, 24)) for i, t in enumerate(shown)
    ]
    return Gantt(
        rows=rows,
        bars=bars,
        ticks=ticks,
        width=GANTT_LABEL_W + GANTT_W + 16,
        height=GANTT_AXIS + len(shown) * GANTT_ROW + 8,
        cut=len(ran) - len(shown),
    )
