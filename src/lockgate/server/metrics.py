"""`/metrics` in the Prometheus text format: runs, tasks, durations, scheduler latency, queue
depth, policy violations and the server's HTTP requests.

Each application has its own `CollectorRegistry` (never the process-wide one), filled when
scraped, from the metadata DB with bounded, indexed queries only:

- gauges of what is in progress now: runs queued or running by pipeline (`runs.state` index;
  finished runs are never counted), the queue depth (queued runs no scheduler has claimed),
  and the task states inside running runs (primary-key joins from those runs);
- counters and histograms of what happened since the server started, read from the rows
  appended since the previous scrape (a high-water mark on the `events` and
  `policy_decisions` ids, so a scrape reads only what is new, by primary-key range, and the
  runs and attempts those events name by key; at most `WINDOW` ids per scrape, the rest at
  the next): runs finished by pipeline and state, task attempt durations,
  scheduler latency (a scheduled run's first start minus its due time, the end of its data
  interval) and gate decisions. Rows younger than `SETTLE_S` wait for the next scrape, so one
  committed a little late (PostgreSQL allocates ids before commit) is still counted; one
  committed more than `SETTLE_S` after it was written (a stalled writer) may be missed.

Counters start at zero when the server starts (Prometheus' `rate()` handles restarts). The
endpoint on the main application needs a token or session with the project-wide `read`
permission (the metrics span every pipeline); `--metrics-port` serves the same registry without
authentication on 127.0.0.1 only (`loopback_app`).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.responses import Response

from lockgate.auth.accounts import Principal
from lockgate.auth.roles import READ
from lockgate.model import events as ev
from lockgate.server.deps import principal
from lockgate.server.errors import ApiError, responses

if TYPE_CHECKING:
    from lockgate.store.store import Store

WINDOW = 20_000
"""Most event (and decision) ids read by one scrape (about 0.2 s when catching up)."""
SETTLE_S = 1.0
"""Rows this recent are left for the next scrape (an earlier id may still be committing)."""
MIN_INTERVAL_S = 1.0
"""Scrapes closer together than this get the previous answer (the database is asked once)."""
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
ACTIVE_TASK_STATES = ("pending", "queued", "running", "up_for_retry")

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10)

_ATTEMPT_ENDS = (ev.TASK_SUCCEEDED, ev.TASK_FAILED, ev.TASK_RETRYING, ev.TASK_CANCELLED)
_KINDS = (ev.RUN_STARTED, ev.RUN_FINISHED, *_ATTEMPT_ENDS)

_IN = 500
"""Keys bound into one `IN (...)`."""


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class Metrics:
    """The metrics of one application and what the last scrape read."""

    def __init__(self, store: Store) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.store = store
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Gauge(
            "lockgate_runs",
            "Runs queued or running now, by pipeline and state.",
            ["pipeline", "state"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "lockgate_queue_depth", "Queued runs no scheduler has claimed yet.", registry=r
        )
        self.tasks = Gauge(
            "lockgate_tasks",
            "Tasks of running runs that have not finished, by pipeline and state.",
            ["pipeline", "state"],
            registry=r,
        )
        self.runs_finished = Counter(
            "lockgate_runs_finished",
            "Runs that finished since the server started, by pipeline and final state.",
            ["pipeline", "state"],
            registry=r,
        )
        self.task_duration = Histogram(
            "lockgate_task_duration_seconds",
            "Durations of task attempts that ended since the server started, by attempt state.",
            ["state"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.scheduler_latency = Histogram(
            "lockgate_scheduler_latency_seconds",
            "How late scheduled runs started: first start minus due time (interval end).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.policy_decisions = Counter(
            "lockgate_policy_decisions",
            "Policy gate decisions on dataset writes since the server started.",
            ["decision"],
            registry=r,
        )
        self.policy_violations = Counter(
            "lockgate_policy_violations",
            "Dataset writes the policy gate refused since the server started, by zone.",
            ["zone"],
            registry=r,
        )
        self.http_requests = Counter(
            "lockgate_http_requests",
            "HTTP requests answered by the server, by method and status.",
            ["method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "lockgate_http_request_duration_seconds",
            "Time to answer HTTP requests (to the start of the response).",
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self._lock = threading.Lock()
        self._last: tuple[float, bytes] | None = None
        db = store.db
        self._event_mark = int(db.scalar("SELECT MAX(id) FROM events") or 0)
        self._decision_mark = int(db.scalar("SELECT MAX(id) FROM policy_decisions") or 0)

    # -- scraping -------------------------------------------------------------------------------
    def render(self) -> bytes:
        """The text exposition, after reading what changed (at most once per
        `MIN_INTERVAL_S`)."""
        from prometheus_client import generate_latest

        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < MIN_INTERVAL_S:
                return self._last[1]
            self.refresh()
            text = generate_latest(self.registry)
            self._last = (now, text)
            return text

    def refresh(self) -> None:
        """Read the database: gauges anew, counters and histograms from the new rows."""
        cutoff = time.time() - SETTLE_S
        self._gauges()
        self._events(cutoff)
        self._decisions(cutoff)

    def _gauges(self) -> None:
        db = self.store.db
        runs = db.rows(
            "SELECT pipeline_id, state, COUNT(*) AS n FROM runs "
            "WHERE state IN ('queued', 'running') GROUP BY pipeline_id, state"
        )
        tasks = db.rows(
            "SELECT r.pipeline_id, t.state, COUNT(*) AS n FROM runs r "
            "JOIN task_runs t ON t.run_id = r.id WHERE r.state = 'running' "
            f"AND t.state IN ({', '.join('?' * len(ACTIVE_TASK_STATES))}) "
            "GROUP BY r.pipeline_id, t.state",
            ACTIVE_TASK_STATES,
        )
        depth = db.scalar("SELECT COUNT(*) FROM runs WHERE state = 'queued' AND owner IS NULL")
        self.runs.clear()
        for row in runs:
            self.runs.labels(row["pipeline_id"], row["state"]).set(row["n"])
        self.tasks.clear()
        for row in tasks:
            self.tasks.labels(row["pipeline_id"], row["state"]).set(row["n"])
        self.queue_depth.set(int(depth or 0))

    def _settled(self, table: str, start: int, cutoff: float) -> int:
        """The end of what this scrape reads of `table`: at most `WINDOW` ids past `start`,
        and below its first row written after `cutoff` (every id below it is older)."""
        db = self.store.db
        top = min(start + WINDOW, int(db.scalar(f"SELECT MAX(id) FROM {table}") or 0))
        if top <= start:
            return start
        recent = db.scalar(
            f"SELECT MIN(id) FROM {table} WHERE id > ? AND id <= ? AND ts > ?",
            (start, top, cutoff),
        )
        return int(recent) - 1 if recent is not None else top

    def _events(self, cutoff: float) -> None:
        """Runs finished, attempt durations and scheduler latency from the new events: the
        events by primary-key range, then their runs and attempts by key (never a join the
        planner could turn into a scan of a whole table)."""
        start = self._event_mark
        end = self._settled("events", start, cutoff)
        if end <= start:
            return
        db = self.store.db
        rows = db.rows(
            "SELECT id, ts, kind, state, run_id, task_id, attempt FROM events "
            f"WHERE id > ? AND id <= ? AND kind IN ({_marks(len(_KINDS))})",
            (start, end, *_KINDS),
        )
        runs = self._by_run(
            'SELECT id AS run_id, pipeline_id, "trigger" AS run_trigger, data_interval_end '
            "FROM runs WHERE id IN ({})",
            {r["run_id"] for r in rows},
        )
        ended = [r for r in rows if r["kind"] in _ATTEMPT_ENDS and r["attempt"] > 0]
        attempts = {
            (a["run_id"], a["task_id"], a["attempt"]): a
            for a in self._all_by_run(
                "SELECT run_id, task_id, attempt, state, started_at, ended_at FROM task_attempts "
                "WHERE run_id IN ({})",
                {r["run_id"] for r in ended},
            )
        }
        started = {
            r["run_id"]
            for r in rows
            if r["kind"] == ev.RUN_STARTED
            and runs.get(r["run_id"], {}).get("run_trigger") == "schedule"
        }
        first_start = {
            f["run_id"]: f["first"]
            for f in self._all_by_run(
                "SELECT run_id, MIN(id) AS first FROM events WHERE run_id IN ({}) "
                "AND kind = 'RunStarted' GROUP BY run_id",
                started,
            )
        }
        for row in rows:
            run = runs.get(row["run_id"])
            if run is None:  # removed by `lockgate db clean` meanwhile
                continue
            kind = row["kind"]
            if kind == ev.RUN_FINISHED:
                self.runs_finished.labels(run["pipeline_id"], row["state"] or "unknown").inc()
            elif kind == ev.RUN_STARTED:
                due = run["data_interval_end"]
                first = first_start.get(row["run_id"]) == row["id"]  # not a restart
                if row["run_id"] in started and due is not None and first:
                    self.scheduler_latency.observe(max(0.0, row["ts"] - due))
            else:
                attempt = attempts.get((row["run_id"], row["task_id"], row["attempt"]))
                if attempt and attempt["started_at"] is not None and attempt["ended_at"]:
                    state = attempt["state"] or row["state"] or "unknown"
                    took = max(0.0, attempt["ended_at"] - attempt["started_at"])
                    self.task_duration.labels(state).observe(took)
        self._event_mark = end

    def _all_by_run(self, query: str, run_ids: set[str]) -> list[dict[str, Any]]:
        """`query` (with `{}` for the marks of `run_id IN`) over `run_ids`, `_IN` at a time."""
        ids = sorted(run_ids)
        out: list[dict[str, Any]] = []
        for i in range(0, len(ids), _IN):
            chunk = ids[i : i + _IN]
            out += self.store.db.rows(query.format(_marks(len(chunk))), tuple(chunk))
        return out

    def _by_run(self, query: str, run_ids: set[str]) -> dict[str, dict[str, Any]]:
        return {row["run_id"]: row for row in self._all_by_run(query, run_ids)}

    def _decisions(self, cutoff: float) -> None:
        start = self._decision_mark
        end = self._settled("policy_decisions", start, cutoff)
        if end <= start:
            return
        rows = self.store.db.rows(
            "SELECT decision, zone FROM policy_decisions WHERE id > ? AND id <= ?", (start, end)
        )
        for row in rows:
            self.policy_decisions.labels(row["decision"]).inc()
            if row["decision"] == "deny":
                self.policy_violations.labels(row["zone"]).inc()
        self._decision_mark = end

    # -- HTTP -----------------------------------------------------------------------------------
    def request(self, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method if method in METHODS else "other", str(status)).inc()
        self.http_duration.observe(seconds)


class CountRequests:
    """ASGI middleware: every HTTP response counted by method and status, and timed."""

    def __init__(self, app: Any, board: Metrics) -> None:
        self.app = app
        self.board = board

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500
        timed = False

        async def send_counted(message: Any) -> None:
            nonlocal status, timed
            if message["type"] == "http.response.start":
                status = message["status"]
                self.board.request(scope["method"], status, time.perf_counter() - began)
                timed = True
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            if not timed:  # the application failed before answering
                self.board.request(scope["method"], status, time.perf_counter() - began)


def install(app: FastAPI) -> Metrics:
    """Add `GET /metrics` (project-wide `read` permission) and the request counter to `app`;
    the app's `Metrics` (made once: calling it again returns the same)."""
    found: Metrics | None = getattr(app.state, "metrics", None)
    if found is not None:
        return found
    board = Metrics(app.state.lockgate.store)
    app.state.metrics = board

    @app.get(
        "/metrics",
        tags=["metrics"],
        response_class=Response,
        response_model=None,
        responses={
            200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"},
            **responses(401, 403),
        },
    )
    def metrics(who: Annotated[Principal, Depends(principal)]) -> Response:
        """Prometheus metrics (text format 0.0.4); needs the project-wide `read` permission."""
        if not who.can(READ):
            raise ApiError(
                403, "metrics span every pipeline: the project-wide read permission is needed"
            )
        return Response(board.render(), media_type=CONTENT_TYPE)

    app.add_middleware(CountRequests, board=board)
    return board


def loopback_app(board: Metrics) -> Any:
    """A bare ASGI application serving `GET /metrics` without authentication (for
    `--metrics-port`, which binds 127.0.0.1 only); anything else is 404."""
    from starlette.concurrency import run_in_threadpool

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] != "/metrics":
            status, kind, body = 404, b"text/plain", b"not found: only /metrics is served here\n"
        elif scope["method"] not in ("GET", "HEAD"):
            status, kind, body = 405, b"text/plain", b"method not allowed\n"
        else:
            status, kind, body = 200, CONTENT_TYPE.encode(), await run_in_threadpool(board.render)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", kind),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    return app
