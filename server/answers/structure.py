"""The structure of a statement: its clauses, its figures, who acts in it, and its conditions.

Word matching alone is beaten by a claim made of the passage's own words: a figure of another
table row, the roles swapped, a unit or bound changed, a condition added. These pieces let the
claim check compare a sentence with the statement it matches, not just with its vocabulary:

- a **figure** is a number with its unit (``day``, ``$``, ``%``), the unit's kind (business
  or calendar days) and its bound (``up to``/``within``/``before`` against
  ``at least``/``over``/``after``);
- a figure is **bound** to its subject: in a table row, to the row's cells without numbers
  (the row's key), and to its own piece of a cell; in prose, to its own clause;
- the **agent** of a clause is the noun phrase before its verb (the one after ``by`` in the
  passive);
- a **condition** is an ``if``/``when``/``unless``/``provided``/``as long as`` clause.

All of it is general English, deterministic and cheap: no parser, no model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from strongroom.server.answers.text import STOP, spelled_value

# A clause ends at a semicolon, a colon, a parenthesis, a conjunction after a comma, or an
# "and"/"but"/"or" that starts a new verb phrase ("... purchaser and is not transferable"), or
# a relative "that"/"which"/"who" that does ("faults that are not caused by ...").
_AUX = (
    r"is|are|was|were|be|been|can|cannot|can't|may|might|must|will|would|should|shall|do|does|"
    r"did|don't|doesn't|has|have|had|not|never"
)
_CLAUSE = re.compile(
    r";\s*|:\s+|:$|\s*[()]\s*|,\s+(?:and|but|or|so|while|whereas|because|which|though)\s+"
    rf"|\s+(?:and|but|or|that|which|who)\s+(?=(?:{_AUX})\b)",
    re.IGNORECASE,
)
_CONDITION = re.compile(
    r"\b(?:if|when|whenever|unless|provided(?:\s+that)?|as\s+long\s+as|except\s+(?:if|when|where))\b"
    r"[^,;:.!?]*",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*|,")
_AUXILIARY = frozenset(_AUX.split("|"))
_DETERMINERS = frozenset(
    re.findall(r"\S+", "the a an our your their its this that these those every each any")
)

# -- figures ----------------------------------------------------------------------------------

_UNITS = {
    **dict.fromkeys(["second", "seconds"], "second"),
    **dict.fromkeys(["minute", "minutes", "min", "mins"], "minute"),
    **dict.fromkeys(["hour", "hours", "hr", "hrs"], "hour"),
    **dict.fromkeys(["day", "days"], "day"),
    **dict.fromkeys(["night", "nights"], "night"),
    **dict.fromkeys(["week", "weeks"], "week"),
    **dict.fromkeys(["month", "months"], "month"),
    **dict.fromkeys(["quarter", "quarters"], "quarter"),
    **dict.fromkeys(["year", "years"], "year"),
    **dict.fromkeys(["percent", "%"], "%"),
    **dict.fromkeys(["dollar", "dollars", "usd", "$"], "$"),
    **dict.fromkeys(["euro", "euros", "eur", "€"], "€"),
    **dict.fromkeys(["pound", "pounds", "gbp", "£"], "£"),
    **dict.fromkeys(["p.m", "pm", "a.m", "am"], "o'clock"),
    **dict.fromkeys(["mile", "miles"], "mile"),
    **dict.fromkeys(["km", "kilometre", "kilometres", "kilometer", "kilometers"], "km"),
    **dict.fromkeys(["kg", "kilogram", "kilograms"], "kg"),
    **dict.fromkeys(["lb", "lbs"], "lb"),
}
_KINDS = {"business": "business", "working": "business", "calendar": "calendar"}
UPPER, LOWER = -1, 1
_BOUND_BEFORE = re.compile(
    r"\b(up\s+to|at\s+most|no\s+more\s+than|not\s+more\s+than|maximum\s+of|within|under|below|less\s+than|"
    r"fewer\s+than|before|until|at\s+least|no\s+less\s+than|minimum\s+of|more\s+than|over|above|after)"
    r"(?:\s+(?:a|an|the)\s+[a-z]+\s+of)?\s+(?:[A-Za-z]+\s+)?[$€£]?$",
    re.IGNORECASE,
)
_BOUND_AFTER = re.compile(
    r"^\s*(or\s+(?:more|over|above|less|fewer|under)|and\s+(?:above|over|up)|before|after)\b"
)
_LOWER_WORDS = (
    "at least",
    "no less than",
    "minimum",
    "more than",
    "over",
    "above",
    "after",
    "or more",
    "and up",
)
_NUMBER = re.compile(r"(?<![\w.])([$€£]?)(\d[\d,]*(?:\.\d+)?)(?![\d])(\s*%)?")


@dataclass(frozen=True)
class Figure:
    """A number as a claim states it: value, unit, the unit's kind, and its bound."""

    value: str
    unit: str | None
    kind: str | None
    bound: int  # UPPER, LOWER or 0
    start: int
    end: int

    def conflict(self, other: Figure) -> str | None:
        """How this figure differs from ``other`` of the same value (None if it does not)."""
        if self.unit and other.unit and self.unit != other.unit:
            return "unit"
        if self.kind and self.kind != other.kind:
            return "unit"
        if self.bound and other.bound and self.bound != other.bound:
            return "bound"
        return None

    def describe(self) -> str:
        bound = {UPPER: "at most ", LOWER: "at least ", 0: ""}[self.bound]
        kind = f" {self.kind}" if self.kind else ""
        unit = f"{kind} {self.unit}" if self.unit and self.unit not in "$€£%" else kind
        money = self.unit if self.unit in ("$", "€", "£") else ""
        percent = "%" if self.unit == "%" else ""
        return f"{bound}{money}{self.value}{percent}{unit}".strip()


