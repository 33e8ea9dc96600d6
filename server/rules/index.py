"""What the rules engine needs from the index, and citation resolution against it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from strongroom.server.models import RuleCitation
from strongroom.server.store.records import ChunkRecord, DocumentRecord, SourceState


class RecordIndex(Protocol):
    """The narrow part of the catalog the rules engine reads."""

    def record(self, source: str, key: str) -> DocumentRecord | None: ...

    def document(self, document_id: str) -> DocumentRecord | None: ...

    def document_hashes(self, source: str) -> dict[str, str]: ...

    def chunk_ids(self, document_id: str) -> list[str]: ...

    def document_chunks(self, document_id: str) -> list[ChunkRecord]: ...

    def source_states(self) -> list[SourceState]: ...

    def index_version(self) -> int: ...


@dataclass(frozen=True)
class ResolvedCitation:
    """A citation with the source of its document, so callers who may not see it get none."""

    citation: RuleCitation
    source: str


class CitationError(ValueError):
    """A citation does not resolve; the message says why and what exists instead."""


_NUMBERING = re.compile(r"^\s*(?:(?:\d+|[ivxlc]+|[a-z])(?:\.\d+)*[.)]|\d+(?:\.\d+)+)\s+", re.IGNORECASE)


def normalise_heading(text: str) -> str:
    """``"## 2. Return windows"`` and ``"return windows"`` compare equal."""
    text = re.sub(r"[*_`#]+", " ", text)
    text = _NUMBERING.sub("", text.strip())
    return re.sub(r"\s+", " ", text).strip(" .:;-").casefold()


def resolve_citation(
    index: RecordIndex, sources: Sequence[str], document: str, heading: str | None
) -> ResolvedCitation:
    doc = _find_document(index, sources, document)
    if heading is None:
        first = index.chunk_ids(doc.id)[:1]
        citation = RuleCitation(
            document_id=doc.id, title=doc.title, uri=doc.uri, offset=0, chunk_id=first[0] if first else None
        )
        return ResolvedCitation(citation, doc.source)
    chunks = index.document_chunks(doc.id)
    wanted = normalise_heading(heading)
    for chunk in chunks:
        for title in chunk.headings:
            if normalise_heading(title) == wanted:
                offset = _heading_offset(doc.text, title)
                if offset is None or not chunk.start - 200 <= offset <= chunk.end:
                    offset = chunk.start
                citation = RuleCitation(
                    document_id=doc.id,
                    title=doc.title,
                    uri=doc.uri,
                    heading=title,
                    offset=offset,
                    chunk_id=_chunk_at(chunks, offset) or chunk.id,
                )
                return ResolvedCitation(citation, doc.source)
    headings = list(dict.fromkeys(h for c in chunks for h in c.headings if h != doc.title))
    known = "; ".join(headings[:20]) or "none"
    raise CitationError(f"no heading {heading!r} in {doc.id} (its headings: {known})")


def _find_document(index: RecordIndex, sources: Sequence[str], document: str) -> DocumentRecord:
    doc = index.document(document)
    if doc is not None:
        return doc
    suffix = "/" + document.lstrip("/")
    candidates = [
        f"{source}/{sid}"
        for source in sources
        for sid in index.document_hashes(source)
        if f"{source}/{sid}".endswith(suffix)
    ]
    if len(candidates) == 1:
        found = index.document(candidates[0])
        if found is not None:
            return found
    if len(candidates) > 1:
        raise CitationError(f"document {document!r} is ambiguous: {', '.join(sorted(candidates)[:5])}")
    synced = [s for s in index.source_states() if s.last_synced is not None]
    hint = " (nothing is indexed yet: run `strongroom sync`)" if not synced else ""
    raise CitationError(f"no indexed document {document!r}{hint}; use a document_id as search returns it")


def _heading_offset(text: str, title: str) -> int | None:
    m = re.search(rf"^#{{1,6}}[ \t]+{re.escape(title)}[ \t]*#*[ \t]*$", text, re.MULTILINE)
    return m.start() if m else None


def _chunk_at(chunks: Sequence[ChunkRecord], offset: int) -> str | None:
    for chunk in chunks:
        if chunk.start <= offset < chunk.end:
            return chunk.id
    return None
