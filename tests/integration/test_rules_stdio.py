"""End to end over stdio, as Claude Desktop runs it: search → rule tool → check_answer → revise."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.integration.mcp_helpers import read_whole, structured
from tests.rules_support import EXAMPLE_TODAY
from tests.support import ROOT, clean_env

pytestmark = pytest.mark.model


def _params(config: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "strongroom.server", "serve", "--config", str(config)],
        env=clean_env(PYTHONPATH=str(ROOT), STRONGROOM_RULES__TODAY=EXAMPLE_TODAY),
    )


def test_a_client_decides_drafts_checks_and_revises(synced_example: Path) -> None:
    async def session() -> None:
        async with Client(_params(synced_example), read_timeout_seconds=120) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"refund_eligibility", "warranty_claim", "check_answer"} <= tools
            prompts = {p.name for p in (await client.list_prompts()).prompts}
            assert "answer_with_policy" in prompts
            prompt = await client.get_prompt(
                "answer_with_policy", {"question": "Can order 4471 be refunded?"}
            )
            assert "refund_eligibility" in prompt.messages[0].content.text  # type: ignore[union-attr]

            # 1. The policy.
            hits = structured(
                await client.call_tool("search", {"query": "can I return a tent I already pitched?", "k": 4})
            )["results"]
            assert hits[0]["document_id"] == "handbook/refund-policy.md"
            money = structured(
                await client.call_tool("search", {"query": "how does a card refund come back", "k": 2})
            )["results"]
            money_id = next(h["id"] for h in money if "original card" in h["text"])

            # 2. The decision, from the rule tool rather than the model.
            decision = structured(
                await client.call_tool("refund_eligibility", {"order_id": "4471", "opened": True})
            )
            assert decision["decision"] == "approved"
            values = {v["name"]: v["value"] for v in decision["values"]}
            assert values["restocking_fee_percent"] == 15 and values["refund_amount"] == 279.65
            cited_by_rules = sorted(
                {c["citation"]["chunk_id"] for c in decision["rules"] + decision["values"] if c["citation"]}
            )
            citations = [*cited_by_rules, money_id, decision["decision_id"]]
            await read_whole(client, cited_by_rules)  # as the fix list would say: read them first

            # 3. A careless first draft fails, with reasons.
            first = structured(
                await client.call_tool(
                    "check_answer",
                    {
                        "draft": "Yes! Your tent from order 4471 can be returned within 45 days, and we "
                        "guarantee a full refund.",
                        "citations": citations,
                    },
                )
            )
            assert not first["passed"]
            assert any(
                s["status"] == "unsupported" and "45" in s["missing_numbers"] for s in first["sentences"]
            )
            policies = {v["policy"] for v in first["violations"]}
            assert {"no_guarantees", "refund_method", "tent_restocking_fee"} <= policies
            assert first["fix"]

            # 4. The revised draft passes.
            revised = (
                "Order 4471 is eligible for a refund: it was delivered 16 days ago, within the 30-day "
                "return window for tents. Because the tent was opened, a 15% restocking fee applies, so "
                "the refund is $279.65. It goes back to the original card, and the bank normally shows "
                "it within 5 business days."
            )
            second = structured(
                await client.call_tool("check_answer", {"draft": revised, "citations": citations})
            )
            assert second["passed"], second["fix"]
            assert second["not_retrieved"] == [] and second["violations"] == []

    anyio.run(session)
