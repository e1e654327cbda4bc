"""Schedule expressions: cron (with presets), a fixed interval (`every 1h`), or `@once`.

The timetables that turn them into due times come with the scheduler."""

from __future__ import annotations

from lockgate.model.durations import format_duration, parse_duration

PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
ONCE = "@once"
"""Run one time, at the start date."""
EVERY = "every "


def cron_expression(schedule: str) -> str:
    """The five-field cron expression for a schedule string (presets expanded)."""
    return PRESETS.get(schedule.strip(), schedule.strip())


def interval_schedule(seconds: float) -> str:
    """The schedule text of a fixed interval: `every 1h30m`."""
    if seconds <= 0:
        raise ValueError(f"a schedule interval must be longer than 0 seconds, got {seconds:g}s")
    return EVERY + format_duration(seconds)


def interval_seconds(schedule: str) -> float | None:
    """The interval of an `every ...` schedule, else None."""
    text = schedule.strip()
    return parse_duration(text[len(EVERY) :]) if text.startswith(EVERY) else None


def check_schedule(schedule: str) -> None:
    """Raise ValueError with a readable reason if `schedule` is not a valid schedule."""
    if not isinstance(schedule, str) or not schedule.strip():
        raise ValueError(f"schedule must be a cron expression or a preset, got {schedule!r}")
    text = schedule.strip()
    if text == ONCE:
        return
    if text.startswith(EVERY):
        seconds = parse_duration(text[len(EVERY) :])
        if seconds <= 0:
            raise ValueError(f"schedule {schedule!r}: the interval must be longer than 0 seconds")
        return
    expr = cron_expression(text)
    if expr.startswith("@"):
        from lockgate.errors import did_you_mean

        raise ValueError(
            f"unknown schedule preset {schedule!r}{did_you_mean(text, [*PRESETS, ONCE])}"
        )
    if len(expr.split()) != 5:
        raise ValueError(
            f"schedule {schedule!r} must have 5 fields (minute hour day month weekday), "
            "be a preset such as @daily, or an interval such as 'every 30m'"
        )
    from datetime import datetime

    from cronsim import CronSim, CronSimError

    try:
        CronSim(expr, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise ValueError(f"invalid cron schedule {schedule!r}: {exc}") from None
