"""The guard's added latency per call with a large exposure ledger.

Usage: python benchmarks/guard_latency.py [--rows 1000000] [--calls 500]

Fills a fresh ledger with ``--rows`` exposure rows (1,000 principals, each shown 1,000 passages
of a 100,000-passage corpus, spread over the last day), then times :meth:`Guard.run` around a
call that does nothing but return five passages (some already seen): everything measured is
the guard's own work — pacing, the exposure and collective reads, the judgement, the ledger
writes and the audit record, all in SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from strongroom.server.guard.access import Caller  # noqa: E402
from strongroom.server.guard.gate import Guard  # noqa: E402
from strongroom.server.models import Served  # noqa: E402
from strongroom.server.settings.guard import GuardSettings, Limits  # noqa: E402
from strongroom.server.store.audit import AuditLog  # noqa: E402
from strongroom.server.store.exposure import ExposureLedger  # noqa: E402

CORPUS = 100_000
SOURCES = {f"s{i}": CORPUS // 10 for i in range(10)}


class Inventory:
    def source_sizes(self) -> dict[str, int]:
        return SOURCES

    def canary_documents(self) -> set[str]:
        return set()


def fill(ledger: ExposureLedger, rows: int, now: float) -> None:
    """``rows`` exposure rows (and their collective entries) written straight into the tables."""
    rng = random.Random(1)
    principals = 1000
    per = rows // principals
    db = ledger.database.db()  # type: ignore[attr-defined]  # the SQLite file
    db.execute("BEGIN")
    seen: dict[str, float] = {}
    for p in range(principals):
        batch = []
        for c in rng.sample(range(CORPUS), per):
            ts = now - rng.random() * 80_000
            chunk = f"c{c}"
            batch.append((f"p{p}", chunk, f"s{c % 10}", 400, ts, ts))
            seen[chunk] = max(seen.get(chunk, 0.0), ts)
        db.executemany("INSERT INTO guard_exposures VALUES (?,?,?,?,?,?)", batch)
        db.execute("INSERT INTO guard_principals VALUES (?,?,?,NULL)", (f"p{p}", now - 9 * 86400, now - 60))
    db.executemany("INSERT INTO guard_collective VALUES (?,?,0)", list(seen.items()))
    db.execute("INSERT INTO guard_counters VALUES ('seen', ?)", (len(seen),))
    db.execute("COMMIT")


class Result:
    def __init__(self, served: list[Served]) -> None:
        self.served = served

    def exposure(self) -> list[Served]:
        return self.served


async def measure(guard: Guard, calls: int, clock: list[float]) -> list[float]:
    rng = random.Random(2)
    out = []
    for i in range(calls):
        principal = f"p{rng.randrange(1000)}"
        ids = [rng.randrange(CORPUS) for _ in range(5)]
        served = [Served(f"c{c}", f"s{c % 10}/d{c}", f"s{c % 10}", 400, 400) for c in ids]

        async def call(_: object, served: list[Served] = served) -> Result:
            return Result(served)

        clock[0] += 2.0
        started = time.perf_counter()
        await guard.run(Caller(principal, "stdio"), "search", {"query": f"q{i}", "k": 5}, call)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.sqlite3"
        now = time.time()
        ledger = ExposureLedger(path)
        started = time.perf_counter()
        fill(ledger, args.rows, now)
        fill_s = time.perf_counter() - started
        clock = [now]
        # Budgets above the 1,000 passages each principal holds, so every call takes the full path.
        limits = Limits(hard_chunks=5000, soft_chunks=5000, source_share=1.0)
        settings = GuardSettings(limits=limits)
        guard = Guard(settings, AuditLog(path), ledger, Inventory(), clock=lambda: clock[0])
        asyncio.run(measure(guard, 50, clock))  # warm-up
        ms = sorted(asyncio.run(measure(guard, args.calls, clock)))
    p50 = statistics.median(ms)
    p95 = ms[int(0.95 * len(ms)) - 1]
    print(
        f"rows={args.rows:,} calls={args.calls} fill={fill_s:.0f}s p50={p50:.2f}ms p95={p95:.2f}ms "
        f"max={ms[-1]:.2f}ms nproc={os.cpu_count()} load={[round(x, 1) for x in os.getloadavg()]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
