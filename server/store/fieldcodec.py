"""JSON for record fields that keeps their types (dates, times, decimals, bytes) across storage."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

_TAG = "$type"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, date):
        return {_TAG: "date", "value": value.isoformat()}
    if isinstance(value, time):
        return {_TAG: "time", "value": value.isoformat()}
    if isinstance(value, Decimal):
        return {_TAG: "decimal", "value": str(value)}
    if isinstance(value, bytes):
        return {_TAG: "bytes", "value": base64.b64encode(value).decode()}
    raise TypeError(f"cannot store a field of type {type(value).__name__}")


_DECODERS = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "decimal": Decimal,
    "bytes": base64.b64decode,
}


def _decode(obj: dict[str, Any]) -> Any:
    kind = obj.get(_TAG)
    if isinstance(kind, str) and kind in _DECODERS and set(obj) == {_TAG, "value"}:
        return _DECODERS[kind](obj["value"])
    return obj


def encode_fields(fields: dict[str, Any]) -> str:
    return json.dumps(fields, default=_encode, sort_keys=True)


def decode_fields(text: str) -> dict[str, Any]:
    return dict(json.loads(text, object_hook=_decode))
