"""What the scenarios share: a fake clock, the real guard on its own state file, MCP clients per
principal, and a meter of how much of each limit a principal has used.

The guard is the production :class:`Guard` (rate limit, exposure budgets, novelty, collective
cap, canaries, audit) with a clock the harness advances, so a session that would take hours
of real time runs in seconds. Its ledger and audit log live in a per-scenario SQLite file
beside the cached index (production keeps them in ``catalog.sqlite3``; same code, other path),
so scenarios never see each other's exposure and the cached index stays untouched.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.types import CallToolResult, TextContent

from strongroom.server.app import App
from strongroom.server.guard.access import Caller
from strongroom.server.guard.gate import Guard
from strongroom.server.guard.policy import source_cap
from strongroom.server.knowledge import KnowledgeBase
from strongroom.server.mcp_app.app import build_server
from strongroom.server.settings.guard import GuardSettings, Limits
from strongroom.server.store.audit import AuditLog
from strongroom.server.store.exposure import ExposureLedger

START = 1_750_000_000.0  # a fixed fake epoch, so runs are comparable


class FakeClock:
    """The guard's clock; the harness moves it forward between calls, and so does each wait the
    guard asks for (parallel waits are added up: slower than real time, never faster)."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.delays: list[float] = []  # every pacing or soft-limit delay the guard asked for

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds

    async def elapse(self, seconds: float) -> None:
        """Time passing between a principal's calls."""
        self.now += seconds


