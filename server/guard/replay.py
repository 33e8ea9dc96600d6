"""Replay the recorded audit log against other limits: which calls would have been delayed or refused.

Each recorded call (its principal, time and the passages it served) goes, in order, through a
real :class:`~strongroom.server.guard.gate.Guard` built from the new settings, with a ledger of
its own and the recorded times as its clock: the same decisions as in production, no second
guard. What replay cannot tell: what a call refused in the original run would have served (it
served nothing, so it replays as serving nothing); how clients would have reacted to other
delays or refusals (later calls keep their recorded times); and how much of each passage was
shown (each counts in full, so character budgets are judged conservatively).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import anyio

from strongroom.server.guard.access import JWT_PREFIX, Caller
from strongroom.server.guard.gate import Guard, Refused
from strongroom.server.models import Served
from strongroom.server.settings.guard import GuardSettings
from strongroom.server.store.audit import AuditLog, AuditRecord
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.exposure import ExposureLedger

OPERATOR = "operator"  # the audit log's name for operator commands: not calls to replay


@dataclass(frozen=True)
class Replayed:
    record: AuditRecord
    verdict: str  # "served" | "delayed" | "refused"
    delay_s: float = 0.0
    reason: str = ""


@dataclass
class Summary:
    calls: Counter[str] = field(default_factory=Counter)
    originally_refused: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    delayed: Counter[str] = field(default_factory=Counter)
    delay_s: Counter[str] = field(default_factory=Counter)

    def add(self, r: Replayed) -> None:
        who = r.record.principal
        self.calls[who] += 1
        self.originally_refused[who] += r.record.outcome == "refused"
        self.refused[who] += r.verdict == "refused"
        self.delayed[who] += r.delay_s > 0
        self.delay_s[who] += round(r.delay_s, 3)  # type: ignore[assignment]


class _CatalogInventory:
    def __init__(self, catalog: Catalog) -> None:
        self._sizes = {s.name: s.chunks for s in catalog.source_states()}
        self._canaries = catalog.canary_documents()

    def source_sizes(self) -> dict[str, int]:
        return self._sizes

    def canary_documents(self) -> set[str]:
        return self._canaries


@dataclass(frozen=True)
class _Result:
    served: list[Served]

    def exposure(self) -> list[Served]:
        return self.served


def caller_of(name: str) -> Caller:
    """The caller a recorded principal name stands for (``jwt:SUBJECT`` is a JWT subject)."""
    if name.startswith(JWT_PREFIX):
        return Caller(name.removeprefix(JWT_PREFIX), "replay", "jwt")
    return Caller(name, "replay")


def served_by(records: Iterable[AuditRecord], catalog: Catalog) -> dict[int, list[Served]]:
    """What each record served: its passages with their sources and lengths from the catalog."""
    wanted = list(dict.fromkeys(c for r in records for c in r.chunk_ids))
    chunks = catalog.chunks(wanted)
    out: dict[int, list[Served]] = {}
    for r in records:
        out[r.seq] = [
            Served(c, chunks[c].document_id, chunks[c].document_id.split("/", 1)[0], len(chunks[c].text))
            for c in r.chunk_ids
            if c in chunks
        ]
    return out


def replay(records: Sequence[AuditRecord], settings: GuardSettings, catalog: Catalog) -> list[Replayed]:
    """Every recorded call, in order, through a guard with ``settings``."""
    calls = [r for r in records if r.principal != OPERATOR]
    served = served_by(calls, catalog)
    with tempfile.TemporaryDirectory(prefix="strongroom-replay-") as tmp:
        path = Path(tmp) / "replay.sqlite3"
        now = [0.0]
        waited = [0.0]

        async def sleep(seconds: float) -> None:
            waited[0] += seconds

        guard = Guard(
            settings,
            AuditLog(path),
            ExposureLedger(path),
            _CatalogInventory(catalog),
            clock=lambda: now[0],
            sleep=sleep,
        )

        async def one(record: AuditRecord) -> Replayed:
            now[0] = datetime.fromisoformat(record.ts).timestamp()
            waited[0] = 0.0

            async def call(_: object) -> _Result:
                return _Result(served[record.seq])

            try:
                await guard.run(caller_of(record.principal), record.action, {"seq": record.seq}, call)
            except Refused as refused:
                return Replayed(record, "refused", waited[0], refused.refusal.message)
            return Replayed(record, "delayed" if waited[0] else "served", waited[0])

        async def run() -> list[Replayed]:
            return [await one(r) for r in calls]

        return anyio.run(run)
