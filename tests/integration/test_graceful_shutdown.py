"""SIGTERM (or SIGINT) lets calls in flight finish, then `strongroom serve` exits 0, on every transport.

The slow call is honest: the guard's soft limit is set to one passage, so every search past it
is paced (`soft_delay_s`) before its result is returned.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.integration.mcp_helpers import structured
from tests.support import ROOT, StdioPeer, clean_env, free_port, strongroom_cmd, wait_for_port

pytestmark = pytest.mark.model

DELAY_S = 4.0  # the guard's pacing of each search past the soft limit
GRACE_S = 10.0  # server.shutdown_grace_s default
QUERY = {"query": "can I return a tent I already pitched?", "k": 2}


def paced(config: Path) -> Path:
    config.write_text(config.read_text() + f"\n[guard.limits]\nsoft_chunks = 1\nsoft_delay_s = {DELAY_S}\n")
    return config


def _wait_exit(proc: subprocess.Popen[Any], signalled_at: float) -> float:
    try:
        proc.wait(GRACE_S + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise AssertionError("the server did not exit after SIGTERM") from None
    return time.monotonic() - signalled_at


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stdio_finishes_the_call_in_flight_then_exits_0(
    fresh_example: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    peer = StdioPeer(paced(fresh_example), tmp_path / "serve.log")
    try:
        peer.initialize()
        peer.call(2, QUERY)  # loads the model; paced too
        assert not peer.response(2)["result"].get("isError")
        peer.call(3, QUERY)
        time.sleep(1.0)  # the search is done; the guard is pacing it
        assert not any(m.get("id") == 3 for m in peer.lines), "the call was not slow enough to test"
        signalled = time.monotonic()
        peer.proc.send_signal(signum)
        elapsed = _wait_exit(peer.proc, signalled)
        result = peer.response(3, timeout=1)["result"]
        assert not result.get("isError"), result
        assert result["structuredContent"]["results"], result
        assert peer.proc.returncode == 0, (peer.proc.returncode, (tmp_path / "serve.log").read_text()[-3000:])
        assert elapsed < GRACE_S + 5, elapsed
    finally:
        if peer.proc.poll() is None:
            peer.proc.kill()
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log, log[-3000:]


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_http_transports_finish_the_call_in_flight_then_exit_0(
    fresh_example: Path, tmp_path: Path, transport: str
) -> None:
    config = paced(fresh_example)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            strongroom_cmd("serve", "--config", str(config), "--transport", transport, "--port", str(port)),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=clean_env(PYTHONPATH=str(ROOT)),
        )
    outcome: dict[str, Any] = {}

    def transport_client() -> Any:
        if transport == "sse":
            return sse_client(f"http://127.0.0.1:{port}/sse")
        return streamable_http_client(f"http://127.0.0.1:{port}/mcp")

    async def session() -> None:
        async with Client(transport_client(), read_timeout_seconds=120) as client:
            structured(await client.call_tool("search", QUERY))  # loads the model; paced too

            async def slow() -> None:
                outcome["result"] = structured(await client.call_tool("search", QUERY))

            async with anyio.create_task_group() as tg:
                tg.start_soon(slow)
                await anyio.sleep(1.0)  # the search is done; the guard is pacing it
                assert "result" not in outcome, "the call was not slow enough to test"
                outcome["signalled"] = time.monotonic()
                proc.send_signal(signal.SIGTERM)

    try:
        wait_for_port(port, 60, proc)
        anyio.run(session)
        elapsed = _wait_exit(proc, outcome["signalled"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert outcome["result"]["results"], outcome
    assert proc.returncode == 0, (proc.returncode, log.read_text()[-3000:])
    assert elapsed < GRACE_S + 5, elapsed
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def test_draining_is_bounded_and_refuses_new_calls(fresh_example: Path, tmp_path: Path) -> None:
    """A call longer than shutdown_grace_s does not hold the exit; a call arriving while the
    server drains is refused with a clear error, not left unanswered."""
    config = fresh_example
    config.write_text(
        config.read_text()
        + "\n[guard.limits]\nsoft_chunks = 1\nsoft_delay_s = 20\n\n[server]\nshutdown_grace_s = 2\n"
    )
    peer = StdioPeer(config, tmp_path / "serve.log")
    try:
        peer.initialize()
        peer.send({"id": 2, "method": "tools/call", "params": {"name": "list_sources", "arguments": {}}})
        peer.response(2)  # serving
        peer.call(3, {**QUERY, "k": 1})  # one passage: at the soft limit, not paced
        peer.response(3)
        peer.call(4, QUERY)  # new passages: paced for 20 s, far past the grace
        time.sleep(1.0)
        signalled = time.monotonic()
        peer.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        peer.send({"id": 5, "method": "tools/call", "params": {"name": "list_sources", "arguments": {}}})
        refused = peer.response(5, timeout=5)
        assert "shutting down" in refused["error"]["message"], refused
        elapsed = _wait_exit(peer.proc, signalled)
        assert elapsed < 2 + 5, elapsed  # the grace, not the 20 s call
    finally:
        if peer.proc.poll() is None:
            peer.proc.kill()
    log = (tmp_path / "serve.log").read_text()
    assert "1 calls still running after 2s; stopping them" in log, log[-2000:]
    assert "Traceback" not in log, log[-3000:]
