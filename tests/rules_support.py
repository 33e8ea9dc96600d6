"""A catalog of the example company for rules tests, without the embedding model.

The real connectors (filesystem, records) read the example's documents and CSV files and the
real chunker cuts them; documents and records are committed to a real catalog exactly as a
sync would, minus the vectors, which the rules engine never reads.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path

from strongroom.connectors.api import Connector, Document
from strongroom.connectors.registry import build_connector
from strongroom.server.indexing.chunking import chunk_text
from strongroom.server.settings import Settings, load_settings
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.records import ChunkRecord, DocumentRecord, chunk_id, document_id
from tests.support import EXAMPLE

# The example's orders are from early 2025: decide them as of this day.
EXAMPLE_TODAY = "2025-03-20"


def fixed_clock(iso: str) -> datetime:
    """A moment in UTC: ``2025-03-20`` (noon UTC) or a full ISO timestamp."""
    if len(iso) == 10:
        return datetime.fromisoformat(iso + "T12:00:00+00:00")
    moment = datetime.fromisoformat(iso)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def copy_example(root: Path) -> Path:
    """A copy of the example company (no index); returns its strongroom.toml."""
    shutil.copytree(EXAMPLE, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".strongroom"))
    return root / "strongroom.toml"


def index_without_vectors(settings: Settings) -> Catalog:
    """Commit every configured source's documents (and records) to the catalog."""
    catalog = Catalog(settings.data_dir / "catalog.sqlite3")
    for source in settings.all_sources():
        catalog.register_source(source.name, source.connector, source.description)
        connector = build_connector(source.connector, source.connector_options(), settings.base_dir)

        for doc in asyncio.run(_collect(connector)):
            doc_id = document_id(source.name, doc.id)
            digest = hashlib.sha256((doc.title + doc.text + repr(doc.fields)).encode()).hexdigest()
            record = DocumentRecord(
                id=doc_id,
                source=source.name,
                source_id=doc.id,
                title=doc.title,
                uri=doc.uri,
                text=doc.text,
                content_hash=digest,
                updated_at=doc.updated_at,
                metadata=dict(doc.metadata),
                fields=doc.fields,
                labels=tuple(sorted(set(source.labels))),
            )
            chunks = [
                ChunkRecord(
                    chunk_id(doc_id, digest, c.index),
                    doc_id,
                    c.index,
                    c.start,
                    c.end,
                    c.page,
                    c.headings,
                    c.text,
                )
                for c in chunk_text(doc.text)
            ]
            catalog.commit_document(record, chunks)
        catalog.mark_synced(source.name, None)
    return catalog


async def _collect(connector: Connector) -> list[Document]:
    return [d async for d in connector.documents()]


def example_index(root: Path) -> tuple[Settings, Catalog]:
    config = copy_example(root)
    settings = load_settings(config)
    return settings, index_without_vectors(settings)
