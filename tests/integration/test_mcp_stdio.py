"""A real stdio session, as Claude Desktop runs it: spawn `strongroom serve`, talk JSON-RPC."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.integration.mcp_helpers import error_text, is_jsonrpc, structured
from tests.support import ROOT, clean_env

pytestmark = pytest.mark.model


def _params(config: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "strongroom.server", "serve", "--config", str(config)],
        env=clean_env(PYTHONPATH=str(ROOT)),
    )


def test_stdio_session_searches_cites_and_reads(synced_example: Path) -> None:
    async def session() -> None:
        async with Client(_params(synced_example), read_timeout_seconds=120) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) >= {"search", "read_document", "list_sources"}
            for name in ("search", "read_document", "list_sources"):
                assert tools[name].output_schema is not None
                assert tools[name].annotations is not None and tools[name].annotations.read_only_hint

            sources = structured(await client.call_tool("list_sources", {}))["sources"]
            assert sources[0]["name"] == "handbook" and sources[0]["documents"] >= 10

            hits = structured(
                await client.call_tool(
                    "search", {"query": "can I send back a tent I already pitched?", "k": 3}
                )
            )["results"]
            assert hits[0]["document_id"] == "handbook/refund-policy.md"
            top = hits[0]
            for key in ("id", "document_id", "source", "title", "uri", "text", "score", "chunk_index"):
                assert key in top

            # Page through the whole cited document and get its text back exactly once.
            offset: int | None = 0
            parts: list[str] = []
            total = None
            while offset is not None:
                window = structured(
                    await client.call_tool(
                        "read_document",
                        {"document_id": top["document_id"], "offset": offset, "max_chars": 700},
                    )
                )
                total = window["total_chars"]
                parts.append(window["text"])
                offset = window["next_offset"]
            text = "".join(parts)
            assert len(text) == total
            assert text[top["start"] : top["end"]] == top["text"]  # the citation points into the document

            # Documents are also resources.
            resource = await client.read_resource(f"strongroom://documents/{top['document_id']}")
            assert resource.contents[0].text == text  # type: ignore[union-attr]

    anyio.run(session)


def test_bad_calls_are_tool_errors_and_the_server_keeps_serving(synced_example: Path) -> None:
    async def session() -> None:
        async with Client(_params(synced_example), read_timeout_seconds=120) as client:
            cases = [
                ("search", {"query": "   "}, "query must not be empty"),
                ("search", {"query": "refund", "k": 0}, "k"),
                ("search", {"query": "refund", "k": 1000}, "k"),
                ("search", {"query": "refund", "sources": ["nope"]}, "unknown source 'nope'"),
                ("search", {"k": 3}, "query"),
                ("read_document", {"document_id": "handbook/missing.md"}, "no document with id"),
                (
                    "read_document",
                    {"document_id": "handbook/refund-policy.md", "offset": 10**7},
                    "past the end",
                ),
                (
                    "read_document",
                    {"document_id": "handbook/refund-policy.md", "max_chars": 10**7},
                    "max_chars",
                ),
            ]
            for tool, args, expected in cases:
                result = await client.call_tool(tool, args)
                assert result.is_error, (tool, args)
                assert expected in error_text(result), (tool, args, error_text(result))
            # Still serving after all of that.
            ok = structured(await client.call_tool("search", {"query": "warranty on backpacks", "k": 1}))
            assert ok["results"][0]["document_id"] == "handbook/warranty-policy.md"

    anyio.run(session)


def test_stdout_carries_only_jsonrpc_and_initialize_does_not_wait_for_the_model(synced_example: Path) -> None:
    """Raw stdio: every stdout line is JSON-RPC; initialize is answered before the model loads."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "strongroom.server", "serve", "--config", str(synced_example)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(PYTHONPATH=str(ROOT), STRONGROOM_SERVER__LOG_LEVEL="INFO"),
        text=True,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    stderr_lines: list[tuple[float, str]] = []
    reader = threading.Thread(
        target=lambda: stderr_lines.extend((time.monotonic(), line) for line in proc.stderr),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()

    def send(message: dict[str, object]) -> None:
        assert proc.stdin
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()

    send(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "1"},
            },
        }
    )
    first = proc.stdout.readline()
    initialized_at = time.monotonic()
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    second = proc.stdout.readline()
    send(
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "search", "arguments": {"query": "CCTV footage retention", "k": 2}},
        }
    )
    third = proc.stdout.readline()
    proc.stdin.close()
    rest = proc.stdout.read()
    proc.wait(60)
    reader.join(10)
    lines = [first, second, third, *rest.splitlines()]
    assert all(is_jsonrpc(line) for line in lines if line.strip()), lines
    assert json.loads(first)["result"]["serverInfo"]["name"] == "strongroom"
    assert "search" in second
    assert json.loads(third)["result"]["structuredContent"]["results"], third
    loaded = [t for t, line in stderr_lines if "embedding model loaded" in line]
    assert loaded, [line for _, line in stderr_lines][-20:]
    assert initialized_at < loaded[0], "initialize waited for the embedding model"
    assert not any("Traceback" in line for _, line in stderr_lines)
