"""What a sentence claims, and whether cited text states it.

A sentence is judged by its claim, not by how similar it reads: every content-bearing term
must be found in what it cites (as the same word, a word of the same root, or an ordinary
synonym), every number must sit in a cited statement about the same thing, and a cited
statement that says the opposite (one is negated, the other not) is a contradiction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from strongroom.server.answers.text import content_words, numbers, stem

# Words of an answer that carry no claim of their own: who is addressed, light verbs.
_NEUTRAL = frozenset(
    re.findall(
        r"\S+",
        """
        customer customers client clients shopper shoppers you your we our us
        company policy policies rule rules still also get gets getting got make makes made take
        takes taking took give gives given have has having become becomes became back go goes
        going went come comes came
        """,
    )
)
# General-English equivalences: a term is found when any word of its group is.
_SYNONYMS = [
    "usually normally typically generally",
    "cost costs price priced prices charge charged charges fee fees pay paid pays carry carries due owed",
    "buyer purchaser",
    "regardless whatever irrespective",
    "start starts begin begins",
    "permit allow allowed let",
    "purchase purchased buy bought",
    "photo photos picture pictures",
    "colour color",
    "centre center",
    "authorise authorize approve",
    "eligible approved qualify qualifies",
    "ago since",
]
_FREE = re.compile(
    r"\b(?:at\s+no\s+(?:extra\s+)?(?:charge|cost)|free\s+of\s+charge|without\s+charge)\b", re.I
)
NEGATORS = frozenset(
    re.findall(
        r"\S+",
        """
        not no never cannot can't won't isn't aren't doesn't don't didn't wasn't weren't
        shouldn't mustn't nothing none neither nor without non unable
        """,
    )
)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*")


_RETURN = re.compile(
    r"\b(?:bring|brings|brought|bringing|send|sends|sent|take|takes|took|taken)\s+back\b", re.I
)


def normalise(text: str) -> str:
    """Phrasings of one idea made one word (``at no charge`` is ``free``, ``brought back`` ``returned``)."""
    return _RETURN.sub("returned", _FREE.sub("free", text))


def root(word: str) -> str:
    """A word's root, a little deeper than :func:`stem`: transferable/transferred -> transfer,
    coverage/covered -> cover, absence/absences -> absenc."""
    w = stem(word)
    for suffix in ("able", "ible"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            w = w[: -len(suffix)]
            break
    if w.endswith("age") and len(w) >= 7:
        w = w[:-3]  # coverage -> cover
    elif w.endswith("e") and len(w) > 4:
        w = w[:-1]  # absence/absences, merge/merged: one root whichever suffix was stripped
    if len(w) > 4 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]  # shipp -> ship, transferr -> transfer
    return w


_GROUP = {root(w): i for i, line in enumerate(_SYNONYMS) for w in line.split()}


def terms(text: str) -> dict[str, str]:
    """The content-bearing roots of a text, each with the word it came from."""
    out: dict[str, str] = {}
    for m in _TOKEN.finditer(normalise(text)):
        word = m.group().lower().replace("\u2019", "'").strip("'-")
        if (
            word not in _NEUTRAL and word not in NEGATORS and content_words(word)
        ):  # not a function word, not a number word
            out.setdefault(root(word), word)
    return out


def negated(text: str) -> bool:
    """Does the text deny what it states (an odd number of negations)?"""
    words = [m.group().lower().replace("\u2019", "'") for m in _TOKEN.finditer(normalise(text))]
    count = sum(w in NEGATORS or w.startswith("non-") for w in words)
    return count % 2 == 1


def found(term: str, vocabulary: set[str]) -> bool:
    """The term, or an ordinary synonym of it, is in the vocabulary (of roots)."""
    if term in vocabulary:
        return True
    group = _GROUP.get(term)
    return group is not None and any(_GROUP.get(w) == group for w in vocabulary)


@dataclass(frozen=True)
class Claim:
    """What one sentence asserts."""

    words: tuple[tuple[str, str], ...]  # (root, the word as written)
    numbers: frozenset[str]
    negated: bool
    text: str = ""

    @staticmethod
    def of(text: str) -> Claim:
        return Claim(tuple(terms(text).items()), frozenset(numbers(text)), negated(text), text)

    @property
    def terms(self) -> frozenset[str]:
        return frozenset(r for r, _ in self.words)

    def missing_terms(self, vocabulary: set[str]) -> list[str]:
        """The words of the claim the vocabulary does not state, as written."""
        return [word for r, word in self.words if not found(r, vocabulary)]

    def coverage(self, statement_terms: set[str]) -> float:
        """Share of the claim's terms a statement states."""
        if not self.terms:
            return 1.0
        return sum(found(t, statement_terms) for t in self.terms) / len(self.terms)

    def unbound_numbers(
        self, statements: Sequence[tuple[set[str], set[str]]], least: float, exempt: Iterable[str] = ()
    ) -> list[str]:
        """Numbers no statement (its terms, its numbers) states together with the claim's subject."""
        out = []
        for n in sorted(self.numbers - set(exempt)):
            if not any(n in nums and self.coverage(words) >= least for words, nums in statements):
                out.append(n)
        return out
