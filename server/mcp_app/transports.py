"""Running the server over stdio, SSE or streamable HTTP, with Host/Origin checks."""

from __future__ import annotations

import ipaddress
from typing import Any

from mcp.server import MCPServer
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from strongroom.server.errors import StrongroomError
from strongroom.server.guard.auth import TokenVerifier
from strongroom.server.settings import ServerSettings, Settings

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


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
