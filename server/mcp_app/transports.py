"""Running the server over stdio, SSE or streamable HTTP, with Host/Origin checks."""

from __future__ import annotations

import ipaddress
from typing import Any

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from strongroom.server.settings import ServerSettings

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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


def run(server: MCPServer[Any], settings: ServerSettings, transport: str, host: str, port: int) -> None:
    """Serve until interrupted."""
    if transport == "stdio":
        server.run("stdio")
        return
    security = transport_security(settings, host)
    if transport == "sse":
        server.run("sse", host=host, port=port, transport_security=security)
    else:
        server.run("streamable-http", host=host, port=port, transport_security=security)