class RealClock(FakeClock):
    """Wall-clock time for real-time runs: the guard's waits and the gaps between calls really
    pass (a principal's parallel waits overlap, as a client's would)."""

    def __call__(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        raise NotImplementedError("a real-time run cannot skip time; use a FakeClock")

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        await anyio.sleep(seconds)

    async def elapse(self, seconds: float) -> None:
        await anyio.sleep(seconds)


@dataclass
class Rig:
    """An App with the real guard (its own state file, a fake clock), reachable over MCP as any principal."""

    app: App
    guard: Guard
    clock: FakeClock
    state_file: Path

    @property
    def kb(self) -> KnowledgeBase:
        return self.app.knowledge

    @property
    def settings(self) -> GuardSettings:
        return self.guard.settings

    @property
    def ledger(self) -> ExposureLedger:
        return self.guard.ledger

    @property
    def audit(self) -> AuditLog:
        return self.guard.audit

    @property
    def total_chunks(self) -> int:
        return sum(self.kb.source_sizes().values())

    @asynccontextmanager
    async def client(self, principal: str) -> AsyncIterator[Client]:
        """An in-memory MCP client session (the official SDK) calling as ``principal``."""
        server = build_server(self.app, Caller(principal, "stdio"))
        async with Client(server, read_timeout_seconds=300) as client:
            yield client

    @asynccontextmanager
    async def clients(self, principals: Sequence[str]) -> AsyncIterator[dict[str, Client]]:
        async with AsyncExitStack() as stack:
            yield {p: await stack.enter_async_context(self.client(p)) for p in principals}


def make_rig(
    app: App, state_dir: Path, settings: GuardSettings | None = None, *, real_time: bool = False
) -> Rig:
    """``app`` with a fresh guard (empty ledger and audit log) in ``state_dir``: a copy sharing its
    knowledge base and what else is built, so each rig's session memory starts empty too. The
    guard runs on a fake clock or, with ``real_time``, the wall clock."""
    state_dir.mkdir(parents=True, exist_ok=True)
    for stale in state_dir.glob("guard.sqlite3*"):
        stale.unlink()
    (state_dir / "audit.head").unlink(missing_ok=True)
    path = state_dir / "guard.sqlite3"
    clock = RealClock() if real_time else FakeClock()
    kb = app.knowledge  # built before the copy, so every rig shares it
    rig_app = copy.copy(app)
    rig_app.guard = Guard(
        settings or GuardSettings(), AuditLog(path), ExposureLedger(path), kb, clock=clock, sleep=clock.sleep
    )
    return Rig(rig_app, rig_app.guard, clock, path)


# -- calls ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One tool call's outcome as the client saw it."""

    ok: bool
    data: dict[str, Any]
    error: str = ""
    seconds: float = 0.0

    @property
    def chunk_ids(self) -> list[str]:
        if "results" in self.data:
            return [h["id"] for h in self.data["results"]]
        return list(self.data.get("chunk_ids", []))


def quiet() -> None:
    """Keep the guard's and the SDK's per-call log lines (thousands of them) off the console."""
    for name in ("strongroom", "mcp", "mcp.server", "chromadb"):
        logging.getLogger(name).setLevel(logging.ERROR)


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> Reply:
    started = time.perf_counter()
    result: CallToolResult = await client.call_tool(tool, arguments)
    seconds = time.perf_counter() - started
    if result.is_error:
        text = " ".join(c.text for c in result.content if isinstance(c, TextContent))
        return Reply(False, {}, text, seconds)
    return Reply(True, dict(result.structured_content or {}), "", seconds)


def limit_named(error: str) -> str:
    """Which limit a refusal names (the SDK prefixes "Error executing tool ...: ")."""
    for prefix, name in [
        ("rate limit", "rate limit"),
        ("distinct passages of source", "source budget"),
        ("collective exposure budget", "collective pool"),
        ("exposure budget", "hard budget"),
        ("harvesting pattern", "novelty"),
    ]:
        if prefix in error:
            return name
    return "other"


# -- the meter -------------------------------------------------------------------------------


@dataclass
class Peak:
    value: float = 0.0
    limit: float = 0.0

    def see(self, value: float) -> None:
        self.value = max(self.value, value)

    @property
    def share(self) -> float:
        return self.value / self.limit if self.limit else 0.0


@dataclass
class Meter:
    """Peak use of each limit by one principal, read from the guard's own ledger after each call."""

    rig: Rig
    principal: str
    limits: Limits
    call_times: list[float] = field(default_factory=list)
    peaks: dict[str, Peak] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sizes = self.rig.kb.source_sizes()
        self.peaks = {
            "calls_per_minute": Peak(limit=self.limits.calls_per_minute),
            "passages_vs_soft": Peak(limit=self.limits.soft_chunks),
            "passages_vs_hard": Peak(limit=self.limits.hard_chunks),
            "passages_vs_new_principal_budget": Peak(
                limit=math.ceil(self.limits.hard_chunks * self.limits.new_share)
            ),
            "chars_vs_hard": Peak(limit=self.limits.hard_chars),
            "novelty_vs_limit": Peak(limit=self.limits.novelty_limit),
            "novelty_vs_limit_when_judged": Peak(limit=self.limits.novelty_limit),
        }
        for source, size in sizes.items():
            self.peaks[f"source_{source}"] = Peak(limit=source_cap(size, self.limits))
        collective = self.rig.settings.collective
        self.peaks["collective"] = Peak(
            limit=max(collective.min_chunks, math.ceil(collective.share * sum(sizes.values())))
        )

    def after_call(self) -> None:
        now = self.rig.clock()
        self.call_times.append(now)
        self.peaks["calls_per_minute"].see(sum(1 for t in self.call_times if t > now - 60))
        since = now - self.limits.window_hours * 3600
        exposure = self.rig.ledger.exposure(self.principal, since, self.limits.novelty_calls)
        self.peaks["passages_vs_soft"].see(exposure.chunks)
        self.peaks["passages_vs_hard"].see(exposure.chunks)
        self.peaks["passages_vs_new_principal_budget"].see(exposure.chunks)
        self.peaks["chars_vs_hard"].see(exposure.chars)
        for source, count in exposure.per_source.items():
            self.peaks[f"source_{source}"].see(count)
        window = exposure.recent_novelty
        if len(window) >= self.limits.novelty_calls:
            mean = sum(window) / len(window)
            self.peaks["novelty_vs_limit"].see(mean)
            if exposure.chunks >= self.limits.novelty_min_chunks:
                self.peaks["novelty_vs_limit_when_judged"].see(mean)
        self.peaks["collective"].see(self.rig.ledger.collective_chunks(since))

    def seen(self) -> int:
        since = self.rig.clock() - self.limits.window_hours * 3600
        return self.rig.ledger.exposure(self.principal, since, 1).chunks

    def report(self) -> dict[str, dict[str, float]]:
        return {
            name: {"peak": round(p.value, 3), "limit": p.limit, "share": round(p.share, 3)}
            for name, p in self.peaks.items()
        }


def audit_summary(rig: Rig, principals: Sequence[str] | None = None) -> dict[str, Any]:
    """What the audit log recorded (for these principals), and whether its chain verifies."""
    records = rig.audit.all()
    if principals is not None:
        wanted = set(principals)
        records = [r for r in records if r.principal in wanted]
    outcomes = Counter(r.outcome for r in records)
    events = Counter(e["kind"] for r in records for e in r.events)
    verified = rig.audit.verify()
    return {
        "records": len(records),
        "outcomes": dict(sorted(outcomes.items())),
        "events": dict(sorted(events.items())),
        "refusals_audited": outcomes.get("refused", 0),
        "verify_ok": verified.ok,
        "verify_problem": verified.problem,
    }
