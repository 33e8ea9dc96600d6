"""The catalog: what must be transactional, in the deployment's database.

Documents and their hashes, chunk texts and positions, the keyword index, sync state, and the
ledger of vector writes not yet confirmed. Plain SQL over the :class:`Database` port: the same
code runs on the embedded SQLite file and on a shared PostgreSQL server.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strongroom.server.stopwords import STOPWORDS
from strongroom.server.store.database import Connection, Database, Schema
from strongroom.server.store.fieldcodec import decode_fields, encode_fields
from strongroom.server.store.records import (
    METADATA_KEY,
    ChunkRecord,
    DocumentRecord,
    SearchFilter,
    SourceState,
)
from strongroom.server.store.sqlite import DEFAULT_BUSY_TIMEOUT_S, SqliteDatabase, add_missing_columns

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY,
    connector TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    last_synced TEXT,
    last_error TEXT,
    connector_state TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    title TEXT NOT NULL,
    uri TEXT NOT NULL,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    updated_at TEXT,
    indexed_at TEXT NOT NULL,
    metadata TEXT NOT NULL,
    fields TEXT,
    labels TEXT NOT NULL,
    UNIQUE (source, source_id)
);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY,
    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    chunk_index INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    page INTEGER,
    headings TEXT NOT NULL,
    text TEXT NOT NULL,
    flags TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id, chunk_index);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    chunk_id UNINDEXED, title, headings, body, tokenize = 'porter unicode61'
);
-- Vector writes in flight: ids written (or about to be) to the vector store but not yet
-- committed here, and ids of replaced chunks whose vectors still have to be deleted.
-- Decoy documents planted by `strongroom canary`; kept across syncs, never shown as decoys.
CREATE TABLE IF NOT EXISTS canaries (
    document_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    token TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vector_ledger (chunk_id TEXT PRIMARY KEY, document_id TEXT NOT NULL);
"""


def _connector_state_and_flags(db: Any) -> None:
    # Catalogs made before connector state and chunk flags existed.
    add_missing_columns(db, "sources", {"connector_state": "TEXT NOT NULL DEFAULT '{}'"})
    add_missing_columns(db, "chunks", {"flags": "TEXT NOT NULL DEFAULT '[]'"})


_FTS5 = """CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    chunk_id UNINDEXED, title, headings, body, tokenize = 'porter unicode61'
);"""
# The same tables on PostgreSQL (the first SQLite script is frozen: it has shipped); the keyword
# index is a tsvector column with a GIN index instead of an FTS5 table.
_POSTGRES_SCHEMA = (
    _SCHEMA.replace(
        _FTS5,
        "CREATE TABLE chunks_fts (chunk_id TEXT PRIMARY KEY, tsv tsvector NOT NULL);\n"
        "CREATE INDEX chunks_fts_tsv ON chunks_fts USING GIN (tsv);",
    )
    .replace("CREATE TABLE IF NOT EXISTS", "CREATE TABLE")
    .replace("CREATE INDEX IF NOT EXISTS", "CREATE INDEX")
)
assert "fts5" not in _POSTGRES_SCHEMA


def _fts_rowids(db: Any) -> None:
    # Catalogs made before each chunk kept its FTS5 rowid (see ``Fts5Index``): one pass over
    # the keyword index records them.
    add_missing_columns(db, "chunks", {"fts_rowid": "INTEGER"})
    db.execute("CREATE TEMP TABLE fts_rows AS SELECT rowid AS r, chunk_id FROM chunks_fts")
    db.execute("CREATE INDEX temp.fts_rows_by_chunk ON fts_rows(chunk_id)")
    db.execute("UPDATE chunks SET fts_rowid = (SELECT MIN(r) FROM fts_rows WHERE chunk_id = chunks.id)")
    db.execute("DROP TABLE temp.fts_rows")


CATALOG_SCHEMA = Schema(
    "catalog",
    {"sqlite": [_SCHEMA, _connector_state_and_flags, _fts_rowids], "postgresql": [_POSTGRES_SCHEMA]},
)

