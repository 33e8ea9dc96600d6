"""Typed record values, in one place: the types a record's fields hold and how they are read.

- :func:`normalise_value`: what a record field may hold (scalars, dates, decimals, bytes,
  JSON lists and dicts);
- :func:`parse_value`: strict text parsing by :data:`ValueType` (CSV cells, SQLite columns),
  with :func:`infer_type` for untyped columns, :func:`lenient` for database values and
  :func:`coerce_json` for JSON scalars;
- :func:`tag_value` and :func:`untag_value`: the values JSON has no type for, as
  ``(type, text)`` pairs, for the typed JSON that keeps fields and high-water marks.
"""

from __future__ import annotations

import base64
import math
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

ValueType = Literal["str", "int", "float", "decimal", "bool", "date", "datetime"]
VALUE_TYPES: tuple[ValueType, ...] = ("str", "int", "float", "decimal", "bool", "date", "datetime")

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
"""The words a boolean is read from (any case): ``true/false``, ``yes/no``, ``t/f``, ``y/n``, ``1/0``."""


def normalise_value(value: Any) -> Any:
    """A value the catalog can store with its type: scalars, dates, decimals, bytes, JSON lists/dicts.

    Driver-specific types without a lossless equivalent (UUID, intervals, network addresses,
    ranges) become their text form.
    """
    if value is None or isinstance(value, str | bool | int | Decimal | date | time):
        return value  # datetime is a date subclass
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, list | tuple):
        return [normalise_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): normalise_value(v) for k, v in value.items()}
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


# --- parsing text ---------------------------------------------------------------------------

_INT = re.compile(r"[+-]?\d+")
_PLAIN_INT = re.compile(r"[+-]?(0|[1-9]\d*)")  # no leading zeros: "007" stays text when inferred
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_PLAIN_NUMBER = re.compile(r"[+-]?((0|[1-9]\d*)(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")


def parse_value(text: str, kind: ValueType) -> Any:
    """Parse ``text`` as ``kind`` strictly; raises ValueError naming the expected form.

    Accepted forms: int ``-12``; float and decimal ``3.5``, ``1e3``; bool ``true/false``,
    ``yes/no``, ``t/f``, ``y/n``, ``1/0``; date ``2024-03-01``; datetime ISO 8601
    ``2024-03-01T10:00[:00[.ffffff]][Z|+01:00]`` (a space may replace the ``T``; a plain date
    means midnight).
    """
    if kind == "str":
        return text
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ValueError(f"unknown type {kind!r}")
    return parser(text)


def _parse_int(text: str) -> int:
    if _INT.fullmatch(raw := text.strip()):
        return int(raw)
    raise ValueError(f"{text!r} is not an integer")


def _parse_float(text: str) -> float:
    if _NUMBER.fullmatch(raw := text.strip()):
        return float(raw)
    raise ValueError(f"{text!r} is not a number")


def _parse_decimal(text: str) -> Decimal:
    if _NUMBER.fullmatch(raw := text.strip()):
        return Decimal(raw)
    raise ValueError(f"{text!r} is not a number")


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{text!r} is not a boolean (true/false)")


def _parse_date(text: str) -> date:
    if _DATE.fullmatch(raw := text.strip()):
        return date.fromisoformat(raw)
    raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")


def _parse_datetime(text: str) -> datetime:
    raw = text.strip()
    if _DATETIME.fullmatch(raw):
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if _DATE.fullmatch(raw):
        return datetime.fromisoformat(raw)
    raise ValueError(f"{text!r} is not a date and time (ISO 8601)")


_PARSERS: dict[str, Callable[[str], Any]] = {
    "int": _parse_int,
    "float": _parse_float,
    "decimal": _parse_decimal,
    "bool": _parse_bool,
    "date": _parse_date,
    "datetime": _parse_datetime,
}


def infer_type(cells: Iterable[str]) -> ValueType:
    """The narrowest type that every non-empty cell parses as, conservatively.

    In order: int, float (neither with leading zeros, so codes like ``007`` stay text), date, datetime,
    bool (``true``/``false`` only), else str. A column mixing dates and date-times is str.
    """
    values = [c.strip() for c in cells if c.strip()]
    if not values:
        return "str"
    if all(_PLAIN_INT.fullmatch(v) for v in values):
        return "int"
    if all(_PLAIN_NUMBER.fullmatch(v) for v in values):
        return "float"
    if all(_DATE.fullmatch(v) for v in values) and _all_parse(values, "date"):
        return "date"
    if all(_DATETIME.fullmatch(v) for v in values) and _all_parse(values, "datetime"):
        return "datetime"
    if all(v.lower() in ("true", "false") for v in values):
        return "bool"
    return "str"


def _all_parse(values: Sequence[str], kind: ValueType) -> bool:
    try:
        for v in values:
            parse_value(v, kind)
    except ValueError:
        return False
    return True


def lenient(kind: ValueType, value: Any) -> Any:
    """``value`` converted to ``kind`` when it is text (or a number for decimal/bool) that
    parses; otherwise the value unchanged. For database columns whose declared type the driver
    does not apply (SQLite stores dates as text and decimals as floats)."""
    try:
        if isinstance(value, str):
            return parse_value(value, kind)
        if kind == "decimal" and isinstance(value, int | float) and not isinstance(value, bool):
            return Decimal(str(value)) if math.isfinite(value) else value
        if kind == "bool" and isinstance(value, int) and value in (0, 1):
            return bool(value)
    except (ValueError, InvalidOperation):
        pass
    return value


def coerce_json(value: Any, kind: ValueType) -> Any:
    """A JSON scalar as ``kind``: text is parsed, numbers converted where no digit is lost."""
    if isinstance(value, str):
        return None if not value.strip() and kind != "str" else parse_value(value, kind)
    if isinstance(value, bool):
        if kind in ("bool", "str"):
            return value if kind == "bool" else ("true" if value else "false")
        raise ValueError(f"{value!r} is not a {kind}")
    if isinstance(value, int | float):
        if kind == "int" and float(value).is_integer():
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "decimal":
            return Decimal(str(value))
        if kind == "bool" and value in (0, 1):
            return bool(value)
        if kind == "str":
            return str(value)
    raise ValueError(f"{value!r} is not a {kind}")


# --- typed JSON -------------------------------------------------------------------------------


def tag_value(value: Any) -> tuple[str, str] | None:
    """``(type, text)`` of a value JSON has no type for (datetime, date, time, decimal, bytes),
    else None."""
    if isinstance(value, datetime):
        return "datetime", value.isoformat()
    if isinstance(value, date):
        return "date", value.isoformat()
    if isinstance(value, time):
        return "time", value.isoformat()
    if isinstance(value, Decimal):
        return "decimal", str(value)
    if isinstance(value, bytes):
        return "bytes", base64.b64encode(value).decode()
    return None


_UNTAG: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "decimal": Decimal,
    "bytes": base64.b64decode,
}
TAGGED_TYPES = frozenset(_UNTAG)


def untag_value(kind: str, text: Any) -> Any:
    """The value :func:`tag_value` tagged; KeyError for a type it does not tag."""
    return _UNTAG[kind](text)
