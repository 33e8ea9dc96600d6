"""Last stage: turn fused chunk ids into cited hits."""

from __future__ import annotations

from collections.abc import Sequence

from strongroom.server.models import SearchHit
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.records import DocumentRecord


def shape_hits(catalog: Catalog, fused: Sequence[tuple[str, float]], k: int) -> list[SearchHit]:
    """The top ``k`` committed chunks with their citations; unknown ids are skipped."""
    chunks = catalog.chunks([cid for cid, _ in fused])
    hits: list[SearchHit] = []
    documents: dict[str, DocumentRecord] = {}
    for cid, score in fused:
        chunk = chunks.get(cid)
        if chunk is None:
            continue
        doc = documents.get(chunk.document_id) or catalog.document(chunk.document_id)
        if doc is None:
            continue
        documents[doc.id] = doc
        hits.append(
            SearchHit(
                id=chunk.id,
                document_id=doc.id,
                source=doc.source,
                title=doc.title,
                uri=doc.uri,
                text=chunk.text,
                score=round(score, 6),
                chunk_index=chunk.index,
                start=chunk.start,
                end=chunk.end,
                page=chunk.page,
                headings=list(chunk.headings),
                flags=list(chunk.flags),
            )
        )
        if len(hits) == k:
            break
    return hits
