"""Answer policies from the rules file: forbidden text, required statements, personal data."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:  # the rules package imports this module
    from strongroom.server.rules.model import AnswerPoliciesSpec

ViolationKind = Literal["forbidden", "required", "personal_data"]


class PolicyViolation(BaseModel):
    policy: str = Field(description="The policy id (personal data: email, phone or card).")
    kind: ViolationKind
    message: str
    excerpt: str | None = Field(default=None, description="What matched; personal data is masked.")
    sentence: int | None = Field(default=None, description="0-based index of the sentence it is in.")


@dataclass(frozen=True)
class _Forbidden:
    id: str
    pattern: re.Pattern[str]
    message: str


@dataclass(frozen=True)
class _Required:
    id: str
    when: tuple[re.Pattern[str], ...]
    require_any: tuple[re.Pattern[str], ...]
    message: str


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
    digits = re.sub(r"\D", "", text)
    return f"{'*' * (len(digits) - 4)}{digits[-4:]}"


@dataclass(frozen=True)
class AnswerPolicies:
    """Compiled answer policies; :meth:`check` lists the violations in a text."""

    forbidden: tuple[_Forbidden, ...] = ()
    required: tuple[_Required, ...] = ()
    detect: tuple[str, ...] = ("email", "phone", "card")
    allow: tuple[re.Pattern[str], ...] = field(default_factory=tuple)

    @staticmethod
    def default() -> AnswerPolicies:
        return AnswerPolicies()

    @property
    def count(self) -> int:
        return len(self.forbidden) + len(self.required) + (1 if self.detect else 0)

    def check(self, text: str, sentence_of: list[tuple[int, int]] | None = None) -> list[PolicyViolation]:
        """Violations in ``text``; ``sentence_of`` maps character spans to sentence numbers."""

        def sentence(pos: int) -> int | None:
            for i, (start, end) in enumerate(sentence_of or []):
                if start <= pos < end:
                    return i
            return None

        found: list[PolicyViolation] = []
        for f in self.forbidden:
            for m in f.pattern.finditer(text):
                found.append(
                    PolicyViolation(
                        policy=f.id,
                        kind="forbidden",
                        message=f.message,
                        excerpt=m.group(),
                        sentence=sentence(m.start()),
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
                    )
                )
        found += self._personal_data(text, sentence)
        return found

    def _personal_data(self, text: str, sentence: Callable[[int], int | None]) -> list[PolicyViolation]:
        out: list[PolicyViolation] = []
        taken: list[tuple[int, int]] = []

        def allowed(value: str) -> bool:
            return any(p.search(value) for p in self.allow)

        def overlaps(start: int, end: int) -> bool:
            return any(s < end and start < e for s, e in taken)

        messages = {
            "email": "An email address must not appear in the answer (personal data).",
            "card": "A payment card number must not appear in the answer.",
            "phone": "A phone number must not appear in the answer (personal data).",
        }
        checks: list[tuple[str, re.Pattern[str]]] = [("email", EMAIL), ("card", CARD), ("phone", PHONE)]
        for kind, pattern in checks:
            if kind not in self.detect:
                continue
            for m in pattern.finditer(text):
                value = m.group().strip()
                if overlaps(m.start(), m.end()) or allowed(value):
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
                        message=messages[kind],
                        excerpt=mask(kind, value),
                        sentence=sentence(m.start()),
                    )
                )
        return out


Loc = tuple[str, int | None, str | None]


def compile_policies(spec: AnswerPoliciesSpec) -> tuple[AnswerPolicies, list[tuple[Loc, str]]]:
    """Compiled policies and the problems found: ((section, index, key), message)."""
    errors: list[tuple[Loc, str]] = []

    def rx(source: str, ignore_case: bool, loc: Loc) -> re.Pattern[str] | None:
        try:
            return re.compile(source, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            errors.append((loc, f"not a valid regular expression ({exc}): {source!r}"))
            return None

    forbidden = []
    for i, f in enumerate(spec.forbidden):
        pattern = rx(f.pattern, f.ignore_case, ("forbidden", i, "pattern"))
        if pattern is not None:
            forbidden.append(_Forbidden(f.id, pattern, f.message))
    required = []
    for i, r in enumerate(spec.required):
        when = [rx(p, r.ignore_case, ("required", i, "when")) for p in r.when]
        need = [rx(p, r.ignore_case, ("required", i, "require_any")) for p in r.require_any]
        if all(when) and all(need):
            required.append(
                _Required(r.id, tuple(p for p in when if p), tuple(p for p in need if p), r.message)
            )
    allow = [rx(p, True, ("personal_data", None, "allow")) for p in spec.personal_data.allow]
    ids = [f.id for f in spec.forbidden] + [r.id for r in spec.required]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        errors.append((("forbidden", None, None), f"duplicate policy id {dup!r}"))
    policies = AnswerPolicies(
        forbidden=tuple(forbidden),
        required=tuple(required),
        detect=tuple(dict.fromkeys(spec.personal_data.detect)),
        allow=tuple(p for p in allow if p),
    )
    return policies, errors
