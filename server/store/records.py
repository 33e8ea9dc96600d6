"""Plain records passed between indexing, the store and retrieval."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MetadataValue = str | int | float | bool


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
    ``labels`` is access control: None sees every document, otherwise a document is visible
    when it has no labels or shares one with these.
    """

    sources: tuple[str, ...] | None = None
    labels: frozenset[str] | None = None
    metadata: dict[str, MetadataValue | list[MetadataValue]] = field(default_factory=dict)
