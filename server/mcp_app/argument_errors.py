"""Arguments a tool's schema rejects get one clear sentence, the one the CLI gives
("k must be between 1 and 20, got 999"), instead of pydantic's report with its URL.

A server middleware: it rewrites only ``tools/call`` errors that carry pydantic's text and
leaves every other result, and every message already written for people, as it is.
"""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from pydantic import ValidationError
from pydantic_core import ErrorDetails

PYDANTIC_MARK = "errors.pydantic.dev"
_TYPES = {
    "int": "an integer",
    "float": "a number",
    "string": "a string",
    "bool": "true or false",
    "list": "a list",
    "dict": "an object",
}
_BOUNDS = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}


def _shown(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _property(schema: dict[str, Any], name: str) -> dict[str, Any]:
    prop = schema.get("properties", {}).get(name, {})
    for option in prop.get("anyOf", []):  # an optional parameter: the non-null branch
        if option.get("type") != "null":
            return {**option, **{k: v for k, v in prop.items() if k != "anyOf"}}
    return dict(prop)


def sentence(error: ErrorDetails, schema: dict[str, Any]) -> str:
    """One error as a sentence that names the argument, what it must be, and what it got."""
    name = ".".join(str(part) for part in error["loc"]) or "the arguments"
    kind, value = error["type"], error.get("input")
    prop = _property(schema, str(error["loc"][0])) if error["loc"] else {}
    low, high = (
        prop.get("minimum", prop.get("exclusiveMinimum")),
        prop.get("maximum", prop.get("exclusiveMaximum")),
    )
    if kind in _BOUNDS and low is not None and high is not None:
        return f"{name} must be between {low} and {high}, got {_shown(value)}"
    if kind in _BOUNDS:
        words = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most"}
        bound = next(iter(error.get("ctx", {}).values()), "?")  # pydantic's ge, gt, le or lt
        return f"{name} must be {words.get(kind, 'less than')} {bound}, got {_shown(value)}"
    if kind == "missing":
        return f"{name} is required"
    if kind == "extra_forbidden":
        return f"unknown argument {name}"
    if kind in ("too_long", "too_short"):
        limit = prop.get("maxItems" if kind == "too_long" else "minItems")
        return f"{name} must have at {'most' if kind == 'too_long' else 'least'} {limit} items"
    base = kind.split("_", 1)[0]
    if kind.endswith(("_type", "_parsing")) and base in _TYPES:
        return f"{name} must be {_TYPES[base]}, got {_shown(value)}"
    message = error["msg"]
    return f"{name}: {message[:1].lower()}{message[1:]}, got {_shown(value)}"


def clear_argument_errors(server: MCPServer[Any]) -> Any:
    """The middleware for ``server``: re-validates the rejected arguments to word the errors."""

    async def rewrite(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "tools/call" or not isinstance(result, dict) or not result.get("isError"):
            return result
        content = result.get("content") or []
        text = content[0].get("text", "") if content and isinstance(content[0], dict) else ""
        if PYDANTIC_MARK not in text:
            return result
        params = ctx.params if isinstance(ctx.params, dict) else {}
        tool = server._tool_manager.get_tool(str(params.get("name")))
        arguments = params.get("arguments")
        if tool is None or not isinstance(arguments, dict):
            return result
        try:
            tool.fn_metadata.validate_arguments(arguments)
        except ValidationError as exc:
            words = "; ".join(sentence(e, tool.parameters) for e in exc.errors())
            return {**result, "content": [{"type": "text", "text": words}]}
        return result

    return rewrite
