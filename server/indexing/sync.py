"""Incremental, resumable, crash-safe sync of sources into the catalog and the vector store.

The write protocol for one document, each step durable before the next:

1. the new chunk ids are noted in the catalog's vector ledger;
2. their vectors are upserted into the vector store (ids carry a content hash, so they never
   collide with the chunks of the committed version);
3. one catalog transaction swaps the document's row, chunks and keyword entries — only now
   is the new version searchable (retrieval only returns committed chunk ids);
4. the vectors of the replaced chunks are deleted and the ledger forgets them.

A process killed anywhere leaves either the old or the new version searchable, never a mix,
and the ledger tells the next sync which vectors are orphans to delete.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from strongroom.connectors.api import Connector, ConnectorError, Document, in_scope
from strongroom.connectors.registry import build_connector
from strongroom.server.embedder import Embedder, length_sorted_batches
from strongroom.server.errors import StrongroomError
from strongroom.server.indexing.chunking import CHUNKER_VERSION, Chunk, chunk_text
from strongroom.server.indexing.injection import injection_flags
from strongroom.server.indexing.sanitize import clean_line, clean_text
from strongroom.server.settings import Settings, SourceSettings
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.records import ChunkRecord, DocumentRecord, chunk_id, document_id
from strongroom.server.store.vectors import VectorStore, chunk_metadata

log = logging.getLogger(__name__)
_STOP_POLL_S = 0.1  # how often a waiting sync looks at its stop signal


class SyncBusy(StrongroomError):
    """Another sync holds the data directory's lock."""


class SyncStopped(StrongroomError):
    """The sync was asked to stop (the server is shutting down); the next one finishes the work."""


@dataclass
class SkippedItem:
    """A document the sync left out (its last indexed version, if any, is kept), and why."""

    id: str
    reason: str


@dataclass
class SourceReport:
    """What one source's sync did."""

    name: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks: int = 0
    skipped: list[SkippedItem] = field(default_factory=list)
    flagged: dict[str, int] = field(default_factory=dict)
    """Documents written this sync with passages that read like instructions to a model: how many."""
    error: str | None = None
    partial: bool = False
    """Only the items named for this sync were read (a watched folder's changed paths)."""


@dataclass
class SyncReport:
    sources: list[SourceReport]
    purged: dict[str, int] = field(default_factory=dict)
    """Sources no longer configured whose documents this sync removed: how many of each."""

    @property
    def ok(self) -> bool:
        return all(s.error is None for s in self.sources)


class SyncProgress(Protocol):
    """Receives progress events (the CLI draws a bar from them)."""

    def model_loading(self, model: str) -> None:
        """The sync waits for the embedding model before it embeds the first batch."""

    def model_loaded(self, seconds: float) -> None:
        """The model is ready; the wait took ``seconds``."""

    def source_started(self, name: str, estimated_documents: int | None) -> None: ...

    def documents_done(self, name: str, documents: int, chunks: int) -> None: ...

    def source_finished(self, report: SourceReport) -> None: ...


INDEX_FORMAT = 2
"""Bumped when what is stored per chunk changes (2: sanitised ids and metadata, chunk flags), so
documents indexed before are re-indexed once."""


def clean_id(source_id: str) -> str:
    """A connector's item id without invisible characters or line breaks (stable: same in, same out)."""
    return " ".join(clean_text(source_id).splitlines()).replace("\t", " ").replace("\f", " ")


@dataclass
class _Reading:
    """One source's read in progress: the ids seen, the batch not yet submitted, the connector."""

    seen: set[str] = field(default_factory=set)
    batch: list[_Prepared] = field(default_factory=list)
    done: int = 0
    connector: Connector | None = None
    part: Sequence[str] | None = None  # the paths a partial run reads (None: the whole source)


@dataclass(frozen=True)
class _Prepared:
    record: DocumentRecord
    chunks: list[Chunk]
    is_new: bool


