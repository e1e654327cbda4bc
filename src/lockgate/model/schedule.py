"""Validation of schedule expressions (cron with presets); timetables come with the scheduler."""

from __future__ import annotations

PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def cron_expression(schedule: str) -> str:
    """The five-field cron expression for a schedule string (presets expanded)."""
    return PRESETS.get(schedule.strip(), schedule.strip())


def check_schedule(schedule: str) -> None:
    """Raise ValueError with a readable reason if `schedule` is not a valid cron expression."""
    if not isinstance(schedule, str) or not schedule.strip():
        raise ValueError(f"schedule must be a cron expression or a preset, got {schedule!r}")
    expr = cron_expression(schedule)
    if expr.startswith("@"):
        raise ValueError(f"unknown schedule preset {schedule!r}; use one of {', '.join(PRESETS)}")
    if len(expr.split()) != 5:
        raise ValueError(
            f"schedule {schedule!r} must have 5 fields (minute hour day month weekday) or be a preset"
        )
    from datetime import datetime

    from cronsim import CronSim, CronSimError

    try:
        CronSim(expr, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise ValueError(f"invalid cron schedule {schedule!r}: {exc}") from None
