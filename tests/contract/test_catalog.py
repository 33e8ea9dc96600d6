"""The catalog contract on every backend: keyword index, write protocol, records, sync state."""

from __future__ import annotations

import pytest

from strongroom.server.errors import StoreTooNew
from strongroom.server.store.catalog import Catalog, query_words
from strongroom.server.store.records import ChunkRecord, DocumentRecord, SearchFilter
from strongroom.server.store.sqlite import fts5_match
from tests.contract.conftest import Backend


def doc(doc_id: str, text: str, source: str = "s", **metadata: object) -> DocumentRecord:
    return DocumentRecord(
        id=f"{source}/{doc_id}",
        source=source,
        source_id=doc_id,
        title=doc_id,
        uri="",
        text=text,
        content_hash=f"h-{hash(text)}",
        updated_at=None,
        metadata=dict(metadata),
        fields=None,
        labels=(),
    )


def chunks_of(record: DocumentRecord) -> list[ChunkRecord]:
    return [
        ChunkRecord(
            f"{record.id}#{record.content_hash}-0", record.id, 0, 0, len(record.text), None, (), record.text
        )
    ]


@pytest.fixture
def catalog(backend: Backend) -> Catalog:
    return Catalog(backend.open())


def ids(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.id.split("#")[0] for h in hits]


def test_fts_query_quotes_terms_and_drops_operators() -> None:
    assert fts5_match(query_words('refund AND "tent" NEAR(x)')) == '"refund" OR "tent" OR "near" OR "x"'
    assert fts5_match(query_words("what is it")) == '"what" OR "is" OR "it"'
    assert fts5_match(query_words("  ?! ")) is None


def test_keyword_search_ranks_and_filters_inside_the_query(catalog: Catalog) -> None:
    for record in (
        doc("a", "Tents carry a restocking fee.", fmt="md"),
        doc("b", "Backpacks have a two year warranty.", fmt="pdf"),
        doc("c", "Restocking fee for tents and stoves.", source="other", fmt="md"),
    ):
        catalog.commit_document(record, chunks_of(record))
    hits = catalog.keyword_search("restocking tents", 10, SearchFilter())
    assert {h.id.split("#")[0] for h in hits} == {"s/a", "other/c"}
    only_s = catalog.keyword_search("restocking tents", 10, SearchFilter(sources=("s",)))
    assert [h.id.split("#")[0] for h in only_s] == ["s/a"]
    pdf = catalog.keyword_search("warranty tents", 10, SearchFilter(metadata={"fmt": "pdf"}))
    assert [h.id.split("#")[0] for h in pdf] == ["s/b"]
    assert catalog.keyword_search("tents", 10, SearchFilter(sources=())) == []


def test_replacing_a_document_ledgers_the_old_chunks(catalog: Catalog) -> None:
    old = doc("a", "first version")
    catalog.note_pending_vectors(old.id, [c.id for c in chunks_of(old)])
    assert catalog.orphaned_vectors() == [chunks_of(old)[0].id]  # not committed yet
    catalog.commit_document(old, chunks_of(old))
    assert catalog.orphaned_vectors() == []
    new = doc("a", "second version")
    replaced = catalog.commit_document(new, chunks_of(new))
    assert replaced == [chunks_of(old)[0].id]
    assert catalog.orphaned_vectors() == replaced
    assert catalog.keyword_search("first", 5, SearchFilter()) == []
    catalog.forget_vectors(replaced)
    assert catalog.orphaned_vectors() == []
    assert catalog.delete_document(new.id) == [chunks_of(new)[0].id]
    assert catalog.document(new.id) is None


