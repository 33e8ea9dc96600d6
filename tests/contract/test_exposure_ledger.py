"""The exposure ledger contract on every backend: per-principal state under concurrent writers
(replicas), budgets judged and recorded atomically, and the collective counters."""

from __future__ import annotations

import threading

from strongroom.server.guard.policy import pace
from strongroom.server.models import Served
from strongroom.server.settings.guard import Limits
from strongroom.server.store.exposure import ExposureLedger
from tests.contract.conftest import Backend

NOW = 1_800_000_000.0


def test_two_processes_sharing_the_catalog_never_lose_a_pacing_reservation(backend: Backend) -> None:
    ledgers = [ExposureLedger(backend.open()), ExposureLedger(backend.open())]  # two replicas
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


def test_collective_counters_follow_the_window(backend: Backend) -> None:
    ledger = ExposureLedger(backend.open())
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


def test_two_replicas_never_both_admit_past_a_budget(backend: Backend) -> None:
    """Each call judges the principal's total and records its passages in one settling
    transaction: 2 replicas x 4 threads racing for a 30-passage budget admit exactly 30."""
    budget = 30
    ledgers = [ExposureLedger(backend.open()), ExposureLedger(backend.open())]
    admitted: list[str] = []

    def call(ledger: ExposureLedger, worker: int) -> None:
        for n in range(10):
            passage = Served(f"w{worker}-{n}", "s/d", "s", 100)
            with ledger.settling() as view:
                if view.exposure("alice", NOW - 3600, 5).chunks >= budget:
                    continue
                view.record_served("alice", [passage], NOW, 1, {passage.chunk_id: 100})
                admitted.append(passage.chunk_id)

    threads = [threading.Thread(target=call, args=(ledgers[w % 2], w)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    exposure = ledgers[0].exposure("alice", NOW - 3600, 5)
    assert len(admitted) == budget and (exposure.chunks, exposure.chars) == (budget, budget * 100)


def test_exposure_seen_documents_grants_and_reset(backend: Backend) -> None:
    ledger = ExposureLedger(backend.open())
    served = [Served("c1", "s/a", "s", 400), Served("c2", "s/b", "t", 600)]
    ledger.record_served("ann", served, NOW, 2, {"c1": 400, "c2": 600}, new_documents=2)
    ledger.record_served("ann", served[:1], NOW + 5, 0, {"c1": 900}, new_documents=0)
    exposure = ledger.exposure("ann", NOW - 10, 5)
    assert (exposure.chunks, exposure.chars, exposure.per_source) == (2, 1500, {"s": 1, "t": 1})
    assert exposure.recent_new == [0, 2] and exposure.recent_document_novelty == [0.0, 1.0]
    assert ledger.seen("ann", ["c1", "c9"], NOW - 10) == ({"c9"}, {"c1": 900})
    assert ledger.unseen("ann", ["c1", "c2"], NOW + 1) == (set(), {"c2"})
    assert ledger.new_documents("ann", ["s/a", "s/z"]) == {"s/z"}
    ledger.grant("ann", 50, 5000, hours=1)
    exposure = ledger.exposure("ann", NOW - 10, 5)
    assert (exposure.extra_chunks, exposure.extra_chars) == (50, 5000)
    ledger.flag("ann", NOW + 6)
    assert ledger.exposure("ann", NOW - 10, 5).flagged_ts == NOW + 6
    assert ledger.principals() == ["ann"]
    ledger.reset("ann")
    assert ledger.exposure("ann", NOW - 10, 5).chunks == 0 and ledger.principals() == []
