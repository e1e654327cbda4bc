"""The immutable Pipeline: a validated DAG of tasks plus its defaults."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from types import MappingProxyType
from typing import TYPE_CHECKING

from lockgate.errors import DefinitionError
from lockgate.model.datasets import check_uris
from lockgate.model.params import Param, as_param
from lockgate.model.refs import ParamRef
from lockgate.model.schedule import check_schedule
from lockgate.model.settings import TaskSettings
from lockgate.model.task import Task, TaskKind
from lockgate.model.timetables import timetable_for, zone

if TYPE_CHECKING:
    from lockgate.model.timetables import Timetable

ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")


def check_id(kind: str, value: object, file: str | None, line: int | None) -> None:
    """Ids end up in file paths and URLs, so they are restricted to a safe alphabet."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise DefinitionError(
            f"invalid {kind} id {value!r}: use letters, digits, '_', '.' or '-' "
            "(starting with a letter or '_', at most 128 characters)",
            file,
            line,
        )


def _aware(value: date | str | None, tz: tzinfo) -> datetime | None:
    """A date (or its ISO 8601 text) as a timezone-aware datetime: naive ones are wall-clock
    times in `tz` (the pipeline's time zone), aware ones keep their own zone. ValueError if it
    is neither."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date: use YYYY-MM-DD or an ISO 8601 date-time"
            ) from None
    if not isinstance(value, date):
        raise ValueError(f"expected a date, a datetime or ISO 8601 text, got {value!r}")
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


@dataclass(frozen=True)
class Pipeline:
    """A pipeline definition. Construction validates it; an invalid one cannot exist."""

    id: str
    tasks: Mapping[str, Task]
    description: str | None = None
    tags: tuple[str, ...] = ()
    schedule: str | None = None
    datasets: tuple[str, ...] = ()
    """Dataset URIs whose updates trigger a run (each updated since the last such run); a
    pipeline has a time `schedule` or `datasets`, not both."""
    params: Mapping[str, Param] = field(default_factory=lambda: MappingProxyType({}))
    """Declared run params; plain values given here become `Param(value)` (type inferred)."""
    defaults: TaskSettings = field(default_factory=TaskSettings)
    max_active_tasks: int | None = None
    pools: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    start_date: datetime | None = None
    end_date: datetime | None = None
    timezone: str = "UTC"
    """The IANA time zone of the schedule, of naive start/end dates and of the run dates
    templates see."""
    catchup: bool = False
    max_active_runs: int | None = None
    run_timeout: float | None = None
    """Seconds a whole run may take (enforced by the scheduler)."""
    origin: str = "python"
    """The form it was written in: `python`, `yaml` or `airflow` (an Airflow-style DAG file)."""
    file: str | None = None
    line: int | None = None
    source: str | None = None
    """Text of the file that defined the pipeline, recorded with each run's version."""

    downstream: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    order: tuple[str, ...] = field(init=False, repr=False, compare=False)
    compensations: frozenset[str] = field(init=False, repr=False, compare=False)
    tz: tzinfo = field(init=False, repr=False, compare=False)
    """`timezone` as a tzinfo (`datetime.UTC` for "UTC")."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", MappingProxyType(dict(self.tasks)))
        object.__setattr__(self, "tz", self._zone())
        for key in ("start_date", "end_date"):
            try:
                object.__setattr__(self, key, _aware(getattr(self, key), self.tz))
            except ValueError as exc:
                raise DefinitionError(
                    f"pipeline {self.id!r}: {key}: {exc}", self.file, self.line
                ) from None
        params: dict[str, Param] = {}
        for name, value in self.params.items():
            try:
                params[name] = as_param(value)
            except ValueError as exc:
                raise DefinitionError(
                    f"pipeline {self.id!r}: param {name!r}: {exc}", self.file, self.line
                ) from None
        object.__setattr__(self, "params", MappingProxyType(params))
        object.__setattr__(self, "pools", MappingProxyType(dict(self.pools)))
        self._validate()

    def _zone(self) -> tzinfo:
        if not isinstance(self.timezone, str):
            raise DefinitionError(
                f"pipeline {self.id!r}: timezone must be an IANA name such as 'Europe/Berlin', "
                f"got {self.timezone!r}",
                self.file,
                self.line,
            )
        if self.timezone == "UTC":
            return UTC
        try:
            return zone(self.timezone)
        except ValueError as exc:
            raise DefinitionError(f"pipeline {self.id!r}: {exc}", self.file, self.line) from None

    # -- validation -------------------------------------------------------------------------
    def _validate(self) -> None:
        check_id("pipeline", self.id, self.file, self.line)
        try:
            object.__setattr__(self, "datasets", check_uris(self.datasets))
        except ValueError as exc:
            raise DefinitionError(
                f"pipeline {self.id!r}: datasets: {exc}", self.file, self.line
            ) from None
        if self.schedule is not None and self.datasets:
            raise DefinitionError(
                f"pipeline {self.id!r}: a pipeline runs on a time schedule or on dataset "
                f"updates, not both (schedule {self.schedule!r}, datasets "
                f"{', '.join(self.datasets)})",
                self.file,
                self.line,
            )
        if self.schedule is not None:
            try:
                check_schedule(self.schedule)
            except ValueError as exc:
                raise DefinitionError(
                    f"pipeline {self.id!r}: {exc}", self.file, self.line
                ) from None
        if self.max_active_tasks is not None and (
            not isinstance(self.max_active_tasks, int) or self.max_active_tasks < 1
        ):
            raise DefinitionError(
                f"pipeline {self.id!r}: max_active_tasks must be a whole number >= 1, "
                f"got {self.max_active_tasks!r}",
                self.file,
                self.line,
            )
        for name, slots in self.pools.items():
            if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
                raise DefinitionError(
                    f"pipeline {self.id!r}: pool {name!r} must have a whole number of slots >= 1, "
                    f"got {slots!r}",
                    self.file,
                    self.line,
                )
        for name, decl in self.params.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise DefinitionError(
                    f"pipeline {self.id!r}: param name {name!r} must be an identifier "
                    "(letters, digits, '_'); shell tasks see it as LOCKGATE_PARAM_<NAME>",
                    self.file,
                    self.line,
                )
            try:
                json.dumps(None if decl.required else decl.default, allow_nan=False)
            except (TypeError, ValueError):
                raise DefinitionError(
                    f"pipeline {self.id!r}: the default of param {name!r} ({decl.default!r}) is "
                    "not JSON; use a string, number, boolean, list or dict",
                    self.file,
                    self.line,
                ) from None
        for key in ("max_active_runs",):
            value = getattr(self, key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise DefinitionError(
                    f"pipeline {self.id!r}: {key} must be a whole number >= 1, got {value!r}",
                    self.file,
                    self.line,
                )
        if self.run_timeout is not None and not (
            isinstance(self.run_timeout, int | float) and self.run_timeout > 0
        ):
            raise DefinitionError(
                f"pipeline {self.id!r}: run_timeout must be a number of seconds > 0, "
                f"got {self.run_timeout!r}",
                self.file,
                self.line,
            )
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise DefinitionError(
                f"pipeline {self.id!r}: end_date {self.end_date} is before start_date "
                f"{self.start_date}",
                self.file,
                self.line,
            )
        if not self.tasks:
            raise DefinitionError(f"pipeline {self.id!r} has no tasks", self.file, self.line)
        downstream: dict[str, list[str]] = {tid: [] for tid in self.tasks}
        compensations: set[str] = set()
        for tid, task in self.tasks.items():
            check_id("task", tid, task.file, task.line)
            if tid != task.id:
                raise DefinitionError(
                    f"task registered as {tid!r} has id {task.id!r}", task.file, task.line
                )
            if task.kind is TaskKind.PYTHON and not callable(task.fn):
                raise DefinitionError(f"task {tid!r} has no callable to run", task.file, task.line)
            if task.kind is TaskKind.SHELL and not task.command:
                raise DefinitionError(
                    f"shell task {tid!r} has an empty command", task.file, task.line
                )
            for up in task.upstream:
                if up not in self.tasks:
                    raise DefinitionError(
                        f"task {tid!r} depends on unknown task {up!r} in pipeline {self.id!r}",
                        task.file,
                        task.line,
                    )
                if up == tid:
                    raise DefinitionError(
                        f"cycle in pipeline {self.id!r}: {tid} -> {tid}", task.file, task.line
                    )
                downstream[up].append(tid)
            for value in task.inputs():
                if isinstance(value, ParamRef) and value.name not in self.params:
                    declared = ", ".join(self.params) or "none"
                    raise DefinitionError(
                        f"task {tid!r} uses param {value.name!r}, which pipeline {self.id!r} "
                        f"does not declare (declared: {declared}); add it to the pipeline's params",
                        task.file,
                        task.line,
                    )
            self._check_produces(task)
            if task.settings.pool_slots > 1 and task.settings.pool is None:
                raise DefinitionError(
                    f"task {tid!r} sets pool_slots without a pool", task.file, task.line
                )
            pool = task.settings.pool
            if (
                pool is not None
                and pool in self.pools
                and task.settings.pool_slots > self.pools[pool]
            ):
                raise DefinitionError(
                    f"task {tid!r} needs {task.settings.pool_slots} slots of pool {pool!r}, "
                    f"which has only {self.pools[pool]}",
                    task.file,
                    task.line,
                )
            if task.compensation is not None:
                comp = task.compensation
                if comp not in self.tasks:
                    raise DefinitionError(
                        f"task {tid!r} names unknown compensation task {comp!r}",
                        task.file,
                        task.line,
                    )
                if comp == tid:
                    raise DefinitionError(
                        f"task {tid!r} cannot be its own compensation", task.file, task.line
                    )
                if comp in compensations:
                    raise DefinitionError(
                        f"task {comp!r} is the compensation of more than one task; "
                        "give each task its own compensation task",
                        task.file,
                        task.line,
                    )
                compensations.add(comp)
        for comp in compensations:
            ctask = self.tasks[comp]
            if ctask.upstream or downstream[comp] or ctask.compensation:
                raise DefinitionError(
                    f"compensation task {comp!r} must not have upstream or downstream tasks "
                    "or a compensation of its own: it runs only when the task it compensates fails",
                    ctask.file,
                    ctask.line,
                )
        object.__setattr__(
            self, "downstream", MappingProxyType({k: tuple(v) for k, v in downstream.items()})
        )
        object.__setattr__(self, "compensations", frozenset(compensations))
        object.__setattr__(self, "order", self._topological_order())
        for tid, task in self.tasks.items():
            if task.branch and not self.downstream[tid]:
                raise DefinitionError(
                    f"branch task {tid!r} has no downstream tasks to choose from",
                    task.file,
                    task.line,
                )

    @staticmethod
    def _check_produces(task: Task) -> None:
        if not isinstance(task.produces, tuple):
            raise DefinitionError(
                f"task {task.id!r}: produces must be a tuple of dataset URIs, "
                f"got {task.produces!r}",
                task.file,
                task.line,
            )
        try:
            check_uris(task.produces)
        except ValueError as exc:
            raise DefinitionError(
                f"task {task.id!r}: produces: {exc}", task.file, task.line
            ) from None

    def _topological_order(self) -> tuple[str, ...]:
        """Kahn's algorithm in definition order; a leftover node means a cycle, which is named."""
        indegree = {tid: len(t.upstream) for tid, t in self.tasks.items()}
        order = [tid for tid, n in indegree.items() if n == 0]
        i = 0
        while i < len(order):
            for down in self.downstream[order[i]]:
                indegree[down] -= 1
                if indegree[down] == 0:
                    order.append(down)
            i += 1
        if len(order) != len(self.tasks):
            cycle = self._find_cycle({tid for tid, n in indegree.items() if n > 0})
            first = self.tasks[cycle[0]]
            raise DefinitionError(
                f"cycle in pipeline {self.id!r}: {' -> '.join(cycle)}", first.file, first.line
            )
        return tuple(order)

    def _find_cycle(self, nodes: set[str]) -> list[str]:
        """Return one cycle among `nodes` as a path that ends where it starts."""
        start = next(tid for tid in self.tasks if tid in nodes)
        path: list[str] = []
        index: dict[str, int] = {}
        node = start
        while node not in index:
            index[node] = len(path)
            path.append(node)
            node = next(u for u in self.tasks[node].upstream if u in nodes)
        cycle = path[index[node] :] + [node]
        cycle.reverse()  # we walked upstream; show the flow direction
        return cycle

    # -- queries ----------------------------------------------------------------------------
    def roots(self) -> list[str]:
        return [
            tid
            for tid in self.order
            if not self.tasks[tid].upstream and tid not in self.compensations
        ]

    def layers(self) -> list[list[str]]:
        """Tasks grouped by depth (longest path from a root), for display."""
        depth: dict[str, int] = {}
        for tid in self.order:
            depth[tid] = 1 + max((depth[u] for u in self.tasks[tid].upstream), default=-1)
        out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for tid in self.order:
            out[depth[tid]].append(tid)
        return out

    def ancestors(self, tid: str) -> frozenset[str]:
        """Every task `tid` runs after, directly or not (computed once per task)."""
        cache: dict[str, frozenset[str]] = self.__dict__.setdefault("_ancestors", {})
        found = cache.get(tid)
        if found is None:
            seen: set[str] = set()
            stack = list(self.tasks[tid].upstream)
            while stack:
                up = stack.pop()
                if up not in seen:
                    seen.add(up)
                    stack.extend(self.tasks[up].upstream)
            found = cache[tid] = frozenset(seen)
        return found

    def fingerprint(self) -> str:
        """A hash of the definition (structure, settings and file text): one per version."""
        cached: str | None = self.__dict__.get("_fingerprint")
        if cached is None:
            cached = self._compute_fingerprint()
            object.__setattr__(self, "_fingerprint", cached)
        return cached

    def timetable(self) -> Timetable | None:
        """When scheduled runs are due (None: no time schedule), in the pipeline's zone."""
        if "_timetable" not in self.__dict__:
            table = timetable_for(self.schedule, self.tz, self.start_date, self.end_date)
            object.__setattr__(self, "_timetable", table)
        found: Timetable | None = self.__dict__["_timetable"]
        return found

    def _compute_fingerprint(self) -> str:
        doc: dict[str, object] = {
            "id": self.id,
            "schedule": self.schedule,
            "params": {k: repr(v) for k, v in self.params.items()},
            "defaults": repr(self.defaults),
            "pools": dict(self.pools),
            "dates": [repr(self.start_date), repr(self.end_date), self.catchup],
            "runs": [self.max_active_runs, self.run_timeout],
            "tasks": [
                [
                    t.id,
                    t.kind.value,
                    t.describe_action(),
                    list(t.upstream),
                    repr(t.settings),
                    repr(t.args),
                    repr(sorted(t.kwargs.items())),
                    repr(sorted(t.env.items())),
                    t.compensation,
                    t.branch,
                    repr(t.cwd),
                    list(t.skip_exit_codes),
                    t.output_result,
                    t.inherit_env,
                ]
                for t in self.tasks.values()
            ],
            "source": self.source,
        }
        # only when set, so pipelines that use neither keep the fingerprint they had
        if self.timezone != "UTC":
            doc["timezone"] = self.timezone
        if self.datasets:
            doc["datasets"] = list(self.datasets)
        produces = {t.id: list(t.produces) for t in self.tasks.values() if t.produces}
        if produces:
            doc["produces"] = produces
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
