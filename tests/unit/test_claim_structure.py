"""check_answer's claim judgement against what a statement says, not only the words it uses:
figures bound to their own row or clause, units and bounds, who acts, conditions, polarity by
clause, and ``[1]``-style citations (no model: hashed bags of words stand in for embeddings)."""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping, Sequence

import pytest

from strongroom.server.answers.checker import AnswerChecker
from strongroom.server.answers.claims import Claim, root, terms
from strongroom.server.answers.statements import Cited, conflicts, structure_of
from strongroom.server.answers.structure import LOWER, UPPER, agent, clauses, conditions, figures
from strongroom.server.models import PolicyViolation
from strongroom.server.settings import AnswersSettings
from strongroom.server.store.catalog import DocumentHead
from strongroom.server.store.records import ChunkRecord

COVERAGE = """## Coverage periods

| Product line | Coverage |
|---|---|
| Hiking boots | 2 years |
| Rain jackets | 3 years |
| Trekking poles | 2 years on shafts, 1 year on locking mechanisms |
"""
DELIVERY = """## Delivery options and prices

| Option | Delivery time | Price |
|---|---|---|
| Standard | 3-5 business days | Free on orders over $75; otherwise $7.50 |
| Express | 2 business days | $18 |
| Overnight | Next business day | $35 |
"""
REFUNDS = """## Refunds

Card payments are refunded within 5 business days. The member receives a reminder email
30 days before expiry. Client meals are reimbursed at up to $150 per person. Certificates are
valid for 90 days from issue, can be combined (up to five per transaction) and can be used
online. Points are counted after discounts and before tax. The carrier calls the customer to
book a delivery slot. Accounts Payable audits a random 10% of claims every month.
"""
FEES = """## Restocking fee

Opened tents that were taken out of their stuff sack are charged a 15% restocking fee. The fee
is waived when:

1. the tent has a manufacturing defect, or
2. we shipped the wrong model.

Points appear in the account within 48 hours of the purchase. If a purchase is returned, its
points are taken back. Duties and taxes are collected at checkout, so the customer pays nothing
on delivery. The warranty belongs to the original purchaser and is not transferable.
"""
PASSAGES = {"coverage": COVERAGE, "delivery": DELIVERY, "refunds": REFUNDS, "fees": FEES}


def _cited(text: str) -> Cited:
    from strongroom.server.answers.text import split_sentences

    units = [s.text for s in split_sentences(text)]
    heading = units[0]
    return Cited(structure_of(units), tuple(frozenset(terms(f"{heading}: {u}")) for u in units))


def _conflicts(sentence: str, passage: str) -> list[str]:
    return conflicts(sentence, Claim.of(sentence), [_cited(PASSAGES[passage])], 0.7)


# -- the pieces ---------------------------------------------------------------------------------


def test_a_figure_carries_its_unit_kind_and_bound() -> None:
    (within,) = figures("refunded within 5 business days")
    assert (within.value, within.unit, within.kind, within.bound) == ("5", "day", "business", UPPER)
    (working,) = figures("checked within two working days of arrival")
    assert (working.value, working.kind) == ("2", "business")
    (least,) = figures("at least $150 per person")
    assert (least.value, least.unit, least.bound) == ("150", "$", LOWER)
    (after,) = figures("a reminder 30 days after expiry")
    assert after.bound == LOWER and after.unit == "day"
    (more,) = figures("retirees with 15 or more years of service")
    assert more.bound == LOWER
    assert [f.unit for f in figures("a 15% fee, 2 weeks, 4 hours")] == ["%", "week", "hour"]


def test_clauses_conditions_and_agents() -> None:
    assert clauses("The warranty belongs to the purchaser and is not transferable.") == [
        "The warranty belongs to the purchaser",
        "is not transferable.",
    ]
    assert conditions("Claims are refused unless a director approves the delay, in writing.") == [
        "unless a director approves the delay"
    ]
    assert agent("The carrier calls the customer") == (["carrier"], "calls")
    assert agent("Members may merge duplicate accounts") == (["members"], "merge")
    assert agent("Duplicate accounts may be merged by Customer Care after a check") == (
        ["customer", "care"],
        "merged",
    )
    assert agent("Without a receipt, customers can get store credit")[0] == ["customers"]


def test_roots_of_one_word_agree_whatever_suffix_was_stripped() -> None:
    assert root("absence") == root("absences")
    assert root("coverage") == root("covered")
    assert root("merge") == root("merged")


# -- a figure of another row or clause ------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "passage"),
    [
        ("Locking mechanisms on trekking poles have 2 years of coverage.", "coverage"),
        ("Express delivery takes 2 business days and costs $35.", "delivery"),
        ("Certificates can be combined, up to 90 per transaction.", "refunds"),
    ],
)
def test_a_figure_taken_from_another_row_or_clause_conflicts(sentence: str, passage: str) -> None:
    (problem,) = _conflicts(sentence, passage)
    assert "states it about something else" in problem


@pytest.mark.parametrize(
    ("sentence", "passage"),
    [
        ("Locking mechanisms on trekking poles have 1 year of coverage.", "coverage"),
        ("Trekking pole shafts have 2 years of coverage.", "coverage"),
        ("Express delivery takes 2 business days and costs $18.", "delivery"),
        ("Standard delivery takes 3-5 business days and is free on orders over $75.", "delivery"),
        ("Certificates are valid for 90 days and up to five can be combined per transaction.", "refunds"),
    ],
)
def test_a_figure_stated_with_its_own_subject_is_bound(sentence: str, passage: str) -> None:
    assert _conflicts(sentence, passage) == []


