"""Facts: records looked up by key, with declared field types enforced before rules see them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from strongroom.server.rules.model import FieldSpec

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")
_LENIENT_TRUE = {"true", "yes", "y", "1", "t"}
_LENIENT_FALSE = {"false", "no", "n", "0", "f"}


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
    kind = spec.type
    if is_empty(value):  # of every type: a blank text cell (from JSON or SQL) is null, not ""
        return None
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return key_text(value)
        raise FieldTypeError(f"expected text, got {_describe(value)}")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        word = value.strip().lower() if isinstance(value, str) else None
        if word in ("true", "false"):
            return word == "true"
        if spec.lenient:
            if word in _LENIENT_TRUE | _LENIENT_FALSE:
                return word in _LENIENT_TRUE
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
        hint = "" if spec.lenient else " (declare `lenient: true` on the field to read yes/no and 1/0)"
        raise FieldTypeError(f"expected true or false, got {_describe(value)}{hint}")
    if kind in ("number", "integer"):
        if isinstance(value, bool):
            raise FieldTypeError(f"expected a number, got {_describe(value)}")
        if isinstance(value, int | float | Decimal):
            number = value
        elif isinstance(value, str):
            try:
                number = Decimal(value.strip().replace(",", "").lstrip("$"))
            except InvalidOperation:
                raise FieldTypeError(f"expected a number, got {_describe(value)}") from None
        else:
            raise FieldTypeError(f"expected a number, got {_describe(value)}")
        if kind == "integer":
            if number != int(number):
                raise FieldTypeError(f"expected a whole number, got {_describe(value)}")
            return int(number)
        return float(number)
    if kind == "date":
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
    # datetime
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


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "number", float: "number", Decimal: "number", str: "text"}.get(
        type(value), type(value).__name__
    )
    shown = repr(value) if not isinstance(value, str) or len(value) <= 40 else repr(value[:40] + "...")
    return f"{kind} {shown}"
