"""The functions expressions may call beyond CEL's own, and the names reserved for them.

They cover what CEL lacks: ``days(n)``, ``days_between(a, b)``, ``days_since(t)``,
``add_days``/``add_months``/``add_years``, ``date('2025-02-01')``, 1-based ``year``/``month``/
``day``/``weekday``, and ``coalesce(a, b)``. Helpers that count return int.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from strongroom.server.rules.expressions.lexer import CEL_RESERVED, NAMESPACES
from strongroom.server.rules.expressions.loading import load_cel
from strongroom.server.rules.expressions.values import date_timestamp


class HelperError(ValueError):
    """A helper function got an argument it cannot use."""


def _whole(n: Any, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | float) or n != int(n):
        raise HelperError(f"{name}() needs a whole number, got {n!r}")
    return int(n)


def _stamp(t: Any, name: str) -> datetime:
    if not isinstance(t, datetime):
        kind = "null" if t is None else type(t).__name__
        raise HelperError(f"{name}() needs a date, got {kind} {t!r}")
    return t


def _add_months(t: datetime, months: int) -> datetime:
    total = t.month - 1 + months
    year, month = t.year + total // 12, total % 12 + 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return t.replace(year=year, month=month, day=day)


def parse_date(text: str) -> date:
    """``YYYY-MM-DD`` (or an ISO date-time, whose date is taken)."""
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise HelperError(f"{text!r} is not a date (write YYYY-MM-DD)") from None


def _date(value: Any) -> datetime:
    if isinstance(value, datetime):
        return date_timestamp(value.date())
    if isinstance(value, str):
        return date_timestamp(parse_date(value))
    raise HelperError(f"date() needs a string like '2025-02-01', got {value!r}")


STATIC_HELPERS: dict[str, Callable[..., Any]] = {
    "date": _date,
    "days": lambda n: timedelta(days=_whole(n, "days")),
    "days_between": lambda a, b: (_stamp(b, "days_between").date() - _stamp(a, "days_between").date()).days,
    "add_days": lambda t, n: _stamp(t, "add_days") + timedelta(days=_whole(n, "add_days")),
    "add_months": lambda t, n: _add_months(_stamp(t, "add_months"), _whole(n, "add_months")),
    "add_years": lambda t, n: _add_months(_stamp(t, "add_years"), 12 * _whole(n, "add_years")),
    "year": lambda t: _stamp(t, "year").year,
    "month": lambda t: _stamp(t, "month").month,
    "day": lambda t: _stamp(t, "day").day,
    "weekday": lambda t: _stamp(t, "weekday").isoweekday(),
    "coalesce": lambda *values: next((v for v in values if v is not None), None),
}
CLOCK_HELPERS = ("days_since",)


@cache
def library() -> dict[str, Callable[..., Any]]:
    """CEL's string and math extension functions."""
    load_cel()
    from cel.stdlib import EXTENSIONS

    return {**EXTENSIONS["strings"], **EXTENSIONS["math"]}


HELPER_NAMES = frozenset(STATIC_HELPERS) | frozenset(CLOCK_HELPERS)
ENGINE_NAMES = frozenset({"now", "today"})
RESERVED_NAMES = CEL_RESERVED | HELPER_NAMES | ENGINE_NAMES | NAMESPACES


def functions_for(today: datetime) -> dict[str, Callable[..., Any]]:
    """Every function an expression may call, with ``today`` bound for ``days_since``."""

    def days_since(t: Any) -> int:
        return (today.date() - _stamp(t, "days_since").date()).days

    return {**library(), **STATIC_HELPERS, "days_since": days_since}
