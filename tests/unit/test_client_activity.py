"""The server's start-up waits for the client: its handshake, then a moment with no request in
flight, so the start-up sync does not slow the first search (``mcp_app/app.py``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio

from strongroom.server.mcp_app.app import _ClientActivity


def _request(activity: _ClientActivity, method: str, release: anyio.Event) -> Any:
    async def call_next(_: Any) -> str:
        await release.wait()
        return "answer"

    return activity(SimpleNamespace(method=method), call_next)  # type: ignore[arg-type]


def test_quiet_waits_for_the_requests_in_flight_and_no_longer() -> None:
    async def scenario() -> list[str]:
        activity = _ClientActivity()
        seen: list[str] = []
        with anyio.fail_after(2):
            await activity.quiet(5)  # nothing in flight: at once
        seen.append("quiet before any request")
        first, second = anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_await, _request(activity, "tools/call", first))
            tasks.start_soon(_await, _request(activity, "tools/call", second))
            await anyio.sleep(0.05)

            async def waiter() -> None:
                await activity.quiet(5)
                seen.append("quiet")

            tasks.start_soon(waiter)
            await anyio.sleep(0.05)
            first.set()
            await anyio.sleep(0.05)
            seen.append("first answered")  # one request still in flight: still waiting
            second.set()
        return seen

    assert anyio.run(scenario) == ["quiet before any request", "first answered", "quiet"]


async def _await(awaitable: Any) -> None:
    await awaitable


def test_quiet_gives_up_after_its_timeout_and_the_handshake_is_the_first_message_after_initialize() -> None:
    async def scenario() -> tuple[float, bool]:
        activity = _ClientActivity()
        never = anyio.Event()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_await, _request(activity, "initialize", never))
            await anyio.sleep(0.01)
            started = anyio.current_time()
            await activity.quiet(0.2)  # `initialize` never answers: the wait ends anyway
            waited = anyio.current_time() - started
            with anyio.move_on_after(0.1) as handshake_wait:
                await activity.handshake(5)  # `initialize` alone is not the handshake
            tasks.start_soon(_await, _request(activity, "notifications/initialized", never))
            with anyio.fail_after(1):
                await activity.handshake(5)
            tasks.cancel_scope.cancel()
        return waited, handshake_wait.cancelled_caught

    waited, handshake_pending = anyio.run(scenario)
    assert 0.15 < waited < 1.0
    assert handshake_pending
