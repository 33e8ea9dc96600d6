"""Bearer authentication for SSE/HTTP: static tokens (stored as SHA-256 digests) and JWTs.

This is the MCP authorization spec's resource-server role: the SDK's bearer middleware
answers 401 with ``WWW-Authenticate`` and serves protected-resource metadata; this module
decides which tokens are good and whose they are.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from mcp.server.auth.provider import AccessToken

from strongroom.server.settings.guard import GuardSettings, JwtSettings

if TYPE_CHECKING:  # PyJWT (and cryptography) load with the first JWT setting, not with the server
    import jwt

log = logging.getLogger(__name__)

LABELS_CLAIM_KEY = "strongroom_labels"
JWT_CLAIM_KEY = "strongroom_jwt"  # present on access tokens that came from a verified JWT
JWKS_TTL_S = 300


def token_digest(token: str) -> str:
    """What the configuration stores for a static token (``token_sha256``)."""
    return hashlib.sha256(token.encode()).hexdigest()


class KeySet:
    """The issuer's public keys: from a URL through PyJWT's JWKS client (cached for a few
    minutes; an unknown ``kid`` refetches once, within a cooldown), or from a file (read again
    when it changes)."""

    def __init__(self, settings: JwtSettings, base_dir: Path) -> None:
        import jwt

        self._file: Path | None = None
        self._client: jwt.PyJWKClient | None = None
        self._loaded: tuple[float, list[jwt.PyJWK]] | None = None
        if settings.jwks_file:
            path = Path(settings.jwks_file)
            self._file = path if path.is_absolute() else base_dir / path
        elif settings.jwks_url:
            self._client = jwt.PyJWKClient(
                settings.jwks_url, lifespan=JWKS_TTL_S, timeout=10, cooldown_duration=settings.jwks_cooldown_s
            )
        else:
            raise ValueError("guard.jwt needs jwks_file or jwks_url")

    def _keys(self) -> list[jwt.PyJWK]:
        import jwt

        if self._client is not None:
            return self._client.get_signing_keys()
        assert self._file is not None
        mtime = self._file.stat().st_mtime
        if self._loaded is None or self._loaded[0] != mtime:
            self._loaded = (mtime, jwt.PyJWKSet.from_json(self._file.read_text()).keys)
        return self._loaded[1]

    def key_for(self, token: str) -> Any:
        import jwt

        kid = jwt.get_unverified_header(token).get("kid")
        if kid is not None and self._client is not None:
            return self._client.get_signing_key(str(kid)).key
        keys = self._keys()
        if kid is None and len(keys) != 1:  # an issuer with one key may leave kid out
            raise jwt.InvalidKeyError("token has no kid and the key set has more than one key")
        for key in keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise jwt.InvalidKeyError(f"no key with kid {kid!r}")


class TokenVerifier:
    """Implements the SDK's TokenVerifier protocol."""

    def __init__(self, settings: GuardSettings, base_dir: Path) -> None:
        self._settings = settings
        self._digests = {d: p.name for p in settings.principals for d in p.token_sha256}
        self._keys = KeySet(settings.jwt, base_dir) if settings.jwt else None

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = token_digest(token)
        for known, principal in self._digests.items():
            if hmac.compare_digest(known, digest):
                return AccessToken(token=token, client_id=principal, subject=principal, scopes=[])
        if self._keys is not None and self._settings.jwt is not None and token.count(".") == 2:
            return await anyio.to_thread.run_sync(self._verify_jwt, token, self._settings.jwt, self._keys)
        return None

    @staticmethod
    def _verify_jwt(token: str, settings: JwtSettings, keys: KeySet) -> AccessToken | None:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in settings.algorithms:
                raise jwt.InvalidAlgorithmError(f"algorithm {header.get('alg')!r} is not accepted")
            claims: dict[str, Any] = jwt.decode(
                token,
                keys.key_for(token),
                algorithms=settings.algorithms,
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_s,
                options={"require": ["exp", "iss", "aud", settings.principal_claim]},
            )
        except (jwt.PyJWTError, ValueError, OSError) as exc:
            # The reason helps an operator; the token itself is never logged.
            log.info("bearer JWT refused: %s", type(exc).__name__ + (f": {exc}" if str(exc) else ""))
            return None
        principal = str(claims[settings.principal_claim])
        labels = _labels(claims.get(settings.labels_claim) if settings.labels_claim else None)
        extra = {LABELS_CLAIM_KEY: labels} if labels is not None else {}
        return AccessToken(
            token=token,
            client_id=principal,
            subject=principal,
            scopes=str(claims.get("scope", "")).split(),
            expires_at=int(claims["exp"]),
            resource=settings.audience,
            claims={"iss": claims["iss"], JWT_CLAIM_KEY: True, **extra},
        )


def _labels(claim: object) -> list[str] | None:
    """A labels claim as a list: a JSON list of strings, or one space-separated string."""
    if isinstance(claim, str):
        return claim.split()
    if isinstance(claim, list) and all(isinstance(x, str) for x in claim):
        return list(claim)
    if claim is not None:
        log.info("bearer JWT labels claim ignored: not a list of strings")
    return None
