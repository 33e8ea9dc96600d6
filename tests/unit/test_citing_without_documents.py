"""Search at scale: citing a passage never reads its whole document (search shaping, check_answer
and read windows read chunks, document heads and the window's characters only), the indexes filter
only when that narrows, and the keyword query keeps within its posting budget.

The document here is 4 MB: a whole-document read shows up both as a call to the catalog's
whole-document methods and as an allocation of the document's size.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy  # noqa: F401 - imported before the checker imports it under tracemalloc
import pytest

from strongroom.server.answers.checker import AnswerChecker
from strongroom.server.app import build_app
from strongroom.server.models import PolicyViolation
from strongroom.server.retrieval.candidates import keyword_candidates, rarest_words
from strongroom.server.retrieval.pipeline import Retriever, only_sources
from strongroom.server.retrieval.shaping import shape_hits
from strongroom.server.settings import AnswersSettings, RetrievalSettings, load_settings
from strongroom.server.store.catalog import Catalog, DocumentSlice
from strongroom.server.store.records import ChunkRecord, DocumentRecord, SearchFilter

SECTION = "Refunds are paid within 30 days of the return. " * 20  # 940 characters
SECTIONS = 4400  # about 4.1 MB of text
BIG = len(SECTION) * SECTIONS


class NoWholeDocuments(Catalog):
    """A catalog whose whole-document reads fail the test."""

    def document(self, document_id: str) -> DocumentRecord | None:
        raise AssertionError(f"read all of {document_id}")

    def documents(self, source: str | None = None) -> list[DocumentRecord]:
        raise AssertionError("read every document")

    def document_chunks(self, document_id: str) -> list[ChunkRecord]:
        raise AssertionError(f"read every chunk of {document_id}")


def _commit(catalog: Catalog, source: str, name: str, sections: int) -> list[ChunkRecord]:
    text = SECTION * sections
    record = DocumentRecord(
        id=f"{source}/{name}",
        source=source,
        source_id=name,
        title=f"The {name} policy",
        uri=f"file:///{name}",
        text=text,
        content_hash=f"hash-{name}",
        updated_at=None,
        metadata={},
        fields=None,
        labels=(),
    )
    chunks = [
        ChunkRecord(
            f"{record.id}#hash-{i}", record.id, i, i * len(SECTION), (i + 1) * len(SECTION), None, (), SECTION
        )
        for i in range(sections)
    ]
    catalog.register_source(source, "filesystem", "")
    catalog.commit_document(record, chunks)
    return chunks


def _peak_bytes(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def catalog(tmp_path: Path) -> NoWholeDocuments:
    return NoWholeDocuments(tmp_path / "catalog.sqlite3")


def test_shaping_cites_hits_of_a_huge_document_from_its_head(catalog: NoWholeDocuments) -> None:
    big = _commit(catalog, "docs", "big", SECTIONS)
    _commit(catalog, "secret", "other", 2)
    fused = [(big[7].id, 0.9), ("secret/other#hash-0", 0.8), (big[9].id, 0.7), ("docs/gone#x-0", 0.6)]
    hits: list[Any] = []
    peak = _peak_bytes(lambda: hits.extend(shape_hits(catalog, fused, 10, per_document=2)))
    assert [h.id for h in hits] == [big[7].id, "secret/other#hash-0", big[9].id]
    assert hits[0].title == "The big policy" and hits[0].uri == "file:///big" and hits[0].source == "docs"
    assert peak < BIG / 4, f"shaping allocated {peak} bytes: the document's text was read"
    # Only the sources asked for are shown, whatever the indexes returned.
    assert [h.id for h in shape_hits(catalog, fused, 10, 2, sources=("docs",))] == [big[7].id, big[9].id]


def test_the_indexes_filter_only_when_the_filter_drops_much(catalog: NoWholeDocuments) -> None:
    _commit(catalog, "docs", "a", 3)
    _commit(catalog, "secret", "b", 1)
    _commit(catalog, "tiny", "c", 1)
    for i in range(40):
        _commit(catalog, "big", f"d{i}", 1)
    retriever = Retriever(RetrievalSettings(), catalog, None, None)  # type: ignore[arg-type]
    # Every source the catalog knows (and one it does not): no filter.
    everything = SearchFilter(sources=("docs", "secret", "tiny", "big", "new"))
    assert retriever.index_filter(everything) == (SearchFilter(), 1)
    # 41 of 45 passages: no filter, a few more candidates; 3 of 45: filtered in the indexes.
    assert retriever.index_filter(SearchFilter(sources=("big", "tiny"))) == (SearchFilter(), 2)
    some = SearchFilter(sources=("docs",))
    assert retriever.index_filter(some) == (some, 1)
    by_metadata = SearchFilter(sources=("docs", "secret", "tiny", "big"), metadata={"kind": "policy"})
    assert retriever.index_filter(by_metadata) == (by_metadata, 1)
    assert retriever.index_filter(SearchFilter()) == (SearchFilter(), 1)
    ranking = [("big/d1#h-0", 0.9), ("docs/a#h-0", 0.8), ("tiny/c#h-0", 0.7), ("big/d2#h-0", 0.6)]
    assert only_sources(ranking, ("big", "tiny"), 2) == [("big/d1#h-0", 0.9), ("tiny/c#h-0", 0.7)]
    assert only_sources(ranking, None, 3) == ranking[:3]


class _Embeds:
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[1.0, 0.0] for _ in texts]


class _NoPolicies:
    def check(self, text: str, sentence_of: list[tuple[int, int]] | None = None) -> list[PolicyViolation]:
        return []


def test_check_answer_reads_the_cited_passages_not_their_documents(catalog: NoWholeDocuments) -> None:
    big = _commit(catalog, "docs", "big", SECTIONS)
    checker = AnswerChecker(AnswersSettings(), _Embeds(), catalog)
    checks: list[Any] = []
    draft = "Refunds are paid within 30 days of the return."
    citations = [big[3].id, big[4].id, "docs/nope#x-0"]
    peak = _peak_bytes(lambda: checks.append(checker.check(draft, citations, policies=_NoPolicies())))
    (check,) = checks
    assert check.unknown_citations == ["docs/nope#x-0"]
    assert check.sentences[0].status == "supported", check.sentences
    assert peak < BIG / 4, f"check_answer allocated {peak} bytes: the document's text was read"
    hidden = checker.check(draft, [big[3].id], policies=_NoPolicies(), visible=lambda s: s != "docs")
    assert hidden.unknown_citations == [big[3].id]


def test_a_read_window_reads_the_window_only(tmp_path: Path, catalog: NoWholeDocuments) -> None:
    (tmp_path / "docs").mkdir()
    config = tmp_path / "strongroom.toml"
    config.write_text("[[sources]]\nname = 'docs'\nconnector = 'filesystem'\npath = 'docs'\n")
    app = build_app(load_settings(config))
    app.catalog = catalog
    kb = app.knowledge  # built (and its modules imported) before memory is traced
    big = _commit(catalog, "docs", "big", SECTIONS)
    windows: list[Any] = []
    start = 5 * len(SECTION) + 100
    peak = _peak_bytes(lambda: windows.append(kb.read_document("docs/big", start, 2000)))
    (window,) = windows
    text = SECTION * SECTIONS
    expected_end = text.rfind(" ", start + 1000, start + 2000) + 1  # the last break in its second half
    assert window.text == text[start:expected_end] and window.total_chars == BIG
    assert window.next_offset == expected_end and window.title == "The big policy"
    assert window.chunk_ids == [big[5].id, big[6].id, big[7].id]
    assert window.overlaps == [len(SECTION) - 100, len(SECTION), expected_end - 7 * len(SECTION)]
    assert peak < BIG / 4, f"read_document allocated {peak} bytes: the document's text was read"
    last = kb.read_document("docs/big", BIG - 50, 2000)
    assert last.text == text[-50:] and last.next_offset is None and last.chunk_ids == [big[-1].id]
    app.close()


def test_document_slice_counts_characters_not_bytes(catalog: NoWholeDocuments) -> None:
    record = DocumentRecord(
        id="docs/u",
        source="docs",
        source_id="u",
        title="Ü",
        uri="",
        text="zürich — 東京 🙂 end",
        content_hash="h",
        updated_at=None,
        metadata={},
        fields=None,
        labels=(),
    )
    catalog.commit_document(record, [])
    part = catalog.document_slice("docs/u", 9, 4)
    assert part == DocumentSlice(part.head, len(record.text), 9, record.text[9:13]) if part else False
    assert catalog.document_slice("docs/missing", 0, 10) is None


def test_the_keyword_query_leaves_out_its_most_common_words_past_the_budget(
    catalog: NoWholeDocuments,
) -> None:
    counts = {"refund": 900, "tent": 40, "stove": 0, "policy": 3000}
    words = ["policy", "refund", "tent", "stove"]
    assert rarest_words(words, counts, 1000) == ["refund", "tent", "stove"]  # in query order
    assert rarest_words(words, counts, 100) == ["tent", "stove"]
    assert rarest_words(words, counts, 10**6) == words
    assert rarest_words(["policy", "refund"], counts, 10) == ["refund"]  # the rarest always counts
    # On a catalog: the counts are the keyword index's, and the search uses what is kept.
    for i in range(6):
        record = DocumentRecord(
            id=f"docs/{i}",
            source="docs",
            source_id=str(i),
            title=f"d{i}",
            uri="",
            text=("tent " if i == 0 else "") + "policy text",
            content_hash=f"h{i}",
            updated_at=None,
            metadata={},
            fields=None,
            labels=(),
        )
        chunk = ChunkRecord(f"docs/{i}#h{i}-0", record.id, 0, 0, len(record.text), None, (), record.text)
        catalog.commit_document(record, [chunk])
    assert catalog.word_counts(["tent", "policy", "nothing"]) == {"tent": 1, "policy": 6, "nothing": 0}
    everything = keyword_candidates(catalog, "policy tent", 10, SearchFilter())
    assert len(everything) == 6 and everything[0][0] == "docs/0#h0-0"
    assert [c for c, _ in keyword_candidates(catalog, "policy tent", 10, SearchFilter(), 3)] == [
        "docs/0#h0-0"
    ]
    assert len(keyword_candidates(catalog, "policy tent", 10, SearchFilter(), 7)) == 6
