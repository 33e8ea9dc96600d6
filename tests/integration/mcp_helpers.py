"""Helpers for talking to a real Strongroom server with the official MCP Python SDK client."""

from __future__ import annotations

import json
from typing import Any

from mcp.types import CallToolResult, TextContent


def structured(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a successful tool call."""
    assert not result.is_error, error_text(result)
    assert result.structured_content is not None
    return dict(result.structured_content)


def error_text(result: CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


def is_jsonrpc(line: str) -> bool:
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(message, dict) and message.get("jsonrpc") == "2.0"
