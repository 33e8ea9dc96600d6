"""Answer policies from the rules file: forbidden text, required statements, personal data."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strongroom.server.models import PolicyViolation
from strongroom.server.rules.model import AnswerPoliciesSpec, CitationSpec

BUILT_IN_DETECTORS = ("email", "phone", "card")


Cited = dict[str, Any] | None


@dataclass(frozen=True)
class _Patterns:
    """Text that must not appear: a forbidden statement, or an organisation's own personal data."""

    id: str
    patterns: tuple[re.Pattern[str], ...]
    message: str
    citation: Cited = None


@dataclass(frozen=True)
class _Required:
    id: str
    when: tuple[re.Pattern[str], ...]
    require_any: tuple[re.Pattern[str], ...]
    message: str
    citation: Cited = None


# Emails, phone numbers (7+ digits in a phone-like layout) and card numbers (Luhn-checked).
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]?\d{3,4}(?![\w])"
)
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mask(kind: str, text: str) -> str:
    if kind == "email":
        user, _, domain = text.partition("@")
        return f"{user[:1]}***@{domain}"
    if kind in ("phone", "card"):
        digits = re.sub(r"\D", "", text)
        return f"{'*' * (len(digits) - 4)}{digits[-4:]}"
    keep = max(0, min(4, len(text) - 4))
    return "*" * (len(text) - keep) + text[len(text) - keep :]


@dataclass(frozen=True)
class AnswerPolicies:
    """Compiled answer policies; :meth:`check` lists the violations in a text."""

    forbidden: tuple[_Patterns, ...] = ()
    required: tuple[_Required, ...] = ()
    detect: tuple[str, ...] = ("email", "phone", "card")
    allow: tuple[re.Pattern[str], ...] = field(default_factory=tuple)
    custom: tuple[_Patterns, ...] = ()

    @staticmethod
    def default() -> AnswerPolicies:
        return AnswerPolicies()

    @property
    def count(self) -> int:
        return len(self.forbidden) + len(self.required) + len(self.custom) + (1 if self.detect else 0)

    def check(self, text: str, sentence_of: list[tuple[int, int]] | None = None) -> list[PolicyViolation]:
        """Violations in ``text``; ``sentence_of`` maps character spans to sentence numbers."""

        def sentence(pos: int) -> int | None:
            for i, (start, end) in enumerate(sentence_of or []):
                if start <= pos < end:
                    return i
            return None

        found: list[PolicyViolation] = []
        for f in self.forbidden:
            for m in _matches(f.patterns, text):
                found.append(
                    PolicyViolation(
                        policy=f.id,
                        kind="forbidden",
                        message=f.message,
                        excerpt=m.group(),
                        sentence=sentence(m.start()),
                        citation=f.citation,
                    )
                )
        for r in self.required:
            if all(p.search(text) for p in r.when) and not any(p.search(text) for p in r.require_any):
                first = r.when[0].search(text)
                found.append(
                    PolicyViolation(
                        policy=r.id,
                        kind="required",
                        message=r.message,
                        excerpt=first.group() if first else None,
                        sentence=sentence(first.start()) if first else None,
                        citation=r.citation,
                    )
                )
        found += self._personal_data(text, sentence)
        return found

    def _personal_data(self, text: str, sentence: Callable[[int], int | None]) -> list[PolicyViolation]:
        """Built-in detections first, then the organisation's own patterns; a span is reported once."""
        taken: list[tuple[int, int]] = []
        out: list[PolicyViolation] = []
        for kind, pattern in _DETECTORS:
            if kind in self.detect:
                out += self._detected(kind, pattern, text, sentence, taken)
        for c in self.custom:
            for m in _matches(c.patterns, text):
                if self._passed_over(m, taken):
                    continue
                taken.append((m.start(), m.end()))
                out.append(
                    PolicyViolation(
                        policy=c.id,
                        kind="personal_data",
                        message=c.message,
                        excerpt=mask(c.id, m.group().strip()),
                        sentence=sentence(m.start()),
                        citation=c.citation,
                    )
                )
        return out

    def _detected(
        self,
        kind: str,
        pattern: re.Pattern[str],
        text: str,
        sentence: Callable[[int], int | None],
        taken: list[tuple[int, int]],
    ) -> list[PolicyViolation]:
        out: list[PolicyViolation] = []
        for m in pattern.finditer(text):
            value = m.group().strip()
            if self._passed_over(m, taken):
                continue
            if kind == "card" and not luhn_ok(re.sub(r"\D", "", value)):
                taken.append((m.start(), m.end()))  # a long number, but not a card (nor a phone)
                continue
            if kind == "phone" and len(re.sub(r"\D", "", value)) < 7:
                continue
            taken.append((m.start(), m.end()))
            out.append(
                PolicyViolation(
                    policy=kind,
                    kind="personal_data",
                    message=_DETECTED[kind],
                    excerpt=mask(kind, value),
                    sentence=sentence(m.start()),
                )
            )
        return out

    def _passed_over(self, m: re.Match[str], taken: list[tuple[int, int]]) -> bool:
        """A match inside a span already reported (or ruled out), or one the ``allow`` list allows."""
        overlaps = any(s < m.end() and m.start() < e for s, e in taken)
        return overlaps or any(p.search(m.group().strip()) for p in self.allow)


