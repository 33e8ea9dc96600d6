"""Hybrid retrieval: candidates → fusion → shaping. Each stage is a plain function."""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.server.indexing.embedder import Embedder
from strongroom.server.models import SearchHit
from strongroom.server.retrieval.candidates import dense_candidates, keyword_candidates
from strongroom.server.retrieval.fusion import reciprocal_rank_fusion
from strongroom.server.retrieval.shaping import shape_hits
from strongroom.server.settings import RetrievalSettings
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.records import SearchFilter
from strongroom.server.store.vectors import VectorStore


@dataclass
class Retriever:
    settings: RetrievalSettings
    catalog: Catalog
    vectors: VectorStore
    embedder: Embedder

    def search(self, query: str, k: int, where: SearchFilter) -> list[SearchHit]:
        n = max(self.settings.candidates, k)
        rankings = [
            dense_candidates(self.vectors, self.embedder, query, n, where),
            keyword_candidates(self.catalog, query, n, where),
        ]
        fused = reciprocal_rank_fusion(rankings, k=self.settings.rrf_k)
        return shape_hits(self.catalog, fused, k)
