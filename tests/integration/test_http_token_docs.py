"""docs/guard.md's streamable-HTTP-with-a-token commands, run as written on a synced copy of the example.

A free port stands in for 8000; nothing else is changed. The shell runs in its own process
group, killed afterwards, so a failing command never leaves the server running.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, clean_env, free_port

pytestmark = pytest.mark.model


def http_token_block() -> str:
    guide = (ROOT / "docs" / "guard.md").read_text(encoding="utf-8")
    section = guide.split("## Streamable HTTP with a bearer token", 1)[1]
    return section.split("```bash", 1)[1].split("```", 1)[0]


def test_the_http_with_a_token_commands_run_as_written(synced_example: Path, tmp_path: Path) -> None:
    block = http_token_block()
    assert "--add-to http.toml" in block and "Authorization: Bearer $TOKEN" in block
    shutil.copytree(synced_example.parent, tmp_path / "examples" / "acme")
    env = clean_env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    shell = subprocess.Popen(
        ["bash", "-c", "set -euo pipefail\n" + block.replace("8000", str(free_port()))],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = shell.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
    assert shell.returncode == 0, stdout[-3000:] + stderr[-3000:]
    status, _, events = stdout.partition("\n")
    assert status == "401"  # without the token
    data = [line.removeprefix("data: ") for line in events.splitlines() if line.startswith("data: ")]
    hits = json.loads(data[-1])["result"]["structuredContent"]["results"]
    assert hits[0]["document_id"] == "handbook/refund-policy.md", [h["document_id"] for h in hits]
    config = (tmp_path / "examples" / "acme" / "http.toml").read_text()
    assert 'name = "alice"' in config and "sr_" not in config  # only the digest is kept
    assert "sr_" not in stderr  # the token is never logged
