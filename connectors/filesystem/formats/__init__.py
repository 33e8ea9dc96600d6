"""File format parsers: bytes in, :class:`Parsed` text out, chosen by file extension.

The PDF, Word and HTML parsers import their libraries (pypdf, python-docx, BeautifulSoup: about
0.4 s together) on first use, so a server answers its handshake without them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any, NamedTuple

from ...document_text import first_heading
from . import markdown, plaintext
from .base import Parsed, ParseError, Parser

_DEFERRED = ("html", "pdf", "docx")


def import_parsers() -> None:
    """Import every parser's library now (an extraction worker does, before its time limits start)."""
    for module in _DEFERRED:
        importlib.import_module(f"{__name__}.{module}")


def _on_first_use(module: str, function: str) -> Callable[[bytes], Any]:
    def call(data: bytes) -> Any:
        return getattr(importlib.import_module(f"{__name__}.{module}"), function)(data)

    return call


class Format(NamedTuple):
    """A supported format: its short name (``metadata["format"]``), its parser and, for
    containers, how many bytes a file unpacks to (measured before parsing it)."""

    name: str
    parse: Parser
    unpacked_size: Callable[[bytes], int] | None = None


PLAINTEXT = Format("txt", plaintext.parse)

FORMATS: Mapping[str, Format] = {
    ".md": Format("md", markdown.parse),
    ".markdown": Format("md", markdown.parse),
    ".txt": PLAINTEXT,
    ".html": Format("html", _on_first_use("html", "parse")),
    ".htm": Format("html", _on_first_use("html", "parse")),
    ".pdf": Format("pdf", _on_first_use("pdf", "parse")),
    ".docx": Format("docx", _on_first_use("docx", "parse"), _on_first_use("docx", "unpacked_size")),
}


def format_for(path: str | PurePath) -> Format:
    """The format for a file name by its extension (any case); unknown ones are read as plain text."""
    return FORMATS.get(PurePath(path).suffix.lower(), PLAINTEXT)


__all__ = [
    "FORMATS",
    "Format",
    "ParseError",
    "Parsed",
    "Parser",
    "first_heading",
    "format_for",
    "import_parsers",
]
