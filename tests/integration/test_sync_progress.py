"""On a terminal, `strongroom sync` draws a progress bar (documents, chunks, rate, ETA)."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import EXAMPLE, clean_env, strongroom_cmd

pytestmark = pytest.mark.model


def test_progress_bar_on_a_terminal_and_not_in_a_pipe(tmp_path: Path) -> None:
    root = tmp_path / "acme"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".strongroom"))
    primary, secondary = pty.openpty()
    env = clean_env(COLUMNS="160", TERM="xterm")
    proc = subprocess.Popen(
        strongroom_cmd("sync"),
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=env,
        close_fds=True,
    )
    os.close(secondary)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # the terminal closed
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(300) == 0
    screen = b"".join(chunks).decode(errors="replace")
    assert "handbook" in screen and "docs" in screen and "chunks" in screen and "ETA" in screen
    assert "12/12" in screen  # documents done out of the estimate
    assert "handbook: 12 added" in screen  # the summary follows the bar

    piped = subprocess.run(
        strongroom_cmd("sync"), cwd=root, capture_output=True, text=True, env=env, timeout=300
    )
    assert "ETA" not in piped.stderr + piped.stdout  # no bar when not on a terminal
    assert "handbook: 0 added, 0 updated, 12 unchanged" in piped.stdout