def figures(text: str) -> list[Figure]:
    """The figures a text states, in order, each with its unit, kind and bound."""
    found: list[Figure] = []
    for start, end, value, marked in _raw_numbers(text):
        after = text[end : end + 40]
        kind, unit_word, unit_end = _unit_after(after)
        unit = marked or unit_word
        tail = after[unit_end:]
        before = re.split(r"[,;:.!?()|]", text[max(0, start - 40) : start])[-1]
        bound = _bound(before, tail)
        found.append(Figure(value, unit, kind, bound, start, end + unit_end))
    return found


def _raw_numbers(text: str) -> list[tuple[int, int, str, str | None]]:
    out: list[tuple[int, int, str, str | None]] = []
    for m in _NUMBER.finditer(text):
        value = _normal(m.group(2).replace(",", ""))
        unit = _UNITS.get(m.group(1)) if m.group(1) else ("%" if m.group(3) else None)
        out.append((m.start(), m.end(), value, unit))
    for m in _WORD.finditer(text):
        spelled = spelled_value(m.group())
        if spelled is not None and _counts(text, m.end()):
            out.append((m.start(), m.end(), spelled, None))
    return sorted(out)


def _counts(text: str, end: int) -> bool:
    """A spelled number counts as a figure when a unit or a noun follows it ("two weeks")."""
    follow = re.match(r"[\s-]+([A-Za-z]+)", text[end:])
    return follow is not None and (follow.group(1).lower() not in STOP or follow.group(1).lower() == "per")


def _unit_after(after: str) -> tuple[str | None, str | None, int]:
    """(kind, unit, characters used) of the words right after a number ("-5 business days")."""
    m = re.match(
        r"(?:\s*[\u2013-]\s*[$€£]?\d[\d,.]*)?[\s-]*(?:(business|working|calendar)\s+)?([A-Za-z.%]+)", after
    )
    if m is None:
        return None, None, 0
    word = m.group(2).lower().rstrip(".")
    unit = _UNITS.get(word)
    if unit is None:
        return None, None, 0
    return (_KINDS[m.group(1).lower()] if m.group(1) else None), unit, m.end()


