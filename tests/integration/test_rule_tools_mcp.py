"""Rule tools and check_answer through a real MCP client (in process), including reload."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import anyio
import pytest
from mcp import Client
from mcp.server import MCPServer
from mcp.types import ToolListChangedNotification

from strongroom.server.app import build_app
from strongroom.server.embedder import Embedder
from strongroom.server.guard.access import Caller
from strongroom.server.mcp_app.app import build_server
from strongroom.server.settings import load_settings
from tests.integration.mcp_helpers import error_text, read_whole, structured
from tests.rules_support import EXAMPLE_TODAY

pytestmark = pytest.mark.model

EXTRA_RULE_SET = """
  gift_card_expiry:
    description: Decide whether a gift card bought on a date is still valid.
    parameters:
      bought_on: {type: date, description: The day the card was bought.}
      amount: {type: number, min: 0, max: 500}
    rules:
      - id: within_five_years
        expression: today <= add_years(bought_on, 5)
        pass_reason: "Valid until {add_years(bought_on, 5)}."
        fail_reason: "Expired on {add_years(bought_on, 5)}."
"""


@pytest.fixture
def acme(fresh_example: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private copy of the synced example (its rules file gets edited)."""
    monkeypatch.setenv("STRONGROOM_RULES__TODAY", EXAMPLE_TODAY)
    monkeypatch.setenv("STRONGROOM_RULES__RELOAD_INTERVAL", "0.2")
    yield fresh_example


def make_server(config: Path, embedder: Embedder) -> MCPServer[Any]:
    return build_server(build_app(load_settings(config), embedder=embedder), Caller("local", "stdio"))


async def tool_names(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools(cache_mode="bypass")).tools}


def test_one_typed_read_only_tool_per_rule_set(acme: Path, embedder: Embedder) -> None:
    server = make_server(acme, embedder)

    async def session() -> None:
        async with Client(server) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert {"refund_eligibility", "warranty_claim", "shipping_charge", "check_answer"} <= set(tools)
            refund = tools["refund_eligibility"]
            assert refund.annotations is not None and refund.annotations.read_only_hint
            schema = refund.input_schema
            assert schema["required"] == ["order_id"]
            assert schema["properties"]["order_id"]["pattern"] == "^[0-9]{4,8}$"
            assert schema["properties"]["opened"] == {
                "default": False,
                "description": "Has the item been opened, unpacked or (for a tent) taken out of its stuff sack or pitched?",
                "title": "Opened",
                "type": "boolean",
            }
            assert schema["properties"]["reason"]["enum"] == ["changed_mind", "defective", "wrong_item"]
            assert tools["shipping_charge"].input_schema["properties"]["order_value"]["minimum"] == 0
            assert refund.output_schema is not None
            assert {"decision", "rules", "facts", "decision_id"} <= set(refund.output_schema["properties"])

            decision = structured(
                await client.call_tool("refund_eligibility", {"order_id": "4471", "opened": True})
            )
            assert decision["decision"] == "approved"
            assert {v["name"]: v["value"] for v in decision["values"]}["refund_amount"] == 279.65
            citation = decision["rules"][-1]["citation"]
            window = structured(
                await client.call_tool(
                    "read_document", {"document_id": citation["document_id"], "offset": citation["offset"]}
                )
            )
            assert window["text"].startswith("## 2. Return windows")  # the citation resolves

            not_found = structured(await client.call_tool("refund_eligibility", {"order_id": "1234"}))
            assert not_found["decision"] == "not_found"

            bad = await client.call_tool("refund_eligibility", {"order_id": "12ab"})
            assert bad.is_error and "order_id" in error_text(bad)
            missing = await client.call_tool("warranty_claim", {})
            assert missing.is_error and "order_id" in error_text(missing)

    anyio.run(session)


def test_rules_compiled_after_the_handshake_are_listed_and_decide(acme: Path, embedder: Embedder) -> None:
    """As `serve` runs over stdio: the rules compile once the client has its `initialize`
    answer, and the tool list and calls wait for them."""
    app = build_app(load_settings(acme), embedder=embedder)
    stopped: list[Exception] = []

    def stop(error: Exception) -> NoReturn:
        stopped.append(error)
        raise AssertionError(f"the example's rules file is not broken: {error}")

    server = build_server(app, Caller("local", "stdio"), rules_after_handshake=stop)
    assert "rules" not in app.__dict__  # not compiled while the server is built

    async def session() -> None:
        async with Client(server) as client:
            assert {"refund_eligibility", "warranty_claim", "shipping_charge"} <= await tool_names(client)
            decision = structured(
                await client.call_tool("refund_eligibility", {"order_id": "4471", "opened": True})
            )
            assert decision["decision"] == "approved"

    anyio.run(session)
    assert stopped == []


