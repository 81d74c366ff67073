"""The day's time: 08:00 to 18:00 in the district (Asia/Shanghai), on a clock that moves only
when the simulation moves it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 30)
OPENS, CLOSES = clock_time(8), clock_time(18)


def local(at: clock_time) -> datetime:
    """That time of the day in the district, as the UTC instant the hub works in."""
    return datetime.combine(DAY, at, ZONE).astimezone(UTC)


class SimClock:
    """The day's clock: it moves only when the simulation moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = max(self.now, when)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
