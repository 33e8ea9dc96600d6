"""Rule-set parameters as pydantic types: they validate calls and become the tool's input schema.

Calls are validated strictly, as the schema reads: ``"yes"``, ``1`` and ``"true"`` are not
booleans, ``"2"`` and ``1.0`` are not integers, an integer fits CEL's 64 bits, a number is
finite, a date is ``YYYY-MM-DD`` text (not a date-time or a number), and an argument the rule
set does not declare is an error.

JSON Schema compares numbers by value, so to it ``1.0`` is an integer: no schema can tell it
from ``1``. The tool goes by the JSON text the client sent (``1.0`` is parsed as a float, ``1``
as an int), and the description of every integer parameter says so (:data:`INTEGER_NOTE`);
everything else the schema states exactly (the 64-bit range as ``minimum``/``maximum``).
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic_core import ErrorDetails

from strongroom.server.errors import InvalidArgument
from strongroom.server.rules.model import ParameterSpec


def _iso_date(value: Any) -> Any:
    """A JSON date parameter: ``YYYY-MM-DD`` text (a date object passes, for callers in Python)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError("is not a calendar date") from None
    raise ValueError("needs a date written YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
_BASE: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "date": IsoDate}
_STRICT = ConfigDict(strict=True, extra="forbid")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # CEL's int
INTEGER_NOTE = "A JSON integer, written without a decimal point (3, not 3.0)."


@dataclass(frozen=True)
class Parameter:
    name: str
    spec: ParameterSpec
    annotation: Any  # Annotated[type, Field(...)]
    default: Any  # inspect.Parameter.empty when required

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


def build_parameter(name: str, spec: ParameterSpec) -> Parameter:
    """The annotated type of a parameter; raises ValueError if its default does not fit it."""
    base: Any = Literal[tuple(spec.values or ())] if spec.type == "enum" else _BASE[spec.type]
    description = spec.description or None
    if spec.type == "integer":
        description = f"{description} {INTEGER_NOTE}" if description else INTEGER_NOTE
    field = Field(description=description, **_constraints(spec))
    required = spec.is_required
    typ: Any = base if required or (spec.has_default and spec.default is not None) else base | None
    annotation = Annotated[typ, field]
    default: Any = inspect.Parameter.empty if required else _default(spec, annotation)
    return Parameter(name, spec, annotation, default)


def _constraints(spec: ParameterSpec) -> dict[str, Any]:
    """The declared bounds, lengths and pattern as pydantic ``Field`` constraints."""
    constraints: dict[str, Any] = {}
    low, high = spec.min, spec.max
    if spec.type == "integer":  # bounded by CEL's int, so a larger number is refused, not wrapped
        low = INT64_MIN if low is None else max(INT64_MIN, math.ceil(low))
        high = INT64_MAX if high is None else min(INT64_MAX, math.floor(high))
    if spec.type == "number":
        constraints["allow_inf_nan"] = False  # NaN and infinity are not JSON numbers
    named = {
        "ge": low,
        "le": high,
        "min_length": spec.min_length,
        "max_length": spec.max_length,
        "pattern": spec.pattern,
    }
    constraints.update({key: value for key, value in named.items() if value is not None})
    return constraints


def _default(spec: ParameterSpec, annotation: Any) -> Any:
    """An optional parameter's default (None if it declares none), validated against its type."""
    default = spec.default if spec.has_default else None
    if default is None:
        return None
    try:
        return TypeAdapter(annotation, config=_STRICT).validate_python(default)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise ValueError(f"default {spec.default!r} does not fit type {spec.type}: {problem}") from None


def arguments_model(tool_name: str, parameters: list[Parameter], *, strict: bool = False) -> type[BaseModel]:
    """A model of the tool's arguments: strict for tool calls, lax for the shell (NAME=VALUE text)."""
    fields: dict[str, Any] = {}
    for p in parameters:
        fields[p.name] = (p.annotation, ...) if p.required else (p.annotation, p.default)
    config = _STRICT if strict else ConfigDict(extra="forbid")
    model: type[BaseModel] = create_model(f"{tool_name}_arguments", __config__=config, **fields)
    return model


def check_arguments(
    tool_name: str, model: type[BaseModel], parameters: list[Parameter], raw: Mapping[str, Any]
) -> dict[str, Any]:
    """Validated arguments, or InvalidArgument: one sentence naming each bad parameter."""
    try:
        return model.model_validate(dict(raw)).model_dump()
    except ValidationError as exc:
        specs = {p.name: p.spec for p in parameters}
        problems = [_explain(e, specs) for e in exc.errors()]
        raise InvalidArgument(f"{tool_name}: {'; '.join(problems)}.") from None


_EXPECTED = {
    "string": "must be text",
    "integer": "must be a whole number (a JSON integer such as 3)",
    "number": "must be a number",
    "boolean": "must be true or false (a JSON boolean)",
    "date": "must be a date written YYYY-MM-DD (not a date-time or a number)",
}


def _explain(error: ErrorDetails, specs: Mapping[str, ParameterSpec]) -> str:
    name = str(error["loc"][0]) if error["loc"] else "?"
    kind = error["type"]
    if kind == "missing":
        return f"parameter {name!r} is required"
    if kind == "extra_forbidden":
        return f"unknown argument {name!r} (parameters: {', '.join(specs) or 'none'})"
    spec = specs[name]
    ctx = error.get("ctx") or {}
    bounds = {
        "greater_than_equal": f"must be at least {_bound(ctx.get('ge'))}",
        "less_than_equal": f"must be at most {_bound(ctx.get('le'))}",
        "finite_number": "must be a finite number (not NaN or infinity)",
        "string_pattern_mismatch": f"must match the pattern {spec.pattern}",
        "string_too_short": f"must be at least {spec.min_length} characters long",
        "string_too_long": f"must be at most {spec.max_length} characters long",
    }
    if kind in bounds:
        expected = bounds[kind]
    elif spec.type == "enum":
        expected = f"must be one of: {', '.join(spec.values or [])}"
    else:
        expected = _EXPECTED[spec.type]
    return f"parameter {name!r} {expected}, got {_shown(error['input'])}"


def _bound(bound: Any) -> str:
    return f"{bound} (CEL integers are 64-bit)" if bound in (INT64_MIN, INT64_MAX) else str(bound)


def _shown(value: Any) -> str:
    kind = {str: "the text", bool: "the boolean", int: "the integer", float: "the number"}.get(type(value))
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{kind} {text}" if kind else text
