"""Timetables: due times and data intervals of cron, interval and once schedules, in time
zones, across daylight-saving switches (Europe/Berlin and America/New_York, both switch days)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo

import pytest

from lockgate.model.timetables import (
    CronTimetable,
    IntervalTimetable,
    OnceTimetable,
    ScheduledRun,
    Timetable,
    timetable_for,
    zone,
)

BERLIN = zone("Europe/Berlin")
NEW_YORK = zone("America/New_York")


def _runs(table, after: datetime, count: int) -> list[tuple[str, str]]:
    out, run = [], table.next_run(after)
    while run is not None and len(out) < count:
        out.append((run.start.isoformat(), run.end.isoformat()))
        run = table.next_run(run.due_at)
    return out


def test_a_daily_run_covers_the_day_before_it_is_due() -> None:
    table = timetable_for("@daily")
    run = table.next_run(datetime(2024, 1, 31, 12, tzinfo=UTC))
    assert (run.start, run.end, run.due_at) == (
        datetime(2024, 1, 31, tzinfo=UTC),
        datetime(2024, 2, 1, tzinfo=UTC),
        datetime(2024, 2, 1, tzinfo=UTC),
    )
    # exactly at a due time, the next run is the following one
    assert table.next_run(datetime(2024, 2, 1, tzinfo=UTC)).start == datetime(
        2024, 2, 1, tzinfo=UTC
    )


def test_start_and_end_dates_bound_the_runs() -> None:
    table = timetable_for(
        "@daily", start=datetime(2024, 1, 10, tzinfo=UTC), end=datetime(2024, 1, 12, tzinfo=UTC)
    )
    assert _runs(table, datetime(2024, 1, 1, tzinfo=UTC), 10) == [
        ("2024-01-10T00:00:00+00:00", "2024-01-11T00:00:00+00:00"),
        ("2024-01-11T00:00:00+00:00", "2024-01-12T00:00:00+00:00"),
        ("2024-01-12T00:00:00+00:00", "2024-01-13T00:00:00+00:00"),
    ]


@pytest.mark.parametrize(
    ("tz", "day", "expected"),
    [
        # spring forward: the local day has 23 hours; one run, no gap
        (
            BERLIN,
            datetime(2024, 3, 30, 12),
            [
                ("2024-03-30T00:00:00+01:00", "2024-03-31T00:00:00+01:00"),
                ("2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00"),
                ("2024-04-01T00:00:00+02:00", "2024-04-02T00:00:00+02:00"),
            ],
        ),
        # fall back: 25 hours; one run, not two
        (
            BERLIN,
            datetime(2024, 10, 26, 12),
            [
                ("2024-10-26T00:00:00+02:00", "2024-10-27T00:00:00+02:00"),
                ("2024-10-27T00:00:00+02:00", "2024-10-28T00:00:00+01:00"),
                ("2024-10-28T00:00:00+01:00", "2024-10-29T00:00:00+01:00"),
            ],
        ),
        (
            NEW_YORK,
            datetime(2024, 3, 9, 12),
            [
                ("2024-03-09T00:00:00-05:00", "2024-03-10T00:00:00-05:00"),
                ("2024-03-10T00:00:00-05:00", "2024-03-11T00:00:00-04:00"),
                ("2024-03-11T00:00:00-04:00", "2024-03-12T00:00:00-04:00"),
            ],
        ),
        (
            NEW_YORK,
            datetime(2024, 11, 2, 12),
            [
                ("2024-11-02T00:00:00-04:00", "2024-11-03T00:00:00-04:00"),
                ("2024-11-03T00:00:00-04:00", "2024-11-04T00:00:00-05:00"),
                ("2024-11-04T00:00:00-05:00", "2024-11-05T00:00:00-05:00"),
            ],
        ),
    ],
)
def test_daily_runs_in_a_time_zone_across_dst_switches(tz, day, expected) -> None:
    table = timetable_for("@daily", tz)
    assert _runs(table, day.replace(tzinfo=tz), 3) == expected


@pytest.mark.parametrize(
    ("tz", "expr", "after", "due"),
    [
        # 02:30 does not exist on the spring switch day: due once, at the first valid time
        (
            BERLIN,
            "30 2 * * *",
            datetime(2024, 3, 30, 12),
            ["2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"],
        ),
        (
            NEW_YORK,
            "30 2 * * *",
            datetime(2024, 3, 9, 12),
            ["2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"],
        ),
        # 02:30 happens twice on the autumn switch day in Berlin (01:30 in New York): once
        (
            BERLIN,
            "30 2 * * *",
            datetime(2024, 10, 26, 12),
            ["2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"],
        ),
        (
            NEW_YORK,
            "30 1 * * *",
            datetime(2024, 11, 2, 12),
            ["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"],
        ),
    ],
)
def test_fixed_times_on_dst_switch_days_run_once(tz, expr, after, due) -> None:
    table = CronTimetable(expr, tz)
    runs, run = [], table.next_run(after.replace(tzinfo=tz))
    while len(runs) < 2:
        runs.append(run.due_at.isoformat())
        run = table.next_run(run.due_at)
    assert runs == due


def test_an_hourly_cron_keeps_both_hours_of_the_autumn_switch() -> None:
    # a wildcard hour is a distinct instant each time: 24 + 1 runs on that local day
    table = timetable_for("0 * * * *", BERLIN)
    start = datetime(2024, 10, 27, tzinfo=BERLIN)
    runs = list(table.runs_between(start, datetime(2024, 10, 27, 23, 0, tzinfo=BERLIN)))
    assert len(runs) == 25
    starts = [r.start.astimezone(UTC) for r in runs]  # one zone compares by wall clock
    assert all(b - a == timedelta(hours=1) for a, b in zip(starts, starts[1:], strict=False))


def test_interval_schedules_count_from_the_start_date() -> None:
    origin = datetime(2024, 1, 1, tzinfo=UTC)
    table = IntervalTimetable(3600, origin)
    assert _runs(table, origin - timedelta(days=1), 2) == [
        ("2024-01-01T00:00:00+00:00", "2024-01-01T01:00:00+00:00"),
        ("2024-01-01T01:00:00+00:00", "2024-01-01T02:00:00+00:00"),
    ]
    run = table.next_run(origin + timedelta(minutes=30))
    assert run.start == origin and run.due_at == origin + timedelta(hours=1)
    assert table.next_run(origin + timedelta(hours=1)).start == origin + timedelta(hours=1)


def test_one_second_intervals_and_dst_do_not_matter_to_intervals() -> None:
    table = timetable_for("every 1s", start=datetime(2024, 3, 31, 1, 59, 59, tzinfo=BERLIN))
    run = table.next_run(datetime(2024, 3, 31, 1, 59, 59, tzinfo=BERLIN))
    assert run.due_at.astimezone(UTC) - run.start.astimezone(UTC) == timedelta(seconds=1)
    assert run.due_at.isoformat() == "2024-03-31T03:00:00+02:00"
    daily = timetable_for("every 1d", start=datetime(2024, 3, 30, tzinfo=BERLIN))
    second = daily.next_run(daily.next_run(datetime(2024, 3, 30, tzinfo=BERLIN)).due_at)
    # 24 absolute hours, not a calendar day: the interval over the switch ends at 01:00 local
    assert second.start.isoformat() == "2024-03-31T00:00:00+01:00"
    assert second.end.isoformat() == "2024-04-01T01:00:00+02:00"


def test_runs_between_gives_one_run_per_interval_for_a_backfill() -> None:
    table = timetable_for("@daily")
    runs = list(
        table.runs_between(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 30, tzinfo=UTC))
    )
    assert [r.start.day for r in runs] == list(range(1, 31))
    hourly = timetable_for("every 1h", start=datetime(2024, 1, 1, tzinfo=UTC))
    assert (
        len(
            list(
                hourly.runs_between(
                    datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 23, tzinfo=UTC)
                )
            )
        )
        == 24
    )


def test_once_and_none() -> None:
    at = datetime(2024, 5, 1, 8, tzinfo=UTC)
    table = timetable_for("@once", start=at)
    assert isinstance(table, OnceTimetable)
    assert table.next_run(at - timedelta(seconds=1)).due_at == at
    assert table.next_run(at) is None
    assert timetable_for(None) is None


def test_unknown_time_zones_are_named() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'; use an IANA name"):
        zone("Mars/Base")


@pytest.mark.parametrize(
    ("schedule", "now", "start"),
    [
        ("@daily", datetime(2024, 1, 31, 12, tzinfo=UTC), "2024-01-30T00:00:00+00:00"),
        ("@daily", datetime(2024, 1, 31, tzinfo=UTC), "2024-01-30T00:00:00+00:00"),
        ("every 1h", datetime(2024, 1, 1, 5, 30, tzinfo=UTC), "2024-01-01T04:00:00+00:00"),
        ("every 1h", datetime(2024, 1, 1, 5, tzinfo=UTC), "2024-01-01T04:00:00+00:00"),
        ("every 1s", datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=UTC), None),
        ("@once", datetime(2024, 1, 1, tzinfo=UTC), "2024-01-01T00:00:00+00:00"),
    ],
)
def test_latest_run_is_the_one_due_most_recently(schedule, now, start) -> None:
    table = timetable_for(schedule, start=datetime(2024, 1, 1, tzinfo=UTC))
    run = table.latest_run(now)
    assert (run.start.isoformat() if run else None) == start
    if run is not None:
        assert run.due_at <= now
        following = table.next_run(run.due_at)
        assert following is None or following.due_at > now


def test_latest_run_respects_the_end_date_and_dst() -> None:
    table = timetable_for(
        "@daily", start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 1, 5, tzinfo=UTC)
    )
    assert table.latest_run(datetime(2024, 3, 1, tzinfo=UTC)).start == datetime(
        2024, 1, 5, tzinfo=UTC
    )
    berlin = timetable_for("@daily", BERLIN)
    run = berlin.latest_run(datetime(2024, 10, 27, 23, 30, tzinfo=BERLIN))
    assert run.start.isoformat() == "2024-10-26T00:00:00+02:00"
    assert run.end.isoformat() == "2024-10-27T00:00:00+02:00"


# --- daylight-saving switch days of 2026 -------------------------------------------------------
# Europe/Berlin: 2026-03-29 02:00 -> 03:00 (23 h), 2026-10-25 03:00 -> 02:00 (25 h).
# America/New_York: 2026-03-08 02:00 -> 03:00 (23 h), 2026-11-01 02:00 -> 01:00 (25 h).
# Instants are compared in UTC: aware datetimes of one zone compare (and subtract) by wall clock.

SWITCH_DAYS = [
    pytest.param(BERLIN, date(2026, 3, 29), 23, id="berlin-spring"),
    pytest.param(BERLIN, date(2026, 10, 25), 25, id="berlin-autumn"),
    pytest.param(NEW_YORK, date(2026, 3, 8), 23, id="new_york-spring"),
    pytest.param(NEW_YORK, date(2026, 11, 1), 25, id="new_york-autumn"),
]


def _local(day: date, tz: tzinfo, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


def _chain(table: Timetable, after: datetime, until: datetime) -> list[ScheduledRun]:
    """The runs given by next_run one after another, from `after` up to those due by `until`."""
    runs, run = [], table.next_run(after)
    while run is not None and _utc(run.due_at) <= _utc(until):
        runs.append(run)
        run = table.next_run(run.due_at)
    return runs


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _assert_contiguous(runs: list[ScheduledRun]) -> None:
    """Each run starts where the previous one ended (no gap, no overlap), in absolute time."""
    for before, after in zip(runs, runs[1:], strict=False):
        assert _utc(after.start) == _utc(before.end), (before, after)
    for run in runs:
        assert _utc(run.start) < _utc(run.end), run


@pytest.mark.parametrize(
    ("tz", "day", "expected"),
    [
        (
            BERLIN,
            date(2026, 3, 28),
            [
                ("2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00"),
                ("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"),
                ("2026-03-30T00:00:00+02:00", "2026-03-31T00:00:00+02:00"),
            ],
        ),
        (
            BERLIN,
            date(2026, 10, 24),
            [
                ("2026-10-24T00:00:00+02:00", "2026-10-25T00:00:00+02:00"),
                ("2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00"),
                ("2026-10-26T00:00:00+01:00", "2026-10-27T00:00:00+01:00"),
            ],
        ),
        (
            NEW_YORK,
            date(2026, 3, 7),
            [
                ("2026-03-07T00:00:00-05:00", "2026-03-08T00:00:00-05:00"),
                ("2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00"),
                ("2026-03-09T00:00:00-04:00", "2026-03-10T00:00:00-04:00"),
            ],
        ),
        (
            NEW_YORK,
            date(2026, 10, 31),
            [
                ("2026-10-31T00:00:00-04:00", "2026-11-01T00:00:00-04:00"),
                ("2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00"),
                ("2026-11-02T00:00:00-05:00", "2026-11-03T00:00:00-05:00"),
            ],
        ),
    ],
)
def test_daily_at_midnight_covers_each_local_day_across_2026_switches(tz, day, expected) -> None:
    table = timetable_for("@daily", tz)
    assert _runs(table, _local(day, tz, 12), 3) == expected
    # the interval of the switch day is that day's real length: 23 hours in spring, 25 in autumn
    switch = table.next_run(_local(day, tz, 12) + timedelta(days=1))
    hours = 23 if day.month == 3 else 25
    assert _utc(switch.end) - _utc(switch.start) == timedelta(hours=hours)


@pytest.mark.parametrize(
    ("tz", "expr", "day", "due_on_switch_day"),
    [
        # 02:30 does not exist: the run is due at the first valid time after it, 03:00
        (BERLIN, "30 2 * * *", date(2026, 3, 29), "2026-03-29T03:00:00+02:00"),
        (NEW_YORK, "30 2 * * *", date(2026, 3, 8), "2026-03-08T03:00:00-04:00"),
        # 02:30 happens twice in Berlin (01:30 in New York): due once, at the first of them
        (BERLIN, "30 2 * * *", date(2026, 10, 25), "2026-10-25T02:30:00+02:00"),
        (NEW_YORK, "30 1 * * *", date(2026, 11, 1), "2026-11-01T01:30:00-04:00"),
        # 02:30 is not repeated in New York (01:00-01:59 is): an ordinary day, 25 hours long
        (NEW_YORK, "30 2 * * *", date(2026, 11, 1), "2026-11-01T02:30:00-05:00"),
    ],
)
def test_a_fixed_time_runs_exactly_once_each_day_around_2026_switches(
    tz, expr, day, due_on_switch_day
) -> None:
    table = CronTimetable(expr, tz)
    first, last = day - timedelta(days=3), day + timedelta(days=3)
    runs = _chain(table, _local(first, tz), _local(last, tz, 23, 59))
    # one run due per local day: none skipped, none doubled
    assert [run.due_at.date() for run in runs] == [
        first + timedelta(days=n) for n in range((last - first).days + 1)
    ]
    assert [run.due_at.isoformat() for run in runs if run.due_at.date() == day] == [
        due_on_switch_day
    ]
    _assert_contiguous(runs)
    # the logical date of each run is the previous run's due time
    assert [run.start.date() for run in runs] == [
        first - timedelta(days=1) + timedelta(days=n) for n in range(len(runs))
    ]


@pytest.mark.parametrize(("tz", "day", "hours"), SWITCH_DAYS)
def test_hourly_runs_follow_absolute_hours_on_2026_switch_days(tz, day, hours) -> None:
    table = timetable_for("@hourly", tz)
    start, end = _local(day, tz), _local(day + timedelta(days=1), tz)
    # runs_between: the runs whose logical date is within the local day
    runs = list(table.runs_between(start, end - timedelta(microseconds=1)))
    assert len(runs) == hours
    assert all(_utc(r.end) - _utc(r.start) == timedelta(hours=1) for r in runs)
    _assert_contiguous(runs)
    assert _utc(runs[0].start) == _utc(start) and _utc(runs[-1].end) == _utc(end)
    # next_run, one after another, gives the same runs
    assert _chain(table, start, end) == runs
    # each local hour that exists is a run (the repeated one twice, by its two offsets)
    wall = [(r.start.hour, r.start.utcoffset()) for r in runs]
    assert len(set(wall)) == hours


@pytest.mark.parametrize(("tz", "day", "hours"), SWITCH_DAYS)
def test_fixed_intervals_ignore_switches_24_runs_per_utc_day(tz, day, hours) -> None:
    table = timetable_for("every 1h", start=datetime(2026, 1, 1, tzinfo=tz))
    utc_day = datetime(day.year, day.month, day.day, tzinfo=UTC)
    runs = list(table.runs_between(utc_day, utc_day + timedelta(hours=23, minutes=59)))
    assert len(runs) == 24
    assert all(_utc(r.end) - _utc(r.start) == timedelta(hours=1) for r in runs)
    _assert_contiguous(runs)
    # aligned to the start date (a local midnight, a whole number of hours from UTC midnight)
    assert all(_utc(r.start).minute == 0 for r in runs)
    # the local day has as many hourly runs as it has hours
    local = list(
        table.runs_between(
            _local(day, tz), _local(day + timedelta(days=1), tz) - timedelta(microseconds=1)
        )
    )
    assert len(local) == hours
    # runs are given in the zone of the start date
    assert all(r.start.tzinfo is tz for r in runs)


@pytest.mark.parametrize(
    ("tz", "month"),
    [
        pytest.param(BERLIN, 3, id="berlin-march"),
        pytest.param(BERLIN, 10, id="berlin-october"),
        pytest.param(NEW_YORK, 3, id="new_york-march"),
        pytest.param(NEW_YORK, 11, id="new_york-november"),
    ],
)
@pytest.mark.parametrize("schedule", ["@daily", "30 2 * * *", "30 1 * * *"])
def test_runs_between_over_a_month_with_a_switch_gives_one_run_per_day(tz, month, schedule) -> None:
    table = timetable_for(schedule, tz)
    first = _local(date(2026, month, 1), tz)
    last = _local(date(2026, month + 1, 1), tz) - timedelta(microseconds=1)
    runs = list(table.runs_between(first, last))
    days = (date(2026, month + 1, 1) - date(2026, month, 1)).days
    assert [r.start.date() for r in runs] == [
        date(2026, month, 1) + timedelta(days=n) for n in range(days)
    ]
    _assert_contiguous(runs)
    # a backfill over the month is the same as walking the schedule
    assert runs == _chain(table, runs[0].start, runs[-1].end)


def test_start_and_end_dates_are_honoured_in_a_zone_across_a_switch() -> None:
    table = timetable_for(
        "30 2 * * *",
        BERLIN,
        start=datetime(2026, 3, 28, tzinfo=BERLIN),
        end=datetime(2026, 3, 30, tzinfo=BERLIN),
    )
    # the first run starts at the first point on or after the start date; the last one starts
    # at or before the end date (and is due after it)
    assert _runs(table, datetime(2026, 1, 1, tzinfo=UTC), 10) == [
        ("2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00"),
        ("2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"),
    ]
    assert list(
        table.runs_between(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    ) == [
        table.next_run(datetime(2026, 1, 1, tzinfo=UTC)),
        table.next_run(datetime(2026, 3, 29, 3, tzinfo=BERLIN)),
    ]
    # none due before the first run's due time (the day before it counts for nothing)
    assert table.latest_run(datetime(2026, 3, 29, 0, 59, tzinfo=UTC)) is None
    assert table.latest_run(datetime(2026, 6, 1, tzinfo=UTC)).start.isoformat() == (
        "2026-03-29T03:00:00+02:00"
    )
    hourly = timetable_for(
        "@hourly",
        NEW_YORK,
        start=datetime(2026, 11, 1, 1, 0, tzinfo=NEW_YORK),  # the first 01:00 (EDT)
        end=datetime(2026, 11, 1, 2, 0, tzinfo=NEW_YORK),
    )
    runs = list(
        hourly.runs_between(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    )
    assert [(r.start.isoformat(), r.end.isoformat()) for r in runs] == [
        ("2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00"),
        ("2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"),
        ("2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"),
    ]
    interval = timetable_for(
        "every 1h",
        start=datetime(2026, 10, 25, tzinfo=BERLIN),
        end=datetime(2026, 10, 25, 23, tzinfo=BERLIN),
    )
    runs = _chain(interval, datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    assert len(runs) == 25  # the local day's 25 hours: the last run starts at the end date
    assert runs[0].start.isoformat() == "2026-10-25T00:00:00+02:00"
    assert runs[-1].start.isoformat() == "2026-10-25T23:00:00+01:00"
    assert interval.latest_run(datetime(2027, 1, 1, tzinfo=UTC)) == runs[-1]


@pytest.mark.parametrize(
    ("schedule", "tz", "now", "due"),
    [
        # Berlin, spring: the hourly run due at 03:00 CEST (01:00 UTC) is the latest until 04:00.
        # regression (CronTimetable.latest_run): `due - timedelta(microseconds=1)` is
        # wall-clock arithmetic on an aware datetime; 02:59:59.999999 does not exist that day
        # and resolves to +01:00, one hour *after* the due time, so the following run is found,
        # is not due yet, and latest_run returns None for the whole hour.
        (
            "@hourly",
            BERLIN,
            datetime(2026, 3, 29, 3, 15, tzinfo=BERLIN),
            "2026-03-29T03:00:00+02:00",
        ),
        (
            "@hourly",
            NEW_YORK,
            datetime(2026, 3, 8, 3, 15, tzinfo=NEW_YORK),
            "2026-03-08T03:00:00-04:00",
        ),
        # Same bug, daily: the 02:30 run is due at 03:00 on the switch day; latest_run returns
        # None from then until the next run is due, 23.5 hours later.
        (
            "30 2 * * *",
            BERLIN,
            datetime(2026, 3, 29, 12, tzinfo=BERLIN),
            "2026-03-29T03:00:00+02:00",
        ),
        (
            "0 3 * * *",
            NEW_YORK,
            datetime(2026, 3, 8, 12, tzinfo=NEW_YORK),
            "2026-03-08T03:00:00-04:00",
        ),
        # Berlin, autumn: at 02:15 CET (the second 02:15, 01:15 UTC) the latest run is the one due
        # at 02:00 CET (01:00 UTC).
        # regression (CronTimetable._last_point): `at + timedelta(microseconds=1)` drops
        # `fold`, moving a time of the repeated hour one hour back (to the first pass), and
        # latest_run then subtracts 1 µs from a fold=1 due time the same way: the run returned
        # is one run too old (here the one due at 02:00 CEST) for both hours after the switch.
        (
            "@hourly",
            BERLIN,
            datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=BERLIN),
            "2026-10-25T02:00:00+01:00",
        ),
        (
            "@hourly",
            BERLIN,
            datetime(2026, 10, 25, 3, 15, tzinfo=BERLIN),
            "2026-10-25T03:00:00+01:00",
        ),
        (
            "@hourly",
            NEW_YORK,
            datetime(2026, 11, 1, 1, 15, fold=1, tzinfo=NEW_YORK),
            "2026-11-01T01:00:00-05:00",
        ),
        # regression (also CronTimetable._last_point): cronsim walks wall-clock time, so walking back
        # from the second 02:10 never meets the first 02:30, which is later on the wall clock:
        # yesterday's run is returned although today's was due 40 minutes ago (absolute time).
        (
            "30 2 * * *",
            BERLIN,
            datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=BERLIN),
            "2026-10-25T02:30:00+02:00",
        ),
        # Unaffected cases, for contrast.
        (
            "@hourly",
            BERLIN,
            datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN),
            "2026-03-29T01:00:00+01:00",
        ),
        (
            "@daily",
            NEW_YORK,
            datetime(2026, 11, 1, 12, tzinfo=NEW_YORK),
            "2026-11-01T00:00:00-04:00",
        ),
        (
            "every 1h",
            BERLIN,
            datetime(2026, 3, 29, 3, 15, tzinfo=BERLIN),
            "2026-03-29T03:00:00+02:00",
        ),
        (
            "every 1h",
            BERLIN,
            datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=BERLIN),
            "2026-10-25T02:00:00+01:00",
        ),
    ],
)
def test_latest_run_around_2026_switches(schedule, tz, now, due) -> None:
    table = timetable_for(schedule, tz, start=datetime(2026, 1, 1, tzinfo=tz))
    run = table.latest_run(now)
    assert run is not None and run.due_at.isoformat() == due
    assert _utc(run.due_at) <= _utc(now)
    following = table.next_run(run.due_at)
    assert following is None or _utc(following.due_at) > _utc(now)


@pytest.mark.parametrize(
    ("tz", "expr", "after", "due"),
    [
        # regression (CronTimetable.next_run): in the repeated hour cronsim continues by
        # wall clock: after the second 02:00 (01:00 UTC) it offers the first 02:30 (00:30 UTC),
        # half an hour *before* `after`, and next_run returns that run, already due, instead of
        # the next day's: the scheduler would see a run due in the past. A fix: skip points that
        # are not after `since` in UTC.
        (
            BERLIN,
            "30 2 * * *",
            datetime(2026, 10, 25, 2, 0, fold=1, tzinfo=BERLIN),
            "2026-10-26T02:30:00+01:00",
        ),
        (
            NEW_YORK,
            "30 1 * * *",
            datetime(2026, 11, 1, 1, 0, fold=1, tzinfo=NEW_YORK),
            "2026-11-02T01:30:00-05:00",
        ),
        # the same instants given in UTC
        (
            BERLIN,
            "30 2 * * *",
            datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
            "2026-10-26T02:30:00+01:00",
        ),
        # unaffected: after the second 02:40, the first 02:30 is also earlier on the wall clock
        (
            BERLIN,
            "30 2 * * *",
            datetime(2026, 10, 25, 2, 40, fold=1, tzinfo=BERLIN),
            "2026-10-26T02:30:00+01:00",
        ),
    ],
)
def test_next_run_is_due_strictly_after_a_time_in_the_repeated_hour(tz, expr, after, due) -> None:
    run = CronTimetable(expr, tz).next_run(after)
    assert _utc(run.due_at) > _utc(after)
    assert run.due_at.isoformat() == due


@pytest.mark.parametrize(("tz", "day", "hours"), SWITCH_DAYS)
@pytest.mark.parametrize("schedule", ["@daily", "30 2 * * *", "30 1 * * *", "@hourly", "every 1h"])
def test_next_and_latest_run_agree_with_the_schedule_every_10_minutes(
    schedule, tz, day, hours
) -> None:
    # the reference: the runs of the schedule, walked one after another with next_run(due_at);
    # at every instant next_run must give the first run due after it, latest_run the last one
    # due at or before it (covers the regressions above)
    table = timetable_for(schedule, tz, start=datetime(2026, 1, 1, tzinfo=tz))
    low = _utc(_local(day - timedelta(days=1), tz))
    high = _utc(_local(day + timedelta(days=2), tz))
    runs = _chain(table, low - timedelta(days=3), high + timedelta(days=2))
    wrong = []
    now = low
    while now < high:
        due = [r for r in runs if _utc(r.due_at) <= now]
        expected_latest, expected_next = due[-1], runs[len(due)]
        for at in (now, now.astimezone(tz)):
            if table.next_run(at) != expected_next:
                wrong.append(("next_run", at.isoformat()))
            if table.latest_run(at) != expected_latest:
                wrong.append(("latest_run", at.isoformat()))
        now += timedelta(minutes=10)
    assert not wrong, f"{len(wrong)} wrong answers, the first: {wrong[:4]}"
