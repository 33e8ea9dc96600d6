"""The single call path: every tool and resource call passes through :class:`Guard`.

It knows who is calling; access control, budgets and the audit trail hook in here so no
tool has to know about them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger("strongroom.guard")

T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    """Who is calling, over which transport."""

    principal: str
    transport: str


def arguments_digest(arguments: Mapping[str, Any]) -> str:
    """A short hash of the arguments: traceable in logs without revealing the query."""
    blob = json.dumps(arguments, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class Guard:
    """Wraps each call; logs principal, action, argument hash and outcome (never content)."""

    async def run(
        self,
        caller: Caller,
        action: str,
        arguments: Mapping[str, Any],
        call: Callable[[], Awaitable[T]],
    ) -> T:
        started = time.monotonic()
        digest = arguments_digest(arguments)
        try:
            result = await call()
        except Exception as exc:
            log.info(
                "%s %s args=%s refused/failed in %.0fms: %s",
                caller.principal,
                action,
                digest,
                (time.monotonic() - started) * 1000,
                type(exc).__name__,
            )
            raise
        log.info(
            "%s %s args=%s ok in %.0fms",
            caller.principal,
            action,
            digest,
            (time.monotonic() - started) * 1000,
        )
        return result
