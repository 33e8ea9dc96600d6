"""A server spawned over stdio and spoken to in raw JSON-RPC lines.

No SDK sits in between, so what a benchmark times is the server alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

INITIALIZE_PARAMS = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "bench", "version": "1"},
}


class StdioPeer:
    """``command`` started with pipes; :meth:`request` waits for its answer, :meth:`notify` does not."""

    def __init__(
        self, command: list[str], env: dict[str, str] | None = None, log: Path | None = None
    ) -> None:
        self._log = log.open("a") if log is not None else None
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log or subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self._ids = iter(range(1, 10**9))

    @classmethod
    def strongroom(cls, config: Path, pythonpath: str | None = None, log: Path | None = None) -> StdioPeer:
        """``strongroom serve`` on ``config``, without the caller's STRONGROOM_* variables
        (``pythonpath`` first on the path: another copy of the package; its stderr appended to ``log``)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
        if pythonpath is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
        return cls([sys.executable, "-m", "strongroom.server", "serve", "--config", str(config)], env, log)

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        assert self.proc.stdout
        self._send({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or {}})
        return json.loads(self.proc.stdout.readline())

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params or {}})

    def initialize(self) -> Any:
        """The handshake: ``initialize`` answered, then ``notifications/initialized``."""
        answer = self.request("initialize", INITIALIZE_PARAMS)
        self.notify("notifications/initialized")
        return answer

    def peak_rss_mb(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as status:
            return round(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024)

    def close(self) -> float:
        """Close the server's stdin and wait for it to exit; how long that took, in seconds."""
        assert self.proc.stdin
        started = time.perf_counter()
        self.proc.stdin.close()
        self.proc.wait(120)
        if self._log is not None:
            self._log.close()
        return time.perf_counter() - started
