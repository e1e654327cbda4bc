"""The scheduler daemon end to end on SQLite: real project folders, pipeline files written while
it runs, runs and task attempts read back from the store, tasks that append to files."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import pytest

from lockgate import api
from lockgate.errors import ConfigError
from lockgate.scheduler.daemon import Scheduler
from lockgate.config import Project

from .conftest import LONG_AGO, Lab, echo, iso, wait_until, whole_seconds_ago


def _logicals(runs: list[dict]) -> list[float]:
    return [r["logical_date"] for r in runs]


# -- 1. interval schedules ------------------------------------------------------------------------
def test_interval_runs_cover_each_interval_and_tasks_see_their_dates(lab: Lab) -> None:
    out = lab.out("dates.txt")
    lab.write_yaml(
        "tick",
        schedule="every 1s",
        start_date=LONG_AGO,
        tasks={"t": {"shell": echo(out, "{{ run_id }}|{{ ds }}|{{ ts }}|{{ data_interval_end }}")}},
    )
    lab.start()
    runs = wait_until(
        lambda: lab.finished("tick")[:3] if len(lab.finished("tick")) >= 3 else None,
        what="3 runs of tick",
    )
    seen = {line.split("|")[0]: line.split("|")[1:] for line in lab.lines("dates.txt")}
    for run in runs:
        logical, end = run["logical_date"], run["data_interval_end"]
        assert run["trigger"] == "schedule"
        assert logical == math.floor(logical)  # aligned on the start date's whole seconds
        assert run["data_interval_start"] == logical
        assert end == logical + 1
        # created at its due time (the end of its interval), not before, not much later
        assert end <= run["created_at"] < end + 1.0, run
        moment = datetime.fromtimestamp(logical, UTC)
        assert seen[run["id"]] == [
            moment.strftime("%Y-%m-%d"),
            moment.isoformat(),
            str(datetime.fromtimestamp(end, UTC)),
        ]