def test_record_fields_keep_their_types(catalog: Catalog) -> None:
    from datetime import UTC, date, datetime
    from decimal import Decimal

    fields = {
        "order_id": 4471,
        "total": Decimal("129.90"),
        "placed_on": date(2026, 10, 2),
        "shipped_at": datetime(2026, 10, 3, 9, 30, tzinfo=UTC),
        "status": "delivered",
        "gift": False,
        "note": None,
    }
    record = DocumentRecord(
        id="orders/4471",
        source="orders",
        source_id="4471",
        title="Order 4471",
        uri="",
        text="Order 4471",
        content_hash="h",
        updated_at=None,
        metadata={},
        fields=fields,
        labels=("staff",),
    )
    catalog.commit_document(record, chunks_of(record))
    found = catalog.record("orders", "4471")
    assert found is not None and found.fields == fields
    assert type(found.fields["total"]) is Decimal and type(found.fields["placed_on"]) is date
    assert catalog.record("orders", "9999") is None


def test_connector_state_round_trip(catalog: Catalog) -> None:
    catalog.register_source("web", "web", "")
    assert catalog.connector_state("web") == {}
    catalog.save_connector_state("web", {"etags": {"https://x/": '"abc"'}})
    assert catalog.connector_state("web") == {"etags": {"https://x/": '"abc"'}}


def test_identifiers_and_phrases_match_word_by_word(catalog: Catalog) -> None:
    for record in (
        doc("paths", "Use os.path.join() to build a path; set max_wal_size in the config."),
        doc("env", "PYTHONPATH lists folders searched for modules."),
        doc("other", "Join the team; the path is long."),
    ):
        catalog.commit_document(record, chunks_of(record))
    assert ids(catalog.keyword_search("pythonpath", 5, SearchFilter())) == ["s/env"]
    assert ids(catalog.keyword_search("x", 5, SearchFilter(), phrases=["os.path.join"])) == ["s/paths"]
    assert ids(catalog.keyword_search("x", 5, SearchFilter(), phrases=["max_wal_size"])) == ["s/paths"]
    assert set(ids(catalog.keyword_search("join path", 5, SearchFilter()))) == {"s/paths", "s/other"}
    assert catalog.keyword_search("?! --", 5, SearchFilter()) == []
    assert catalog.keyword_search("x", 5, SearchFilter(), phrases=["?!"]) == []


def test_the_title_outranks_the_body(catalog: Catalog) -> None:
    titled = doc("Warranty", "Terms for every product we sell.")
    mention = doc("returns", "Returns are free; the warranty is separate and is not covered here.")
    for record in (mention, titled):
        catalog.commit_document(record, chunks_of(record))
    assert ids(catalog.keyword_search("warranty", 5, SearchFilter())) == ["s/Warranty", "s/returns"]


def test_metadata_filters_match_numbers_and_booleans_exactly(catalog: Catalog) -> None:
    for record in (
        doc("a", "policy text", year=2024, public=True),
        doc("b", "policy text", year=2025, public=False),
        doc("c", "policy text", year="2025"),
    ):
        catalog.commit_document(record, chunks_of(record))
    search = catalog.keyword_search
    assert ids(search("policy", 5, SearchFilter(metadata={"year": 2025}))) == ["s/b"]
    assert ids(search("policy", 5, SearchFilter(metadata={"public": True}))) == ["s/a"]
    assert sorted(ids(search("policy", 5, SearchFilter(metadata={"year": [2024, "2025"]})))) == ["s/a", "s/c"]
    with pytest.raises(ValueError):
        search("policy", 5, SearchFilter(metadata={"bad key'": 1}))


def test_documents_heads_counts_and_the_index_version(catalog: Catalog) -> None:
    assert catalog.counts() == (0, 0) and catalog.index_version() == 0
    a, b = doc("a", "alpha"), doc("b", "beta", source="t")
    for record in (a, b):
        catalog.commit_document(record, chunks_of(record))
    assert catalog.counts() == (2, 2) and catalog.index_version() == 2
    assert catalog.document_hashes("s") == {"a": a.content_hash}
    assert [d.id for d in catalog.documents()] == ["s/a", "t/b"]
    assert [d.id for d in catalog.documents("t")] == ["t/b"]
    heads = catalog.document_heads(["s/a", "t/b", "nope"])
    assert sorted(heads) == ["s/a", "t/b"] and heads["t/b"].source == "t"
    assert catalog.document_chunks("s/a") == chunks_of(a)
    assert list(catalog.chunks([chunks_of(b)[0].id, "missing"])) == [chunks_of(b)[0].id]
    catalog.delete_document("s/a")
    assert catalog.index_version() == 3 and catalog.counts() == (1, 1)


