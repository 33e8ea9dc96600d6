"""Running the server over stdio, SSE or streamable HTTP, with Host/Origin checks.

On SIGTERM or SIGINT the server drains: it stops accepting connections and requests, lets the
calls in flight finish (at most ``server.shutdown_grace_s``), then exits.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import sys
import threading
from collections.abc import Generator
from contextlib import contextmanager
from typing import Any, NoReturn

import anyio
import uvicorn
from mcp.server import MCPServer
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError

from strongroom.server.errors import StrongroomError
from strongroom.server.guard.auth import TokenVerifier
from strongroom.server.settings import ServerSettings, Settings

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
#: Requests that stay open for the whole session: not work to wait for when draining.
LONG_LIVED = frozenset({"subscriptions/listen"})
#: After the last call in flight returned: time for its response to reach the wire.
FLUSH_S = 0.3
SHUTTING_DOWN = -32000  # a JSON-RPC server error


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def http_auth(settings: Settings, host: str, port: int) -> tuple[AuthSettings, TokenVerifier] | None:
    """Bearer authentication for SSE/HTTP, or None on loopback when none is configured.

    Serving on a non-loopback address without authentication is refused.
    """
    guard = settings.guard
    if not guard.authentication_configured:
        if not is_loopback(host):
            raise StrongroomError(
                f"refusing to serve on {host} without authentication: declare principals with "
                "token_sha256 or configure [guard.jwt] (or bind to 127.0.0.1)"
            )
        return None
    url_host = f"[{host}]" if ":" in host else host
    resource = settings.server.public_url or f"http://{url_host}:{port}/mcp"
    issuer = guard.jwt.issuer if guard.jwt else resource
    auth = AuthSettings(
        issuer_url=issuer,  # type: ignore[arg-type]
        resource_server_url=resource,  # type: ignore[arg-type]
        validate_token_resource=False,  # the verifier checks each JWT's audience itself
    )
    return auth, TokenVerifier(guard, settings.base_dir)


def transport_security(settings: ServerSettings, host: str) -> TransportSecuritySettings:
    """Accept only loopback Host/Origin headers, plus what the operator allows explicitly."""
    hosts = [f"{name}{suffix}" for name in LOOPBACK_NAMES for suffix in ("", ":*")]
    origins = [f"http://{name}{suffix}" for name in LOOPBACK_NAMES for suffix in ("", ":*")]
    if not is_loopback(host) and host not in ("0.0.0.0", "::"):
        bracketed = f"[{host}]" if ":" in host else host
        hosts += [bracketed, f"{bracketed}:*"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts + list(settings.allowed_hosts),
        allowed_origins=origins + list(settings.allowed_origins),
    )


class Drain:
    """Middleware counting the requests in flight; once draining, it refuses new ones."""

    def __init__(self) -> None:
        self.draining = False
        self._active = 0
        self._idle: anyio.Event | None = None

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None or ctx.method in LONG_LIVED:  # notifications, subscriptions
            return await call_next(ctx)
        if self.draining:
            raise MCPError(SHUTTING_DOWN, "the server is shutting down; reconnect and try again")
        self._active += 1
        try:
            return await call_next(ctx)
        finally:
            self._active -= 1
            if not self._active and self._idle is not None:
                self._idle.set()

    async def drain(self, timeout: float) -> int:
        """Refuse new requests; wait up to ``timeout`` for those in flight. Returns how many are left."""
        self.draining = True
        with anyio.move_on_after(timeout):
            while self._active:
                self._idle = anyio.Event()
                await self._idle.wait()
        return self._active


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling (which re-raises SIGTERM after shutdown)."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def close_connections(self) -> None:
        """Close what is still open (SSE streams, idle keep-alives): the app sees a disconnect."""
        for connection in list(self.server_state.connections):
            connection.transport.close()


def run(server: MCPServer[Any], settings: ServerSettings, transport: str, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT (or, over stdio, until the client closes stdin), then drain."""
    drain = Drain()
    server.middleware.append(drain)
    web: _Uvicorn | None = None
    if transport != "stdio":
        security = transport_security(settings, host)
        if transport == "sse":
            app = server.sse_app(host=host, transport_security=security)
        else:
            app = server.streamable_http_app(host=host, transport_security=security)
        # log_config=None: uvicorn's records go to the root handler, in Strongroom's format.
        config = uvicorn.Config(
            app, host=host, port=port, log_level=server.settings.log_level.lower(), log_config=None
        )
        web = _Uvicorn(config)
    anyio.run(_serve, server, web, drain, settings.shutdown_grace_s)


async def _serve(server: MCPServer[Any], web: _Uvicorn | None, drain: Drain, grace: float) -> None:
    async with anyio.create_task_group() as tg:

        async def serving() -> None:
            await (server.run_stdio_async() if web is None else web.serve())
            tg.cancel_scope.cancel()  # it ended by itself: stdin closed, or uvicorn stopped

        tg.start_soon(serving)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info(
                    "%s: finishing the calls in flight (at most %gs), then stopping",
                    signal.Signals(signum).name,
                    grace,
                )
                break
            if web is not None:
                for listener in getattr(web, "servers", []):
                    listener.close()  # no new connections
            # The drain has its own timeout; this one only guards the flush (a second signal also stops waiting).
            with anyio.move_on_after(grace + FLUSH_S + 1):
                async with anyio.create_task_group() as waiting:

                    async def on_second_signal() -> None:
                        async for _ in signals:
                            log.warning("second signal: stopping now")
                            waiting.cancel_scope.cancel()

                    waiting.start_soon(on_second_signal)
                    left = await drain.drain(grace)
                    if left:
                        log.warning("%d calls still running after %gs; stopping them", left, grace)
                    else:
                        await anyio.sleep(FLUSH_S)
                        log.info("calls in flight finished; stopping")
                    waiting.cancel_scope.cancel()
        if web is None:
            _exit_soon()
            tg.cancel_scope.cancel()
        else:
            web.close_connections()
            web.should_exit = True  # uvicorn then runs the app's shutdown and returns


def _exit_soon(after: float = 2.0) -> None:
    """Exit 0 if the loop cannot stop: the SDK's stdio reader blocks in a read of stdin that
    nothing interrupts while the client keeps stdin open."""
    timer = threading.Timer(after, exit_now, (0,))
    timer.daemon = True
    timer.start()


def exit_now(code: int) -> NoReturn:
    """Flush the output and end the process, from any thread, even while the stdio reader blocks."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
