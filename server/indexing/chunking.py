"""Cutting a document's text into passages that follow its structure.

The text follows the Document convention: ``#`` heading lines, blank lines between
paragraphs, ``\\f`` between pages. A heading starts a new chunk, a chunk never spans a page
break, paragraphs are packed up to ``max_chars``, and a paragraph longer than that is cut at
sentence ends, else at whitespace, else anywhere. Offsets index the original text exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from strongroom.connectors.document_text import PAGE_BREAK, line_kinds

CHUNKER_VERSION = 2
"""Part of every document's content hash: a change of how text is cut re-chunks the index."""
SHORT_CHARS = 150
"""A chunk shorter than this (and than ``min_chars``): a heading with a line under it, a one-line
section, joins a neighbour; alone it would outrank real answers on its heading's words."""
MERGE_SLACK = 1.25
"""A small trailing piece may make its section's previous chunk this much longer than max_chars."""

# . ! ? or an ellipsis, closing quotes or brackets, then whitespace; or an ideographic full stop,
# exclamation or question mark, which need no space after them.
SENTENCE_END = re.compile(r"[.!?\u2026]['\"\u2019\u201d)\]]*(?=\s)|[\u3002\uff01\uff1f]")


@dataclass(frozen=True)
class Chunk:
    """One passage: ``text == source[start:end]``, with the heading path and page it sits under."""

    index: int
    start: int
    end: int
    text: str
    headings: tuple[str, ...] = ()
    page: int | None = None
    """1-based page number when the text has ``\\f`` page breaks, else None."""

    @property
    def embedding_text(self) -> str:
        """What gets embedded: the heading path (``A > B``), a blank line, then the text."""
        if not self.headings:
            return self.text
        return " > ".join(self.headings) + "\n\n" + self.text


@dataclass(frozen=True)
class _Span:
    """A stripped span of the text under one heading path on one page.

    As a block it is a heading line or a (piece of a) paragraph; as a draft chunk, a run of
    blocks. ``continued`` marks a chunk that only starts because its predecessor was full.
    """

    start: int
    end: int
    headings: tuple[str, ...]
    page: int | None
    is_heading: bool
    has_body: bool = False
    continued: bool = False


def chunk_text(text: str, *, max_chars: int = 1000, min_chars: int = 200) -> list[Chunk]:
    """Cut ``text`` into chunks of at most ``max_chars``, deterministically.

    A chunk may reach ``MERGE_SLACK`` times that in three cases: a section's trailing piece
    shorter than ``min_chars`` merged into the chunk before it, headings kept together with
    the paragraph under them, and a section shorter than ``SHORT_CHARS`` (and ``min_chars``)
    joined to a neighbour.
    """
    if max_chars < 1 or min_chars < 0:
        raise ValueError("max_chars must be at least 1 and min_chars at least 0")
    spans = _pack(text, _blocks(text), max_chars, min_chars)
    spans = _merge_short(spans, max_chars, min(SHORT_CHARS, min_chars))
    return [
        Chunk(index=i, start=s.start, end=s.end, text=text[s.start : s.end], headings=s.headings, page=s.page)
        for i, s in enumerate(spans)
    ]


def _merge_short(spans: list[_Span], max_chars: int, short: int) -> list[_Span]:
    """Join each chunk shorter than ``short`` to its previous neighbour on the same page, else
    to the next, if the two fit in ``MERGE_SLACK * max_chars``; the joined chunk keeps the
    heading path both share. A short chunk with no neighbour that fits stays as it is."""
    limit = int(max_chars * MERGE_SLACK)
    done: list[_Span] = []
    pending: _Span | None = None  # a short chunk waiting to join the next one
    for span in spans:
        if pending is not None:
            if pending.page == span.page and span.end - pending.start <= limit:
                span = _join(pending, span)
            else:
                done.append(pending)
            pending = None
        if span.end - span.start >= short:
            done.append(span)
        elif done and done[-1].page == span.page and span.end - done[-1].start <= limit:
            done[-1] = _join(done[-1], span)
        else:
            pending = span
    if pending is not None:
        done.append(pending)
    return done


def _join(first: _Span, second: _Span) -> _Span:
    shared = 0
    while shared < min(len(first.headings), len(second.headings)) and (
        first.headings[shared] == second.headings[shared]
    ):
        shared += 1
    return replace(first, end=second.end, headings=first.headings[:shared], has_body=True)


def _blocks(text: str) -> Iterator[_Span]:
    """Heading lines and paragraphs, in order, each with its heading path and page."""
    pages = text.split(PAGE_BREAK)
    path: list[tuple[int, str]] = []
    offset = 0
    for number, page_text in enumerate(pages, start=1):
        page = number if len(pages) > 1 else None
        for start, end, heading in _page_blocks(text, offset, offset + len(page_text)):
            if heading is not None:
                path = [h for h in path if h[0] < heading[0]] + [heading]
            titles = tuple(title for _, title in path)
            yield _Span(start, end, titles, page, is_heading=heading is not None, has_body=heading is None)
        offset += len(page_text) + len(PAGE_BREAK)


