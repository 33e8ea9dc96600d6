"""Values into CEL and back.

- Numbers are CEL's own: values are typed by their declared types (``integer`` is int,
  ``number`` is double, in every row); int and double compare with each other but do not mix
  in arithmetic, which :mod:`..typecheck` reports before serving.
- Dates are timestamps at 00:00 UTC. Date-times are converted to the rules' business time zone
  and carried as that wall-clock time tagged UTC ("floating" local time), so ``today``, dates
  and date-times compare and subtract without time-zone surprises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any


def date_timestamp(d: date) -> datetime:
    """A date as CEL carries it: a timestamp at 00:00 UTC."""
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def floating(dt: datetime, tz: tzinfo) -> datetime:
    """A date-time as the business's wall-clock time, tagged UTC (naive ones are taken as local)."""
    local = dt.astimezone(tz) if dt.tzinfo is not None else dt
    return local.replace(tzinfo=UTC)


def to_cel(value: Any, tz: tzinfo) -> Any:
    """A Python value as CEL takes it: ints stay int, floats and decimals are double."""
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return floating(value, tz)
    if isinstance(value, date):
        return date_timestamp(value)
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_cel(v, tz) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_cel(v, tz) for v in value]
    return str(value)


def cel_type(value: Any) -> str:
    """The CEL type name of a converted value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "date" if _is_midnight(value) else "timestamp"
    if isinstance(value, timedelta):
        return "duration"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _is_midnight(value: datetime) -> bool:
    return value.hour == value.minute == value.second == value.microsecond == 0


def to_json(value: Any, tz: tzinfo) -> Any:
    """A CEL result as JSON: dates as ``YYYY-MM-DD``, whole numbers as integers, durations in days."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, float):
        return _json_number(value)
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return _json_timestamp(value, tz)
    if isinstance(value, timedelta):
        return to_json(value.total_seconds() / 86400, tz)
    if isinstance(value, Mapping):
        return {str(k): to_json(v, tz) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v, tz) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _json_number(value: float) -> Any:
    """A whole double as an integer (within 2**53), NaN and infinities as text."""
    if math.isfinite(value) and value == int(value) and abs(value) < 2**53:
        return int(value)
    return value if math.isfinite(value) else str(value)


def _json_timestamp(value: datetime, tz: tzinfo) -> str:
    """A date (a midnight timestamp) as ``YYYY-MM-DD``; a floating date-time with its zone."""
    if _is_midnight(value):
        return value.date().isoformat()
    return value.replace(tzinfo=tz).isoformat() if tz is not UTC else value.isoformat()


def fact_json(value: Any) -> Any:
    """A record field as JSON, from its original Python type."""
    if value is None or isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): fact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [fact_json(v) for v in value]
    return str(value)


def display(value: Any, tz: tzinfo) -> str:
    """A value as it reads inside a sentence: ``30``, ``12.5``, ``2025-03-01``, ``yes``."""
    shown = to_json(value, tz)
    if isinstance(shown, bool):
        return "yes" if shown else "no"
    if shown is None:
        return "none"
    if isinstance(shown, float):
        return f"{shown:.2f}".rstrip("0").rstrip(".")
    if isinstance(shown, list):
        return ", ".join(display(v, tz) for v in value)
    return str(shown)
