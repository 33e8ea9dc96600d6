"""What every format parser returns, and the small text helpers they share."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ...api import JsonScalar

_LINE_END = re.compile(r"\r\n?")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
_BLANK_RUN = re.compile(r"\n{3,}")
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(?P<title>.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(?P<marker>`{3,}|~{3,})")


class ParseError(Exception):
    """The file's content cannot be turned into text; the message is a short reason for users."""


@dataclass(frozen=True)
class Parsed:
    """A parsed file: its own title if it declares one, its text, and format-specific metadata.

    ``text`` follows the Document convention: ``#`` heading lines, a blank line between
    paragraphs and a form feed between PDF pages.
    """

    title: str | None
    text: str
    metadata: dict[str, JsonScalar] = field(default_factory=dict)


Parser = Callable[[bytes], Parsed]


def normalise_line_ends(text: str) -> str:
    """``\r\n`` and lone ``\r`` become ``\n``."""
    return _LINE_END.sub("\n", text)


def tidy(text: str) -> str:
    """Normalise line ends, drop trailing spaces, keep at most one blank line, strip the ends."""
    text = _TRAILING_SPACE.sub("", normalise_line_ends(text))
    return _BLANK_RUN.sub("\n\n", text).strip()


def collapse_whitespace(text: str) -> str:
    """Collapse every run of whitespace into one space and strip the ends."""
    return " ".join(text.split())


def error_reason(exc: BaseException, limit: int = 160) -> str:
    """A one-line description of ``exc``, at most ``limit`` characters, for a skip reason."""
    text = collapse_whitespace(str(exc)) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_heading(text: str) -> str | None:
    """The text of the first ``#`` heading line outside fenced code blocks, if any."""
    fence: str | None = None
    for line in text.split("\n"):
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        if opened := _FENCE.match(line):
            fence = opened["marker"]
        elif heading := _ATX_HEADING.match(line):
            return heading["title"]
    return None