_DETECTORS: tuple[tuple[str, re.Pattern[str]], ...] = (("email", EMAIL), ("card", CARD), ("phone", PHONE))
_DETECTED = {
    "email": "An email address must not appear in the answer (personal data).",
    "card": "A payment card number must not appear in the answer.",
    "phone": "A phone number must not appear in the answer (personal data).",
}


def _matches(patterns: tuple[re.Pattern[str], ...], text: str) -> list[re.Match[str]]:
    """Matches of any of the patterns, in text order, overlapping ones dropped."""
    found = sorted((m for p in patterns for m in p.finditer(text)), key=lambda m: (m.start(), -m.end()))
    out: list[re.Match[str]] = []
    for m in found:
        if not out or m.start() >= out[-1].end():
            out.append(m)
    return out


Loc = tuple[str, int | None, str | None]


Resolve = Callable[[CitationSpec, tuple[str | int, ...]], Cited]


def compile_policies(
    spec: AnswerPoliciesSpec, resolve: Resolve | None = None
) -> tuple[AnswerPolicies, list[tuple[Loc, str]]]:
    """Compiled policies and the problems found: ((section, index, key), message).

    ``resolve`` turns a policy's citation into the cited passage (None: citations are dropped).
    """
    compiler = _PolicyCompiler(resolve)
    forbidden = compiler.forbidden(spec)
    required = compiler.required(spec)
    custom = compiler.custom(spec)
    allow = compiler.patterns(spec.personal_data.allow, True, ("personal_data", None, "allow")) or ()
    for dup in _duplicate_ids(spec):
        compiler.errors.append(
            (("forbidden", None, None), f"duplicate policy id {dup!r} (email, phone and card are built in)")
        )
    policies = AnswerPolicies(
        forbidden=tuple(forbidden),
        required=tuple(required),
        detect=tuple(dict.fromkeys(spec.personal_data.detect)),
        allow=allow,
        custom=tuple(custom),
    )
    return policies, compiler.errors


class _PolicyCompiler:
    """Compiles each section's patterns, collecting the problems in :attr:`errors`."""

    def __init__(self, resolve: Resolve | None) -> None:
        self.resolve = resolve
        self.errors: list[tuple[Loc, str]] = []

    def patterns(self, sources: list[str], ignore_case: bool, loc: Loc) -> tuple[re.Pattern[str], ...] | None:
        """The compiled patterns, or None when any of them is not a valid regular expression."""
        out = []
        for source in sources:
            try:
                out.append(re.compile(source, re.IGNORECASE if ignore_case else 0))
            except re.error as exc:
                self.errors.append((loc, f"not a valid regular expression ({exc}): {source!r}"))
        return tuple(out) if len(out) == len(sources) else None

    def cite(self, citation: CitationSpec | None, section: str, index: int) -> Cited:
        if citation is None or self.resolve is None:
            return None
        where = ("personal_data", "patterns") if section == "personal_data" else (section,)
        return self.resolve(citation, ("answer_policies", *where, index, "citation"))

    def forbidden(self, spec: AnswerPoliciesSpec) -> list[_Patterns]:
        out = []
        for i, f in enumerate(spec.forbidden):
            patterns = self.patterns(f.pattern, f.ignore_case, ("forbidden", i, "pattern"))
            if patterns is not None:
                out.append(_Patterns(f.id, patterns, f.message, self.cite(f.citation, "forbidden", i)))
        return out

    def required(self, spec: AnswerPoliciesSpec) -> list[_Required]:
        out = []
        for i, r in enumerate(spec.required):
            when = self.patterns(r.when, r.ignore_case, ("required", i, "when"))
            need = self.patterns(r.require_any, r.ignore_case, ("required", i, "require_any"))
            if when is not None and need is not None:
                out.append(_Required(r.id, when, need, r.message, self.cite(r.citation, "required", i)))
        return out

    def custom(self, spec: AnswerPoliciesSpec) -> list[_Patterns]:
        out = []
        for i, c in enumerate(spec.personal_data.patterns):
            patterns = self.patterns(c.pattern, c.ignore_case, ("personal_data", None, "patterns"))
            message = c.message or f"Personal data ({c.id.replace('_', ' ')}) must not appear in the answer."
            if patterns is not None:
                out.append(_Patterns(c.id, patterns, message, self.cite(c.citation, "personal_data", i)))
        return out


def _duplicate_ids(spec: AnswerPoliciesSpec) -> list[str]:
    """Policy ids used twice, a built-in detector's name counting as used when a policy takes it."""
    ids = (
        [f.id for f in spec.forbidden]
        + [r.id for r in spec.required]
        + [c.id for c in spec.personal_data.patterns]
    )
    ids += [kind for kind in BUILT_IN_DETECTORS if kind in ids]
    return sorted({i for i in ids if ids.count(i) > 1})
