"""The dates of one run: its logical date and the data interval it covers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo


@dataclass(frozen=True, slots=True)
class RunDates:
    """What templates see as `logical_date`, `data_interval_start` and `data_interval_end`.

    They are made in UTC (so they are the same on every machine and after a resume), and the
    engine shows them in the pipeline's time zone (`astimezone`), so `ds` is the pipeline's
    local day; a manual run's interval is the instant it was triggered."""

    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime

    @classmethod
    def at(cls, when: datetime | None = None) -> RunDates:
        """A manual run at `when` (now if omitted; naive datetimes are taken as UTC)."""
        moment = when or datetime.now(UTC)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return cls(moment, moment, moment)

    @classmethod
    def from_timestamps(cls, logical: float, start: float | None, end: float | None) -> RunDates:
        """Dates as stored (seconds since the epoch); a missing interval is the logical date."""
        point = datetime.fromtimestamp(logical, UTC)
        return cls(
            point,
            point if start is None else datetime.fromtimestamp(start, UTC),
            point if end is None else datetime.fromtimestamp(end, UTC),
        )

    def astimezone(self, tz: tzinfo) -> RunDates:
        """The same instants, as datetimes in `tz`."""
        return RunDates(
            self.logical_date.astimezone(tz),
            self.data_interval_start.astimezone(tz),
            self.data_interval_end.astimezone(tz),
        )

    def timestamps(self) -> tuple[float, float, float]:
        return (
            self.logical_date.timestamp(),
            self.data_interval_start.timestamp(),
            self.data_interval_end.timestamp(),
        )
