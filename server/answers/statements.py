"""A cited passage as statements, and what a sentence changes in the statement it matches.

The claim check (:mod:`claims`) finds every term and number of a sentence in what it cites;
this module checks that they are put together as the passage puts them:

- each figure is bound to its own subject: the row of a table (and its own piece of a cell),
  or the clause of a sentence, not a neighbouring row's or clause's;
- a figure keeps its unit, the unit's kind and its bound (``5 business days`` is not
  ``5 calendar days``; ``up to $150`` is not ``at least $150``), and a word keeps its
  ``before``/``after``;
- the agent of the matched statement is the sentence's (``Acme pays`` is not ``the customer
  pays``);
- a condition of the sentence is a condition of the matched statement, or is stated in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from strongroom.server.answers import structure
from strongroom.server.answers.claims import Claim, found, negated, root, terms
from strongroom.server.answers.structure import Figure

Terms = frozenset[str]


@dataclass(frozen=True)
class Scope:
    """One level a figure is bound at: the terms only its own part states, and those only its
    rivals state (the other rows' keys; the other figures' pieces or clauses)."""

    own: Terms
    rivals: Terms

    def misbound(self, near: Terms, whole: Terms) -> bool:
        """Does the sentence tie the figure to a rival, and not to its own part? The words
        around the figure decide; when they name neither, the whole sentence does."""
        for words in (near, whole):
            rival, own = words & self.rivals, words & self.own
            if rival or own:
                return bool(rival) and not own
        return False


@dataclass(frozen=True)
class Mention:
    """A figure a passage states, where (its unit), and what it is bound to."""

    figure: Figure
    unit: int
    scopes: tuple[Scope, ...]


@dataclass(frozen=True)
class Statement:
    """A clause of prose or a table row of a passage, as the sentence's match."""

    unit: int
    text: str  # without its conditions
    terms: Terms
    negated: bool
    conditions: Terms  # the terms of the conditions it is under (the whole row, for a table)
    agent: tuple[tuple[str, ...], str | None]
    whole: bool  # the whole unit (a table row, a sentence of one clause)


@dataclass(frozen=True)
class Structure:
    """A passage's statements and figures."""

    statements: tuple[Statement, ...] = ()
    mentions: tuple[Mention, ...] = ()
    comparisons: frozenset[tuple[str, str]] = frozenset()  # (before|after, the term's root)


def structure_of(units: Sequence[str], denied: bool = False) -> Structure:
    """The statements, figures and before/after terms of a passage's units (``denied``: under a
    heading that negates them all, "What the warranty does not cover")."""
    units = [_NUMBERING.sub("", u) for u in units]  # "2. Coverage periods" states no figure
    statements: list[Statement] = []
    for j, unit in enumerate(units):
        statements += _statements(j, unit, units, denied)
    mentions = _row_mentions(units) + [
        m for j, u in enumerate(units) if not structure.is_row(u) for m in _prose_mentions(j, u)
    ]
    return Structure(tuple(statements), tuple(mentions), frozenset(_comparisons(" ".join(units))))


_NUMBERING = re.compile(r"^\s*\d+(?:\.\d+)*[.)]?\s+(?=[A-Z])")


def _statements(j: int, unit: str, units: Sequence[str], denied: bool) -> list[Statement]:
    if structure.is_row(unit):
        row = frozenset(terms(unit))
        return [Statement(j, unit, row, negated(unit) != denied, row, ((), None), True)]
    listed = _listed_conditions(j, units)
    shared = frozenset().union(*(terms(c) for c in structure.conditions(unit)), listed)
    parts = structure.clauses(unit)
    out = []
    for clause in parts:
        subject, verb = structure.agent(structure.without_conditions(clause))
        said, denies = frozenset(terms(clause)), negated(clause) != denied
        out.append(Statement(j, clause, said, denies, shared, (tuple(subject), verb), len(parts) == 1))
    return out


def _listed_conditions(j: int, units: Sequence[str]) -> Terms:
    """The terms of the list a statement opens ("The fee is waived when:" then its items)."""
    if not structure.opens_condition(units[j]):
        return frozenset()
    listed: set[str] = set()
    for item in units[j + 1 :]:
        if not item[:1].islower():
            break
        listed |= set(terms(item))
    return frozenset(listed)


def _row_mentions(units: Sequence[str]) -> list[Mention]:
    """Figures of table rows: bound to the row's key (its cells without figures), and to their
    own piece among the row's figure-bearing pieces."""
    rows = {j: structure.cells(u) for j, u in enumerate(units) if structure.is_row(u)}
    keys = {
        j: frozenset(terms(next((c for c in cs if not structure.figures(c)), ""))) for j, cs in rows.items()
    }
    numeric = {j for j, cs in rows.items() if any(structure.figures(c) for c in cs)}
    out = []
    for j in sorted(numeric):
        others = frozenset().union(*(keys[k] for k in numeric if k != j))
        row_scope = Scope(keys[j] - others, others - keys[j])
        for cell in rows[j]:
            out += _part_mentions(
                j, [p for p in structure.pieces(cell) if structure.figures(p)], (row_scope,)
            )
    return out


def _prose_mentions(j: int, unit: str) -> list[Mention]:
    """Figures of a sentence, each bound to its own clause among the figure-bearing ones."""
    parts = [c for c in structure.clauses(unit) if structure.figures(c)]
    return _part_mentions(j, parts, ())


