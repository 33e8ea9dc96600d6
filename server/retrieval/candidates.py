"""First stage: ranked candidates ``(chunk id, score)`` from the vector and keyword indexes.

Filters travel inside both queries. Ids that are not committed in the catalog (vectors of
an interrupted sync) are dropped by the shaping stage, so nothing half-written is returned.
"""

from __future__ import annotations

from collections.abc import Sequence

from strongroom.server.embedder import Embedder
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.records import SearchFilter
from strongroom.server.store.vectors import VectorStore, chroma_where


def dense_candidates(
    vectors: VectorStore, embedder: Embedder, query: str, n: int, where: SearchFilter
) -> list[tuple[str, float]]:
    """Nearest chunks by cosine similarity (1 - cosine distance)."""
    matches = vectors.query(embedder.embed_query(query), n, chroma_where(where))
    return [(m.id, 1.0 - m.distance) for m in matches]


def keyword_candidates(catalog: Catalog, query: str, n: int, where: SearchFilter) -> list[tuple[str, float]]:
    """Best BM25 matches (higher is better)."""
    return [(m.id, m.score) for m in catalog.keyword_search(query, n, where)]


def exact_candidates(
    catalog: Catalog, phrases: Sequence[str], n: int, where: SearchFilter
) -> list[tuple[str, float]]:
    """Best BM25 matches of chunks that hold one of ``phrases`` word for word (identifiers)."""
    return [(m.id, m.score) for m in catalog.keyword_search("", n, where, phrases=phrases)]
