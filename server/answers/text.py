"""Text pieces for answer checking: sentences, content words, numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from strongroom.server.stopwords import STOPWORDS

_EXTRA_STOPWORDS = frozenset(
    re.findall(
        r"\S+",
        """
        also may might must shall yes please thanks thank let lets us it's that's there's i'm you're
        we're they're can't won't don't doesn't isn't aren't didn't per via within without like
        however therefore so thus just well one ones
        """,
    )
)
_STOP = STOPWORDS | _EXTRA_STOPWORDS
STOP = _STOP  # function words: no claim of their own

_ABBREVIATIONS = frozenset(
    re.findall(
        r"\S+", "e.g i.e etc vs approx no nos st dr mr mrs ms inc ltd co corp dept ext fig jr sr u.s a.m p.m"
    )
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*[A-Za-z]|[A-Za-z]")
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\d])")
_SPELLED = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "fourteen": "14", "fifteen": "15", "eighteen": "18", "twenty": "20", "thirty": "30",
    "forty": "40", "forty-five": "45", "fifty": "50", "sixty": "60", "ninety": "90",
    "hundred": "100", "once": "1", "twice": "2", "single": "1", "double": "2", "half": "50",
}  # fmt: skip
_SPELLED_QUANTITY = re.compile(
    r"\b(" + "|".join(sorted(_SPELLED, key=len, reverse=True)) + r")[\s-]+"
    r"(?:(?:business|calendar|working|full)\s+)?"
    r"(?:days?|weeks?|months?|years?|hours?|minutes?|percent|per\s+cent|dollars?|points?|times?)\b",
    re.IGNORECASE,
)
# A spelled count before a noun ("three photos"); "one", "once", "half" are too often not counts.
_SPELLED_COUNT = re.compile(
    r"\b("
    + "|".join(w for w in _SPELLED if w not in ("zero", "one", "once", "single", "double", "half"))
    + r")\s+(?=[A-Za-z])",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]*[A-Z0-9$*_])")


@dataclass(frozen=True)
class Span:
    """A sentence and where it is in the text it came from."""

    start: int
    end: int
    text: str


def split_sentences(text: str) -> list[Span]:
    """Sentences of a draft or passage.

    Hard-wrapped paragraph lines are joined; headings, list items and table rows stand alone,
    and headings and table rows are not cut further.
    """
    spans: list[Span] = []
    for start, end, whole in _blocks(text):
        spans += [_span(text, start, end)] if whole else _split_block(text, start, end)
    return [s for s in spans if re.search(r"[A-Za-z0-9]", s.text)]


_HEADING = re.compile(r"^\s*#{1,6}\s+")
_QUOTE = re.compile(r"^\s*>\s?")


def _blocks(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, whole) of paragraphs, headings, list items and table rows, markers excluded."""
    blocks: list[tuple[int, int, bool]] = []
    joinable = False
    offset = 0
    for line in text.splitlines(keepends=True):
        line_start = offset
        offset += len(line)
        body = line.rstrip("\r\n")
        stripped = body.strip()
        if not stripped or re.fullmatch(r"[|\-: >]+", stripped):  # blank, a table rule, an empty quote line
            joinable = False
            continue
        end = line_start + len(body.rstrip())
        heading = _HEADING.match(body)
        if heading or stripped.startswith("|"):
            blocks.append(
                (line_start + (heading.end() if heading else len(body) - len(body.lstrip())), end, True)
            )
            joinable = False
            continue
        marker = _QUOTE.match(body)
        rest = body[marker.end() :] if marker else body
        bullet = _BULLET.match(rest)
        skip = (marker.end() if marker else 0) + (bullet.end() if bullet else len(rest) - len(rest.lstrip()))
        if joinable and bullet is None and blocks:
            blocks[-1] = (blocks[-1][0], end, False)  # a wrapped line continues the paragraph or item
            continue
        blocks.append((line_start + skip, end, False))
        joinable = True
    return blocks


def _split_block(text: str, start: int, end: int) -> list[Span]:
    out: list[Span] = []
    segment_start = start
    for m in _BOUNDARY.finditer(text, start, end):
        before = text[segment_start : m.start()]
        last_word = re.search(r"([A-Za-z.]+)[.!?]*[\"')\]]*$", before)
        if last_word and last_word.group(1).rstrip(".").lower() in _ABBREVIATIONS:
            continue
        if re.search(r"\b[A-Z]\.$", before.rstrip("\"')]")):  # an initial: "J. Smith"
            continue
        out.append(_span(text, segment_start, m.start()))
        segment_start = m.end()
    out.append(_span(text, segment_start, end))
    return [s for s in out if s.text]


def _span(text: str, start: int, end: int) -> Span:
    chunk = text[start:end]
    lead = len(chunk) - len(chunk.lstrip())
    trail = len(chunk.rstrip())
    clean = re.sub(r"\n[ \t]*>[ \t]?", " ", chunk.strip()).replace("**", "").replace("__", "")
    return Span(start + lead, start + trail, re.sub(r"\s+", " ", clean))


def stem(word: str) -> str:
    """A light, symmetric suffix strip: returns/returned/returning -> return."""
    w = word.lower().replace("\u2019", "'").strip("'-")
    if w.endswith("'s"):
        w = w[:-2]
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("ly", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not w.endswith("ss"):
            w = w[: -len(suffix)] + keep
            break
    return w


def content_words(text: str) -> list[str]:
    """Stemmed words that carry meaning (no function words, no numbers)."""
    words = []
    for m in _WORD.finditer(text):
        w = m.group().lower().replace("\u2019", "'")
        if w in _STOP or w in _SPELLED or len(w) < 2:
            continue
        words.append(stem(w))
    return words


def numbers(text: str) -> set[str]:
    """Numbers stated in the text, normalised: ``$1,250.00`` -> ``1250``, ``thirty`` -> ``30``."""
    found: set[str] = set()
    for m in _NUMBER.finditer(text):
        raw = m.group().replace(",", "")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            continue
        found.add(_normal(value))
    for m in [*_SPELLED_QUANTITY.finditer(text), *_SPELLED_COUNT.finditer(text)]:
        found.add(_SPELLED[m.group(1).lower()])
    return found


def spelled_value(word: str) -> str | None:
    """The value of a spelled number that counts things ("two", "twelve"), else None."""
    w = word.lower()
    return None if w in ("once", "single", "double", "half") else _SPELLED.get(w)


def _normal(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")
