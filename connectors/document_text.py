"""The Document text convention, read in one place: ``#`` heading lines, fenced code blocks and
a form feed between pages (see :class:`strongroom.connectors.api.Document`).

The format parsers write it; the connectors take a title from it (:func:`first_heading`), and
the server's chunker and snippets read its structure (:func:`atx_heading`, :func:`line_kinds`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Literal

PAGE_BREAK = "\f"
"""Between the pages of a paged document (PDF)."""

# Only the opening: a pattern that also matched the closing ``#``s and trailing blanks
# backtracked quadratically over a long run of spaces.
_ATX_OPEN = re.compile(r" {0,3}(?P<hashes>#{1,6})(?:[ \t]|$)")
_FENCE = re.compile(r" {0,3}(?P<marker>`{3,}|~{3,})")
_BLANKS = " \t"

Heading = tuple[int, str]
"""``(level, title)`` of a heading line."""
LineKind = Heading | Literal["fence", "code", "blank", "text"]


def atx_heading(line: str) -> Heading | None:
    """``(level, title)`` of a ``#`` heading line (one line, no newline), else None.

    ``"## Fees ##"`` → ``(2, "Fees")``; the closing ``#``s go only after a blank, so
    ``"# C#"`` keeps its title. Linear in the line's length.
    """
    opening = _ATX_OPEN.match(line)
    if opening is None:
        return None
    title = line[opening.end() :].strip(_BLANKS)
    unclosed = title.rstrip("#")
    if unclosed != title and unclosed[-1:] in (" ", "\t"):
        title = unclosed.rstrip(_BLANKS)
    return (len(opening["hashes"]), title) if title else None


def line_kinds(lines: Iterable[str]) -> Iterator[LineKind]:
    """What each line is: a heading's ``(level, title)``; ``"fence"``, the line opening a fenced
    code block; ``"code"``, a line inside one (its closing line too); ``"blank"``; or ``"text"``."""
    fence: str | None = None
    for line in lines:
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            yield "code"
        elif heading := atx_heading(line):
            yield heading
        elif opened := _FENCE.match(line):
            fence = opened["marker"]
            yield "fence"
        else:
            yield "text" if line.strip() else "blank"


def first_heading(text: str) -> str | None:
    """The text of the first ``#`` heading line outside fenced code blocks, if any."""
    for kind in line_kinds(text.split("\n")):
        if isinstance(kind, tuple):
            return kind[1]
    return None
