"""Many clients' first calls at once, right after the server starts, all succeed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from strongroom.server.guard.auth import token_digest
from tests.integration.mcp_helpers import error_text
from tests.support import ROOT, clean_env, free_port, strongroom_cmd, wait_for_port

pytestmark = pytest.mark.model

CLIENTS = 8
QUERIES = ["can I return a pitched tent?", "backpack warranty", "security camera recordings"]


def _token(n: int) -> str:
    return f"sr_client{n}_token_0123456789abcdef"


def test_concurrent_first_searches_all_succeed(fresh_example: Path, tmp_path: Path) -> None:
    """Eight principals (the guard runs different principals' calls in parallel) search at once.

    The vector store is opened once, under a lock, however many first searches race for it.
    """
    config = fresh_example
    config.write_text(
        config.read_text()
        + "".join(
            f'\n[[guard.principals]]\nname = "client{n}"\nlabels = ["staff"]\n'
            f'token_sha256 = ["{token_digest(_token(n))}"]\n'
            for n in range(CLIENTS)
        )
    )
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            strongroom_cmd("serve", "--config", str(config), "--transport", "http", "--port", str(port)),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=clean_env(PYTHONPATH=str(ROOT)),
        )
    failures: list[str] = []

    async def client(n: int, ready: anyio.Event, go: anyio.Event, count: list[int]) -> None:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {_token(n)}"}, timeout=120)
        async with (
            http,
            Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as c,
        ):
            count.append(n)
            if len(count) == CLIENTS:
                ready.set()
            await go.wait()
            async with anyio.create_task_group() as tg:
                for query in QUERIES:
                    tg.start_soon(search, c, query)

    async def search(c: Client, query: str) -> None:
        result = await c.call_tool("search", {"query": query, "k": 2})
        if result.is_error or not (result.structured_content or {}).get("results"):
            failures.append(error_text(result))

    async def main() -> None:
        ready, go, count = anyio.Event(), anyio.Event(), []
        async with anyio.create_task_group() as tg:
            for n in range(CLIENTS):
                tg.start_soon(client, n, ready, go, count)
            await ready.wait()
            go.set()  # every client's first search at once

    try:
        wait_for_port(port, 60, proc)
        anyio.run(main)
    finally:
        proc.terminate()
        proc.wait(30)
    total = CLIENTS * len(QUERIES)
    assert not failures, f"{len(failures)} of {total} first searches failed: {failures[:2]}"
    assert "Traceback" not in log.read_text()
