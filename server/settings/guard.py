"""Guard configuration: principals, authentication and the limits that cap harvesting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Section):
    """How much one principal may take. Defaults are sized so real work never meets them."""

    calls_per_minute: int = Field(
        default=60, ge=1, description="Sustained rate; a call that comes too early is delayed, not refused."
    )
    burst: int = Field(
        default=10, ge=1, description="Calls that may come at once (an agent's parallel calls)."
    )
    max_wait_s: float = Field(
        default=10.0, ge=0, description="Longest delay before a call is refused instead (with a retry-after)."
    )
    window_hours: float = Field(default=24.0, gt=0, description="Sliding window of the exposure budget.")
    soft_chunks: int = Field(
        default=600, ge=1, description="Distinct passages in the window before calls are slowed and audited."
    )
    hard_chunks: int = Field(
        default=800, ge=1, description="Distinct passages in the window: refused beyond."
    )
    hard_chars: int = Field(
        default=1_000_000, ge=1, description="Distinct characters returned in the window: refused beyond."
    )
    source_share: float = Field(
        default=0.08,
        gt=0,
        le=1,
        description="Share of one source's passages a principal may see in the window (sources over 1,000).",
    )
    source_min_chunks: int = Field(
        default=300, ge=1, description="A source's share cap is never below this many passages."
    )
    novelty_calls: int = Field(default=20, ge=2, description="Calls over which novelty is averaged.")
    novelty_limit: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="Mean share of never-seen passages per call above which a client is treated as a crawler.",
    )
    novelty_min_chunks: int = Field(
        default=150, ge=0, description="Novelty is judged only once a principal has seen this many passages."
    )
    soft_delay_s: float = Field(
        default=1.0, ge=0, description="Delay added to each call past the soft limit."
    )
    new_share: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="Share of the passage and character budgets a principal seen for the first time gets; "
        "it grows to the whole budget over `trust_hours` of clean history.",
    )
    trust_hours: float = Field(
        default=72.0, ge=0, description="Clean history (no crawler or budget refusal) that earns full trust."
    )
    spread_calls: int = Field(
        default=10, ge=1, description="Recent calls over which a principal's spread is judged (collective)."
    )
    spread_yield: float = Field(
        default=6.0,
        gt=0,
        description="Documents new to the principal per call above which it is spreading (a case stays under).",
    )
    spread_novelty: float = Field(
        default=0.75,
        gt=0,
        le=1,
        description="Mean share of returned documents new to the principal over `spread_calls` (from the third call) above which it is spreading.",
    )


class Principal(_Section):
    """Someone who may call the server."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
    labels: list[str] = Field(
        default_factory=list,
        description='Labels of the documents this principal may see ("*" = every document).',
    )
    token_sha256: list[str] = Field(
        default_factory=list, description="SHA-256 hex digests of this principal's static bearer tokens."
    )
    role: str | None = Field(
        default=None,
        description="A role of `guard.roles` (analyst, service, operator or the operator's own).",
    )
    limits: Limits | None = Field(
        default=None, description="Overrides the role's (or the default) limits for this principal."
    )
    jwt_subjects: list[str] = Field(
        default_factory=list,
        description="JWT subjects (guard.jwt.principal_claim) that act as this principal. A JWT whose "
        "subject merely equals this principal's name does not.",
    )

    @field_validator("token_sha256", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("token_sha256")
    @classmethod
    def _hex_digests(cls, value: list[str]) -> list[str]:
        for digest in value:
            if not _SHA256.match(digest):
                raise ValueError("must be a SHA-256 hex digest (64 lowercase hex characters), not a token")
        return value


class JwtSettings(_Section):
    """Bearer JWTs from an OAuth authorization server (the MCP resource-server role)."""

    issuer: str = Field(description="Expected `iss`; also advertised in protected-resource metadata.")
    audience: str = Field(description="Expected `aud`: this server's resource URL.")
    jwks_file: str | None = Field(default=None, description="Path of a JSON Web Key Set file.")
    jwks_url: str | None = Field(default=None, description="URL of the issuer's JSON Web Key Set.")
    jwks_cooldown_s: float = Field(
        default=30,
        ge=0,
        description="Least time between refetches of the key set for an unknown key id (a rotated key "
        "may wait this long; it bounds the fetches a flood of forged key ids can cause).",
    )
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    principal_claim: str = Field(default="sub", description="Claim naming the principal.")
    labels_claim: str | None = Field(
        default=None,
        description="Claim listing the labels a JWT subject may see (a list, or a space-separated string).",
    )
    without_labels: Literal["unlabelled", "nothing"] = Field(
        default="unlabelled",
        description="What a JWT without the labels claim may see: unlabelled sources, or nothing.",
    )
    allow_wildcard_labels: bool = Field(
        default=False, description='Let a token\'s labels claim "*" grant every document.'
    )
    leeway_s: int = Field(default=30, ge=0)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        allowed = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
        bad = [a for a in value if a not in allowed]
        if bad or not value:
            raise ValueError(f"algorithms must be asymmetric ones from {sorted(allowed)} (not 'none' or HS*)")
        return value

    @model_validator(mode="after")
    def _one_key_set(self) -> JwtSettings:
        if bool(self.jwks_file) == bool(self.jwks_url):
            raise ValueError("set exactly one of jwks_file and jwks_url")
        return self

    @field_validator("jwks_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value and not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("jwks_url must use https (or be on loopback)")
        return value


class Role(_Section):
    """``[guard.roles.NAME]``: limits for a kind of principal."""

    limits: Limits = Limits()
    trusted: bool = Field(
        default=False,
        description="Trusted from the first call (full budgets, outside the collective pool): operators.",
    )


def default_roles() -> dict[str, Role]:
    """The built-in roles; ``[guard.roles.NAME]`` replaces one or adds another."""
    return {
        "analyst": Role(),
        # One identity answering many people's unrelated questions: budgets sized to its traffic,
        # novelty judged more loosely (unrelated questions are new), spread still judged per call.
        "service": Role(
            limits=Limits(
                calls_per_minute=600,
                burst=50,
                soft_chunks=4000,
                hard_chunks=5000,
                hard_chars=6_000_000,
                source_share=0.5,
                novelty_limit=0.9,
                novelty_min_chunks=500,
                spread_yield=8.0,
                spread_novelty=0.9,
            )
        ),
        "operator": Role(limits=Limits(calls_per_minute=600, burst=50), trusted=True),
    }


class CollectiveLimits(_Section):
    """Limits across principals, so many identities cannot do what one may not.

    The pool holds the passages brought into the window, new to everyone, by principals not yet
    trusted; past its cap only those that are spreading are refused, and everyone else is served.
    """

    share: float = Field(
        default=0.10,
        gt=0,
        le=1,
        description="Share of all passages that principals not yet trusted may together bring in.",
    )
    min_chunks: int = Field(default=1000, ge=0, description="The collective cap is never below this.")
    window_hours: float = Field(default=24.0, gt=0, description="Sliding window of the pool.")


class GuardSettings(_Section):
    """``[guard]``: who may call, what they may see, how much they may take."""

    principals: list[Principal] = Field(default_factory=list)
    limits: Limits = Limits()
    roles: dict[str, Role] = Field(default_factory=default_roles)
    contact: str = Field(
        default="your Strongroom operator", description="Whom refusals tell principals to ask."
    )
    collective: CollectiveLimits = CollectiveLimits()
    jwt: JwtSettings | None = None
    max_chars_per_call: int = Field(default=20_000, ge=100, description="Characters one call may return.")
    digest_key: SecretStr | None = Field(
        default=None,
        description="Key of the audit log's argument digests (HMAC-SHA256), e.g. from "
        "STRONGROOM_GUARD__DIGEST_KEY; secret, never logged. Default: read from `digest_key_file`.",
    )
    digest_key_file: Path | None = Field(
        default=None,
        description="File holding that key (relative to the configuration file); default `audit.key` "
        "beside the catalog, created with mode 0600 on first use.",
    )

    @field_validator("digest_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (a long random string)")
        return value

    @field_validator("principals")
    @classmethod
    def _unique(cls, principals: list[Principal]) -> list[Principal]:
        names = [p.name for p in principals]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate principal {duplicates[0]!r}")
        subjects = [s for p in principals for s in p.jwt_subjects]
        shared = sorted({s for s in subjects if subjects.count(s) > 1})
        if shared:
            raise ValueError(f"JWT subject {shared[0]!r} is mapped to more than one principal")
        return principals

    @field_validator("roles", mode="after")
    @classmethod
    def _with_builtins(cls, roles: dict[str, Role]) -> dict[str, Role]:
        return {**default_roles(), **roles}

    @model_validator(mode="after")
    def _known_roles(self) -> GuardSettings:
        for p in self.principals:
            if p.role is not None and p.role not in self.roles:
                raise ValueError(
                    f"principal {p.name!r}: unknown role {p.role!r} (known: {sorted(self.roles)})"
                )
        return self

    def role_of(self, principal: Principal | None) -> Role:
        """The role whose limits apply: the declared one, else the defaults (``limits``)."""
        if principal is not None and principal.role is not None:
            role = self.roles[principal.role]
        else:
            role = Role(limits=self.limits)
        if principal is not None and principal.limits is not None:
            role = role.model_copy(update={"limits": principal.limits})
        return role

    def principal(self, name: str) -> Principal | None:
        return next((p for p in self.principals if p.name == name), None)

    def principal_for_subject(self, subject: str) -> Principal | None:
        """The declared principal a JWT subject was mapped to (``jwt_subjects``), if any."""
        return next((p for p in self.principals if subject in p.jwt_subjects), None)

    @property
    def authentication_configured(self) -> bool:
        return self.jwt is not None or any(p.token_sha256 for p in self.principals)
