"""The single call path: every tool and resource call passes through :meth:`Guard.run`.

In order: who is calling (and what they may see), pacing (a call that comes too early waits
for its slot), the call itself (with access control inside its queries), a judgement of the
result (budgets, novelty, spread and the collective pool, canaries) before it is returned, and
an audit record of all of it — hashes and ids, never arguments or passage text.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread

from strongroom.server.errors import StrongroomError
from strongroom.server.guard.access import Access, Caller, ResolvedPrincipal, resolve
from strongroom.server.guard.policy import Decision, Pacing, Refusal, judge_result, pace
from strongroom.server.models import Served
from strongroom.server.settings.guard import GuardSettings
from strongroom.server.store.audit import AuditLog, GuardEvent
from strongroom.server.store.exposure import ExposureLedger, LedgerView

log = logging.getLogger("strongroom.guard")

T = TypeVar("T")
R = TypeVar("R")


class _CallMark:
    """Marked once the guard has audited the current call, so the adapter can audit the calls
    that never reached the guard (arguments the schema rejects, say). Mutable, because the
    handler may run in a task with a copy of the adapter's context."""

    audited = False


_call: contextvars.ContextVar[_CallMark | None] = contextvars.ContextVar("strongroom_call", default=None)


class Refused(StrongroomError):
    """The guard refused the call; the message names the limit."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class Inventory(Protocol):
    """What the guard needs to know about the index."""

    def source_sizes(self) -> dict[str, int]: ...

    def canary_documents(self) -> set[str]: ...


@dataclass(frozen=True)
class _Outcome:
    decision: Decision
    never_seen: int  # how many served passages are new to the principal (for novelty)
    new_documents: int  # how many of their documents are (for spread)
    canaries: set[str]  # canary documents among those served
    events: list[GuardEvent] = field(default_factory=list)  # what the audit record carries


# Refusals that restart a principal's clean history (rate limits do not).
_FLAGGING = frozenset({"budget_exceeded", "crawler_pattern", "collective_budget_exceeded"})


def arguments_digest(key: bytes, arguments: Mapping[str, Any]) -> str:
    """HMAC-SHA256 of the arguments under the deployment's digest key: whoever holds the key can
    check a guess ("did X ask Y?"); without it, short arguments cannot be found by hashing guesses."""
    blob = json.dumps(arguments, sort_keys=True, default=str).encode()
    return hmac.new(key, blob, hashlib.sha256).hexdigest()


class Guard:
    def __init__(
        self,
        settings: GuardSettings,
        audit: AuditLog,
        ledger: ExposureLedger,
        inventory: Inventory,
        clock: Callable[[], float] = time.time,
        digest_key: bytes | None = None,  # None: a random key, digests comparable within this process only
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,  # how a paced call waits (tests: fake time)
    ) -> None:
        self._sleep = sleep
        self.settings = settings
        self._digest_key = digest_key or secrets.token_bytes(32)
        self.audit = audit
        self.ledger = ledger
        self._inventory = inventory
        self._clock = clock
        self._locks: dict[str, anyio.Lock] = {}
        self._audit_lock = threading.Lock()
        self._unwritten: list[tuple[str, str, str, str, list[str], list[str], list[GuardEvent]]] = []

    def principal(self, caller: Caller) -> ResolvedPrincipal:
        """Who ``caller`` is to the guard: name, access and limits."""
        return resolve(self.settings, caller)

    def shown(self, caller: Caller, chunk_ids: Sequence[str]) -> dict[str, int]:
        """Characters of each of ``chunk_ids`` that ``caller`` was shown in its budget window."""
        principal = self.principal(caller)
        since = self._clock() - principal.limits.window_hours * 3600
        return self.ledger.seen(principal.name, chunk_ids, since)[1]

    @staticmethod
    def begin_call() -> Callable[[], bool]:
        """Mark the start of a call; the function returned tells whether the guard audited it."""
        mark = _CallMark()
        _call.set(mark)
        return lambda: mark.audited

    async def audit_unguarded(
        self, caller: Caller, action: str, arguments: Mapping[str, Any], outcome: str
    ) -> None:
        """Audit a call that ended before reaching :meth:`run` (e.g. arguments the schema rejects)."""
        name = self.principal(caller).name
        await self._record(name, action, arguments_digest(self._digest_key, arguments), outcome, [], [])

    async def run(
        self,
        caller: Caller,
        action: str,
        arguments: Mapping[str, Any],
        call: Callable[[Access], Awaitable[T]],
    ) -> T:
        principal = resolve(self.settings, caller)
        digest = arguments_digest(self._digest_key, arguments)
        limits = principal.limits
        arrived = self._clock()
        audit = (principal.name, action, digest)
        # The clock is read again inside the transaction: calls that arrive together reach it in
        # any order, and an earlier arrival judged after a later one must not count as early.
        pacing = await self._ledger(
            audit, self.ledger.pace, principal.name, arrived, lambda tat: pace(tat, self._clock(), limits)
        )
        if pacing.refusal is not None:
            await self._record(principal.name, action, digest, "refused", [], [pacing.refusal.event])
            raise Refused(pacing.refusal)
        if pacing.delay_s:
            await self._sleep(pacing.delay_s)  # its slot is reserved: early calls wait, in order
        lock = self._locks.setdefault(principal.name, anyio.Lock())
        async with lock:
            now = self._clock()
            try:
                result = await call(principal.access)
            except Exception as exc:
                await self._record(principal.name, action, digest, "error", [], [])
                log.info("%s %s args=%s failed: %s", principal.name, action, digest[:12], type(exc).__name__)
                raise
            served = _served(result)
            self._mark_audited()
            settled = await self._ledger(audit, self._settle, principal, action, digest, served, now, pacing)
            self._log_events(principal.name, action, settled.events)
            if settled.decision.refusal is not None:
                raise Refused(settled.decision.refusal)
            for document_id in sorted(settled.canaries):
                log.warning("canary document %s returned to %s", document_id, principal.name)
        if settled.decision.delay_s:
            await self._sleep(settled.decision.delay_s)  # past the soft limit: slow, not stopped
        return result

    async def _ledger(self, audit: tuple[str, str, str], fn: Callable[..., R], *args: Any) -> R:
        """``fn(*args)`` on the ledger in a worker thread; a store fault (a locked or full disk)
        or any unexpected failure fails the call, and the call is audited as an error (``fn``
        appends its own record only as its last step, so none is written twice)."""
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except Exception:
            await self._record(*audit, "error", [], [])
            raise

    def _settle(
        self,
        principal: ResolvedPrincipal,
        action: str,
        digest: str,
        served: list[Served],
        now: float,
        pacing: Pacing,
    ) -> _Outcome:
        """Judge a result and write what follows from it in one worker-thread hop: the ledger
        (what was shown, or the flag a crawler refusal sets), in the same transaction as the
        judgement so no other replica's call comes between them, then the call's audit record."""
        # The inventory first: building the knowledge base on first use opens (and may migrate)
        # the catalog, which must not happen inside the ledger's transaction on the same file.
        inventory = (self._inventory.source_sizes(), self._inventory.canary_documents())
        with self.ledger.settling() as ledger:
            outcome = self._judge(ledger, principal, served, now, inventory)
            decision = outcome.decision
            if pacing.delay_s:
                outcome.events.append(GuardEvent("paced", "info", f"delayed {pacing.delay_s:.2f} s"))
            outcome.events.extend(decision.events)
            if decision.refusal is not None:
                outcome.events.append(decision.refusal.event)
                if decision.refusal.event.kind in _FLAGGING:
                    ledger.flag(principal.name, now)
            else:
                outcome.events.extend(
                    GuardEvent("canary_served", "high", f"canary document {document_id} was returned")
                    for document_id in sorted(outcome.canaries)
                )
                ledger.record_served(
                    principal.name,
                    served,
                    now,
                    outcome.never_seen,
                    decision.shown,
                    pooled=decision.pooled,
                    collective_since=now - self.settings.collective.window_hours * 3600,
                    new_documents=outcome.new_documents,
                )
        if decision.refusal is not None:
            self._queue_audit(principal.name, action, digest, "refused", [], outcome.events)
        else:
            self._queue_audit(principal.name, action, digest, "ok", served, outcome.events)
        return outcome

    def _judge(
        self,
        ledger: LedgerView,
        principal: ResolvedPrincipal,
        served: list[Served],
        now: float,
        inventory: tuple[dict[str, int], set[str]],
    ) -> _Outcome:
        limits = principal.limits
        since = now - limits.window_hours * 3600
        ids = list(dict.fromkeys(s.chunk_id for s in served))
        history = max(limits.novelty_calls, limits.spread_calls) - 1
        exposure = ledger.exposure(principal.name, since, history)
        never, shown = ledger.seen(principal.name, ids, since)
        new_documents = ledger.new_documents(
            principal.name, list(dict.fromkeys(s.document_id for s in served))
        )
        sizes, canary_documents = inventory
        decision = judge_result(
            exposure=exposure,
            served=served,
            never_seen=never,
            new_in_window={c for c in ids if c not in shown},
            new_documents=new_documents,
            shown_before=shown,
            source_sizes=sizes,
            pool=ledger.collective(ids, now - self.settings.collective.window_hours * 3600),
            total_chunks=sum(sizes.values()),
            limits=limits,
            collective=self.settings.collective,
            now=now,
            trusted=principal.trusted,
            contact=self.settings.contact,
        )
        canaries = canary_documents & {s.document_id for s in served}
        return _Outcome(decision, len(never), len(new_documents), canaries)

    async def _record(
        self,
        principal: str,
        action: str,
        digest: str,
        outcome: str,
        served: Sequence[Served],
        events: Sequence[GuardEvent],
    ) -> None:
        self._mark_audited()
        await anyio.to_thread.run_sync(self._queue_audit, principal, action, digest, outcome, served, events)
        self._log_events(principal, action, events)

    @staticmethod
    def _mark_audited() -> None:
        mark = _call.get()
        if mark is not None:
            mark.audited = True

    @staticmethod
    def _log_events(principal: str, action: str, events: Sequence[GuardEvent]) -> None:
        for event in events:
            level = logging.WARNING if event.severity in ("warning", "high") else logging.INFO
            log.log(level, "%s %s: %s (%s)", principal, action, event.kind, event.detail)

    def _queue_audit(
        self,
        principal: str,
        action: str,
        digest: str,
        outcome: str,
        served: Sequence[Served],
        events: Sequence[GuardEvent],
    ) -> None:
        """Append the call's audit record (in a worker thread), after any kept from earlier calls."""
        chunk_ids = list(dict.fromkeys(s.chunk_id for s in served))
        documents = sorted({s.document_id for s in served})
        self._unwritten.append((principal, action, digest, outcome, chunk_ids, documents, list(events)))
        self._write_audit()

    def _write_audit(self) -> None:
        """Append the records not yet written, oldest first. One the catalog cannot take now (a
        locked or full disk) is kept and written with the next call's: none is dropped."""
        with self._audit_lock:
            self._write_unwritten()

    def _write_unwritten(self) -> None:
        while self._unwritten:
            try:
                self.audit.append(*self._unwritten[0])
            except Exception as exc:
                log.error(
                    "audit log not writable (%s); %d record(s) kept in memory until it is",
                    type(exc).__name__,
                    len(self._unwritten),
                )
                return
            self._unwritten.pop(0)


def _served(result: object) -> list[Served]:
    """The passages a result hands out: results that expose text define ``exposure()``."""
    exposure = getattr(result, "exposure", None)
    return list(exposure()) if callable(exposure) else []