def test_an_evaluation_error_is_a_tool_error_naming_rule_and_field(acme: Path, embedder: Embedder) -> None:
    rules = acme.parent / "rules.yaml"
    rules.write_text(
        rules.read_text().replace(
            "expression: \"order.category != 'ski_boots'\"", 'expression: "order.sku > 3"'
        )
    )
    server = make_server(acme, embedder)

    async def session() -> None:
        async with Client(server) as client:
            result = await client.call_tool("refund_eligibility", {"order_id": "4471"})
            assert result.is_error
            text = error_text(result)
            assert "rule 'returnable_category'" in text and "order.sku = 'BC2-TNT-GRN' (string)" in text

    anyio.run(session)


def test_check_answer_knows_what_this_session_retrieved(acme: Path, embedder: Embedder) -> None:
    server = make_server(acme, embedder)

    async def session() -> None:
        async with Client(server) as client:
            hits = structured(await client.call_tool("search", {"query": "return window for tents", "k": 3}))
            first = hits["results"][0]
            assert first["document_id"] == "handbook/refund-policy.md"
            draft = "Tents can be returned within 30 days; opened tents carry a 15% restocking fee."
            unseen = "handbook/refund-policy.md#" + first["id"].split("#")[1].rsplit("-", 1)[0] + "-8"
            result = structured(
                await client.call_tool("check_answer", {"draft": draft, "citations": [unseen]})
            )
            assert result["not_retrieved"] == [unseen] and not result["passed"]
            decision = structured(
                await client.call_tool("refund_eligibility", {"order_id": "4471", "opened": True})
            )
            # A decision cites its passages by id only: they are evidence once read whole (a
            # verdict on an unread passage would tell what it says), and the decision itself is.
            cited = sorted(
                {c["citation"]["chunk_id"] for c in decision["rules"] + decision["values"] if c["citation"]}
            )
            unread = structured(await client.call_tool("check_answer", {"draft": draft, "citations": cited}))
            assert set(unread["not_retrieved"]) <= set(cited) and not unread["passed"]
            await read_whole(client, cited)
            money = structured(
                await client.call_tool("search", {"query": "how card refunds come back", "k": 2})
            )
            money_id = next(h["id"] for h in money["results"] if "original card" in h["text"])
            result = structured(
                await client.call_tool(
                    "check_answer",
                    {
                        "draft": draft
                        + " Order 4471 is within the window and gets 279.65 back on the original card.",
                        "citations": [*cited, money_id, decision["decision_id"]],
                    },
                )
            )
            assert result["not_retrieved"] == [] and result["unknown_citations"] == []
            assert result["passed"], result["sentences"]

    anyio.run(session)


