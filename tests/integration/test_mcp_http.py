"""Real HTTP sessions: `strongroom serve --transport http|sse` in a subprocess, the SDK client over the wire.

Also the transport's defences: Host/Origin checks against DNS rebinding and a loopback-only bind.
"""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from tests.integration.mcp_helpers import error_text, structured
from tests.support import LOG_LINE, ROOT, clean_env, free_port, strongroom_cmd, wait_for_port

pytestmark = pytest.mark.model

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw-http-test", "version": "1"},
    },
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@dataclass
class RunningServer:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(config: Path, transport: str, workdir: Path) -> Iterator[RunningServer]:
    """Run `strongroom serve` over ``transport`` on a free port, on a private copy of the synced index.

    Each server gets its own copy so that two servers never open the same embedded store at once.
    The process is always terminated, whatever the test did.
    """
    root = workdir / f"acme-{transport}"
    shutil.copytree(config.parent, root)
    port = free_port()
    log = workdir / f"serve-{transport}.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            strongroom_cmd(
                "serve", "--config", str(root / config.name), "--transport", transport, "--port", str(port)
            ),
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            env=clean_env(PYTHONPATH=str(ROOT)),
        )
    server = RunningServer(port, proc, log)
    try:
        try:
            wait_for_port(port, 60, proc)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{exc}\n{server.stderr()[-4000:]}") from exc
        yield server
        assert proc.poll() is None, f"server died during the test:\n{server.stderr()[-4000:]}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    log_text = server.stderr()
    # The SDK's SSE transport answers a rejected GET /sse correctly (403/421) and then raises
    # "Request validation failed", which uvicorn logs with a traceback; anything else is a bug.
    rejected = log_text.count("ValueError: Request validation failed")
    assert log_text.count("Traceback") == rejected, log_text[-4000:]


@pytest.fixture(scope="module")
def http_server(synced_example: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with serve(synced_example, "http", tmp_path_factory.mktemp("http")) as server:
        yield server


def test_uvicorn_lines_use_strongroom_log_format(http_server: RunningServer) -> None:
    """uvicorn's startup and access lines are in Strongroom's log format, not uvicorn's own."""
    response = httpx.post(f"{http_server.base}/mcp", json=INITIALIZE, headers=MCP_HEADERS, timeout=60)
    assert response.status_code == 200
    lines = http_server.stderr().splitlines()
    assert any(LOG_LINE.match(line) and "uvicorn.error: Uvicorn running on" in line for line in lines)
    assert any(
        LOG_LINE.match(line) and "uvicorn.access: 127.0.0.1:" in line and '"POST /mcp' in line
        for line in lines
    )
    assert not any(line.startswith("INFO:") for line in lines), lines


def test_streamable_http_session(http_server: RunningServer) -> None:
    async def session() -> None:
        async with Client(f"{http_server.base}/mcp", read_timeout_seconds=120) as client:
            assert client.server_info is not None and client.server_info.name == "strongroom"
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) >= {"search", "read_document", "list_sources"}
            for name in ("search", "read_document", "list_sources"):
                assert tools[name].output_schema is not None

            # A paraphrase that shares few words with the answer's document.
            hits = structured(
                await client.call_tool("search", {"query": "how long is the warranty on a backpack?", "k": 3})
            )["results"]
            assert hits, "no hits"
            assert hits[0]["document_id"] == "handbook/warranty-policy.md", [h["document_id"] for h in hits]

            window = structured(
                await client.call_tool(
                    "read_document", {"document_id": hits[0]["document_id"], "offset": 0, "max_chars": 500}
                )
            )
            assert window["document_id"] == "handbook/warranty-policy.md"
            assert 0 < len(window["text"]) <= 500
            assert window["total_chars"] >= len(window["text"])
            # The window may end early (at a word or line boundary); next_offset continues where it ends.
            if window["total_chars"] > 500:
                assert window["next_offset"] == len(window["text"])

            # A bad call is a tool error inside the session, not a broken connection...
            bad = await client.call_tool("read_document", {"document_id": "handbook/no-such-file.md"})
            assert bad.is_error
            assert "no document with id" in error_text(bad), error_text(bad)
            bad = await client.call_tool("search", {"query": "refund", "k": 0})
            assert bad.is_error

            # ...and the next call works.
            ok = structured(await client.call_tool("search", {"query": "refund for a pitched tent", "k": 1}))
            assert ok["results"][0]["document_id"] == "handbook/refund-policy.md"

            sources = structured(await client.call_tool("list_sources", {}))["sources"]
            assert sources[0]["name"] == "handbook" and sources[0]["documents"] >= 10

    anyio.run(session)


