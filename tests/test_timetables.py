"""Timetables: due times and data intervals of cron, interval and once schedules, in time
zones, across daylight-saving switches (Europe/Berlin and America/New_York, both switch days)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lockgate.model.timetables import (
    CronTimetable,
    IntervalTimetable,
    OnceTimetable,
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
