"""Harvest resistance at test scale: the benchmark harness (benchmarks/harvest) over real MCP sessions.

A 1,500-passage synthetic corpus indexed with the real model, behind the real guard with a fake
clock; ``python benchmarks/harvest/run.py`` runs the same scenarios on 10,000 passages.

- The benign replay (200 questions with reads) runs under the default limits: what a person
  working cases is shown does not shrink with the corpus, so the defaults are the ones to test.
- The crawlers run under budgets scaled to the corpus (10% of it is 150 passages): a hard budget
  of 120 (8%, as 800 is of 10,000), and novelty judged over 6 calls once 40 passages are seen, so
  that, as at full scale, the novelty window at the largest k (6 x 20) fits under the budget.
  The collective pool is 25% with no floor; new principals get the whole budget (trust is
  tested alone), so the novelty check and the pool are what is exercised.
- Principals working cases side by side, and colleagues after an attack, run under the defaults.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from benchmarks.harvest.benign import run_benign
from benchmarks.harvest.common import Rig, make_rig
from benchmarks.harvest.corpus import Corpus, open_knowledge_base
from benchmarks.harvest.crawler import CrawlResult, run_crawler
from strongroom.server.app import App
from strongroom.server.settings.guard import CollectiveLimits, GuardSettings, Limits

pytestmark = pytest.mark.model

PASSAGES = 1500
TEN_PERCENT = PASSAGES // 10
SCALED = GuardSettings(
    limits=Limits(
        soft_chunks=60,
        hard_chunks=120,
        novelty_calls=6,
        novelty_min_chunks=40,
        soft_delay_s=0.0,
        new_share=1.0,
    ),
    collective=CollectiveLimits(share=0.25, min_chunks=0),
)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[tuple[App, Corpus]]:  # type: ignore[no-untyped-def]
    app, corpus = open_knowledge_base(tmp_path_factory.mktemp("harvest"), PASSAGES, embedder=embedder)
    assert sum(app.knowledge.source_sizes().values()) == PASSAGES
    yield app, corpus
    app.close()


@pytest.fixture
def rig(indexed: tuple[App, Corpus], tmp_path: Path) -> Rig:
    """A fresh guard with the scaled limits (the crawlers')."""
    return make_rig(indexed[0], tmp_path / "guard", SCALED)


def assert_refusals_audited(rig: Rig, result: CrawlResult) -> None:
    records = [r for r in rig.audit.all() if r.principal.startswith("crawler")]
    assert len(records) == result.calls
    refused = [r for r in records if r.outcome == "refused"]
    assert len(refused) == result.refused > 0
    assert all(r.events for r in refused), "every refusal carries the guard event that caused it"
    assert all(not r.chunk_ids for r in refused), "a refused call hands out nothing"
    verified = rig.audit.verify()
    assert verified.ok, verified.problem
    assert verified.records == result.calls


def test_benign_replay_is_never_refused_under_the_defaults(
    indexed: tuple[App, Corpus], tmp_path: Path
) -> None:
    app, corpus = indexed
    rig = make_rig(app, tmp_path / "guard", GuardSettings())
    result = anyio.run(lambda: run_benign(rig, corpus))
    assert result.refused == 0, result.refusals
    assert result.questions == 200 and result.calls >= 400
    assert result.distinct_passages > 0
    per_principal = {
        k: v for k, v in result.limits.items() if k not in ("collective", "passages_vs_new_principal_budget")
    }
    assert max(p["share"] for p in per_principal.values()) < 0.75, per_principal
    assert result.audit["outcomes"] == {"ok": result.calls}
    assert result.audit["verify_ok"]


def test_greedy_crawler_is_refused_before_ten_percent_and_stays_capped(rig: Rig) -> None:
    result = anyio.run(lambda: run_crawler(rig, variant="greedy", calls_after_stop=40))
    assert result.first_refusal_call is not None
    assert result.passages_at_first_refusal < TEN_PERCENT
    assert result.first_refusal_limit == "novelty", result.first_refusal_text
    assert "harvesting pattern" in (result.first_refusal_text or "")
    assert result.calls_after_stop == 40
    assert result.final_passages <= SCALED.limits.hard_chunks < TEN_PERCENT
    assert result.audit["events"].get("crawler_pattern", 0) >= 1
    assert_refusals_audited(rig, result)


def test_diluting_crawler_gets_past_novelty_only_to_meet_the_budget(rig: Rig) -> None:
    result = anyio.run(lambda: run_crawler(rig, variant="diluting", calls_after_stop=40))
    # Refused for novelty first, it pads with repeats (nothing new: allowed, and its novelty falls)...
    assert result.first_refusal_limit == "novelty", result.first_refusal_text
    assert result.passages_at_stop > result.passages_at_first_refusal
    # ...and is stopped by the budget, short of 10%, for good.
    assert result.stop_limit in ("hard budget", "source budget"), result.refusal_texts
    assert result.final_passages <= SCALED.limits.hard_chunks < TEN_PERCENT
    assert result.audit["events"].get("budget_exceeded", 0) >= 1
    assert_refusals_audited(rig, result)


def test_many_identities_are_stopped_together_by_the_collective_pool(rig: Rig) -> None:
    result = anyio.run(lambda: run_crawler(rig, variant="many identities", identities=6, calls_after_stop=40))
    cap = int(0.25 * PASSAGES)
    assert result.stop_limit == "collective pool", result.refusal_texts
    assert result.final_passages <= cap + 20  # the call that fills the pool is served
    assert result.max_passages_one_identity <= SCALED.limits.hard_chunks
    assert result.audit["events"].get("collective_budget_exceeded", 0) >= 1
    assert rig.ledger.collective_chunks(rig.clock() - 24 * 3600) == result.final_passages
    assert_refusals_audited(rig, result)


def test_colleagues_side_by_side_and_after_an_attack_are_never_refused(
    indexed: tuple[App, Corpus], tmp_path: Path
) -> None:
    from benchmarks.harvest.benign import build_cases

    app, corpus = indexed
    rig = make_rig(
        app, tmp_path / "guard", GuardSettings(collective=CollectiveLimits(share=0.1, min_chunks=0))
    )
    colleagues = [f"colleague-{i}" for i in range(4)]

    async def scenario() -> tuple[CrawlResult, list[int]]:
        for name in colleagues[:2]:  # two first seen four days ago
            async with rig.client(name) as client:
                await client.call_tool("list_sources", {})
        rig.clock.advance(4 * 86400)
        attack = await run_crawler(rig, variant="many identities", identities=4, prefix="intruder")
        cases = build_cases(corpus, 20, seed=5, count=len(colleagues))
        runs = await asyncio.gather(
            *(
                run_benign(rig, corpus, principal=n, cases=[c], pace_s=0.25)
                for n, c in zip(colleagues, cases, strict=True)
            )
        )
        return attack, [r.refused for r in runs]

    attack, refused = anyio.run(scenario)
    assert attack.stop_limit == "collective pool", attack.refusal_texts
    assert refused == [0, 0, 0, 0]  # two established, two new but working a topic each
