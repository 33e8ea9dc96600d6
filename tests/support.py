"""Helpers shared by the tests: paths, free ports, child-process environments."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "acme"
IN_CI = os.environ.get("CI") == "true"
#: The start of a line in Strongroom's log format (server/cli_common.py LOG_FORMAT).
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def strongroom_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "strongroom.server", *args]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child strongroom process, without the developer's overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env.update(extra)
    return env


@contextmanager
def serving_http(config: Path, port: int, log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """`strongroom serve --transport http` on ``port`` for the block, its output in ``log``;
    ``env`` adds environment variables (``STRONGROOM_*`` overrides)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            strongroom_cmd("serve", "--config", str(config), "--transport", "http", "--port", str(port)),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=clean_env(PYTHONPATH=str(ROOT), **env),
        )
    try:
        wait_for_port(port, 60, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)


class StdioPeer:
    """A raw JSON-RPC peer on `strongroom serve`'s stdin/stdout (stdin stays open throughout)."""

    def __init__(self, config: Path, log: Path) -> None:
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            strongroom_cmd("serve", "--config", str(config)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=clean_env(PYTHONPATH=str(ROOT)),
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
        self.proc.stdin.flush()

    def response(self, request_id: int, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.lines:
                if message.get("id") == request_id:
                    return message
            time.sleep(0.05)
        raise AssertionError(f"no response to request {request_id}; got {self.lines}")

    def initialize(self) -> None:
        """The handshake, as a client makes it."""
        params = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "peer", "version": "1"},
        }
        self.send({"id": 0, "method": "initialize", "params": params})
        self.response(0)
        self.send({"method": "notifications/initialized"})

    def exit_code(self, timeout: float) -> int:
        """Wait for the server to end by itself (stdin stays open), then for its last lines."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def call(self, request_id: int, arguments: dict[str, Any]) -> None:
        self.send(
            {"id": request_id, "method": "tools/call", "params": {"name": "search", "arguments": arguments}}
        )