def _bound(before: str, after: str) -> int:
    m = _BOUND_BEFORE.search(before) or _BOUND_AFTER.match(after)
    if m is None:
        return 0
    phrase = re.sub(r"\s+", " ", m.group(1).lower())
    return LOWER if any(phrase.startswith(w) for w in _LOWER_WORDS) else UPPER


def _normal(raw: str) -> str:
    whole, _, fraction = raw.partition(".")
    fraction = fraction.rstrip("0")
    return f"{int(whole)}.{fraction}" if fraction else str(int(whole))


# -- clauses, conditions, agents ----------------------------------------------------------------


def clauses(text: str) -> list[str]:
    """The clauses of a sentence of prose (a table row is one statement: see :func:`cells`)."""
    return [c.strip(" ,") for c in _CLAUSE.split(text) if c and c.strip(" ,")]


def cells(row: str) -> list[str]:
    """The cells of a table row (``| a | b |``)."""
    return [c.strip() for c in row.strip().strip("|").split("|")]


def pieces(cell: str) -> list[str]:
    """A cell's parts ("2 years on shafts, 1 year on locking mechanisms")."""
    return [p.strip() for p in re.split(r"[,;]\s+", cell) if p.strip()]


def is_row(text: str) -> bool:
    return text.lstrip().startswith("|")


def conditions(text: str) -> list[str]:
    """The condition clauses of a text ("if the tent has a defect", "unless ... approves")."""
    return [m.group().strip() for m in _CONDITION.finditer(text) if len(m.group().split()) > 1]


def without_conditions(text: str) -> str:
    return _CONDITION.sub(" ", text)


def opens_condition(text: str) -> bool:
    """Does the statement end by introducing conditions listed after it ("The fee is waived when:")?"""
    return re.search(r"\b(?:if|when|unless|where)\s*:\s*$", text, re.IGNORECASE) is not None


_PASSIVE = re.compile(
    r"\b(?:is|are|was|were|be|been|being)\s+(?:\w+ly\s+)?[a-z]+(?:ed|en|wn|id|nt|t)\s+by\s+"
    r"(?:(?:the|a|an|our|your|their)\s+)?([A-Za-z][\w-]*(?:\s+[A-Za-z][\w-]*){0,3})",
    re.IGNORECASE,
)


def agent(clause: str) -> tuple[list[str], str | None]:
    """Who acts in a clause, as lower-case words, and the verb it is the agent of.

    The passive names it after ``by`` ("is audited by Accounts Payable"); otherwise it is
    the noun phrase before the first auxiliary ("Members may merge") or, with none, before a
    verb in the third person ("The carrier calls"). Neither found: ``([], None)``.
    """
    passive = _PASSIVE.search(clause)
    if passive:
        verb = re.search(r"\b([a-z]+)\s+by\b", passive.group(0), re.IGNORECASE)
        return _head([w.lower() for w in passive.group(1).split()]), verb.group(1).lower() if verb else None
    words = [m.group().lower().replace("\u2019", "'") for m in _TOKEN.finditer(clause)]
    for i, word in enumerate(words[:7]):
        if word in _AUXILIARY:
            return _subject(words[:i]), _next_content(words[i + 1 :])
    for i, word in enumerate(words[1:6], start=1):
        prior = words[i - 1]
        if word.endswith("s") and not word.endswith("ss") and prior not in STOP and prior not in _DETERMINERS:
            return _subject(words[:i]), word
    return [], None


def _head(words: list[str]) -> list[str]:
    """The words of a noun phrase up to its first function word ("customer care after ..." -> customer care)."""
    out = []
    for word in words:
        if word in STOP:
            break
        out.append(word)
    return out


def _subject(words: list[str]) -> list[str]:
    """The content words of the noun phrase that ends ``words`` (after its last comma)."""
    start = max((i + 1 for i, w in enumerate(words) if w == ","), default=0)
    return [w for w in words[start:] if w not in STOP and w not in _DETERMINERS and w != ","]


def _next_content(words: list[str]) -> str | None:
    return next((w for w in words if w not in STOP and w not in _AUXILIARY), None)
