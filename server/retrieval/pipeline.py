"""Hybrid retrieval: candidates → fusion → shaping. Each stage is a plain function.

Fusion is by document: each ranker scores a document by its best chunks (the best one, plus
a decaying share of the next two: ``retrieval.document_evidence``), the documents are fused, and each document then brings its best chunks, at most ``per_document`` of them, so a
long page cannot crowd out a second page that also answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from strongroom.server.embedder import Embedder
from strongroom.server.models import SearchHit
from strongroom.server.retrieval.candidates import dense_candidates, exact_candidates, keyword_candidates
from strongroom.server.retrieval.fusion import (
    Ranking,
    confident_weights,
    group_evidence,
    reciprocal_rank_fusion,
    relative_score_fusion,
)
from strongroom.server.retrieval.shaping import shape_hits
from strongroom.server.settings import RetrievalSettings
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.records import SearchFilter, document_of_chunk, source_of_chunk
from strongroom.server.store.vectors import VectorStore

# What only exact matching finds: dotted, ``::`` and snake_case names (os.path.join,
# max_wal_size, __slots__), CamelCase names (ValueError), upper-case constants of five letters
# or more (PYTHONPATH, ENOENT), long options (--user), codes mixing letters and digits, whole
# with their hyphens (EN-346P3YD2, UTF-8), numbers.
_IDENTIFIER = re.compile(
    r"\w+(?:(?:\.|::)\w+)+|\b\w*[^\W_]_\w+|\b_\w+|\b[A-Z]?[a-z]+[A-Z]\w*|\b[A-Z][A-Z0-9]{4,}\b"
    r"|(?<![\w-])--[A-Za-z][\w-]+|\b(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+\b"
    r"|\b(?=\w*\d)(?=\w*[^\W\d])\w{3,}\b|\b\d{4,}\b"
)
_WORD = re.compile(r"[^\W_]+")


def identifiers(query: str) -> list[str]:
    """The identifiers a query names, as the keyword index's phrases (``os path join``)."""
    phrases = (" ".join(_WORD.findall(m.group())).lower() for m in _IDENTIFIER.finditer(query))
    return list(dict.fromkeys(p for p in phrases if p))


_TITLE_LEAD = re.compile(r"[\w.:]*\w")


def named_by_title(query: str, titles: Mapping[str, str]) -> list[tuple[str, float]]:
    """Documents whose title begins with a name the query gives, or with the module part of a
    dotted name: a reference page titled "time — Time access" defines ``time.perf_counter``.
    A document scores the share of the name its title gives (``time``: 1/2); best first."""
    names = [re.split(r"\.|::", m.group().lower()) for m in _IDENTIFIER.finditer(query)]
    named: dict[str, float] = {}
    for doc, title in titles.items():
        lead = _TITLE_LEAD.match(title.lstrip().lower())
        share = max((_share_named(lead.group(), parts) for parts in names), default=0.0) if lead else 0.0
        if share:
            named[doc] = share
    return sorted(named.items(), key=lambda kv: -kv[1])


def _share_named(lead: str, parts: Sequence[str]) -> float:
    """How much of the name ``parts`` a title's first word gives: all of it, a leading part, or none."""
    for size in range(len(parts), 0, -1):
        if lead in (".".join(parts[:size]), "::".join(parts[:size])):
            return size / len(parts)
    return 0.0


def candidate_documents(*rankings: Ranking) -> list[str]:
    """The documents of the chunks in ``rankings``, in order of first appearance."""
    return list(dict.fromkeys(document_of_chunk(cid) for r in rankings for cid, _ in r))


def dense_weight_for(settings: RetrievalSettings, query: str) -> float:
    """The dense ranker's share; lower when the query names an identifier, which only the
    keyword index can match exactly (embeddings blur "4471" and "4475")."""
    if settings.identifiers and identifiers(query):
        return min(settings.dense_weight, settings.identifier_dense_weight)
    return settings.dense_weight


def _fuse(
    settings: RetrievalSettings, rankings: Sequence[Ranking], weights: Sequence[float]
) -> list[tuple[str, float]]:
    if settings.fusion == "rrf":
        return reciprocal_rank_fusion(rankings, k=settings.rrf_k)
    floors = _floors(len(rankings))
    weights = confident_weights(rankings, weights, settings.confidence_gain, floors)
    return relative_score_fusion(rankings, weights, floors)


def _floors(count: int) -> list[float | None]:
    """Each ranking's floor (see :func:`normaliser`): the dense ranker's is its weakest
    candidate, a cosine meaning nothing in itself; the keyword-side rankers' (BM25, phrases,
    titles) is 0, what an unmatched passage scores, so a weak match is still a match."""
    return [None] + [0.0] * (count - 1)