# -- units and bounds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "says"),
    [
        ("Card payments are refunded within 5 calendar days.", "at most 5 business day"),
        ("Card payments are refunded within 5 weeks.", "at most 5 business day"),
        ("The member receives a reminder email 30 days after expiry.", "at most 30 day"),
        ("Client meals are reimbursed at least $150 per person.", "at most $150"),
    ],
)
def test_a_changed_unit_or_bound_conflicts(sentence: str, says: str) -> None:
    problems = _conflicts(sentence, "refunds")
    assert f"{figures(sentence)[0].describe()}: the cited statement says {says}" in problems, problems


def test_before_and_after_keep_their_terms() -> None:
    assert _conflicts("Points are counted before discounts.", "refunds") == [
        "“before discount…”: what is cited says after"
    ]
    assert _conflicts("Points are counted after discounts and before tax.", "refunds") == []
    assert _conflicts("Card payments are refunded within 5 days.", "refunds") == []  # less precise, not wrong


# -- who acts ------------------------------------------------------------------------------------


def test_swapped_roles_conflict_and_a_passive_paraphrase_does_not() -> None:
    assert _conflicts("The customer calls the carrier to book a delivery slot.", "refunds") == [
        "“customer calls”: in what is cited, carrier calls"
    ]
    assert _conflicts("The People Team audits a random 10% of claims every month.", "refunds") == [
        "“people team audits”: in what is cited, accounts payable audits"
    ]
    assert _conflicts("Every month a random 10% of claims is audited by Accounts Payable.", "refunds") == []
    assert _conflicts("The freight carrier calls the customer to book a delivery slot.", "refunds") == []


# -- conditions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sentence",
    [
        "The restocking fee is waived when the tent is returned in its stuff sack.",
        "Points appear in the account within 48 hours unless the purchase is returned.",
    ],
)
def test_an_invented_condition_conflicts(sentence: str) -> None:
    (problem,) = _conflicts(sentence, "fees")
    assert problem.endswith("not a condition of the cited statement"), problem


@pytest.mark.parametrize(
    "sentence",
    [
        "The restocking fee is waived when the tent has a manufacturing defect or we shipped the wrong model.",
        "If a purchase is returned, the points are taken back.",
    ],
)
def test_a_condition_the_passage_states_is_accepted(sentence: str) -> None:
    assert _conflicts(sentence, "fees") == []


# -- through the checker: polarity by clause, [n] references ---------------------------------------


class _Embeds:
    """Bags of words hashed into 64 dimensions: texts sharing words are close."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    @staticmethod
    def _one(text: str) -> list[float]:
        vector = [0.0] * 64
        for word in re.findall(r"[a-z]+", text.lower()):
            vector[zlib.crc32(word.encode()) % 64] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]


class _NoPolicies:
    def check(self, text: str, sentence_of: list[tuple[int, int]] | None = None) -> list[PolicyViolation]:
        return []


class _Index:
    def __init__(self) -> None:
        self.records = {
            f"docs/{name}#c-0": ChunkRecord(f"docs/{name}#c-0", f"docs/{name}", 0, 0, len(t), None, (), t)
            for name, t in PASSAGES.items()
        }

    def chunks(self, ids: Sequence[str]) -> dict[str, ChunkRecord]:
        return {i: self.records[i] for i in ids if i in self.records}

    def document_heads(self, ids: Sequence[str]) -> Mapping[str, DocumentHead]:
        return {i: DocumentHead(i, "docs", i.removeprefix("docs/").title(), f"file:///{i}") for i in ids}


@pytest.fixture
def checker() -> AnswerChecker:
    return AnswerChecker(AnswersSettings(), _Embeds(), _Index())


def test_a_negation_in_another_clause_is_no_contradiction(checker: AnswerChecker) -> None:
    result = checker.check(
        "Duties and taxes are collected at checkout. The warranty belongs to the original purchaser "
        "and cannot be transferred. The original purchaser's warranty can be transferred.",
        ["docs/fees#c-0"],
        policies=_NoPolicies(),
    )
    assert [s.status for s in result.sentences] == ["supported", "supported", "unsupported"]
    assert result.sentences[2].contradicts


def test_numbered_references_cite_the_listed_passages(checker: AnswerChecker) -> None:
    draft = (
        "Card payments are refunded within 5 business days [1]. Opened tents are charged a 15% "
        "restocking fee [2]. The customer calls the carrier to book a delivery slot [1]. "
        "Opened tents are charged a restocking fee [3]."
    )
    result = checker.check(draft, ["docs/refunds#c-0", "docs/fees#c-0"], policies=_NoPolicies())
    first, second, third, _ = result.sentences
    assert first.status == "supported" and first.citation == "docs/refunds#c-0"
    assert first.text == "Card payments are refunded within 5 business days."  # [1] is not a figure
    assert second.status == "supported" and second.citation == "docs/fees#c-0"
    assert third.status == "unsupported" and third.conflicts == [
        "“customer calls”: in what is cited, carrier calls"
    ]
    assert any("carrier calls; say it as the source does" in f for f in result.fix)
    assert result.unknown_citations == ["[3]"] and not result.passed