_WORD = re.compile(r"\w+", re.UNICODE)
_WORD_COUNTS_KEPT = 100_000  # words whose chunk counts are remembered (then forgotten at once)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def query_words(text: str) -> list[str]:
    """The words of free text a keyword query looks for: lower-cased, once each, stopwords
    dropped (unless that leaves none); the user's text never becomes query syntax."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))
    return ([w for w in words if w not in STOPWORDS] or words)[:64]


def query_phrases(phrases: Sequence[str]) -> list[str]:
    """Exact word sequences (``"os path join"``) for a keyword query."""
    return [q for q in (" ".join(_WORD.findall(p)) for p in phrases[:16]) if q]


@dataclass(frozen=True)
class DocumentHead:
    """What a citation needs of a document."""

    id: str
    source: str
    title: str
    uri: str


@dataclass(frozen=True)
class DocumentSlice:
    """Part of a document's text, ``text[offset:offset + len(part)]``, with its head and length."""

    head: DocumentHead
    total_chars: int
    offset: int
    part: str


@dataclass(frozen=True)
class KeywordMatch:
    id: str
    score: float


class Catalog:
    """Thread-safe access to the catalog tables of a :class:`Database` (a path: an SQLite file)."""

    def __init__(self, database: Database | Path, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.database = SqliteDatabase(database, busy_timeout_s) if isinstance(database, Path) else database
        self.database.migrate(CATALOG_SCHEMA)
        self._word_counts: tuple[int, dict[str, int]] = (-1, {})  # (index version, counts)
        self._word_counts_lock = threading.Lock()

    def _tx(self) -> AbstractContextManager[Connection]:
        return self.database.tx("catalog")

    def _rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        with self.database.read() as db:
            return db.execute(sql, parameters).fetchall()

    def _row(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        with self.database.read() as db:
            return db.execute(sql, parameters).fetchone()

    def close(self) -> None:
        self.database.close()

    # -- sources --------------------------------------------------------------------------

    def register_source(self, name: str, connector: str, description: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO sources(name, connector, description) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET connector=excluded.connector, "
                "description=excluded.description",
                (name, connector, description),
            )

    def mark_synced(self, name: str, error: str | None) -> None:
        with self._tx() as db:
            if error is None:
                db.execute("UPDATE sources SET last_synced=?, last_error=NULL WHERE name=?", (_now(), name))
            else:
                db.execute("UPDATE sources SET last_error=? WHERE name=?", (error, name))

    def forget_source(self, name: str) -> None:
        """Drop a source's sync state and canaries (its documents are deleted first)."""
        with self._tx() as db:
            db.execute("DELETE FROM canaries WHERE source=?", (name,))
            db.execute("DELETE FROM sources WHERE name=?", (name,))

    def connector_state(self, name: str) -> dict[str, Any]:
        row = self._row("SELECT connector_state FROM sources WHERE name=?", (name,))
        return {} if row is None else dict(json.loads(row[0]))

    def save_connector_state(self, name: str, state: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute("UPDATE sources SET connector_state=? WHERE name=?", (json.dumps(state), name))

    def record(self, source: str, key: str) -> DocumentRecord | None:
        """The record whose key is ``key`` in ``source`` (records are documents with fields)."""
        row = self._row(
            "SELECT * FROM documents WHERE source=? AND source_id=? AND fields IS NOT NULL", (source, key)
        )
        return None if row is None else _document(row)

    def add_canary(self, document_id: str, source: str, source_id: str, token: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO canaries(document_id, source, source_id, token, created) VALUES (?,?,?,?,?)"
                " ON CONFLICT(document_id) DO UPDATE SET source=excluded.source,"
                " source_id=excluded.source_id, token=excluded.token, created=excluded.created",
                (document_id, source, source_id, token, _now()),
            )

    def canaries(self) -> list[dict[str, str]]:
        return [dict(r) for r in self._rows("SELECT * FROM canaries ORDER BY created, document_id")]

    def canary_documents(self) -> set[str]:
        return {r[0] for r in self._rows("SELECT document_id FROM canaries")}

    def canary_source_ids(self, source: str) -> set[str]:
        return {r[0] for r in self._rows("SELECT source_id FROM canaries WHERE source=?", (source,))}

    def source_states(self) -> list[SourceState]:
        rows = self._rows(
            "SELECT s.name, s.connector, s.description, s.last_synced, s.last_error, "
            "(SELECT COUNT(*) FROM documents d WHERE d.source = s.name) AS documents, "
            "(SELECT COUNT(*) FROM chunks c JOIN documents d ON d.id = c.document_id "
            " WHERE d.source = s.name) AS chunks FROM sources s ORDER BY s.name"
        )
        return [
            SourceState(
                name=r["name"],
                connector=r["connector"],
                description=r["description"],
                documents=int(r["documents"]),
                chunks=int(r["chunks"]),
                last_synced=datetime.fromisoformat(r["last_synced"]) if r["last_synced"] else None,
                last_error=r["last_error"],
            )
            for r in rows
        ]

    # -- documents ------------------------------------------------------------------------

    def index_version(self) -> int:
        """Grows with every committed change to the searchable index (from any process)."""
        row = self._row("SELECT value FROM meta WHERE key='index_version'")
        return int(row[0]) if row else 0

    @staticmethod
    def _bump_index_version(db: Connection) -> None:
        db.execute(
            "INSERT INTO meta(key, value) VALUES ('index_version', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)"
        )

    def document_hashes(self, source: str) -> dict[str, str]:
        """``source_id -> content_hash`` of every committed document of a source."""
        rows = self._rows("SELECT source_id, content_hash FROM documents WHERE source=?", (source,))
        return {r["source_id"]: r["content_hash"] for r in rows}

    def embedding(self) -> tuple[dict[str, str] | None, dict[str, str] | None]:
        """``(made_with, re_embedding_from)``: the model and backend of the index's vectors, and,
        while a re-embedding with another one is unfinished, what the older vectors were made
        with. ``made_with`` is None for an empty index made before this was recorded."""
        rows = {r[0]: r[1] for r in self._rows("SELECT key, value FROM meta WHERE key LIKE 'embedding%'")}
        made = json.loads(rows["embedding"]) if "embedding" in rows else None
        if made is None and self.counts()[1]:
            made = {"model": "all-MiniLM-L6-v2", "backend": "torch"}  # the only one before records
        previous = json.loads(rows["embedding_from"]) if "embedding_from" in rows else None
        return made, previous

    def set_embedding(self, made_with: dict[str, str], re_embedding_from: dict[str, str] | None) -> None:
        """Record what the vectors are made with (and whether older ones remain)."""
        with self._tx() as db:
            _set_meta(db, "embedding", json.dumps(made_with, sort_keys=True))
            if re_embedding_from is None:
                db.execute("DELETE FROM meta WHERE key='embedding_from'")
            else:
                _set_meta(db, "embedding_from", json.dumps(re_embedding_from, sort_keys=True))

    def document_heads(self, ids: Sequence[str]) -> dict[str, DocumentHead]:
        """Source, title and uri of committed documents, without their text (for citations)."""
        rows = self._in("SELECT id, source, title, uri FROM documents WHERE id IN ({})", ids)
        return {r["id"]: DocumentHead(r["id"], r["source"], r["title"], r["uri"]) for r in rows}

    def document_slice(self, document_id: str, offset: int, length: int) -> DocumentSlice | None:
        """``length`` characters of a committed document's text from ``offset`` (a read window),
        without reading the rest of it."""
        row = self._row(
            "SELECT id, source, title, uri, length(text) AS total, substr(text, ?, ?) AS part"
            " FROM documents WHERE id=?",
            (offset + 1, length, document_id),
        )
        if row is None:
            return None
        head = DocumentHead(row["id"], row["source"], row["title"], row["uri"])
        return DocumentSlice(head, int(row["total"]), offset, row["part"] or "")

    def chunk_spans(self, document_id: str, start: int, end: int) -> list[tuple[str, int, int]]:
        """``(id, start, end)`` of a committed document's chunks overlapping ``[start, end)``, in order."""
        rows = self._rows(
            'SELECT id, start, "end" FROM chunks WHERE document_id=? AND start < ? AND "end" > ?'
            " ORDER BY chunk_index",
            (document_id, end, start),
        )
        return [(r["id"], int(r["start"]), int(r["end"])) for r in rows]

    def document(self, document_id: str) -> DocumentRecord | None:
        row = self._row("SELECT * FROM documents WHERE id=?", (document_id,))
        return None if row is None else _document(row)

    def documents(self, source: str | None = None) -> list[DocumentRecord]:
        if source is None:
            rows = self._rows("SELECT * FROM documents ORDER BY id")
        else:
            rows = self._rows("SELECT * FROM documents WHERE source=? ORDER BY id", (source,))
        return [_document(r) for r in rows]

    def chunk_ids(self, document_id: str) -> list[str]:
        rows = self._rows("SELECT id FROM chunks WHERE document_id=? ORDER BY chunk_index", (document_id,))
        return [r["id"] for r in rows]

    def document_chunks(self, document_id: str) -> list[ChunkRecord]:
        """A committed document's chunks, in order."""
        rows = self._rows("SELECT * FROM chunks WHERE document_id=? ORDER BY chunk_index", (document_id,))
        return [_chunk(r) for r in rows]

    def chunks(self, ids: Sequence[str]) -> dict[str, ChunkRecord]:
        """Committed chunks by id; ids that are not committed are simply absent."""
        return {r["id"]: _chunk(r) for r in self._in("SELECT * FROM chunks WHERE id IN ({})", ids)}

    def _in(self, sql: str, ids: Sequence[str]) -> list[Any]:
        """``sql`` with ``IN ({})`` run for ``ids`` in batches."""
        found: list[Any] = []
        with self.database.read() as db:
            for start in range(0, len(ids), 500):
                batch = list(ids[start : start + 500])
                found.extend(db.execute(sql.format(",".join("?" * len(batch))), batch).fetchall())
        return found

    def has_documents(self) -> bool:
        """Whether anything is indexed (without counting it)."""
        return bool(self._row("SELECT EXISTS (SELECT 1 FROM documents)")[0])

    def source_names(self) -> frozenset[str]:
        """Every source the catalog knows: no committed chunk belongs to any other."""
        return frozenset(r["name"] for r in self._rows("SELECT name FROM sources"))

    def counts(self) -> tuple[int, int]:
        row = self._row("SELECT (SELECT COUNT(*) FROM documents), (SELECT COUNT(*) FROM chunks)")
        return int(row[0]), int(row[1])

    # -- the write protocol (see indexing.sync for the order of steps) --------------------

    def note_pending_vectors(self, document_id: str, chunk_ids: Iterable[str]) -> None:
        """Step 1: remember ids about to be written to the vector store, before writing them."""
        with self._tx() as db:
            _ledger_vectors(db, document_id, list(chunk_ids))

    def commit_document(self, document: DocumentRecord, chunks: Sequence[ChunkRecord]) -> list[str]:
        """Step 3: make a document (new or changed) searchable in one transaction.

        Returns the ids of the chunks it replaced; they stay in the ledger until their vectors
        are deleted.
        """
        with self._tx() as db:
            self._bump_index_version(db)
            old = self._delete_document_rows(db, document.id)
            db.execute(
                "INSERT INTO documents(id, source, source_id, title, uri, text, content_hash, updated_at,"
                " indexed_at, metadata, fields, labels) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    document.id,
                    document.source,
                    document.source_id,
                    document.title,
                    document.uri,
                    document.text,
                    document.content_hash,
                    document.updated_at.isoformat() if document.updated_at else None,
                    _now(),
                    json.dumps(document.metadata, sort_keys=True),
                    None if document.fields is None else encode_fields(document.fields),
                    json.dumps(sorted(document.labels)),
                ),
            )
            db.executemany(
                'INSERT INTO chunks(id, document_id, chunk_index, start, "end", page, headings, text, flags)'
                " VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (
                        c.id,
                        document.id,
                        c.index,
                        c.start,
                        c.end,
                        c.page,
                        json.dumps(list(c.headings)),
                        c.text,
                        json.dumps(list(c.flags)),
                    )
                    for c in chunks
                ],
            )
            self.database.keywords.add(
                db, [(c.id, document.title, " ".join(c.headings), c.text) for c in chunks]
            )
            new_ids = {c.id for c in chunks}
            db.executemany("DELETE FROM vector_ledger WHERE chunk_id=?", [(i,) for i in new_ids])
            replaced = [i for i in old if i not in new_ids]
            _ledger_vectors(db, document.id, replaced)
        return replaced

    def delete_document(self, document_id: str) -> list[str]:
        """Remove a document from search in one transaction; returns its chunk ids (ledgered)."""
        with self._tx() as db:
            self._bump_index_version(db)
            old = self._delete_document_rows(db, document_id)
            _ledger_vectors(db, document_id, old)
        return old

    def orphaned_vectors(self) -> list[str]:
        """Ledgered ids that no committed chunk uses: their vectors must be deleted."""
        rows = self._rows(
            "SELECT l.chunk_id FROM vector_ledger l LEFT JOIN chunks c ON c.id = l.chunk_id WHERE c.id IS NULL"
        )
        return [r["chunk_id"] for r in rows]

    def forget_vectors(self, chunk_ids: Sequence[str]) -> None:
        """Step 4: the vectors of these ids are gone (or committed); drop them from the ledger."""
        with self._tx() as db:
            db.executemany("DELETE FROM vector_ledger WHERE chunk_id=?", [(i,) for i in chunk_ids])
            # Committed ids left in the ledger by a crash between steps are settled too.
            db.execute("DELETE FROM vector_ledger WHERE chunk_id IN (SELECT id FROM chunks)")

    def _delete_document_rows(self, db: Connection, document_id: str) -> list[str]:
        old = [r[0] for r in db.execute("SELECT id FROM chunks WHERE document_id=?", (document_id,))]
        self.database.keywords.remove(db, old)
        db.execute("DELETE FROM chunks WHERE document_id=?", (document_id,))
        db.execute("DELETE FROM documents WHERE id=?", (document_id,))
        return old

    # -- keyword search -------------------------------------------------------------------

    def keyword_search(
        self, query: str, n: int, where: SearchFilter, *, phrases: Sequence[str] = ()
    ) -> list[KeywordMatch]:
        """Chunks matching any word of ``query``, or with ``phrases``, any of those word
        sequences, best first; the filter is part of the SQL query, not applied afterwards."""
        words, sequences = query_words(query), query_phrases(phrases)
        if not (sequences if phrases else words):
            return []
        with self.database.read() as db:
            found = self.database.keywords.search(db, words, sequences, n, self._filter_sql(where))
        return [KeywordMatch(i, score) for i, score in found]

    def word_counts(self, words: Sequence[str]) -> dict[str, int]:
        """How many committed chunks hold each of ``words`` (what a keyword query for it has to
        score); remembered until the index changes."""
        version = self.index_version()
        with self._word_counts_lock:
            if self._word_counts[0] != version or len(self._word_counts[1]) > _WORD_COUNTS_KEPT:
                self._word_counts = (version, {})
            known = self._word_counts[1]
            found = {w: known[w] for w in words if w in known}
        missing = [w for w in dict.fromkeys(words) if w not in found]
        if missing:
            with self.database.read() as db:
                counted = {w: self.database.keywords.count(db, w) for w in missing}
            found.update(counted)
            with self._word_counts_lock:
                if self._word_counts[0] == version:
                    self._word_counts[1].update(counted)
        return found

    def _filter_sql(self, where: SearchFilter) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        if where.sources is not None:
            parts.append(f"d.source IN ({','.join('?' * len(where.sources))})" if where.sources else "1=0")
            params.extend(where.sources)
        for key, value in where.metadata.items():
            if not METADATA_KEY.match(key):
                raise ValueError(f"invalid metadata key {key!r}")
            values = value if isinstance(value, list) else [value]
            parts.append(self.database.json_in("d.metadata", key, len(values)))
            params.extend(self.database.json_value(v) for v in values)
        return " AND ".join(parts), params


