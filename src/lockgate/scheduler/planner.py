"""Which scheduled runs of a pipeline are due: the timetable, the last scheduled run, `catchup`.

With `catchup` (and a start date), every interval since the last scheduled run (or since the
start date) gets a run; without it, only the most recent due interval does, as in Airflow: a
scheduler that was stopped for a week starts one run, not seven.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lockgate.model.pipeline import Pipeline
from lockgate.model.timetables import ScheduledRun, Timetable

MAX_PER_TICK = 500
"""Runs created for one pipeline in one pass (a long catchup continues at the next pass)."""


@dataclass
class Plan:
    """A pipeline's schedule as the scheduler follows it: the next interval not yet created."""

    pipeline: Pipeline
    timetable: Timetable
    next: ScheduledRun | None

    @property
    def next_due(self) -> datetime | None:
        return None if self.next is None else self.next.due_at

    def due(self, now: datetime) -> list[ScheduledRun]:
        """The runs to create now; moves `next` past them."""
        run = self.next
        if run is None or _utc(run.due_at) > _utc(now):
            return []
        out: list[ScheduledRun] = []
        if self.pipeline.catchup and self.pipeline.start_date is not None:
            while run is not None and _utc(run.due_at) <= _utc(now) and len(out) < MAX_PER_TICK:
                out.append(run)
                run = self.timetable.next_run(run.due_at)
            self.next = run
            return out
        latest = self.timetable.latest_run(now)
        if latest is not None and _utc(latest.start) >= _utc(run.start):
            out.append(latest)
        self.next = self.timetable.next_run(now)
        return out


def plan_for(pipeline: Pipeline, last: tuple[float, float] | None, now: datetime) -> Plan | None:
    """The plan of a time-scheduled pipeline, given its last scheduled run (logical date and
    interval end, as timestamps) or None; None for a pipeline without a time schedule."""
    table = pipeline.timetable()
    if table is None:
        return None
    if last is not None:
        first = table.next_run(datetime.fromtimestamp(last[1], UTC))
        # a run whose interval ends where the last one ended is the same interval
        while first is not None and _utc(first.start).timestamp() <= last[0]:
            first = table.next_run(first.due_at)
    elif pipeline.catchup and pipeline.start_date is not None:
        first = table.next_run(pipeline.start_date - timedelta(microseconds=1))
        if first is not None and _utc(first.start) < _utc(pipeline.start_date):
            first = table.next_run(first.due_at)
    else:
        first = table.latest_run(now) or table.next_run(now)
    plan = Plan(pipeline, table, first)
    if not (pipeline.catchup and pipeline.start_date is not None) and first is not None:
        # without catchup, a due interval older than the most recent one is never created
        latest = table.latest_run(now)
        if latest is not None and _utc(latest.start) > _utc(first.start):
            plan.next = latest
    return plan


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
