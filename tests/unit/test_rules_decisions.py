"""Decisions of the example company's rule sets, with a pinned clock, and evaluation errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from strongroom.server.rules import RuleBook, RuleDecision, RuleEvaluationError, load_rulebook
from strongroom.server.rules.params import arguments_model
from strongroom.server.settings import Settings, load_settings
from strongroom.server.store.catalog import Catalog
from tests.rules_support import copy_example, example_index, fixed_clock, index_without_vectors


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Catalog, RuleBook]:
    settings, catalog = example_index(tmp_path_factory.mktemp("acme"))
    assert settings.rules.file is not None
    book = load_rulebook(
        settings.resolve(settings.rules.file), catalog, [s.name for s in settings.all_sources()]
    )
    return settings, catalog, book


def decide(
    acme: tuple[Settings, Catalog, RuleBook], rule_set: str, today: str, **arguments: Any
) -> RuleDecision:
    _, catalog, book = acme
    compiled = book.rule_sets[rule_set]
    validated = arguments_model(rule_set, compiled.parameters).model_validate(arguments).model_dump()
    return compiled.evaluate(validated, catalog, clock=lambda: fixed_clock(today))


CASES = [
    # rule set, arguments, today, decision, rules that failed
    ("refund_eligibility", {"order_id": "4471", "opened": True}, "2025-03-20", "approved", []),
    (
        "refund_eligibility",
        {"order_id": "4484"},
        "2025-03-20",
        "approved",
        [],
    ),  # delivered 02-18: day 30 of 30
    ("refund_eligibility", {"order_id": "4485"}, "2025-03-20", "denied", ["within_return_window"]),  # day 31
    ("refund_eligibility", {"order_id": "4483"}, "2025-03-24", "approved", []),  # electronics: day 14 of 14
    ("refund_eligibility", {"order_id": "4483"}, "2025-03-25", "denied", ["within_return_window"]),
    (
        "refund_eligibility",
        {"order_id": "4472"},
        "2025-03-15",
        "approved",
        [],
    ),  # in store: from the receipt date
    ("refund_eligibility", {"order_id": "4472"}, "2025-03-16", "denied", ["within_return_window"]),
    ("refund_eligibility", {"order_id": "4473"}, "2025-03-20", "denied", ["not_final_sale"]),
    ("refund_eligibility", {"order_id": "4481"}, "2025-03-20", "denied", ["returnable_category"]),
    (
        "refund_eligibility",
        {"order_id": "4482", "opened": True},
        "2025-03-20",
        "denied",
        ["hygiene_unopened"],
    ),
    ("refund_eligibility", {"order_id": "4482"}, "2025-03-20", "approved", []),
    ("refund_eligibility", {"order_id": "9999"}, "2025-03-20", "not_found", []),
    ("warranty_claim", {"order_id": "4474"}, "2025-06-10", "covered", []),  # 24 months: the last day
    ("warranty_claim", {"order_id": "4474"}, "2025-06-11", "not_covered", ["within_coverage"]),
    ("warranty_claim", {"order_id": "4476"}, "2031-01-01", "covered", []),  # Summit: lifetime
    (
        "warranty_claim",
        {"order_id": "4477"},
        "2025-03-20",
        "not_covered",
        ["acme_brand", "covered_product_line"],
    ),
    (
        "warranty_claim",
        {"order_id": "4478", "cause": "wear_and_tear"},
        "2025-03-20",
        "not_covered",
        ["covered_cause"],
    ),
    (
        "warranty_claim",
        {"order_id": "4479", "part": "locking_mechanism"},
        "2025-03-20",
        "not_covered",
        ["within_coverage"],
    ),
    ("warranty_claim", {"order_id": "4479"}, "2025-03-20", "covered", []),
    (
        "warranty_claim",
        {"order_id": "4474", "original_purchaser": False},
        "2025-03-20",
        "not_covered",
        ["original_purchaser"],
    ),
    (
        "shipping_charge",
        {"customer_id": "C-1001", "order_value": 20, "option": "express"},
        "2025-03-20",
        "free",
        [],
    ),
    (
        "shipping_charge",
        {"customer_id": "C-1003", "order_value": 75, "option": "standard"},
        "2025-03-20",
        "charged",
        [],
    ),
    (
        "shipping_charge",
        {"customer_id": "C-1003", "order_value": 75.01, "option": "standard"},
        "2025-03-20",
        "free",
        [],
    ),
    (
        "shipping_charge",
        {
            "customer_id": "C-1003",
            "order_value": 80,
            "option": "overnight",
            "destination": "alaska_hawaii_puerto_rico",
        },
        "2025-03-20",
        "not_available",
        [],
    ),
    (
        "shipping_charge",
        {"customer_id": "C-9999", "order_value": 1, "option": "standard"},
        "2025-03-20",
        "not_found",
        [],
    ),
]


@pytest.mark.parametrize(("rule_set", "arguments", "today", "decision", "failed"), CASES)
def test_decisions(
    acme: tuple[Settings, Catalog, RuleBook],
    rule_set: str,
    arguments: dict[str, Any],
    today: str,
    decision: str,
    failed: list[str],
) -> None:
    result = decide(acme, rule_set, today, **arguments)
    assert result.decision == decision, result.summary
    if rule_set != "shipping_charge":
        assert [r.id for r in result.rules if r.passed is False] == failed
    assert result.summary.startswith(decision + ":")
    for r in result.rules:
        assert r.reason and "{" not in r.reason


def test_today_is_the_business_days_date(acme: tuple[Settings, Catalog, RuleBook]) -> None:
    # Order 4485 was delivered on 17 February; the rules' time zone is Los Angeles.
    late_evening_in_la = decide(acme, "refund_eligibility", "2025-03-20T06:30:00+00:00", order_id="4485")
    assert late_evening_in_la.decision == "approved"  # still 19 March there: day 30
    after_midnight_in_la = decide(acme, "refund_eligibility", "2025-03-20T08:00:00+00:00", order_id="4485")
    assert after_midnight_in_la.decision == "denied"


def test_a_decision_shows_reasons_citations_values_and_only_the_facts_read(
    acme: tuple[Settings, Catalog, RuleBook],
) -> None:
    result = decide(acme, "refund_eligibility", "2025-03-20", order_id="4471", opened=True)
    window = next(r for r in result.rules if r.id == "within_return_window")
    assert window.passed is True
    assert window.reason == "16 days since 2025-03-04: within the 30-day return window for tents."
    assert window.citation is not None
    assert window.citation.document_id == "handbook/refund-policy.md"
    assert window.citation.heading == "2. Return windows"
    _, catalog, _ = acme
    doc = catalog.document("handbook/refund-policy.md")
    assert doc is not None and window.citation.offset is not None
    assert doc.text[window.citation.offset :].startswith("## 2. Return windows")
    assert window.citation.chunk_id in catalog.chunks([window.citation.chunk_id or ""])
    hygiene = next(r for r in result.rules if r.id == "hygiene_unopened")
    assert hygiene.passed is None and "does not apply" in hygiene.reason
    values = {v.name: v.value for v in result.values}
    assert values == {
        "window_starts": "2025-03-04",
        "days_elapsed": 16,
        "window_days": 30,
        "restocking_fee_percent": 15,
        "refund_amount": 279.65,
    }
    assert result.facts["order"] == {
        "category": "tents",
        "channel": "online",
        "delivered_on": "2025-03-04",
        "last_call": False,
        "order_date": "2025-02-28",
        "product": "Basecamp 2 Tent",
        "total": 329,
    }
    assert result.facts["order_id"] == "4471" and result.facts["today"] == "2025-03-20"
    assert "sku" not in result.facts["order"] and "payment" not in result.facts["order"]
    assert result.decision_id.startswith("decision:refund_eligibility:")
    json.loads(result.model_dump_json())  # JSON all the way down
    # The guard counts the record a decision read, and the passages it cites (by id, no text).
    served, *cited = result.exposure()
    assert served.document_id == "orders/4471" and served.source == "orders" and served.chars > 0
    citing = [*result.rules, *result.values]
    assert {c.chunk_id for c in cited} == {r.citation.chunk_id for r in citing if r.citation}
    assert all(c.chars == 0 and c.source == "handbook" for c in cited)


def test_a_caller_who_may_not_see_the_records_gets_the_decision_without_them(
    acme: tuple[Settings, Catalog, RuleBook],
) -> None:
    _, catalog, book = acme
    compiled = book.rule_sets["refund_eligibility"]
    result = compiled.evaluate(
        {"order_id": "4471", "opened": False, "reason": "changed_mind"},
        catalog,
        clock=lambda: fixed_clock("2025-03-20"),
        visible=lambda source: source not in ("handbook", "orders"),
    )
    assert result.decision == "approved"
    assert "order" not in result.facts and result.withheld_facts == ["order"]
    assert all(r.citation is None for r in result.rules)
    # The record it read still counts against the caller; no passage was handed out.
    assert [s.document_id for s in result.exposure()] == ["orders/4471"]


def test_not_found_names_the_missing_record(acme: tuple[Settings, Catalog, RuleBook]) -> None:
    result = decide(acme, "refund_eligibility", "2025-03-20", order_id="9999")
    assert (
        result.summary
        == "not_found: There is no order 9999: check the number on the receipt or confirmation email."
    )
    assert all(r.passed is None for r in result.rules)
    assert result.facts == {"order_id": "9999"}


# -- evaluation errors name the rule and the field --------------------------------------------

TRICKY_CSV = """return_id,order_id,received,amount
R1,4471,2025-03-18,279.65
R2,4472,,49.95
R3,4473,2025-03-19,n/a
"""
CLAIMS_JSONL = '{"claim_id": "K1", "photos": 3, "adjuster": "Ortiz"}\n{"claim_id": "K2", "adjuster": " "}\n'


@pytest.fixture(scope="module")
def tricky(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Catalog]:
    root = tmp_path_factory.mktemp("tricky")
    config = copy_example(root)
    (root / "data" / "returns.csv").write_text(TRICKY_CSV)
    (root / "data" / "claims.jsonl").write_text(CLAIMS_JSONL)
    with config.open("a") as f:
        f.write(
            '\n[[sources]]\nname = "returns"\nconnector = "records"\npath = "data/returns.csv"\n'
            'key = "return_id"\ntypes = { received = "str", amount = "str" }\n'
            '\n[[sources]]\nname = "claims"\nconnector = "records"\npath = "data/claims.jsonl"\nkey = "claim_id"\n'
        )
    settings = load_settings(config)
    return settings, index_without_vectors(settings)


def _book(tricky: tuple[Settings, Catalog], tmp_path: Path, yaml_text: str) -> RuleBook:
    settings, catalog = tricky
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(yaml_text))
    return load_rulebook(path, catalog, [s.name for s in settings.all_sources()])


def _evaluate(tricky: tuple[Settings, Catalog], book: RuleBook, **arguments: Any) -> RuleDecision:
    return book.rule_sets["check"].evaluate(arguments, tricky[1], clock=lambda: fixed_clock("2025-03-20"))


RETURNS_RULES = """
rule_sets:
  check:
    description: test
    parameters: {return_id: string}
    facts:
      ret: {source: returns, key: "{return_id}"%s}
    rules:
      - id: recent
        expression: days_since(ret.received) <= 30
        pass_reason: recent
        fail_reason: old
      - id: small
        expression: ret.amount < 500
        pass_reason: small
        fail_reason: large
