"""Helpers for talking to a real Strongroom server with the official MCP Python SDK client."""

from __future__ import annotations

import json
from typing import Any

from mcp import Client
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


async def read_whole(client: Client, chunk_ids: list[str]) -> None:
    """Read every document of ``chunk_ids`` to the end, so each of those passages was shown
    whole (check_answer judges only such passages)."""
    for document_id in sorted({c.split("#")[0] for c in chunk_ids}):
        offset: int | None = 0
        while offset is not None:
            arguments = {"document_id": document_id, "offset": offset, "max_chars": 4000}
            offset = structured(await client.call_tool("read_document", arguments))["next_offset"]
