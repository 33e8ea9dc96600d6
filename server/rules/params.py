"""Rule-set parameters as pydantic types: they validate calls and become the tool's input schema."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model

from strongroom.server.rules.model import ParameterSpec

_BASE: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "date": date}


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
    constraints: dict[str, Any] = {}
    if spec.min is not None:
        constraints["ge"] = int(spec.min) if spec.type == "integer" else spec.min
    if spec.max is not None:
        constraints["le"] = int(spec.max) if spec.type == "integer" else spec.max
    if spec.min_length is not None:
        constraints["min_length"] = spec.min_length
    if spec.max_length is not None:
        constraints["max_length"] = spec.max_length
    if spec.pattern is not None:
        constraints["pattern"] = spec.pattern
    description = spec.description or None
    field = Field(description=description, **constraints)
    required = spec.is_required
    typ: Any = base if required or (spec.has_default and spec.default is not None) else base | None
    annotation = Annotated[typ, field]
    default: Any = inspect.Parameter.empty
    if not required:
        default = spec.default if spec.has_default else None
        if default is not None:
            try:
                default = TypeAdapter(annotation).validate_python(default)
            except ValidationError as exc:
                problem = exc.errors()[0]["msg"]
                raise ValueError(
                    f"default {spec.default!r} does not fit type {spec.type}: {problem}"
                ) from None
    return Parameter(name, spec, annotation, default)


def arguments_model(tool_name: str, parameters: list[Parameter]) -> type[BaseModel]:
    """A model of the tool's arguments (for validation outside MCP, e.g. the CLI and tests)."""
    fields: dict[str, Any] = {}
    for p in parameters:
        fields[p.name] = (p.annotation, ...) if p.required else (p.annotation, p.default)
    model: type[BaseModel] = create_model(f"{tool_name}_arguments", **fields)
    return model


def signature(parameters: list[Parameter], returns: Any) -> inspect.Signature:
    """A keyword-only signature the MCP SDK turns into the tool's input schema."""
    ordered = [p for p in parameters if p.required] + [p for p in parameters if not p.required]
    return inspect.Signature(
        [
            inspect.Parameter(
                p.name, inspect.Parameter.KEYWORD_ONLY, annotation=p.annotation, default=p.default
            )
            for p in ordered
        ],
        return_annotation=returns,
    )
