"""Last stage: turn fused chunk ids into cited hits."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from strongroom.server.models import SearchHit
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.records import document_of_chunk


def shape_hits(
    catalog: Catalog,
    fused: Sequence[tuple[str, float]],
    k: int,
    per_document: int | None = None,
    *,
    sources: Collection[str] | None = None,
) -> list[SearchHit]:
    """The top ``k`` committed chunks with their citations, at most ``per_document`` from one
    document and only from ``sources`` (None: any); unknown ids are skipped. Of the documents,
    only their heads (source, title, uri) are read, in one query: never their text."""
    cap = per_document or k
    wanted: list[str] = []
    per_doc: dict[str, int] = {}
    for cid, _ in fused:  # read only chunks that can be shown (with room for uncommitted ones)
        doc_id = document_of_chunk(cid)
        if per_doc.get(doc_id, 0) < cap:
            per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
            wanted.append(cid)
            if len(wanted) == 3 * k:
                break
    chunks = catalog.chunks(wanted)
    heads = catalog.document_heads(list(dict.fromkeys(c.document_id for c in chunks.values())))
    hits: list[SearchHit] = []
    taken: dict[str, int] = {}
    for cid, score in fused:
        chunk = chunks.get(cid)
        doc = heads.get(chunk.document_id) if chunk else None
        if chunk is None or doc is None or taken.get(doc.id, 0) == cap:
            continue
        if sources is not None and doc.source not in sources:
            continue
        taken[doc.id] = taken.get(doc.id, 0) + 1
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