def _set_meta(db: Connection, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (key, value),
    )


def _ledger_vectors(db: Connection, document_id: str, chunk_ids: Sequence[str]) -> None:
    db.executemany(
        "INSERT INTO vector_ledger(chunk_id, document_id) VALUES (?, ?) ON CONFLICT(chunk_id) DO NOTHING",
        [(cid, document_id) for cid in chunk_ids],
    )


def _document(row: Any) -> DocumentRecord:
    return DocumentRecord(
        id=row["id"],
        source=row["source"],
        source_id=row["source_id"],
        title=row["title"],
        uri=row["uri"],
        text=row["text"],
        content_hash=row["content_hash"],
        updated_at=datetime.fromisoformat(row["updated_at"]) if row["updated_at"] else None,
        metadata=json.loads(row["metadata"]),
        fields=None if row["fields"] is None else decode_fields(row["fields"]),
        labels=tuple(json.loads(row["labels"])),
    )


def _chunk(row: Any) -> ChunkRecord:
    return ChunkRecord(
        id=row["id"],
        document_id=row["document_id"],
        index=row["chunk_index"],
        start=row["start"],
        end=row["end"],
        page=row["page"],
        headings=tuple(json.loads(row["headings"])),
        text=row["text"],
        flags=tuple(json.loads(row["flags"])),
    )
