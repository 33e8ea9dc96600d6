"""Packages imported without the command-line tools their ``__init__`` pulls in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Run in a fresh interpreter: what is imported is per process.
OPEN_THE_STORE = """
import json, sys
from pathlib import Path
from strongroom.server.settings import StoreSettings
from strongroom.server.store.vectors import VectorStore

VectorStore(StoreSettings(), Path(sys.argv[1])).preload(0)
loaded = sorted(m for m in ("chromadb", "rich", "pygments", "httpx._main") if m in sys.modules)
import httpx, httpx._main  # the real CLI module is still there for whoever wants it
print(json.dumps({"loaded": loaded, "main": httpx.main.__module__, "real": hasattr(httpx._main, "main") and httpx._main.__doc__ != "not imported by Strongroom"}))
"""

IMPORT_CEL = """
import json, sys
from strongroom.server.rules.expressions.loading import load_cel

load_cel()
loaded = sorted(m for m in ("cel", "cel.cli", "typer", "prompt_toolkit") if m in sys.modules)
import cel.cli
print(json.dumps({"loaded": loaded, "real": cel.cli.__doc__ != "not imported by Strongroom"}))
"""


def _run(code: str, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_opening_chroma_leaves_httpx_cli_unimported(tmp_path: Path) -> None:
    result = _run(OPEN_THE_STORE, str(tmp_path))
    assert result["loaded"] == ["chromadb"]  # no rich, pygments or httpx's CLI on the first search
    assert result == {"loaded": ["chromadb"], "main": "httpx", "real": True}


def test_cel_imports_without_its_command_line() -> None:
    result = _run(IMPORT_CEL)
    assert result == {"loaded": ["cel"], "real": True}