"""


def test_a_date_left_as_text_is_named_with_the_fix(tricky: tuple[Settings, Catalog], tmp_path: Path) -> None:
    book = _book(tricky, tmp_path, RETURNS_RULES % "")
    with pytest.raises(RuleEvaluationError) as err:
        _evaluate(tricky, book, return_id="R1")
    message = str(err.value)
    assert (
        "check: rule 'recent' could not be evaluated: days_since() needs a date, got str '2025-03-18';"
        in message
    )
    assert "ret.received is the text '2025-03-18', not a date" in message
    assert "fields: {received: date}" in message


def test_declared_types_convert_text_and_name_bad_values(
    tricky: tuple[Settings, Catalog], tmp_path: Path
) -> None:
    book = _book(tricky, tmp_path, RETURNS_RULES % ", fields: {received: date, amount: number}")
    assert _evaluate(tricky, book, return_id="R1").decision == "approved"
    with pytest.raises(RuleEvaluationError) as err:
        _evaluate(tricky, book, return_id="R2")  # received is empty
    assert "rule 'recent'" in str(err.value) and "ret.received is empty (null)" in str(err.value)
    with pytest.raises(RuleEvaluationError) as err:
        _evaluate(tricky, book, return_id="R3")  # amount is "n/a"
    message = str(err.value)
    assert (
        "ret.amount in returns record 'R3' is declared number" in message
        and "'n/a'" in message
        and "rule 'small'" in message
    )


def test_a_missing_field_is_named(tricky: tuple[Settings, Catalog], tmp_path: Path) -> None:
    book = _book(
        tricky,
        tmp_path,
        """
        rule_sets:
          check:
            description: test
            parameters: {claim_id: string}
            facts:
              claim: {source: claims, key: "{claim_id}"}
            rules:
              - id: enough_photos
                expression: claim.photos >= 3
                pass_reason: ok
                fail_reason: "needs three photos, got {claim.photos}"
        """,
    )
    assert _evaluate(tricky, book, claim_id="K1").decision == "approved"
    with pytest.raises(RuleEvaluationError) as err:
        _evaluate(tricky, book, claim_id="K2")
    assert "rule 'enough_photos'" in str(err.value)
    assert "field claim.photos does not exist in claims record 'K2'" in str(err.value)
    assert "has(claim.photos)" in str(err.value)


def test_an_empty_text_cell_is_null_unless_required(tricky: tuple[Settings, Catalog], tmp_path: Path) -> None:
    rules = """
        rule_sets:
          check:
            description: test
            parameters: {claim_id: string}
            facts:
              claim: {source: claims, key: "{claim_id}", fields: {adjuster: %s}}
            rules:
              - {id: assigned, expression: claim.adjuster != null, pass_reason: a, fail_reason: b}
        """
    book = _book(tricky, tmp_path, rules % "string")
    assert _evaluate(tricky, book, claim_id="K1").decision == "approved"
    unassigned = _evaluate(tricky, book, claim_id="K2")  # a blank adjuster is null, as for other types
    assert unassigned.decision == "denied" and unassigned.facts["claim"] == {"adjuster": None}
    required = _book(tricky, tmp_path, rules % "{type: string, required: true}")
    with pytest.raises(
        RuleEvaluationError, match=r"claim\.adjuster is required but empty in claims record 'K2'"
    ):
        _evaluate(tricky, required, claim_id="K2")


def test_a_rule_must_be_true_or_false(tricky: tuple[Settings, Catalog], tmp_path: Path) -> None:
    book = _book(
        tricky,
        tmp_path,
        """
        rule_sets:
          check:
            description: test
            parameters: {return_id: string}
            facts:
              ret: {source: returns, key: "{return_id}"}
            rules:
              - {id: amount, expression: ret.amount, pass_reason: a, fail_reason: b}
        """,
    )
    with pytest.raises(RuleEvaluationError, match=r"rule 'amount': its expression must be true or false"):
        _evaluate(tricky, book, return_id="R1")


def test_combinations_any_and_first(tricky: tuple[Settings, Catalog], tmp_path: Path) -> None:
    book = _book(
        tricky,
        tmp_path,
        """
        rule_sets:
          check:
            description: test
            parameters: {n: integer}
            combine: first
            outcomes: {fail: small}
            rules:
              - {id: huge, expression: n > 100, outcome: huge, pass_reason: "{n} is huge", fail_reason: no}
              - {id: big, expression: n > 10, outcome: big, pass_reason: "{n} is big", fail_reason: no}
              - {id: odd, expression: n > 0, pass_reason: positive, fail_reason: no}
          any_of:
            description: test
            parameters: {n: integer}
            combine: any
            rules:
              - {id: even, expression: "int(n) % 2 == 0", pass_reason: even, fail_reason: odd}
              - {id: big, expression: n > 10, pass_reason: big, fail_reason: small}
        """,
    )
    first = book.rule_sets["check"]
    result = first.evaluate({"n": 50}, tricky[1])
    assert result.decision == "big" and result.summary == "big: 50 is big."
    assert [r.passed for r in result.rules] == [False, True, None]
    assert first.evaluate({"n": 500}, tricky[1]).decision == "huge"
    assert first.evaluate({"n": 5}, tricky[1]).decision == "approved"  # the last rule, default outcome
    assert first.evaluate({"n": -5}, tricky[1]).decision == "small"
    any_of = book.rule_sets["any_of"]
    assert any_of.evaluate({"n": 3}, tricky[1]).decision == "denied"
    assert any_of.evaluate({"n": 4}, tricky[1]).decision == "approved"
    assert any_of.evaluate({"n": 13}, tricky[1]).decision == "approved"
