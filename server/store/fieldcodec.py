"""JSON for record fields that keeps their types (dates, times, decimals, bytes) across storage.

A value JSON has no type for is stored as ``{"$type": type, "value": text}``, typed by the
connectors' own value module (the one the record connectors type their fields with).
"""

from __future__ import annotations

import json
from typing import Any

from strongroom.connectors.values import TAGGED_TYPES, tag_value, untag_value

_TAG = "$type"


def _encode(value: Any) -> Any:
    tagged = tag_value(value)
    if tagged is None:
        raise TypeError(f"cannot store a field of type {type(value).__name__}")
    return {_TAG: tagged[0], "value": tagged[1]}


def _decode(obj: dict[str, Any]) -> Any:
    kind = obj.get(_TAG)
    if isinstance(kind, str) and kind in TAGGED_TYPES and set(obj) == {_TAG, "value"}:
        return untag_value(kind, obj["value"])
    return obj


def encode_fields(fields: dict[str, Any]) -> str:
    return json.dumps(fields, default=_encode, sort_keys=True)


def decode_fields(text: str) -> dict[str, Any]:
    return dict(json.loads(text, object_hook=_decode))
