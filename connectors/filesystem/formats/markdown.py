"""Markdown files: kept as written, minus YAML front matter."""

from __future__ import annotations

import re

from .base import Parsed, normalise_line_ends, tidy
from .plaintext import decode_text

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?P<body>.*?)\n?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_TITLE = re.compile(r"^title[ \t]*:(?P<value>.*)$", re.MULTILINE)  # stripped after: linear
_QUOTES = ('"', "'")


def parse(data: bytes) -> Parsed:
    """A Markdown file; the front matter's ``title``, if any, becomes the title."""
    front, body = split_front_matter(normalise_line_ends(decode_text(data)))
    return Parsed(title=_front_matter_title(front), text=tidy(body))


def split_front_matter(text: str) -> tuple[str, str]:
    """Split ``---``-fenced YAML front matter from the body; ``("", text)`` when there is none."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return "", text
    return match["body"], text[match.end() :]


def _front_matter_title(front: str) -> str | None:
    match = _TITLE.search(front)
    if match is None:
        return None
    value = match["value"].strip(" \t")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in _QUOTES:
        value = value[1:-1]
    elif value.startswith(("|", ">")):
        return None  # a multi-line YAML scalar: not worth a YAML parser for a title
    return value.strip() or None
