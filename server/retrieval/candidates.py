"""First stage: ranked candidates ``(chunk id, score)`` from the vector and keyword indexes.

Filters travel inside both queries. Ids that are not committed in the catalog (vectors of
an interrupted sync) are dropped by the shaping stage, so nothing half-written is returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from strongroom.server.embedder import Embedder
from strongroom.server.store.catalog import Catalog, query_words
from strongroom.server.store.records import SearchFilter
from strongroom.server.store.vectors import VectorStore, chroma_where


def dense_candidates(
    vectors: VectorStore, embedder: Embedder, query: str, n: int, where: SearchFilter
) -> list[tuple[str, float]]:
    """Nearest chunks by cosine similarity (1 - cosine distance)."""
    matches = vectors.query(embedder.embed_query(query), n, chroma_where(where))
    return [(m.id, 1.0 - m.distance) for m in matches]


def keyword_candidates(
    catalog: Catalog, query: str, n: int, where: SearchFilter, postings: int | None = None
) -> list[tuple[str, float]]:
    """Best BM25 matches (higher is better).

    BM25 scores every chunk that holds any word of the query, so its cost grows with the index:
    at 100k chunks an ordinary question's common words match a quarter of them. With
    ``postings``, the query keeps its rarest words while the chunks holding them number at most
    that (see :func:`rarest_words`).
    """
    words = query_words(query)
    if postings is not None and len(words) > 1:
        words = rarest_words(words, catalog.word_counts(words), postings)
    return [(m.id, m.score) for m in catalog.keyword_search(" ".join(words), n, where)]


def rarest_words(words: Sequence[str], counts: Mapping[str, int], postings: int) -> list[str]:
    """``words`` without the most common ones, in query order: the rarest first, as long as the
    chunks holding the words kept number at most ``postings`` in all (the rarest is always kept).

    What is left out weighs least in BM25 (its idf is lowest). On the Python manual, leaving out
    as much as the default does at 100k chunks cost the hybrid ranking 0.0015 nDCG@10 and BM25
    alone 0.05 (benchmarks/RESULTS.md, Scaling).
    """
    kept: set[str] = set()
    total = 0
    for word in sorted(words, key=lambda w: counts.get(w, 0)):
        count = counts.get(word, 0)
        if kept and total + count > postings:
            break
        kept.add(word)
        total += count
    return [w for w in words if w in kept]


def exact_candidates(
    catalog: Catalog, phrases: Sequence[str], n: int, where: SearchFilter
) -> list[tuple[str, float]]:
    """Best BM25 matches of chunks that hold one of ``phrases`` word for word (identifiers)."""
    return [(m.id, m.score) for m in catalog.keyword_search("", n, where, phrases=phrases)]