def fuse(
    settings: RetrievalSettings,
    dense: Ranking,
    keyword: Ranking,
    query: str = "",
    exact: Ranking = (),
    titles: Mapping[str, str] | None = None,
) -> list[tuple[str, float]]:
    """Chunks ranked for shaping: documents in fused order, each document's chunks together,
    best first; a chunk's score is its document's. ``titles`` (of the candidates' documents,
    given when the query names an identifier) rank documents titled by the name as a third
    keyword-side ranker in document fusion."""
    weight = dense_weight_for(settings, query)
    rankings = [dense, keyword, exact] if exact else [dense, keyword]
    weights = [weight, 1.0 - weight, 1.0 - weight][: len(rankings)]
    chunks = _fuse(settings, rankings, weights)
    if settings.fusion_level == "chunk":
        return chunks
    evidence = [
        group_evidence(r, document_of_chunk, settings.document_evidence, floor=floor)
        for r, floor in zip(rankings, _floors(len(rankings)), strict=True)
    ]
    if named := named_by_title(query, titles or {}):
        evidence.append(named)
        weights.append(1.0 - weight)
    documents = _fuse(settings, evidence, weights)
    order = {doc: (rank, score) for rank, (doc, score) in enumerate(documents)}
    grouped = sorted(chunks, key=lambda c: order[document_of_chunk(c[0])][0])  # stable: best chunk first
    return [(cid, order[document_of_chunk(cid)][1]) for cid, _ in grouped]


@dataclass
class Retriever:
    settings: RetrievalSettings
    catalog: Catalog
    vectors: VectorStore
    embedder: Embedder
    keyword_pool: Executor | None = None
    """Where the keyword side of a search runs beside the dense side (None: one after the other)."""
    _sizes: tuple[int, dict[str, int]] | None = field(default=None, init=False, repr=False)

    def search(self, query: str, k: int, where: SearchFilter) -> list[SearchHit]:
        s = self.settings
        n = max(s.candidates, k)
        narrowed, factor = self.index_filter(where)
        m = n * factor

        def visible(ranking: Ranking) -> Ranking:
            return ranking if narrowed is where else only_sources(ranking, where.sources, n)

        names = identifiers(query) if s.identifiers else []

        def keyword_side() -> tuple[Ranking, Ranking]:
            keyword = keyword_candidates(self.catalog, query, m, narrowed, s.keyword_postings)
            exact = exact_candidates(self.catalog, names, m, narrowed) if names else []
            return visible(keyword), visible(exact)

        # The keyword queries run in SQLite (it releases the GIL) while the query is encoded
        # and Chroma searched: at 100k passages each side takes 8-9 ms on its own.
        pending = self.keyword_pool.submit(keyword_side) if self.keyword_pool else None
        dense = visible(dense_candidates(self.vectors, self.embedder, query, m, narrowed))
        keyword, exact = pending.result() if pending else keyword_side()
        titles = self._titles(dense, keyword, exact) if names else None
        fused = fuse(s, dense, keyword, query, exact, titles)
        return shape_hits(self.catalog, fused, k, s.per_document, sources=where.sources)

    def _titles(self, *rankings: Ranking) -> dict[str, str]:
        """The titles of the candidates' documents (their heads only)."""
        heads = self.catalog.document_heads(candidate_documents(*rankings))
        return {doc: head.title for doc, head in heads.items()}

    def index_filter(self, where: SearchFilter) -> tuple[SearchFilter, int]:
        """The filter the indexes apply, and by how much more than ``n`` candidates to ask them.

        A filter costs time in proportion to what it keeps, not what it drops: Chroma lists
        every passage it keeps before its nearest-neighbour search, and the keyword query joins
        each match to its document; at 100k passages a filter keeping everything costs over half
        a second. So a caller who may see every source the catalog knows gets no filter, and
        one who may see at least 1/``MAX_OVERSAMPLE`` of the passages gets none either but asks
        for that many times more candidates, of which those of other sources are dropped (an
        unfiltered query for 8 x 150 passages takes a fraction of a filtered one). Smaller shares
        and metadata filters are filtered in the indexes, which is cheap when little is kept.
        Shaping keeps only ``where.sources`` all the same, so a source registered meanwhile is
        never shown.
        """
        if where.sources is None or where.metadata:
            return where, 1
        if set(where.sources) >= self.catalog.source_names():
            return SearchFilter(), 1
        sizes = self._source_sizes()
        total = sum(sizes.values())
        kept = sum(sizes.get(name, 0) for name in set(where.sources))
        if not kept or kept * MAX_OVERSAMPLE < total:
            return where, 1
        return SearchFilter(), math.ceil(total / kept)

    def _source_sizes(self) -> dict[str, int]:
        """Chunks per source, counted again only when the index changed."""
        version = self.catalog.index_version()
        if self._sizes is None or self._sizes[0] != version:
            self._sizes = (version, {state.name: state.chunks for state in self.catalog.source_states()})
        return self._sizes[1]


MAX_OVERSAMPLE = 8
"""The most candidates an unfiltered query asks for, as a multiple of those wanted (see
:meth:`Retriever.index_filter`)."""


def only_sources(ranking: Ranking, sources: Sequence[str] | None, n: int) -> list[tuple[str, float]]:
    """The first ``n`` of ``ranking`` from ``sources`` (None: any)."""
    if sources is None:
        return list(ranking[:n])
    allowed = set(sources)
    return [(cid, score) for cid, score in ranking if source_of_chunk(cid) in allowed][:n]
