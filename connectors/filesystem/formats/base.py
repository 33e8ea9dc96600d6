"""What every format parser returns, and the small text helpers they share.

The Document text convention itself (headings, fences, pages) is read by :mod:`...document_text`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ...api import JsonScalar
from ...document_text import first_heading

__all__ = [
    "ParseError",
    "Parsed",
    "Parser",
    "collapse_whitespace",
    "error_reason",
    "first_heading",
    "format_size",
    "normalise_line_ends",
    "tidy",
]

_LINE_END = re.compile(r"\r\n?")
_BLANK_RUN = re.compile(r"\n{3,}")
_BLANKS = " \t"
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


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
    text = "\n".join(line.rstrip(_BLANKS) for line in normalise_line_ends(text).split("\n"))
    return _BLANK_RUN.sub("\n\n", text).strip()


def collapse_whitespace(text: str) -> str:
    """Collapse every run of whitespace into one space and strip the ends."""
    return " ".join(text.split())


def error_reason(exc: BaseException, limit: int = 160) -> str:
    """A one-line description of ``exc``, at most ``limit`` characters, for a skip reason."""
    text = collapse_whitespace(str(exc)) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_size(size: int) -> str:
    """``20971520`` → ``"20 MiB"``, ``1536`` → ``"1.5 KiB"``, ``100`` → ``"100 bytes"``."""
    exponent = 0
    while exponent < len(_UNITS) - 1 and size >= 1024 ** (exponent + 1):
        exponent += 1
    value = f"{size / 1024**exponent:.1f}".removesuffix(".0")
    return f"{value} {_UNITS[exponent]}"
