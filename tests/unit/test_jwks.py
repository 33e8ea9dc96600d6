"""JWT keys from a JWKS URL (a real local HTTP server): verification and key rotation."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from strongroom.server.guard.auth import TokenVerifier
from strongroom.server.settings.guard import GuardSettings, JwtSettings

ISSUER, AUDIENCE = "https://idp.example.test", "http://127.0.0.1/mcp"


class Keys:
    def __init__(self) -> None:
        self.private: dict[str, rsa.RSAPrivateKey] = {}
        self.published: list[str] = []
        self.fetches = 0

    def add(self, kid: str) -> None:
        self.private[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> bytes:
        keys = []
        for kid in self.published:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private[kid].public_key()))
            keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return json.dumps({"keys": keys}).encode()

    def token(self, kid: str, sub: str = "carol") -> str:
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "exp": int(time.time()) + 600, "groups": ["x"]}
        return jwt.encode(claims, self.private[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def issuer() -> Iterator[tuple[str, Keys]]:
    keys = Keys()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            keys.fetches += 1
            body = keys.jwks()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks", keys
    finally:
        server.shutdown()


def verifier(url: str) -> TokenVerifier:
    settings = GuardSettings(
        jwt=JwtSettings(
            issuer=ISSUER, audience=AUDIENCE, jwks_url=url, labels_claim="groups", jwks_cooldown_s=0
        )
    )
    return TokenVerifier(settings, Path("."))


def test_keys_come_from_the_url_are_cached_and_a_rotated_key_is_fetched(issuer: tuple[str, Keys]) -> None:
    url, keys = issuer
    keys.add("k1")
    keys.published = ["k1"]
    tokens = verifier(url)

    async def run() -> None:
        first = await tokens.verify_token(keys.token("k1"))
        assert first is not None and first.subject == "carol"
        assert await tokens.verify_token(keys.token("k1", sub="dave")) is not None
        assert keys.fetches == 1  # the key set is cached
        keys.add("k2")
        keys.published = ["k2"]  # the issuer rotates its key
        assert await tokens.verify_token(keys.token("k2")) is not None
        assert keys.fetches == 2
        keys.add("rogue")  # signed by a key the issuer never published
        assert await tokens.verify_token(keys.token("rogue")) is None

    anyio.run(run)