def test_windows_spans_and_what_is_indexed_without_reading_documents(catalog: Catalog) -> None:
    assert not catalog.has_documents() and catalog.source_names() == frozenset()
    text = "zürich — 東京 🙂 " * 10  # characters, not bytes, on every backend
    record = doc("u", text)
    parts = [(0, 40), (40, 100), (100, len(text))]
    chunks = [
        ChunkRecord(f"s/u#h-{i}", "s/u", i, start, end, None, (), text[start:end])
        for i, (start, end) in enumerate(parts)
    ]
    catalog.register_source("s", "filesystem", "")
    catalog.commit_document(record, chunks)
    assert catalog.has_documents() and catalog.source_names() == {"s"}
    window = catalog.document_slice("s/u", 30, 20)
    assert window is not None and window.part == text[30:50] and window.total_chars == len(text)
    assert (window.head.id, window.head.source, window.head.title) == ("s/u", "s", "u")
    end = catalog.document_slice("s/u", len(text) - 5, 20)
    assert end is not None and end.part == text[-5:]
    assert catalog.document_slice("s/missing", 0, 5) is None
    assert catalog.chunk_spans("s/u", 30, 50) == [("s/u#h-0", 0, 40), ("s/u#h-1", 40, 100)]
    assert catalog.chunk_spans("s/u", 40, 100) == [("s/u#h-1", 40, 100)]
    assert catalog.word_counts(["zürich", "nothing"]) == {"zürich": 3, "nothing": 0}


def test_sources_canaries_and_the_embedding_record(catalog: Catalog) -> None:
    catalog.register_source("docs", "filesystem", "Policies")
    catalog.mark_synced("docs", None)
    catalog.mark_synced("docs", "the folder is gone")
    (state,) = catalog.source_states()
    assert (state.name, state.description, state.last_error) == ("docs", "Policies", "the folder is gone")
    assert state.last_synced is not None and (state.documents, state.chunks) == (0, 0)
    catalog.add_canary("docs/decoy.md", "docs", "decoy.md", "tok-1")
    catalog.add_canary("docs/decoy.md", "docs", "decoy.md", "tok-2")  # planted again: replaced
    assert [c["token"] for c in catalog.canaries()] == ["tok-2"]
    assert catalog.canary_documents() == {"docs/decoy.md"} and catalog.canary_source_ids("docs") == {
        "decoy.md"
    }
    catalog.set_embedding({"model": "m", "backend": "onnx"}, {"model": "m", "backend": "torch"})
    assert catalog.embedding() == ({"model": "m", "backend": "onnx"}, {"model": "m", "backend": "torch"})
    catalog.set_embedding({"model": "m", "backend": "onnx"}, None)
    assert catalog.embedding() == ({"model": "m", "backend": "onnx"}, None)
    catalog.forget_source("docs")
    assert catalog.source_states() == [] and catalog.canaries() == []


def test_another_process_sees_each_commit_whole(backend: Backend) -> None:
    writer, reader = Catalog(backend.open()), Catalog(backend.open())
    record = doc("a", "shared text")
    writer.commit_document(record, chunks_of(record))
    assert reader.index_version() == 1 and ids(reader.keyword_search("shared", 5, SearchFilter())) == ["s/a"]


def test_a_catalog_from_a_newer_strongroom_is_refused(backend: Backend) -> None:
    Catalog(backend.open())
    backend.sql("UPDATE strongroom_schema SET version = 99 WHERE component = 'catalog'")
    with pytest.raises(StoreTooNew, match="catalog schema version 99"):
        Catalog(backend.open())


def test_one_sync_at_a_time_for_everyone_sharing_the_storage(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    with first.exclusive("sync") as held:
        assert held
        with second.exclusive("sync", wait_s=0.3) as also:
            assert not also
        with second.exclusive("other") as unrelated:
            assert unrelated
    with second.exclusive("sync") as held:
        assert held
