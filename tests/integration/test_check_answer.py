"""check_answer with the real embedding model over the example company's policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.server.answers.checker import AnswerCheck, AnswerChecker
from strongroom.server.embedder import Embedder
from strongroom.server.rules import RuleBook, RuleDecision, load_rulebook
from strongroom.server.settings import AnswersSettings, Settings
from strongroom.server.store.catalog import Catalog
from tests.rules_support import example_index, fixed_clock

pytestmark = pytest.mark.model


class Acme:
    def __init__(self, settings: Settings, catalog: Catalog, book: RuleBook, checker: AnswerChecker) -> None:
        self.settings, self.catalog, self.book, self.checker = settings, catalog, book, checker
        ids = catalog.chunk_ids("handbook/refund-policy.md")
        self.windows, self.fee, self.money = ids[2], ids[3], ids[5]
        self.decision: RuleDecision = book.rule_sets["refund_eligibility"].evaluate(
            {"order_id": "4471", "opened": True, "reason": "changed_mind"},
            catalog,
            clock=lambda: fixed_clock("2025-03-20"),
        )

    def check(self, draft: str, citations: list[str], **kwargs: object) -> AnswerCheck:
        options: dict[str, object] = {
            "policies": self.book.policies,
            "decisions": {self.decision.decision_id: self.decision},
        }
        options.update(kwargs)
        return self.checker.check(draft, citations, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Acme:
    settings, catalog = example_index(tmp_path_factory.mktemp("acme"))
    assert settings.rules.file is not None
    book = load_rulebook(
        settings.resolve(settings.rules.file), catalog, [s.name for s in settings.all_sources()]
    )
    return Acme(settings, catalog, book, AnswerChecker(AnswersSettings(), embedder, catalog))


GOOD = (
    "Order 4471 is eligible for a refund: it was delivered 16 days ago, within the 30-day return window "
    "for tents. Because the tent was opened, a 15% restocking fee applies, so the refund is $279.65. "
    "The refund goes back to the original card, and the bank normally shows it within 5 business days."
)


def test_a_supported_draft_passes(acme: Acme) -> None:
    result = acme.check(GOOD, [acme.windows, acme.fee, acme.money, acme.decision.decision_id])
    assert result.passed, result.fix
    assert [s.status for s in result.sentences] == ["supported"] * 3
    assert result.sentences[2].citation == acme.money
    assert result.fix == [] and result.summary.startswith("passed")


def test_a_wrong_number_is_unsupported_however_similar_the_sentence(acme: Acme) -> None:
    result = acme.check("Tents can be returned within 45 days of delivery.", [acme.windows])
    (sentence,) = result.sentences
    assert sentence.status == "unsupported" and sentence.missing_numbers == ["45"]
    assert sentence.citation == acme.windows and "30" in sentence.reason
    assert not result.passed and any("45 is not in the cited text" in f for f in result.fix)
    # The same sentence with the policy's figure is supported.
    fixed = acme.check(
        "Tents can be returned within 30 days; opened tents carry a 15% restocking fee.",
        [acme.windows, acme.fee],
    )
    assert fixed.passed, fixed.fix
    # A figure from another cited passage does not support a claim it does not belong to.
    borrowed = acme.check("Tents can be returned within 15 days.", [acme.windows, acme.fee])
    assert borrowed.sentences[0].missing_numbers == ["15"] and not borrowed.passed


@pytest.mark.parametrize(
    "claim",
    [
        "Our stores open at nine every morning and parking is free for members.",
        "Members earn double points on Acme-brand products and can pool points with family.",
    ],
)
def test_a_claim_no_citation_makes_is_unsupported(acme: Acme, claim: str) -> None:
    result = acme.check(claim, [acme.windows, acme.fee])
    assert [s.status for s in result.sentences] == ["unsupported"]
    assert not result.passed


def test_paraphrases_are_supported(acme: Acme) -> None:
    result = acme.check(
        "Electronics such as headlamps can be brought back within 14 days of purchase. "
        "Card payments are refunded to the original card.",
        [acme.windows, acme.money],
    )
    assert result.passed, [s.reason for s in result.sentences]


def test_citations_that_do_not_exist_or_were_not_retrieved(acme: Acme) -> None:
    asked: list[list[str]] = []

    def shown(ids: list[str]) -> dict[str, int]:
        asked.append(sorted(ids))
        return {acme.windows: 10_000}

    result = acme.check(
        "Tents can be returned within 30 days; opened tents carry a 15% restocking fee.",
        [acme.windows, acme.fee, "handbook/refund-policy.md#0000000000-9", "decision:made:up"],
        shown=shown,
    )
    assert asked == [sorted([acme.windows, acme.fee])]
    assert result.unknown_citations == ["handbook/refund-policy.md#0000000000-9", "decision:made:up"]
    assert result.not_retrieved == [acme.fee]
    assert not result.passed
    assert any("does not exist" in f for f in result.fix) and any("not shown to you" in f for f in result.fix)
    # The passage never shown is not read out: no reason quotes it, and only the shown one is exposure.
    assert [s.chunk_id for s in result.exposure()] == [acme.windows]


def test_reasons_quote_only_passages_the_caller_was_shown_whole(acme: Acme) -> None:
    draft = "Tents can be returned within 45 days of delivery."
    whole = acme.check(draft, [acme.windows], shown=lambda ids: {acme.windows: 10_000})
    partly = acme.check(draft, [acme.windows], shown=lambda ids: {acme.windows: 5})
    assert "“" in whole.sentences[0].reason and "30" in whole.sentences[0].reason
    assert "“" not in partly.sentences[0].reason and "30" not in partly.sentences[0].reason
    assert partly.sentences[0].status == "unsupported"


def test_a_document_the_caller_may_not_see_is_an_unknown_citation(acme: Acme) -> None:
    result = acme.check(
        "Tents can be returned within 30 days.", [acme.windows], visible=lambda source: source != "handbook"
    )
    assert result.unknown_citations == [acme.windows]
    assert result.sentences[0].status == "unsupported"


def test_policy_violations_fail_a_supported_draft(acme: Acme) -> None:
    draft = (
        "Tents can be returned within 30 days, we guarantee it. "
        "Call Dana on 541-555-0142 or write to dana.whitfield@example.com."
    )
    result = acme.check(draft, [acme.windows])
    found = {(v.kind, v.policy) for v in result.violations}
    assert found == {
        ("forbidden", "no_guarantees"),
        ("required", "tent_restocking_fee"),
        ("personal_data", "phone"),
        ("personal_data", "email"),
    }
    assert not result.passed
    assert any("restocking fee" in f for f in result.fix)


def test_a_refund_answer_must_say_how_the_money_comes_back(acme: Acme) -> None:
    without = acme.check("The refund is issued at once.", [acme.money])
    assert [v.policy for v in without.violations] == ["refund_method"]
    with_method = acme.check("The refund is issued at once to the original card.", [acme.money])
    assert with_method.violations == [] and with_method.passed, with_method.fix


def test_inline_citations_and_sentences_with_nothing_to_check(acme: Acme) -> None:
    draft = f"Thanks for asking! Tents can be returned within 30 days [{acme.windows}]."
    result = acme.check(draft, [])
    assert [s.status for s in result.sentences] == ["not_checked", "supported"]
    assert result.sentences[1].text == "Tents can be returned within 30 days."
    assert result.sentences[1].citation == acme.windows


def test_no_citations_at_all(acme: Acme) -> None:
    result = acme.check("Tents can be returned within 30 days.", [])
    assert not result.passed and result.sentences[0].status == "unsupported"
    assert result.fix[0].startswith("Cite the passages you used")


def test_bad_input_is_refused(acme: Acme) -> None:
    from strongroom.server.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="draft must not be empty"):
        acme.check("  ", [])
    with pytest.raises(InvalidArgument, match="too long"):
        acme.check("x" * 30_000, [])


def test_embeddings_of_cited_passages_are_cached(acme: Acme, tmp_path: Path) -> None:
    acme.check("Tents can be returned within 30 days.", [acme.windows])
    cached = len(acme.checker._cache)
    acme.check("Electronics can be returned within 14 days.", [acme.windows])
    assert len(acme.checker._cache) == cached