def _part_mentions(j: int, parts: Sequence[str], outer: tuple[Scope, ...]) -> list[Mention]:
    words = [frozenset(terms(p)) for p in parts]
    out = []
    for i, part in enumerate(parts):
        rivals = frozenset().union(*(w for k, w in enumerate(words) if k != i))
        scopes = (*outer, Scope(words[i] - rivals, rivals - words[i])) if len(parts) > 1 else outer
        out += [Mention(f, j, scopes) for f in structure.figures(part)]
    return out


_COMPARED = re.compile(r"\b(before|after)\s+(?:(?:the|a|an|any|its|their|your)\s+)?([A-Za-z][\w-]*)", re.I)


def _comparisons(text: str) -> Iterable[tuple[str, str]]:
    for m in _COMPARED.finditer(text):
        yield m.group(1).lower(), root(m.group(2))


# -- judging a sentence -------------------------------------------------------------------------


@dataclass(frozen=True)
class Cited:
    """What one cited passage offers the judgement: its structure and each unit's terms."""

    structure: Structure
    unit_terms: tuple[Terms, ...]


def conflicts(
    text: str, claim: Claim, cited: Sequence[Cited], least: float, exempt: Iterable[str] = ()
) -> list[str]:
    """What the sentence changes in the cited statements it matches, in words (empty: nothing)."""
    out = _figure_conflicts(text, claim, cited, least, set(exempt))
    out += _comparison_conflicts(text, cited)
    out += _role_and_condition_conflicts(text, cited, least)
    return list(dict.fromkeys(out))


def _near_figures(text: str) -> list[tuple[Figure, Terms]]:
    """The sentence's figures, each with the terms of the part of the sentence it is in."""
    out = []
    for part in re.split(r"[,;]\s+|\s+(?:and|but|while)\s+", text):
        near = frozenset(terms(part))
        out += [(f, near) for f in structure.figures(part)]
    return out


def _figure_conflicts(
    text: str, claim: Claim, cited: Sequence[Cited], least: float, exempt: set[str]
) -> list[str]:
    out = []
    for figure, near in _near_figures(text):
        if figure.value in exempt:
            continue
        stated = [(m, c) for c in cited for m in c.structure.mentions if m.figure.value == figure.value]
        if not stated:
            continue  # a number nothing cited states: the claim check reports it
        mention, where = max(stated, key=lambda mc: claim.coverage(set(mc[1].unit_terms[mc[0].unit])))
        if claim.coverage(set(where.unit_terms[mention.unit])) >= least and figure.conflict(mention.figure):
            out.append(f"{figure.describe()}: the cited statement says {mention.figure.describe()}")
            continue
        fitting = [m for m, _ in stated if figure.conflict(m.figure) is None]
        if fitting and all(any(s.misbound(near, claim.terms) for s in m.scopes) for m in fitting):
            out.append(f"{figure.describe()}: what is cited states it about something else")
    return out


def _comparison_conflicts(text: str, cited: Sequence[Cited]) -> list[str]:
    """``before discounts`` where the passage says only ``after discounts``."""
    stated = frozenset().union(*(c.structure.comparisons for c in cited))
    out = []
    for word, term in _comparisons(text):
        other = "after" if word == "before" else "before"
        if (other, term) in stated and (word, term) not in stated:
            out.append(f"“{word} {term}…”: what is cited says {other}")
    return out


def _role_and_condition_conflicts(text: str, cited: Sequence[Cited], least: float) -> list[str]:
    out = []
    for clause in structure.clauses(structure.without_conditions(text)):
        subject = {root(w) for w in structure.agent(clause)[0]}
        match = _match(frozenset(terms(clause)) - subject, cited, least)  # the same predicate
        role = _role_conflict(clause, match[1]) if match else None
        if role:
            out.append(role)
    conditions = structure.conditions(text)
    match = _match(frozenset(terms(structure.without_conditions(text))), cited, least) if conditions else None
    if match is None:
        return out
    stated = set(match[0].conditions | match[0].terms)
    for condition in conditions:
        said = frozenset(terms(condition))
        if said and sum(found(t, stated) for t in said) / len(said) < least:
            out.append(f"“{condition}”: not a condition of the cited statement")
    return out


def _match(claim: Terms, cited: Sequence[Cited], least: float) -> tuple[Statement, list[Statement]] | None:
    """The cited statement a clause matches (in the unit that states it best, its closest clause),
    and the statements of that unit."""
    if not claim:
        return None
    best: tuple[float, Statement, Cited] | None = None
    for c in cited:
        for st in c.structure.statements:
            unit = _share(claim, c.unit_terms[st.unit])
            score = unit + _share(claim, st.terms) / 10
            if unit >= least and (best is None or score > best[0]):
                best = (score, st, c)
    if best is None:
        return None
    _, st, c = best
    return st, [other for other in c.structure.statements if other.unit == st.unit]


def _share(claim: Terms, stated: Terms) -> float:
    return sum(found(t, set(stated)) for t in claim) / len(claim)


def _role_conflict(clause: str, unit: Sequence[Statement]) -> str | None:
    """The sentence's agent of a verb is not the agent of that verb in the statement it matches."""
    subject, verb = structure.agent(clause)
    if not (subject and verb):
        return None
    for st in unit:
        theirs, their_verb = st.agent
        if not theirs or their_verb is None or root(verb) != root(their_verb):
            continue
        if not any(found(root(w), {root(t) for t in theirs}) for w in subject):
            return f"“{' '.join(subject)} {verb}”: in what is cited, {' '.join(theirs)} {their_verb}"
    return None