def test_a_second_http_client_gets_its_own_session(http_server: RunningServer) -> None:
    """The server outlives a client's disconnect and serves the next one."""

    async def session() -> None:
        async with Client(f"{http_server.base}/mcp", read_timeout_seconds=120) as client:
            result = structured(await client.call_tool("search", {"query": "CCTV footage retention", "k": 2}))
            assert result["results"]

    anyio.run(session)


def test_http_rejects_foreign_origin_and_host(http_server: RunningServer) -> None:
    url = f"{http_server.base}/mcp"
    with httpx.Client(timeout=30) as http:
        # A web page on another site must not reach the local server through the browser.
        evil_origin = http.post(
            url, json=INITIALIZE, headers={**MCP_HEADERS, "Origin": "http://evil.example"}
        )
        assert evil_origin.status_code == 403, evil_origin.text
        lookalike = http.post(
            url, json=INITIALIZE, headers={**MCP_HEADERS, "Origin": "http://127.0.0.1.evil.example"}
        )
        assert lookalike.status_code == 403, lookalike.text

        # DNS rebinding: a hostile name resolving to 127.0.0.1 arrives with its own Host header.
        evil_host = http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "Host": "evil.example"})
        assert evil_host.status_code == 421, evil_host.text
        evil_host_port = http.post(
            url, json=INITIALIZE, headers={**MCP_HEADERS, "Host": f"evil.example:{http_server.port}"}
        )
        assert evil_host_port.status_code == 421, evil_host_port.text

        # The loopback origin itself is accepted, as is a request with no Origin (a non-browser client).
        for origin in (f"http://127.0.0.1:{http_server.port}", f"http://localhost:{http_server.port}", None):
            headers = dict(MCP_HEADERS)
            if origin:
                headers["Origin"] = origin
            ok = http.post(url, json=INITIALIZE, headers=headers)
            assert ok.status_code == 200, (origin, ok.status_code, ok.text)
            assert "strongroom" in ok.text


def test_http_binds_only_to_loopback_by_default(http_server: RunningServer) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with socket.socket() as s:
        s.settimeout(5)
        code = s.connect_ex((address, http_server.port))
    assert code != 0, f"the server accepted a connection on {address}:{http_server.port}"
    assert code in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT, errno.EAGAIN)
    # While loopback is served.
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", http_server.port)) == 0


def test_sse_session_and_origin_check(synced_example: Path, tmp_path: Path) -> None:
    with serve(synced_example, "sse", tmp_path) as server:

        async def session() -> None:
            async with Client(sse_client(f"{server.base}/sse"), read_timeout_seconds=120) as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                assert tools >= {"search", "read_document", "list_sources"}
                hits = structured(
                    await client.call_tool(
                        "search", {"query": "how long is the warranty on a backpack?", "k": 3}
                    )
                )["results"]
                assert hits[0]["document_id"] == "handbook/warranty-policy.md", [
                    h["document_id"] for h in hits
                ]

        anyio.run(session)

        # One connection per request: after a rejected GET /sse the SDK's error closes the connection.
        evil = httpx.get(f"{server.base}/sse", headers={"Origin": "http://evil.example"}, timeout=30)
        assert evil.status_code == 403, evil.text
        evil_host = httpx.get(f"{server.base}/sse", headers={"Host": "evil.example"}, timeout=30)
        assert evil_host.status_code == 421, evil_host.text


def _non_loopback_address() -> str | None:
    """This machine's primary IPv4 address, if it has one (a UDP connect sends no packet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only used to pick the outgoing interface
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address
