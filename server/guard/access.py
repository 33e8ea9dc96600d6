"""Who is calling and what they may see."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from strongroom.server.errors import StrongroomError
from strongroom.server.settings.guard import GuardSettings, Limits, Principal

EVERYTHING = "*"
JWT_PREFIX = "jwt:"  # undeclared JWT subjects are named apart from declared principals

log = logging.getLogger("strongroom.guard")


class UnknownPrincipal(StrongroomError):
    """The configured stdio principal is not declared."""


@dataclass(frozen=True)
class Access:
    """The labels a principal may see; ``None`` means every document.

    A document is visible when it shares a label with the principal, or has no labels and
    ``unlabelled`` is true (every principal but one configured to see nothing).
    """

    labels: frozenset[str] | None
    unlabelled: bool = True

    @classmethod
    def everything(cls) -> Access:
        return cls(None)

    @classmethod
    def nothing(cls) -> Access:
        return cls(frozenset(), unlabelled=False)

    @classmethod
    def of(cls, labels: Iterable[str]) -> Access:
        labels = frozenset(labels)
        return cls(None if EVERYTHING in labels else labels)

    def can_see(self, document_labels: Iterable[str]) -> bool:
        if self.labels is None:
            return True
        labels = set(document_labels)
        return bool(labels & self.labels) if labels else self.unlabelled


@dataclass(frozen=True)
class Caller:
    """Who is calling, over which transport, and how that was established.

    ``authenticated_by`` is ``"token"`` for a declared principal's static bearer token,
    ``"jwt"`` for a verified JWT (``principal`` is then its subject and ``token_labels`` its
    labels claim, None when the token has none) and ``"default"`` for stdio and
    unauthenticated loopback HTTP.
    """

    principal: str
    transport: str
    authenticated_by: Literal["default", "token", "jwt"] = "default"
    token_labels: frozenset[str] | None = None


@dataclass(frozen=True)
class ResolvedPrincipal:
    name: str
    access: Access
    limits: Limits
    trusted: bool = False  # by role: full budgets from the first call, outside the collective pool


def resolve(settings: GuardSettings, caller: Caller) -> ResolvedPrincipal:
    """A caller's name, access and limits from the configuration.

    With no principals declared and no JWT (a laptop), the local caller sees everything under
    the default limits. A declared principal gets its labels. A JWT subject gets what its
    token's labels claim grants, unless the operator mapped the subject to a declared
    principal (``jwt_subjects``); anyone else sees only unlabelled documents.
    """
    if caller.authenticated_by == "jwt":
        return _resolve_jwt(settings, caller)
    declared = settings.principal(caller.principal)
    if declared is not None:
        return _declared(settings, declared)
    if not settings.principals and caller.authenticated_by == "default":
        return ResolvedPrincipal(caller.principal, Access.everything(), settings.limits)
    return ResolvedPrincipal(caller.principal, Access.of(()), settings.limits)


def _declared(settings: GuardSettings, principal: Principal) -> ResolvedPrincipal:
    role = settings.role_of(principal)
    return ResolvedPrincipal(principal.name, Access.of(principal.labels), role.limits, role.trusted)


def _resolve_jwt(settings: GuardSettings, caller: Caller) -> ResolvedPrincipal:
    mapped = settings.principal_for_subject(caller.principal)
    if mapped is not None:
        return _declared(settings, mapped)
    name = JWT_PREFIX + caller.principal
    jwt = settings.jwt
    labels = caller.token_labels
    if labels is None:
        access = Access.nothing() if jwt and jwt.without_labels == "nothing" else Access.of(())
    elif EVERYTHING in labels and not (jwt and jwt.allow_wildcard_labels):
        log.warning("%s: token claims %r; ignored (guard.jwt.allow_wildcard_labels is off)", name, EVERYTHING)
        access = Access(labels - {EVERYTHING})
    else:
        access = Access.of(labels)
    return ResolvedPrincipal(name, access, settings.limits)


def check_stdio_principal(settings: GuardSettings, name: str) -> None:
    """Over stdio the principal comes from the environment and must be declared (if any are)."""
    if settings.principals and settings.principal(name) is None:
        known = ", ".join(p.name for p in settings.principals)
        raise UnknownPrincipal(
            f"principal {name!r} (STRONGROOM_PRINCIPAL) is not declared; declared: {known}"
        )
