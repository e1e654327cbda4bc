"""Timetables: when a pipeline's scheduled runs are due, and the data interval each one covers.

A scheduled run covers the interval between two schedule points and is due at the end of it
(the daily run of 2024-01-31 covers that day and starts just after midnight); its logical date
is the start of its interval, so `{{ ds }}` names the day whose data it processes. Cron
schedules are read in the pipeline's IANA time zone by a maintained library (cronsim), which
handles daylight-saving switches as cron does: a time that does not exist on the spring switch
day fires once, at the first valid time after it; a time that occurs twice in autumn fires once.
Fixed intervals (`every 30m`) are absolute durations, unaffected by the switches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

from lockgate.model.schedule import ONCE, cron_expression, interval_seconds

DEFAULT_START = datetime(2000, 1, 1, tzinfo=UTC)
"""Where a schedule without a start date begins counting (only its alignment matters)."""


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    """One due run: its data interval [start, end), in the schedule's time zone; it is due at
    the end of it, and its logical date is the start."""

    start: datetime
    end: datetime

    @property
    def due_at(self) -> datetime:
        return self.end


class Timetable(Protocol):
    def next_run(self, after: datetime) -> ScheduledRun | None:
        """The first run due strictly after `after` (None when the schedule has ended)."""

    def runs_between(self, first: datetime, last: datetime) -> Iterator[ScheduledRun]:
        """The runs whose logical date is in [first, last], in order (for backfills)."""

    def latest_run(self, now: datetime) -> ScheduledRun | None:
        """The run due most recently, at or before `now` (None if none is due yet)."""


def zone(name: str) -> tzinfo:
    """An IANA time zone by name; ValueError naming it when it is unknown."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC', 'Europe/Berlin' or "
            "'America/New_York'"
        ) from None


@dataclass(frozen=True)
class CronTimetable:
    """Runs at the points of a cron expression, in a time zone; each covers the span since the
    previous point."""

    expression: str
    tz: tzinfo = UTC
    start: datetime | None = None
    end: datetime | None = None

    def _points(self, after: datetime) -> Iterator[datetime]:
        from cronsim import CronSim

        yield from CronSim(cron_expression(self.expression), after.astimezone(self.tz))

    def _previous(self, point: datetime) -> datetime:
        from cronsim import CronSim

        return next(CronSim(cron_expression(self.expression), point, reverse=True))

    def next_run(self, after: datetime) -> ScheduledRun | None:
        # the first interval starts at the first point on or after the start date; instants
        # are compared in UTC (aware datetimes of one zone compare by wall clock in Python)
        floor = _utc(self.start or DEFAULT_START)
        since = max(_utc(after), floor - timedelta(microseconds=1))
        for due in self._points(since):
            if _utc(due) <= since:  # a wall-clock point of the repeated autumn hour, passed
                continue
            begin = self._previous(due)
            if _utc(begin) < floor:  # the interval before the first point is not covered
                continue
            if self.end is not None and _utc(begin) > _utc(self.end):
                return None
            return ScheduledRun(begin, due)
        return None  # pragma: no cover - cron expressions never run out of points

    def runs_between(self, first: datetime, last: datetime) -> Iterator[ScheduledRun]:
        return _between(self, first, last)

    def latest_run(self, now: datetime) -> ScheduledRun | None:
        due = self._last_point(now)
        run = self.next_run(_utc(due) - timedelta(microseconds=1))
        if run is None and self.end is not None:  # past the end: the run starting at its last point
            run = self.next_run(self._last_point(self.end))
        if run is None or _utc(run.due_at) > _utc(now):
            return None
        return run

    def _last_point(self, at: datetime) -> datetime:
        """The last point of the schedule at or before `at` (CronSim's reverse walk is strict)."""
        from cronsim import CronSim

        # arithmetic in UTC: wall-clock arithmetic loses the repeated hour's `fold`
        start = (_utc(at) + timedelta(microseconds=1)).astimezone(self.tz)
        point = next(CronSim(cron_expression(self.expression), start, reverse=True))
        # cronsim walks wall-clock time: step forward over points it skipped that are
        # still at or before `at`
        for later in CronSim(cron_expression(self.expression), point):
            if _utc(later) > _utc(at):
                break
            point = later
        return point


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _between(table: Timetable, first: datetime, last: datetime) -> Iterator[ScheduledRun]:
    """The runs whose interval starts in [first, last]: the first of them is due after
    `first` (a run's due time is after its start)."""
    low, high = _utc(first), _utc(last)
    run = table.next_run(first)
    while run is not None and _utc(run.start) <= high:
        if _utc(run.start) >= low:
            yield run
        run = table.next_run(run.due_at)


@dataclass(frozen=True)
class IntervalTimetable:
    """Runs every `seconds`, counted from the start date; each covers the last `seconds`."""

    seconds: float
    start: datetime | None = None
    end: datetime | None = None

    def next_run(self, after: datetime) -> ScheduledRun | None:
        step = timedelta(seconds=self.seconds)
        origin = self.start or DEFAULT_START
        zone_of = origin.tzinfo or UTC
        base, now = _utc(origin), _utc(after)  # absolute time: no wall-clock arithmetic
        # the first due time is origin + step; find the first one strictly after `after`
        n = max(1, int((now - base) / step) + 1) if now >= base else 1
        due = base + n * step
        while due <= now:  # float rounding
            due += step
        begin = due - step
        if self.end is not None and begin > _utc(self.end):
            return None
        return ScheduledRun(begin.astimezone(zone_of), due.astimezone(zone_of))

    def runs_between(self, first: datetime, last: datetime) -> Iterator[ScheduledRun]:
        return _between(self, first, last)

    def latest_run(self, now: datetime) -> ScheduledRun | None:
        step = timedelta(seconds=self.seconds)
        base = _utc(self.start or DEFAULT_START)
        limit = _utc(now)
        if self.end is not None:  # the last run starts at or before the end date
            limit = min(limit, base + (int((_utc(self.end) - base) / step) + 1) * step)
        n = int((limit - base) / step)
        if n < 1:
            return None
        return self.next_run(base + (n - 1) * step)


@dataclass(frozen=True)
class OnceTimetable:
    """One run, due at the start date (now, if none), covering that instant."""

    start: datetime | None = None

    def next_run(self, after: datetime) -> ScheduledRun | None:
        at = self.start or DEFAULT_START
        return ScheduledRun(at, at) if _utc(at) > _utc(after) else None

    def runs_between(self, first: datetime, last: datetime) -> Iterator[ScheduledRun]:
        at = self.start or DEFAULT_START
        if _utc(first) <= _utc(at) <= _utc(last):
            yield ScheduledRun(at, at)

    def latest_run(self, now: datetime) -> ScheduledRun | None:
        at = self.start or DEFAULT_START
        return ScheduledRun(at, at) if _utc(at) <= _utc(now) else None


def timetable_for(
    schedule: str | None,
    tz: tzinfo = UTC,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Timetable | None:
    """The timetable of a schedule string (None: the pipeline runs only when triggered)."""
    if schedule is None:
        return None
    text = schedule.strip()
    if text == ONCE:
        return OnceTimetable(start)
    seconds = interval_seconds(text)
    if seconds is not None:
        return IntervalTimetable(seconds, start, end)
    return CronTimetable(text, tz, start, end)
