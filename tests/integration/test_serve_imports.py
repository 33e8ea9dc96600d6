"""``serve`` answers ``initialize`` before the heavy libraries load (they load after it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# What `strongroom serve` has imported when its lifespan has started, i.e. when it reads the
# client's `initialize`: the transport is replaced by one that enters the lifespan and reports.
PROBE = """
import json, sys
import anyio
import strongroom.server.mcp_app.transports as transports

def report(server, *args, **kwargs):
    async def enter():
        async with server.settings.lifespan(server):
            print(json.dumps(sorted(sys.modules)))
    anyio.run(enter)

transports.run = report
from strongroom.server.cli import main
main(["serve", "--config", sys.argv[1]])
"""

AFTER_HANDSHAKE = [
    "torch",
    "sentence_transformers",
    "onnxruntime",
    "tokenizers",
    "numpy",
    "chromadb",
    "jwt",  # HTTP bearer JWTs only
    "cel",  # the rules file compiles once the client has its answer
    "yaml",
    "strongroom.server.rules.engine",
    "typer",  # CEL's own command line: typer, prompt_toolkit, rich's console
    "prompt_toolkit",
    "rich",  # the SDK's default log handler: the CLI has its own
    "strongroom.server.knowledge",
    "strongroom.server.indexing.sync",
    "strongroom.connectors.filesystem",
    "strongroom.server.cli_guard",  # other commands' modules: the CLI loads a subcommand when run
    "strongroom.server.cli_setup",
]


def test_serve_imports_no_heavy_library_before_the_handshake(synced_example: Path) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(synced_example)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    modules = set(json.loads(probe.stdout.splitlines()[-1]))
    assert "strongroom.server.guard.gate" in modules  # the guard is built before the handshake
    assert [m for m in AFTER_HANDSHAKE if m in modules] == []