def _page_blocks(text: str, start: int, end: int) -> Iterator[tuple[int, int, tuple[int, str] | None]]:
    """Stripped ``(start, end, heading)`` spans of one page; ``heading`` is ``(level, title)``
    for a heading line, None for a paragraph. A fenced code block is one paragraph."""
    paragraph: int | None = None
    lines = list(_lines(text, start, end))
    for (line_start, line_end), kind in zip(lines, line_kinds(text[a:b] for a, b in lines), strict=True):
        if kind == "code":
            continue
        if kind != "text" and paragraph is not None:  # a heading, a fence or a blank line ends it
            yield *_strip(text, paragraph, line_start), None
            paragraph = None
        if isinstance(kind, tuple):
            yield *_strip(text, line_start, line_end), kind
        elif kind == "fence" or (kind == "text" and paragraph is None):
            paragraph = line_start
    if paragraph is not None:
        yield *_strip(text, paragraph, end), None


def _lines(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each ``\\n``-separated line in ``text[start:end]``, newline excluded."""
    while (newline := text.find("\n", start, end)) != -1:
        yield start, newline
        start = newline + 1
    yield start, end


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    """Narrow ``[start, end)`` past leading and trailing whitespace (as ``str.strip`` does)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _split_long(text: str, block: _Span, max_chars: int, first_max: int) -> Iterator[_Span]:
    """``block`` itself if it fits in ``first_max``, else pieces: the first at most ``first_max``
    long, the others ``max_chars``, each cut as cleanly as possible."""
    start, limit = block.start, first_max
    while block.end - start > limit:
        cut = _cut_point(text, start, start + limit, limit // 3)
        yield replace(block, start=start, end=_strip(text, start, cut)[1])
        start, limit = _strip(text, cut, block.end)[0], max_chars
        block = replace(block, is_heading=False, has_body=True)
    yield replace(block, start=start)


def _cut_point(text: str, start: int, limit: int, min_piece: int) -> int:
    """Where to end a piece that starts at ``start`` and may not pass ``limit``: after the last
    sentence end, else at the last whitespace, at least ``min_piece`` in; else at ``limit``."""
    floor = start + min_piece
    sentence_ends = [m.end() for m in SENTENCE_END.finditer(text, floor, limit + 1) if m.end() <= limit]
    if sentence_ends:
        return sentence_ends[-1]
    for i in range(limit, floor, -1):
        if text[i].isspace():
            return i
    return limit


def _pack(text: str, blocks: Iterable[_Span], max_chars: int, min_chars: int) -> list[_Span]:
    """Greedily join consecutive blocks into chunks of at most ``max_chars``.

    A heading starts a new chunk unless the current one holds only headings (a heading with
    no text of its own joins its first subsection); a page break always does.
    """
    done: list[_Span] = []
    current: _Span | None = None
    for block in blocks:
        for piece in _split_long(text, block, max_chars, _first_piece_max(current, block, max_chars)):
            if current is None:
                current = piece
            elif piece.page != current.page or (piece.is_heading and current.has_body):
                _end_section(done, current, max_chars, min_chars)
                current = piece
            elif piece.end - current.start > _room(current, max_chars):
                done.append(current)
                current = replace(piece, continued=True)
            else:
                current = replace(
                    current,
                    end=piece.end,
                    headings=piece.headings,
                    has_body=current.has_body or piece.has_body,
                )
    if current is not None:
        _end_section(done, current, max_chars, min_chars)
    return done


def _room(current: _Span, max_chars: int) -> int:
    """How long ``current`` may grow: headings alone may take the slack to keep their text."""
    return max_chars if current.has_body else int(max_chars * MERGE_SLACK)


def _first_piece_max(current: _Span | None, block: _Span, max_chars: int) -> int:
    """How long the first piece of ``block`` may be: a paragraph too long for any chunk, right
    under headings, is cut to share their chunk; anything else gets a whole chunk."""
    if (
        current is None
        or current.has_body
        or block.is_heading
        or block.page != current.page
        or block.end - block.start <= max_chars
    ):
        return max_chars
    room = max_chars - (block.start - current.start)
    return room if room >= max_chars // 3 else max_chars


def _end_section(done: list[_Span], last: _Span, max_chars: int, min_chars: int) -> None:
    """Append a section's last chunk, merged into its predecessor if it is a tiny leftover."""
    if (
        last.continued
        and last.end - last.start < min_chars
        and last.end - done[-1].start <= int(max_chars * MERGE_SLACK)
    ):
        done[-1] = replace(done[-1], end=last.end, headings=last.headings, has_body=True)
    else:
        done.append(last)
