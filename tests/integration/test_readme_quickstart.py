"""The README's quickstart commands, run verbatim (after its install lines) on a copy of the example."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import EXAMPLE, ROOT, clean_env

pytestmark = pytest.mark.model

INSTALL = re.compile(r"^(python3 -m venv|pip install)")


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [c for c in commands if c and not INSTALL.match(c)]


def test_quickstart_runs_verbatim(tmp_path: Path) -> None:
    commands = quickstart_commands()
    assert commands[0] == "cd examples/acme" and any(c.startswith("strongroom search") for c in commands)
    shutil.copytree(EXAMPLE, tmp_path / "examples" / "acme", ignore=shutil.ignore_patterns(".strongroom"))
    env = clean_env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    script = "set -euo pipefail\n" + "\n".join(commands) + "\n"
    out = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "handbook: 12 added" in out.stdout
    assert "1. Returns and Refund Policy" in out.stdout  # the tent question finds the refund policy
    entry = json.loads(out.stdout[out.stdout.index('{\n  "mcpServers"') :])
    assert entry["mcpServers"]["strongroom"]["args"][:3] == ["-m", "strongroom.server", "serve"]
