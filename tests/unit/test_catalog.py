"""The catalog's keyword index and write protocol, without the model or Chroma."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.server.store.catalog import Catalog, fts_query
from strongroom.server.store.records import ChunkRecord, DocumentRecord, SearchFilter


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
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path / "catalog.sqlite3")


def test_fts_query_quotes_terms_and_drops_operators() -> None:
    assert fts_query('refund AND "tent" NEAR(x)') == '"refund" OR "tent" OR "near" OR "x"'
    assert fts_query("what is it") == '"what" OR "is" OR "it"'
    assert fts_query("  ?! ") is None


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
