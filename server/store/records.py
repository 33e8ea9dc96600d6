"""Plain records passed between indexing, the store and retrieval."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MetadataValue = str | int | float | bool
#: A metadata field name both stores accept in a filter: an ASCII identifier of at most 64 characters.
METADATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: The integers both stores hold (SQLite and Chroma keep 64-bit signed integers).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


# Ids: a document is "<source>/<source id>"; a chunk "<document id>#<content hash>-<index>".
def document_id(source: str, source_id: str) -> str:
    return f"{source}/{source_id}"


def chunk_id(doc_id: str, content_hash: str, index: int) -> str:
    return f"{doc_id}#{content_hash[:10]}-{index}"


def document_of_chunk(chunk: str) -> str:
    """The document id a chunk id carries (see :func:`chunk_id`)."""
    return chunk.rpartition("#")[0]


def source_of_chunk(chunk: str) -> str:
    """The source a chunk id carries (source names have no ``/``; see :func:`document_id`)."""
    return chunk.partition("/")[0]


@dataclass(frozen=True)
class DocumentRecord:
    """A committed document. ``id`` is ``"<source>/<source_id>"``, unique across sources."""

    id: str
    source: str
    source_id: str
    title: str
    uri: str
    text: str
    content_hash: str
    updated_at: datetime | None
    metadata: dict[str, Any]
    fields: dict[str, Any] | None
    labels: tuple[str, ...]


@dataclass(frozen=True)
class ChunkRecord:
    """A passage of a document; ``text == document.text[start:end]``."""

    id: str
    document_id: str
    index: int
    start: int
    end: int
    page: int | None
    headings: tuple[str, ...]
    text: str
    flags: tuple[str, ...] = ()
    """Warnings about the passage found at index time, e.g. ``prompt_injection``."""


@dataclass(frozen=True)
class SourceState:
    name: str
    connector: str
    description: str
    documents: int
    chunks: int
    last_synced: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class SearchFilter:
    """Restrictions applied inside both the vector and the keyword query.

    ``sources`` None means every source; metadata values match exactly (a list: any of them).
    Access control is by source: the caller passes the sources it may see.
    """

    sources: tuple[str, ...] | None = None
    metadata: dict[str, MetadataValue | list[MetadataValue]] = field(default_factory=dict)
