"""Hybrid retrieval: candidates → fusion → shaping. Each stage is a plain function."""

from __future__ import annotations

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


def fuse(settings: RetrievalSettings, dense: Ranking, keyword: Ranking) -> list[tuple[str, float]]:
    """Combine the two rankings as configured (``retrieval.fusion``)."""
    if settings.fusion == "rrf":
        return reciprocal_rank_fusion([dense, keyword], k=settings.rrf_k)
    return relative_score_fusion([dense, keyword], [settings.dense_weight, 1.0 - settings.dense_weight])


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
        return shape_hits(self.catalog, fuse(self.settings, dense, keyword), k)
