"""A sync asked to stop (the server is shutting down) ends promptly, even mid-wait in a connector."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import pytest

from strongroom.connectors.api import Document
from strongroom.server.indexing.sync import SyncStopped, _until_stopped


def _document(n: int) -> Document:
    return Document(id=f"d{n}", title=f"D{n}", text="text", uri=f"file:///d{n}")


async def _slow_source(cleaned: list[str]) -> AsyncIterator[Document]:
    """One document, then a file that takes a minute to read."""
    try:
        yield _document(1)
        await asyncio.sleep(60)
        yield _document(2)
    finally:
        cleaned.append("closed")


def test_a_stop_during_a_slow_read_ends_the_sync_at_once_and_runs_the_connector_clean_up() -> None:
    stop = threading.Event()
    cleaned: list[str] = []
    got: list[str] = []

    async def consume() -> None:
        async for document in _until_stopped(_slow_source(cleaned), stop):
            got.append(document.id)
            threading.Timer(0.2, stop.set).start()

    started = time.monotonic()
    with pytest.raises(SyncStopped):
        asyncio.run(consume())
    assert time.monotonic() - started < 5
    assert got == ["d1"] and cleaned == ["closed"]


def test_without_a_stop_every_document_arrives() -> None:
    async def source() -> AsyncIterator[Document]:
        for n in range(3):
            await asyncio.sleep(0)
            yield _document(n)

    async def consume() -> list[str]:
        return [d.id async for d in _until_stopped(source(), threading.Event())]

    assert asyncio.run(consume()) == ["d0", "d1", "d2"]
