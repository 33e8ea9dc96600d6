"""The exposure ledger's per-principal state under concurrent writers, and its collective counters."""

from __future__ import annotations

import threading
from pathlib import Path

from strongroom.server.guard.policy import pace
from strongroom.server.models import Served
from strongroom.server.settings.guard import Limits
from strongroom.server.store.exposure import ExposureLedger

NOW = 1_800_000_000.0


def test_two_processes_sharing_the_catalog_never_lose_a_pacing_reservation(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    ledgers = [ExposureLedger(path), ExposureLedger(path)]  # as two server processes would open it
    limits = Limits(calls_per_minute=60, burst=1000, max_wait_s=10_000)

    def reserve(ledger: ExposureLedger) -> None:
        for _ in range(50):
            ledger.pace("alice", NOW, lambda tat: pace(tat, NOW, limits))

    threads = [threading.Thread(target=reserve, args=(ledger,)) for ledger in ledgers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tat = ledgers[0].pace("alice", NOW, lambda tat: (None, tat))
    assert tat == NOW + 100  # every one of the 100 calls took its own one-second slot


def test_collective_counters_follow_the_window(tmp_path: Path) -> None:
    ledger = ExposureLedger(tmp_path / "catalog.sqlite3")
    served = [Served(f"c{i}", "s/d", "s", 10) for i in range(3)]
    ledger.record_served("new", served, NOW, 3, {}, pooled=True, collective_since=NOW - 100)
    ledger.record_served(
        "old",
        [*served[:1], Served("c9", "s/d", "s", 10)],
        NOW + 10,
        1,
        {},
        pooled=False,
        collective_since=NOW - 90,
    )
    pool = ledger.collective(["c0", "c5"], NOW - 90)
    assert (pool.pooled, pool.seen, pool.unseen) == (3, 4, {"c5"})
    # 101 s later the first call's passages left the window (c0 was seen again at NOW + 10).
    ledger.record_served("x", [], NOW + 101, 0, {}, collective_since=NOW + 1)
    pool = ledger.collective([], NOW + 1)
    assert (pool.pooled, pool.seen) == (1, 2)
