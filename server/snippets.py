"""Snippets a person reads (``strongroom search``): the passage's best-matching sentence with as
many neighbours as fit, as plain text. The MCP tools return the whole passage instead.

Markup goes: Markdown (headings, emphasis, links, images, code marks, tables) is parsed with
markdown-it, HTML tags with Beautiful Soup. Heading lines are left out, since the heading path
is printed with the hit. A record (``column: value`` lines) stays one line of its fields.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing

from bs4 import BeautifulSoup
from markdown_it import MarkdownIt
from markdown_it.token import Token

from strongroom.connectors.recordkit import record_fields
from strongroom.server.indexing.chunking import SENTENCE_END
from strongroom.server.store.catalog import query_words
from strongroom.server.store.sqlite import fts5_match

_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])
ELLIPSIS = "…"
MIN_PIECE = 30
"""The shortest start of a sentence worth showing after the ones that fit whole."""
_CLOSING = ".!?:;\u2026\u3002\uff01\uff1f\"'\u201d\u2019)]"
"""A block ending in one of these reads as finished: the next one follows after a space."""


def snippet(passage: str, query: str, limit: int) -> str:
    """At most ``limit`` characters of ``passage`` as plain text, centred on the sentence that
    best matches ``query``; ``…`` marks text left out."""
    fields = record_fields(passage)
    if fields is not None:
        return _clip(" · ".join(fields), 0, limit)
    units: list[str] = []
    joins: list[str] = []  # what goes before each unit: a space, or " · " after a block without a full stop
    for block in plain_blocks(passage):
        for n, sentence in enumerate(_sentences(block)):
            joins.append(" " if n or not units or units[-1][-1] in _CLOSING else " · ")
            units.append(sentence)
    if not units:
        return ""
    best, matched = _best(units, query)
    lead = ELLIPSIS if best else ""
    if len(units[best]) + len(lead) > limit:
        return lead + _clip(units[best], matched, limit - len(lead))
    lo, hi = _widen(units, joins, best, limit)
    text = (
        (ELLIPSIS if lo > 0 else "") + units[lo] + "".join(joins[i] + units[i] for i in range(lo + 1, hi + 1))
    )
    if hi + 1 == len(units):
        return text
    room = limit - len(text) - len(joins[hi + 1])
    if room < MIN_PIECE:
        return text + ELLIPSIS
    return text + joins[hi + 1] + _clip(units[hi + 1], 0, room)  # the start of the next sentence


def _widen(units: Sequence[str], joins: Sequence[str], best: int, limit: int) -> tuple[int, int]:
    """The first and last unit shown around ``best``: a sentence after, then one before, while
    they fit in ``limit`` (with room for the ellipses)."""
    lo = hi = best
    size = len(units[best]) + 2  # room for the ellipses
    grew = True
    while grew:
        grew = False
        if hi + 1 < len(units) and size + len(joins[hi + 1]) + len(units[hi + 1]) <= limit:
            hi += 1
            size += len(joins[hi]) + len(units[hi])
            grew = True
        if lo > 0 and size + len(joins[lo]) + len(units[lo - 1]) <= limit:
            size += len(joins[lo]) + len(units[lo - 1])
            lo -= 1
            grew = True
    return lo, hi


def plain_text(markdown: str) -> str:
    """One line of Markdown or HTML (a heading, a title) without its markup."""
    return " ".join(_inline_text(token) for token in _MARKDOWN.parseInline(markdown)).strip()


def plain_blocks(passage: str) -> list[str]:
    """The passage's paragraphs, list items, table rows and code blocks without markup, each on
    one line; headings are left out unless there is nothing else."""
    blocks: list[str] = []
    headings: list[str] = []
    row: list[str] | None = None
    in_heading = False
    for token in _MARKDOWN.parse(passage):
        if token.type in ("heading_open", "heading_close"):
            in_heading = token.type == "heading_open"
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            blocks.append(" | ".join(cell for cell in row if cell))
            row = None
        elif token.type == "inline":
            text = _inline_text(token)
            (headings if in_heading else row if row is not None else blocks).append(text)
        elif token.type in ("fence", "code_block"):
            blocks.append(token.content)
        elif token.type == "html_block":
            blocks.append(BeautifulSoup(token.content, "html.parser").get_text(" "))
    lines = [" ".join(block.split()) for block in blocks or headings]
    return [line for line in lines if line]


def _inline_text(token: Token) -> str:
    """The text of an inline token: link and image text kept, tags and emphasis marks dropped."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(_inline_text(child))
    return "".join(parts)


def _sentences(block: str) -> list[str]:
    ends = [m.end() for m in SENTENCE_END.finditer(block)]
    starts = [0, *ends]
    pieces = [block[a:b].strip() for a, b in zip(starts, [*ends, len(block)], strict=True)]
    return [p for p in pieces if p]


def _best(sentences: Sequence[str], query: str) -> tuple[int, int]:
    """The sentence that best matches ``query``, ranked as the keyword index ranks passages
    (SQLite FTS5, Porter stems, BM25), and where in it the first matching word starts; the
    first sentence when none matches."""
    match = fts5_match(query_words(query))
    if match is None:
        return 0, 0
    with closing(sqlite3.connect(":memory:")) as db:
        db.execute("CREATE VIRTUAL TABLE s USING fts5(body, tokenize = 'porter unicode61')")
        db.executemany("INSERT INTO s(rowid, body) VALUES (?, ?)", enumerate(sentences, start=1))
        row = db.execute(
            "SELECT rowid, highlight(s, 0, char(2), '') FROM s WHERE s MATCH ? ORDER BY bm25(s), rowid LIMIT 1",
            (match,),
        ).fetchone()
    if row is None:
        return 0, 0
    return int(row[0]) - 1, max(0, str(row[1]).find("\x02"))


def _clip(text: str, around: int, limit: int) -> str:
    """At most ``limit`` characters of ``text`` cut at spaces, starting a little before ``around``."""
    if len(text) <= limit:
        return text
    start = max(0, min(around - limit // 3, len(text) - limit))
    if start:
        start = text.find(" ", start) + 1 or start
    lead = ELLIPSIS if start else ""
    room = limit - len(lead) - 1
    piece = text[start : start + room + 1]
    if len(text) - start > room:
        piece = piece[:room].rsplit(" ", 1)[0] if " " in piece[:room] else piece[:room]
        return lead + piece.rstrip(" ·|,;:") + ELLIPSIS
    return lead + piece
