"""First stage: ranked candidate chunk ids from the vector index and the keyword index.

Filters travel inside both queries. Ids that are not committed in the catalog (vectors of
an interrupted sync) are dropped here, so nothing half-written is ever returned.
"""

from __future__ import annotations

from strongroom.server.indexing.embedder import Embedder
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.records import SearchFilter
from strongroom.server.store.vectors import VectorStore, chroma_where


def dense_candidates(
    vectors: VectorStore, embedder: Embedder, query: str, n: int, where: SearchFilter
) -> list[str]:
    matches = vectors.query(embedder.embed_query(query), n, chroma_where(where))
    return [m.id for m in matches]


def keyword_candidates(catalog: Catalog, query: str, n: int, where: SearchFilter) -> list[str]:
    return [m.id for m in catalog.keyword_search(query, n, where)]
