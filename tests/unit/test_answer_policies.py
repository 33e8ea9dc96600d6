"""Answer policies and the text pieces check_answer works with (no model needed)."""

from __future__ import annotations

import pytest

from strongroom.server.answers.text import content_words, numbers, split_sentences
from strongroom.server.rules.model import AnswerPoliciesSpec
from strongroom.server.rules.policies import AnswerPolicies, compile_policies, luhn_ok

SPEC = AnswerPoliciesSpec.model_validate(
    {
        "forbidden": [{"id": "no_guarantees", "pattern": r"\bguarantee[ds]?\b", "message": "No promises."}],
        "required": [
            {
                "id": "tent_fee",
                "when": [r"\btents?\b", r"\b(return|refund)"],
                "require_any": ["restocking fee"],
                "message": "Mention the restocking fee.",
            }
        ],
        "personal_data": {"allow": [r"@acmeoutfitters\.example$"]},
    }
)


@pytest.fixture(scope="module")
def policies() -> AnswerPolicies:
    compiled, errors = compile_policies(SPEC)
    assert errors == []
    return compiled


def kinds(policies: AnswerPolicies, text: str) -> list[tuple[str, str]]:
    return [(v.kind, v.policy) for v in policies.check(text)]


def test_forbidden_patterns(policies: AnswerPolicies) -> None:
    assert kinds(policies, "We Guarantee it.") == [("forbidden", "no_guarantees")]
    assert kinds(policies, "Guaranteed delivery.") == [("forbidden", "no_guarantees")]
    assert kinds(policies, "Our guarantor is fine.") == []


def test_required_statements_when_a_topic_is_mentioned(policies: AnswerPolicies) -> None:
    assert kinds(policies, "You can return the tent within 30 days.") == [("required", "tent_fee")]
    assert kinds(policies, "You can return the tent; a 15% restocking fee applies if opened.") == []
    assert kinds(policies, "Tents are great.") == []  # the topic needs both patterns
    assert kinds(policies, "You can return the jacket.") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Write to dana.whitfield@example.com.", [("personal_data", "email")]),
        ("Write to warranty@acmeoutfitters.example.", []),  # allowed: the company's own address
        ("Call 541-555-0142 or (775) 555-0188.", [("personal_data", "phone"), ("personal_data", "phone")]),
        ("Call +1 541 555 0142.", [("personal_data", "phone")]),
        ("Card 4111 1111 1111 1111 was charged.", [("personal_data", "card")]),
        ("Card 4111-1111-1111-1112 was charged.", []),  # fails the Luhn check: not a card number
        ("Order 4471 for $329.00 on 2025-02-28, refund 279.65 within 5 business days.", []),
    ],
)
def test_personal_data(policies: AnswerPolicies, text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(policies, text) == expected


def test_personal_data_is_masked_and_placed_in_its_sentence(policies: AnswerPolicies) -> None:
    text = "Thanks for asking. Your card 4111 1111 1111 1111 and dana.whitfield@example.com are on file."
    spans = [(s.start, s.end) for s in split_sentences(text)]
    found = policies.check(text, spans)
    assert [(v.policy, v.excerpt, v.sentence) for v in found] == [
        ("email", "d***@example.com", 1),
        ("card", "************1111", 1),
    ]


def test_detectors_can_be_switched_off() -> None:
    spec = AnswerPoliciesSpec.model_validate({"personal_data": {"detect": ["card"]}})
    compiled, _ = compile_policies(spec)
    assert [v.policy for v in compiled.check("a@b.example, 541-555-0142, 4111 1111 1111 1111")] == ["card"]


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112")


def test_sentences_join_wrapped_lines_and_keep_items_apart() -> None:
    text = (
        "# Heading 1. Two\n\nTents that have been\npitched are charged a **15% fee**. Our "
        "Gear Care Center, e.g. in Boise, re-folds them.\n\n- first item\n  wraps here\n"
        "- second item\n| a | 30 days |\n|---|---|\n"
    )
    assert [s.text for s in split_sentences(text)] == [
        "Heading 1. Two",
        "Tents that have been pitched are charged a 15% fee.",
        "Our Gear Care Center, e.g. in Boise, re-folds them.",
        "first item wraps here",
        "second item",
        "| a | 30 days |",
    ]
    for span in split_sentences(text):
        assert text[span.start : span.end].replace("\n", " ").replace("**", "").startswith(span.text[:5])


def test_numbers_and_words() -> None:
    assert numbers("within thirty days, a 15% fee, $1,250.00 and 6.95") == {"30", "15", "1250", "6.95"}
    assert numbers("One account per person") == set()  # "one" is not a quantity here
    assert content_words("Returned items are refunded") == ["return", "item", "refund"]
