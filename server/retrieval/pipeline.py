"""Hybrid retrieval: candidates → fusion → shaping. Each stage is a plain function."""

from __future__ import annotations

import re
from dataclasses import dataclass

from strongroom.server.indexing.embedder import Embedder
from strongroom.server.models import SearchHit
from strongroom.server.retrieval.candidates import dense_candidates, keyword_candidates
from strongroom.server.retrieval.fusion import Ranking, reciprocal_rank_fusion, relative_score_fusion
from strongroom.server.retrieval.shaping import shape_hits
from strongroom.server.settings import RetrievalSettings
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.records import SearchFilter
from strongroom.server.store.vectors import VectorStore

# A code, an order number, a SKU: letters mixed with digits, or four digits and more.
_IDENTIFIER = re.compile(r"\b(?=\w*\d)(?=\w*[^\W\d])\w{3,}\b|\b\d{4,}\b")


def dense_weight_for(settings: RetrievalSettings, query: str) -> float:
    """The dense ranker's share; lower when the query names an identifier, which only the
    keyword index can match exactly (embeddings blur "4471" and "4475")."""
    if _IDENTIFIER.search(query):
        return min(settings.dense_weight, settings.identifier_dense_weight)
    return settings.dense_weight


def fuse(
    settings: RetrievalSettings, dense: Ranking, keyword: Ranking, query: str = ""
) -> list[tuple[str, float]]:
    """Combine the two rankings as configured (``retrieval.fusion``)."""
    if settings.fusion == "rrf":
        return reciprocal_rank_fusion([dense, keyword], k=settings.rrf_k)
    weight = dense_weight_for(settings, query)
    return relative_score_fusion([dense, keyword], [weight, 1.0 - weight])


@dataclass
class Retriever:
    settings: RetrievalSettings
    catalog: Catalog
    vectors: VectorStore
    embedder: Embedder

    def search(self, query: str, k: int, where: SearchFilter) -> list[SearchHit]:
        n = max(self.settings.candidates, k)
        dense = dense_candidates(self.vectors, self.embedder, query, n, where)
        keyword = keyword_candidates(self.catalog, query, n, where)
        return shape_hits(self.catalog, fuse(self.settings, dense, keyword, query), k)
