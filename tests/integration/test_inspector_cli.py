"""A second, independent MCP client: the official MCP Inspector CLI (TypeScript SDK) over stdio.

The inspector spawns `strongroom serve` itself, the way a desktop client does. It exits 0 even
when a tool call fails, so the assertions read the JSON it prints on stdout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import IN_CI, ROOT, clean_env

pytestmark = [pytest.mark.model, pytest.mark.node]

NODE_DIR = ROOT / "tests" / "node"
# The binary that `npx --prefix tests/node mcp-inspector` runs (package.json "bin" of
# @modelcontextprotocol/inspector), called directly so that npx never reaches for the registry.
INSPECTOR = NODE_DIR / "node_modules" / ".bin" / "mcp-inspector"


@pytest.fixture(scope="module")
def inspector() -> Path:
    missing = None
    if shutil.which("node") is None:
        missing = "node is not on PATH"
    elif not INSPECTOR.exists():
        missing = f"{INSPECTOR} is missing: run `npm ci` in tests/node"
    if missing:
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)
    return INSPECTOR


def run_inspector(inspector: Path, config: Path, *method_args: str) -> Any:
    """Run one inspector CLI method against a freshly spawned `strongroom serve`; its parsed JSON output."""
    cmd = [
        str(inspector),
        "--cli",
        # Everything after "--" is the server command line plus the inspector's method options; the
        # separator stops the launcher from taking the server's own `--config` as its config option.
        "--",
        sys.executable,
        "-m",
        "strongroom.server",
        "serve",
        "--config",
        str(config),
        *method_args,
    ]
    # The inspector passes its own environment on to the server it spawns: make it clean
    # (no developer STRONGROOM_* overrides), with the checkout importable.
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=180,
        env=clean_env(PYTHONPATH=str(ROOT)),
        cwd=config.parent,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, (
        f"inspector exited {proc.returncode}\n{proc.stderr[-3000:]}\n{proc.stdout[-3000:]}"
    )
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(
            f"inspector printed no JSON: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        ) from exc


def test_inspector_lists_the_tools(inspector: Path, synced_example: Path) -> None:
    listing = run_inspector(inspector, synced_example, "--method", "tools/list")
    tools = {t["name"]: t for t in listing["tools"]}
    assert set(tools) >= {"search", "read_document", "list_sources"}
    for name in ("search", "read_document", "list_sources"):
        assert tools[name].get("outputSchema"), name
        assert tools[name]["annotations"]["readOnlyHint"] is True, name
    assert "query" in tools["search"]["inputSchema"]["required"]


def test_inspector_calls_search_and_gets_structured_hits(inspector: Path, synced_example: Path) -> None:
    # --tool-arg takes several key=value pairs, so it comes last; the inspector converts k to a
    # number using the tool's input schema.
    result = run_inspector(
        inspector,
        synced_example,
        "--method",
        "tools/call",
        "--tool-name",
        "search",
        "--tool-arg",
        "query=how long do customers have to return unused items?",
        "k=3",
    )
    assert result.get("isError") is not True, result
    hits = result["structuredContent"]["results"]
    assert 1 <= len(hits) <= 3
    assert hits[0]["document_id"] == "handbook/refund-policy.md", [h["document_id"] for h in hits]
    assert hits[0]["source"] == "handbook"
    assert hits[0]["text"]
    # The unstructured content carries the same result for clients that ignore structuredContent.
    assert any("refund-policy.md" in c.get("text", "") for c in result["content"])


def test_inspector_sees_a_tool_error_as_a_result(inspector: Path, synced_example: Path) -> None:
    result = run_inspector(
        inspector,
        synced_example,
        "--method",
        "tools/call",
        "--tool-name",
        "read_document",
        "--tool-arg",
        "document_id=handbook/no-such-file.md",
    )
    assert result["isError"] is True, result
    assert "no document with id" in result["content"][0]["text"]
