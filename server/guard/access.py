"""Who is calling and what they may see."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from strongroom.server.errors import StrongroomError
from strongroom.server.guard.settings import GuardSettings, Limits

EVERYTHING = "*"


class UnknownPrincipal(StrongroomError):
    """The configured stdio principal is not declared."""


@dataclass(frozen=True)
class Access:
    """The labels a principal may see; ``None`` means every document.

    A document is visible when it has no labels or shares one with the principal.
    """

    labels: frozenset[str] | None

    @classmethod
    def everything(cls) -> Access:
        return cls(None)

    @classmethod
    def of(cls, labels: Iterable[str]) -> Access:
        labels = frozenset(labels)
        return cls(None if EVERYTHING in labels else labels)

    def can_see(self, document_labels: Iterable[str]) -> bool:
        if self.labels is None:
            return True
        labels = set(document_labels)
        return not labels or bool(labels & self.labels)


@dataclass(frozen=True)
class Caller:
    """Who is calling, over which transport; ``token_labels`` come from a verified JWT claim."""

    principal: str
    transport: str
    token_labels: frozenset[str] | None = None


@dataclass(frozen=True)
class ResolvedPrincipal:
    name: str
    access: Access
    limits: Limits


def resolve(settings: GuardSettings, caller: Caller) -> ResolvedPrincipal:
    """A caller's access and limits from the configuration.

    With no principals declared (a laptop), everyone sees everything under the default
    limits. Otherwise a declared principal gets its labels; an undeclared one (a JWT subject)
    gets the labels its token carries, else only unlabelled documents.
    """
    declared = settings.principal(caller.principal)
    if declared is not None:
        return ResolvedPrincipal(
            declared.name, Access.of(declared.labels), declared.limits or settings.limits
        )
    if not settings.principals:
        return ResolvedPrincipal(caller.principal, Access.everything(), settings.limits)
    return ResolvedPrincipal(caller.principal, Access.of(caller.token_labels or ()), settings.limits)


def check_stdio_principal(settings: GuardSettings, name: str) -> None:
    """Over stdio the principal comes from the environment and must be declared (if any are)."""
    if settings.principals and settings.principal(name) is None:
        known = ", ".join(p.name for p in settings.principals)
        raise UnknownPrincipal(
            f"principal {name!r} (STRONGROOM_PRINCIPAL) is not declared; declared: {known}"
        )
