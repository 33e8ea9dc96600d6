"""Refresh schedules of a source: an interval (``"15m"``) or a cron expression (``"0 7 * * 1-5"``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cronsim import CronSim, CronSimError

MIN_INTERVAL_S = 5.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
HOW_TO_WRITE = (
    'write a duration such as "30s", "15m", "1h" or "1h30m" (at least 5s), '
    'or a cron expression such as "*/15 * * * *" (minute hour day month weekday, local time)'
)


class Schedule(Protocol):
    def next_after(self, moment: datetime) -> datetime:
        """The first sync time after ``moment`` (an aware datetime)."""
        ...


@dataclass(frozen=True)
class Every:
    seconds: float

    def next_after(self, moment: datetime) -> datetime:
        return moment + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class Cron:
    expression: str

    def next_after(self, moment: datetime) -> datetime:
        # Evaluated in local time, as a user reads "0 7 * * *"; seconds are not part of cron.
        local = moment.astimezone().replace(second=0, microsecond=0)
        return next(CronSim(self.expression, local))


def parse_refresh(value: str) -> Schedule:
    """A schedule from a ``refresh`` value; ValueError says what to write instead."""
    text = value.strip().lower()
    if text and _DURATION.sub("", text).strip() == "":
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(text))
        if seconds < MIN_INTERVAL_S:
            raise ValueError(f"{value!r} is too often: {HOW_TO_WRITE}")
        return Every(seconds)
    if len(text.split()) > 1:
        try:
            cron = Cron(" ".join(text.split()))
            cron.next_after(datetime.now().astimezone())
        except (CronSimError, StopIteration, ValueError) as exc:
            raise ValueError(f"{value!r} is not a valid cron expression ({exc}): {HOW_TO_WRITE}") from exc
        return cron
    raise ValueError(f"{value!r} is not a schedule: {HOW_TO_WRITE}")
