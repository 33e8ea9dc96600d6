"""PDF files: the text of each page, pages separated by a form feed."""

from __future__ import annotations

import io
import logging

from pypdf import PasswordType, PdfReader

from ...document_text import PAGE_BREAK
from .base import Parsed, ParseError, collapse_whitespace, error_reason, tidy

logger = logging.getLogger(__name__)


def parse(data: bytes) -> Parsed:
    """A PDF: one text per page joined by ``\\f`` (empty pages kept, so page numbers hold)."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ParseError("encrypted PDF (needs a password)")
        pages = [_page_text(reader, number) for number in range(len(reader.pages))]
        title = _title(reader)
    except ParseError:
        raise
    except Exception as exc:  # pypdf raises many types on malformed input
        raise ParseError(f"corrupt PDF: {error_reason(exc)}") from exc
    return Parsed(title=title, text=PAGE_BREAK.join(pages), metadata={"pages": len(pages)})


def _page_text(reader: PdfReader, number: int) -> str:
    """One page's text; a page whose content cannot be read counts as empty."""
    try:
        text = reader.pages[number].extract_text()
    except Exception as exc:  # one unreadable page must not lose the others
        logger.debug("page %d: no text extracted: %s", number + 1, exc)
        return ""
    return tidy(text.replace(PAGE_BREAK, "\n"))


def _title(reader: PdfReader) -> str | None:
    metadata = reader.metadata
    title = metadata.title if metadata is not None else None
    if not isinstance(title, str):
        return None
    return collapse_whitespace(title) or None
