"""Facts: records looked up by key, with declared field types enforced before rules see them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from strongroom.connectors.values import lenient as lenient_value
from strongroom.server.rules.model import FieldSpec

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")


class FieldTypeError(ValueError):
    """A record field does not hold the declared type."""


@dataclass(frozen=True)
class KeyTemplate:
    """``"{order_id}"`` or ``"C-{order.customer_id}"``: how a fact's record key is built."""

    source: str
    references: tuple[tuple[str, ...], ...]

    @staticmethod
    def parse(source: str) -> KeyTemplate:
        refs = tuple(tuple(m.group(1).split(".")) for m in _PLACEHOLDER.finditer(source))
        return KeyTemplate(source, refs)

    def render(self, values: Mapping[str, Any]) -> str | None:
        """The key, or None when a referenced value is missing or null."""
        missing = False

        def sub(m: re.Match[str]) -> str:
            nonlocal missing
            value: Any = values
            for part in m.group(1).split("."):
                if not isinstance(value, Mapping) or value.get(part) is None:
                    missing = True
                    return ""
                value = value[part]
            return key_text(value)

        key = _PLACEHOLDER.sub(sub, self.source)
        return None if missing else key


def key_text(value: Any) -> str:
    """A value as it appears inside a record key: ``4471`` not ``4471.0``, dates ISO."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | Decimal) and value == int(value):
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def is_empty(value: Any) -> bool:
    """A missing or blank cell."""
    return value is None or (isinstance(value, str) and not value.strip())


def coerce(value: Any, spec: FieldSpec) -> Any:
    """``value`` as the declared type; empty cells become null. Raises FieldTypeError."""
    if is_empty(value):  # of every type: a blank text cell (from JSON or SQL) is null, not ""
        return None
    if spec.type == "boolean":
        return _as_boolean(value, spec.lenient)
    if spec.type in ("number", "integer"):
        number = _as_number(value)
        return _as_whole(number, value) if spec.type == "integer" else float(number)
    return _AS[spec.type](value)


def _as_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return key_text(value)
    raise FieldTypeError(f"expected text, got {_describe(value)}")


def _as_boolean(value: Any, lenient: bool) -> bool:
    """``true``/``false`` (any case); a lenient field also reads the record connectors' words
    for a boolean (yes/no, y/n, t/f, 1/0) and the numbers 0 and 1."""
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if word in ("true", "false"):
        return word == "true"
    if lenient:
        read = lenient_value("bool", value)
        if isinstance(read, bool):
            return read
    hint = "" if lenient else " (declare `lenient: true` on the field to read yes/no and 1/0)"
    raise FieldTypeError(f"expected true or false, got {_describe(value)}{hint}")


def _as_number(value: Any) -> int | float | Decimal:
    """A number, or text such as ``1,250.00`` or ``$30`` (commas and a leading ``$`` dropped)."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return Decimal(value.strip().replace(",", "").lstrip("$"))
        except InvalidOperation:
            pass
    raise FieldTypeError(f"expected a number, got {_describe(value)}")


def _as_whole(number: int | float | Decimal, value: Any) -> int:
    if number != int(number):
        raise FieldTypeError(f"expected a whole number, got {_describe(value)}")
    return int(number)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise FieldTypeError(f"expected a date (YYYY-MM-DD), got {_describe(value)}") from None
    raise FieldTypeError(f"expected a date, got {_describe(value)}")


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise FieldTypeError(f"expected a date-time (ISO 8601), got {_describe(value)}") from None
    raise FieldTypeError(f"expected a date-time, got {_describe(value)}")


_AS: dict[str, Callable[[Any], Any]] = {"string": _as_string, "date": _as_date, "datetime": _as_datetime}


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "number", float: "number", Decimal: "number", str: "text"}.get(
        type(value), type(value).__name__
    )
    shown = repr(value) if not isinstance(value, str) or len(value) <= 40 else repr(value[:40] + "...")
    return f"{kind} {shown}"