async def _until_stopped(
    documents: AsyncIterator[Document], stop: threading.Event | None
) -> AsyncIterator[Document]:
    """A connector's documents until ``stop`` is set, then :class:`SyncStopped` (what was read
    is kept, nothing is deleted). A wait inside the connector (a slow file, a remote page) is
    cancelled then, so a server that is shutting down never waits for, nor logs, the rest."""
    pending = aiter(documents)
    try:
        while True:
            step = asyncio.ensure_future(anext(pending))
            while not step.done():
                if stop is not None and stop.is_set():
                    step.cancel()
                    with suppress(BaseException):  # the connector's own clean-up may fail at exit
                        await step
                    raise SyncStopped("stopped")
                await asyncio.wait({step}, timeout=_STOP_POLL_S)
            if stop is not None and stop.is_set():
                step.exception()  # taken, even the end of the documents: asyncio would log it as lost
                raise SyncStopped("stopped")
            try:
                document = step.result()
            except StopAsyncIteration:
                return
            yield document
    finally:
        with suppress(Exception):  # runs the connector's clean-up if the caller stopped early
            await pending.aclose()  # type: ignore[attr-defined]


class Indexer:
    """Runs syncs; one instance per process, reusing the loaded model."""

    def __init__(
        self, settings: Settings, catalog: Catalog, vectors: VectorStore, embedder: Embedder
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._vectors = vectors
        self._embedder = embedder
        self._stop: threading.Event | None = None
        # Passages gathered before encoding: sorted by length across the whole window, batches
        # pad little (on Python's HOWTOs a window of 32 encodes 1.27x the tokens of its text, 256: 1.05x).
        self._window = max(settings.embedding.sort_window, settings.embedding.batch_size)
        self._signature = json.dumps(
            [
                embedder.identity,
                settings.chunking.max_chars,
                settings.chunking.min_chars,
                CHUNKER_VERSION,
                INDEX_FORMAT,
            ],
            sort_keys=True,
        )

    def sync(
        self,
        source_names: Sequence[str] | None = None,
        *,
        full: bool = False,
        progress: SyncProgress | None = None,
        wait_s: float = 0.0,
        stop: threading.Event | None = None,
        paths: Mapping[str, Sequence[str]] | None = None,
    ) -> SyncReport:
        """Sync the named sources (all by default). One failing source never stops the others.

        Waits up to ``wait_s`` for another process's sync; ``stop`` ends the sync early (between
        two documents), leaving the index consistent, and raises SyncStopped. ``paths`` limits
        a source to those items (files or folders of a watched tree) where its connector can
        read part of its source and has done a whole run before; the others sync whole.
        """
        sources = (
            [self._settings.source(n) for n in source_names] if source_names else self._settings.all_sources()
        )
        self._stop = stop
        with self._lock(wait_s):
            self.recover()
            previous = self._start_embedding()
            reports = []
            for source in sources:
                if stop is not None and stop.is_set():
                    break
                scopes = None if full or paths is None else paths.get(source.name)
                reports.append(asyncio.run(self._sync_source(source, full, progress, scopes)))
            whole = {r.name for r in reports if not r.partial}
            everything = {s.name for s in self._settings.all_sources()} <= whole
            if previous is not None and everything and all(r.error is None for r in reports):
                self._catalog.set_embedding(self._embedder.identity, None)  # nothing older is left
            purged = self._purge_removed() if everything and not source_names else {}
        if stop is not None and stop.is_set():
            raise SyncStopped("sync stopped before it finished")
        return SyncReport(reports, purged)

    def _purge_removed(self) -> dict[str, int]:
        """Remove from the index every source the configuration no longer names (until now
        only hidden: access follows the configuration at once); how many documents of each.
        A failure leaves the rest for the next sync (deleted vectors are ledgered first)."""
        configured = {s.name for s in self._settings.all_sources()}
        purged: dict[str, int] = {}
        for name in sorted({s.name for s in self._catalog.source_states()} - configured):
            if self._stop is not None and self._stop.is_set():
                break
            purged[name] = 0
            try:
                for source_id in sorted(self._catalog.document_hashes(name)):
                    replaced = self._catalog.delete_document(document_id(name, source_id))
                    self._vectors.delete(replaced)
                    self._catalog.forget_vectors(replaced)
                    purged[name] += 1
                self._catalog.forget_source(name)
                log.info("source %s is no longer configured: removed its %d documents", name, purged[name])
            except Exception as exc:
                log.warning("could not remove source %s from the index: %s", name, _describe_failure(exc))
            finally:
                self._mark_current()
        return purged

    def _start_embedding(self) -> dict[str, str] | None:
        """Record the model and backend this sync embeds with; returns what older vectors were
        made with while some remain (a change of model re-embeds every document: the content
        hashes carry it)."""
        made, previous = self._catalog.embedding()
        current = self._embedder.identity
        if made is not None and made != current:
            previous = previous or made
            log.info("embedding changed from %s to %s: every document is re-embedded", made, current)
        self._catalog.set_embedding(current, previous if previous != current else None)
        return previous if previous != current else None

    def plant(self, source_name: str, documents: Sequence[Document]) -> SourceReport:
        """Index documents into a source directly (canaries): same write protocol as a sync."""
        source = self._settings.source(source_name)
        report = SourceReport(source.name)
        with self._lock():
            self._start_embedding()
            self._catalog.register_source(source.name, source.connector, source.description)
            known = self._catalog.document_hashes(source.name)
            batch: list[_Prepared] = []
            for document in documents:
                prepared = self._prepare(source, document, known.get(clean_id(document.id)), full=False)
                if isinstance(prepared, _Prepared):
                    batch.append(prepared)
            self._write(batch, report)
        return report

    def _catch_up(self) -> None:
        """Under the sync lock: reload vectors another process wrote before this sync began."""
        self._vectors.follow(self._catalog.index_version())

    def _mark_current(self) -> None:
        # We hold the sync lock, so every change since _catch_up is ours and this client saw it.
        self._vectors.index_version = self._catalog.index_version()

    def recover(self) -> int:
        """Delete vectors orphaned by an interrupted sync; returns how many."""
        orphans = self._catalog.orphaned_vectors()
        if orphans:
            self._vectors.delete(orphans)
            log.info("removed %d orphaned vectors left by an interrupted sync", len(orphans))
        self._catalog.forget_vectors(orphans)
        return len(orphans)

    @contextmanager
    def _lock(self, wait_s: float = 0.0) -> Iterator[None]:
        with self._catalog.database.exclusive("sync", wait_s) as held:
            if not held:
                raise SyncBusy(f"another sync is running on {self._catalog.database.describe()}")
            self._catch_up()
            self._vectors.writing = True
            try:
                yield
            finally:
                self._vectors.writing = False
                self._mark_current()

    async def _sync_source(
        self,
        source: SourceSettings,
        full: bool,
        progress: SyncProgress | None,
        scopes: Sequence[str] | None = None,
    ) -> SourceReport:
        report = SourceReport(source.name)
        self._catalog.register_source(source.name, source.connector, source.description)
        known = self._catalog.document_hashes(source.name)
        reading = _Reading()
        pipeline = _Pipeline(self._encode, lambda b, v: self._write(b, report, v))
        try:
            await self._read(source, full, progress, known, report, reading, pipeline, scopes)
        except Exception as exc:
            self._keep_read(source, report, reading, pipeline, exc)
        if reading.connector is not None:
            self._settle(source, report, reading.seen, reading.connector)
        seen = reading.seen | self._catalog.canary_source_ids(source.name)  # planted decoys stay
        if reading.part:  # only what was looked at can be gone
            covered = {clean_id(scope) for scope in reading.part}
            known = {k: v for k, v in known.items() if in_scope(k, covered)}
        if report.error is None:
            self._delete_gone(source, report, set(known) - seen)
        if not (self._stop is not None and self._stop.is_set()):
            self._catalog.mark_synced(source.name, report.error)
        if progress:
            progress.source_finished(report)
        return report

    async def _read(
        self,
        source: SourceSettings,
        full: bool,
        progress: SyncProgress | None,
        known: Mapping[str, str],
        report: SourceReport,
        reading: _Reading,
        pipeline: _Pipeline,
        scopes: Sequence[str] | None = None,
    ) -> None:
        """Read the source's documents (only those in ``scopes`` when the connector can, after a
        whole run), submitting each batch to embed and write as it fills."""
        connector = build_connector(source.connector, source.connector_options(), self._settings.base_dir)
        reading.connector = connector
        connector.state = self._load_state(source, full)
        if scopes and connector.partial and connector.state:  # else a whole run
            reading.part = scopes
        report.partial = reading.part is not None
        if progress:
            progress.source_started(source.name, None if reading.part else await connector.estimated_count())
        documents = connector.documents_in(reading.part) if reading.part else connector.documents()
        async for document in _until_stopped(documents, self._stop):
            source_id = clean_id(document.id)
            if not source_id or source_id in reading.seen:
                problem = "duplicate document id in this source" if source_id else "blank document id"
                report.skipped.append(SkippedItem(source_id or repr(document.id), problem))
                continue
            reading.seen.add(source_id)
            prepared = self._prepare(source, document, known.get(source_id), full)
            reading.done += 1
            self._collect(prepared, report, reading, pipeline, progress)
            if progress:
                progress.documents_done(source.name, reading.done, report.chunks)
        self._submit(pipeline, reading.batch, progress)
        reading.batch = []
        pipeline.drain()

    def _collect(
        self,
        prepared: _Prepared | SkippedItem | None,
        report: SourceReport,
        reading: _Reading,
        pipeline: _Pipeline,
        progress: SyncProgress | None,
    ) -> None:
        """Count an unchanged or skipped document; batch a changed one (submitted when full)."""
        if prepared is None:
            report.unchanged += 1
        elif isinstance(prepared, SkippedItem):
            report.skipped.append(prepared)
        else:
            reading.batch.append(prepared)
            if sum(len(p.chunks) for p in reading.batch) >= self._window:
                self._submit(pipeline, reading.batch, progress)
                reading.batch = []

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors for a window of passages: sorted by length across the window, encoded
        ``batch_size`` at a time; a stop is seen between two batches (SyncStopped)."""
        vectors: list[list[float]] = [[] for _ in texts]
        for rows in length_sorted_batches(texts, self._settings.embedding.batch_size):
            if self._stop is not None and self._stop.is_set():
                raise SyncStopped("sync stopped before it finished")
            for i, vector in zip(rows, self._embedder.embed([texts[i] for i in rows]), strict=True):
                vectors[i] = vector
        return vectors

    def _submit(self, pipeline: _Pipeline, prepared: list[_Prepared], progress: SyncProgress | None) -> None:
        if prepared:
            self._wait_for_model(progress)
        pipeline.submit(prepared)

    def _keep_read(
        self,
        source: SourceSettings,
        report: SourceReport,
        reading: _Reading,
        pipeline: _Pipeline,
        exc: Exception,
    ) -> None:
        """The source as a whole failed: keep what was read, delete nothing. A stopped sync
        writes no more (the next one embeds the rest: a shutdown does not wait for the encoder)."""
        pipeline.drain(raising=False)
        if reading.batch and not isinstance(exc, SyncStopped):
            try:
                self._write(reading.batch, report)
            except Exception as again:  # e.g. the store failed: the next sync writes them
                log.warning("source %s: %d documents not written: %s", source.name, len(reading.batch), again)
        report.error = _describe_failure(exc)
        log.warning("source %s failed: %s", source.name, report.error)

    def _settle(
        self, source: SourceSettings, report: SourceReport, seen: set[str], connector: Connector
    ) -> None:
        """Take in what the connector kept and skipped (added to ``seen``: their last good versions
        stay); after a clean read, save its state for the next incremental sync."""
        kept = {clean_id(item) for item in connector.kept}
        report.unchanged += len(kept - seen)
        seen |= kept
        for skipped in connector.skipped:
            skipped_id = clean_id(skipped.id)
            seen.add(skipped_id)  # keep its last good version
            report.skipped.append(SkippedItem(skipped_id, clean_line(skipped.reason)))
        if report.error is None:
            self._catalog.save_connector_state(
                source.name, {"signature": self._state_signature(source), "data": connector.state}
            )

    def _delete_gone(self, source: SourceSettings, report: SourceReport, gone: set[str]) -> None:
        """Delete the documents the source no longer has."""
        try:
            for source_id in sorted(gone):
                replaced = self._catalog.delete_document(document_id(source.name, source_id))
                self._vectors.delete(replaced)  # if this fails, the ledger keeps the ids for recover()
                self._catalog.forget_vectors(replaced)
                self._mark_current()
                report.deleted += 1
        except Exception as exc:
            report.error = _describe_failure(exc)
            log.warning("source %s failed while deleting: %s", source.name, report.error)

    def _wait_for_model(self, progress: SyncProgress | None) -> None:
        """Load the model as a phase of its own (reported), not hidden in the first batch; a sync
        with nothing to embed never loads it."""
        if self._embedder.is_loaded:
            return
        if progress:
            progress.model_loading(self._embedder.name)
        started = time.monotonic()
        self._embedder.model()
        if progress:
            progress.model_loaded(time.monotonic() - started)

    def _state_signature(self, source: SourceSettings) -> str:
        return json.dumps([self._signature, sorted(set(source.labels))])

    def _load_state(self, source: SourceSettings, full: bool) -> dict[str, Any]:
        """The connector's saved state; none for --full or after a model, chunking or labels
        change, so an incremental connector re-yields everything and nothing stale is kept."""
        saved = self._catalog.connector_state(source.name)
        if full or saved.get("signature") != self._state_signature(source):
            return {}
        data = saved.get("data")
        return dict(data) if isinstance(data, dict) else {}

    def _prepare(
        self, source: SourceSettings, document: Document, known_hash: str | None, full: bool
    ) -> _Prepared | SkippedItem | None:
        source_id = clean_id(document.id)
        document = document.model_copy(
            update={
                "id": source_id,
                "text": clean_text(document.text),
                "title": clean_line(document.title) or source_id,
                "uri": clean_line(document.uri),
                "metadata": {
                    clean_line(key): clean_text(value) if isinstance(value, str) else value
                    for key, value in document.metadata.items()
                },
            }
        )
        text, title = document.text, document.title
        content_hash = self._hash(source, document, title, text)
        if known_hash == content_hash and not full:
            return None
        if not text.strip():
            return SkippedItem(source_id, "no text")
        doc_id = document_id(source.name, source_id)
        chunks = chunk_text(
            text, max_chars=self._settings.chunking.max_chars, min_chars=self._settings.chunking.min_chars
        )
        record = DocumentRecord(
            id=doc_id,
            source=source.name,
            source_id=document.id,
            title=title,
            uri=document.uri,
            text=text,
            content_hash=content_hash,
            updated_at=document.updated_at,
            metadata=dict(document.metadata),
            fields=document.fields,
            labels=tuple(sorted(set(source.labels))),
        )
        return _Prepared(record, chunks, known_hash is None)

    def _hash(self, source: SourceSettings, document: Document, title: str, text: str) -> str:
        payload = json.dumps(
            [
                self._signature,
                title,
                text,
                document.uri,
                document.metadata,
                document.fields,
                sorted(set(source.labels)),
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def _write(
        self, batch: list[_Prepared], report: SourceReport, vectors: list[list[float]] | None = None
    ) -> None:
        """Commit a batch of documents following the write protocol (embedding them first
        unless their ``vectors`` are given)."""
        if not batch:
            return
        if vectors is None:
            vectors = self._embedder.embed(_texts(batch))
        remaining = iter(vectors)
        ids: list[str] = []
        embeddings: list[list[float]] = []
        metadatas: list[dict[str, str | int | float | bool]] = []
        rows: list[tuple[DocumentRecord, list[ChunkRecord]]] = []
        for p in batch:
            doc = p.record
            chunk_rows = [
                ChunkRecord(
                    id=chunk_id(doc.id, doc.content_hash, c.index),
                    document_id=doc.id,
                    index=c.index,
                    start=c.start,
                    end=c.end,
                    page=c.page,
                    headings=c.headings,
                    text=c.text,
                    flags=tuple(injection_flags(c.text)),
                )
                for c in p.chunks
            ]
            if flagged := sum(1 for row in chunk_rows if row.flags):
                report.flagged[doc.source_id] = flagged
            meta = chunk_metadata(doc.source, doc.id, doc.labels, doc.metadata)
            for row in chunk_rows:
                ids.append(row.id)
                embeddings.append(next(remaining))
                metadatas.append({**meta, "chunk_index": row.index})
            self._catalog.note_pending_vectors(doc.id, (r.id for r in chunk_rows))
            rows.append((doc, chunk_rows))
        self._vectors.upsert(ids, embeddings, metadatas)  # step 2
        replaced: list[str] = []
        for (doc, chunk_rows), p in zip(rows, batch, strict=True):
            replaced += self._catalog.commit_document(doc, chunk_rows)  # step 3
            report.chunks += len(chunk_rows)
            if p.is_new:
                report.added += 1
            else:
                report.updated += 1
        self._vectors.delete(replaced)  # step 4
        self._catalog.forget_vectors(replaced)
        self._mark_current()


def _texts(batch: Sequence[_Prepared]) -> list[str]:
    return [c.embedding_text for p in batch for c in p.chunks]


class _Pipeline:
    """Overlaps a sync's stages: while the connector reads and chunks the next documents (the
    caller's thread), one thread embeds a batch and another writes the batch before it.

    At most ``depth`` batches wait (memory stays bounded), batches are written in order, and
    after a failed write nothing more is written; the error is raised by the next
    :meth:`submit` or by :meth:`drain`.
    """

    def __init__(
        self,
        embed: Callable[[Sequence[str]], list[list[float]]],
        write: Callable[[list[_Prepared], list[list[float]]], None],
        depth: int = 2,
    ) -> None:
        self._embed, self._write, self._depth = embed, write, depth
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="sync-embed")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sync-write")
        self._in_flight: deque[Future[None]] = deque()
        self._failed = False

    def submit(self, batch: list[_Prepared]) -> None:
        if not batch:
            return
        vectors = self._encoder.submit(self._embed, _texts(batch))
        self._in_flight.append(self._writer.submit(self._write_after, batch, vectors))
        while len(self._in_flight) > self._depth:
            self._in_flight.popleft().result()

    def _write_after(self, batch: list[_Prepared], vectors: Future[list[list[float]]]) -> None:
        if self._failed:
            raise StrongroomError("not written: an earlier batch of this sync failed")
        try:
            self._write(batch, vectors.result())
        except BaseException:
            self._failed = True
            raise

    def drain(self, *, raising: bool = True) -> None:
        """Wait for every batch in flight; re-raise the first error unless ``raising`` is False."""
        first: BaseException | None = None
        while self._in_flight:
            try:
                self._in_flight.popleft().result()
            except BaseException as exc:
                first = first or exc
        self._encoder.shutdown()
        self._writer.shutdown()
        if first is not None and raising:
            raise first


def _describe_failure(exc: Exception) -> str:
    """Our own errors already read well; anything else gets its type for context."""
    if isinstance(exc, ConnectorError | StrongroomError | OSError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
