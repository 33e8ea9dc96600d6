"""Word (.docx) files: heading styles become ``#`` headings, tables become ``a | b`` rows."""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from .base import Parsed, ParseError, collapse_whitespace, error_reason, tidy

_HEADING_STYLE = re.compile(r"^Heading (?P<level>[1-9])$")
_LIST_STYLE = re.compile(r"^List")


def parse(data: bytes) -> Parsed:
    """A DOCX document; the core properties' title, if set, becomes the title."""
    try:
        document = docx.Document(io.BytesIO(data))
        styles = _StyleNames()
        blocks = [
            _paragraph(item, styles) if isinstance(item, Paragraph) else _table(item)
            for item in document.iter_inner_content()
        ]
        title = collapse_whitespace(document.core_properties.title or "")
    except Exception as exc:  # python-docx surfaces zip, XML and package errors alike
        raise ParseError(f"corrupt DOCX: {error_reason(exc)}") from exc
    return Parsed(title=title or None, text=tidy("\n\n".join(block for block in blocks if block)))


class _StyleNames:
    """Style names by style id: python-docx scans every style of the document on each
    ``Paragraph.style`` lookup, which made large documents take minutes."""

    def __init__(self) -> None:
        self._names: dict[str | None, str] = {}

    def of(self, paragraph: Paragraph) -> str:
        style_id = paragraph._p.style
        if style_id not in self._names:
            style = paragraph.style
            self._names[style_id] = (style.name if style is not None else None) or ""
        return self._names[style_id]


def unpacked_size(data: bytes) -> int:
    """The total uncompressed size of the DOCX's zip members, from its directory.

    The declared sizes bound what is read: Python's zipfile stops at a member's declared
    size and rejects the member if its data does not match.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ParseError(f"corrupt DOCX: {error_reason(exc)}") from exc


def _paragraph(paragraph: Paragraph, styles: _StyleNames) -> str:
    text = paragraph.text.strip()
    if not text:
        return ""
    style = styles.of(paragraph)
    if style == "Title":
        return f"# {collapse_whitespace(text)}"
    if heading := _HEADING_STYLE.match(style):
        level = min(int(heading["level"]), 6)
        return f"{'#' * level} {collapse_whitespace(text)}"
    if _LIST_STYLE.match(style):
        return f"- {text}"
    return text


def _table(table: Table) -> str:
    """One line per row, cells joined by `` | `` (a horizontally merged cell counted once)."""
    rows = []
    for row in table.rows:
        grid = row.cells  # a property that builds new cell objects on every access
        distinct = [cell for i, cell in enumerate(grid) if i == 0 or cell is not grid[i - 1]]
        cells = [text for cell in distinct if (text := collapse_whitespace(cell.text))]
        if cells:
            rows.append(" | ".join(cells))
    return "\n".join(rows)
