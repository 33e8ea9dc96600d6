"""File format parsers: bytes in, :class:`Parsed` text out, chosen by file extension."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import NamedTuple

from . import docx, html, markdown, pdf, plaintext
from .base import Parsed, ParseError, Parser, first_heading


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
    ".html": Format("html", html.parse),
    ".htm": Format("html", html.parse),
    ".pdf": Format("pdf", pdf.parse),
    ".docx": Format("docx", docx.parse, docx.unpacked_size),
}


def format_for(path: str | PurePath) -> Format:
    """The format for a file name by its extension (any case); unknown ones are read as plain text."""
    return FORMATS.get(PurePath(path).suffix.lower(), PLAINTEXT)


__all__ = ["FORMATS", "Format", "ParseError", "Parsed", "Parser", "first_heading", "format_for"]