def test_a_changed_rules_file_changes_the_tools_and_tells_clients(
    acme: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    rules = acme.parent / "rules.yaml"
    original = rules.read_text()
    server = make_server(acme, embedder)
    legacy_heard: list[ToolListChangedNotification] = []

    async def on_message(message: object) -> None:
        if isinstance(message, ToolListChangedNotification):
            legacy_heard.append(message)

    async def session() -> None:
        async with (
            Client(server) as client,
            Client(server, mode="legacy", message_handler=on_message) as legacy,  # type: ignore[arg-type]
        ):
            assert legacy.session.initialize_result is not None
            caps = legacy.session.initialize_result.capabilities
            assert caps.tools is not None and caps.tools.list_changed
            assert "gift_card_expiry" not in await tool_names(client)
            async with client.listen(tools_list_changed=True) as events:
                rules.write_text(original.replace("\nrule_sets:\n", "\nrule_sets:\n" + EXTRA_RULE_SET, 1))
                with anyio.fail_after(30):
                    async for _ in events:
                        break
            tools = {t.name: t for t in (await client.list_tools(cache_mode="bypass")).tools}
            assert "gift_card_expiry" in tools
            props = tools["gift_card_expiry"].input_schema["properties"]
            assert props["bought_on"]["format"] == "date" and props["amount"]["maximum"] == 500
            valid = structured(
                await client.call_tool("gift_card_expiry", {"bought_on": "2021-01-05", "amount": 25})
            )
            assert (
                valid["decision"] == "approved" and valid["rules"][0]["reason"] == "Valid until 2026-01-05."
            )
            with anyio.fail_after(10):
                while not legacy_heard:
                    await anyio.sleep(0.05)
            assert "gift_card_expiry" in await tool_names(legacy)

            # A broken file keeps the tools that work, and says why on stderr.
            with caplog.at_level(logging.ERROR, logger="strongroom.rules"):
                rules.write_text(rules.read_text().replace("today <= add_years(bought_on, 5)", "today <="))
                with anyio.fail_after(30):
                    while not any("keeping the previous rules" in r.message for r in caplog.records):
                        await anyio.sleep(0.05)
            assert any("syntax error" in r.message for r in caplog.records)
            assert "gift_card_expiry" in await tool_names(client)
            still = structured(
                await client.call_tool("gift_card_expiry", {"bought_on": "2019-01-05", "amount": 5})
            )
            assert still["decision"] == "denied"

            # Removing the rule set removes its tool.
            rules.write_text(original)
            with anyio.fail_after(30):
                while "gift_card_expiry" in await tool_names(client):
                    await anyio.sleep(0.1)

    anyio.run(session)


def test_check_answer_judges_what_a_sentence_claims(acme: Path, embedder: Embedder) -> None:
    """Topic words shared with a passage are not support: every claim must be stated there."""
    server = make_server(acme, embedder)

    async def session() -> None:
        async with Client(server) as client:
            hits = structured(
                await client.call_tool("search", {"query": "making a warranty claim photos", "k": 3})
            )
            claim = next(h for h in hits["results"] if "Making a claim" in h["text"])
            draft = (
                "A technician decides within 5 working days of receipt whether the fault is covered. "
                "Claims reported by phone are settled on the same day. "
                "The associate does not take photos of the item. "
                "The associate takes four photos of the item."
            )
            result = structured(
                await client.call_tool("check_answer", {"draft": draft, "citations": [claim["id"]]})
            )
            supported, invented, negated, number = result["sentences"]
            assert supported["status"] == "supported", supported
            assert invented["status"] == "unsupported" and "phone" in invented["missing_terms"], invented
            assert negated["status"] == "unsupported" and negated["contradicts"], negated
            assert "says the opposite" in negated["reason"]
            assert number["status"] == "unsupported" and number["missing_numbers"] == ["4"], number
            assert not result["passed"]

    anyio.run(session)


def test_check_answer_judges_who_acts_and_the_bounds_of_figures(acme: Path, embedder: Embedder) -> None:
    """A sentence made of the passage's own words is not supported when it swaps who acts or a
    figure's bound; a model's answer cites per sentence with [n] references to its citations."""
    server = make_server(acme, embedder)

    async def session() -> None:
        async with Client(server) as client:
            hits = structured(
                await client.call_tool("search", {"query": "kayak oversize freight delivery slot"})
            )
            oversized = next(h["id"] for h in hits["results"] if "delivery slot" in h["text"])
            hits = structured(
                await client.call_tool("search", {"query": "express overnight delivery prices"})
            )
            prices = next(h["id"] for h in hits["results"] if "Overnight" in h["text"])
            await read_whole(client, [oversized, prices])
            draft = (
                "Express delivery takes 2 business days and costs $18 [1]. "
                "Standard ground shipping is free on orders under $75 [1]. "
                "The customer calls the carrier to book a delivery slot [2]. "
                "The carrier calls the customer to book a delivery slot [2]."
            )
            arguments = {"draft": draft, "citations": [prices, oversized]}
            result = structured(await client.call_tool("check_answer", arguments))
            express, bound, swapped, faithful = result["sentences"]
            assert express["status"] == "supported" and express["citation"] == prices, express
            assert bound["status"] == "unsupported", bound
            assert bound["conflicts"] == ["at most $75: the cited statement says at least $75"], bound
            assert swapped["status"] == "unsupported" and swapped["citation"] == oversized, swapped
            assert "carrier calls" in swapped["conflicts"][0], swapped
            assert faithful["status"] == "supported", faithful
            assert not result["passed"] and len(result["fix"]) == 2

    anyio.run(session)
