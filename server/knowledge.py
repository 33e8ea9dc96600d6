"""The knowledge base: search, read and list, as plain methods.

Both the CLI and the MCP tools call these; validation lives here so every front end gives
the same clear errors.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from strongroom.server.embedder import Embedder
from strongroom.server.errors import InvalidArgument, NotFound, StrongroomError
from strongroom.server.guard.access import Access
from strongroom.server.guard.canary import Canary
from strongroom.server.indexing.freshness import SourceFreshness, read_published
from strongroom.server.indexing.sync import Indexer, SyncProgress, SyncReport
from strongroom.server.models import DocumentWindow, SearchHit, SearchResult, SourceInfo, SourceList
from strongroom.server.readiness import NotReady, ProgressRecorder, not_ready_message
from strongroom.server.retrieval.pipeline import Retriever
from strongroom.server.settings import Settings, SourceSettings
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.records import (
    INT64_MAX,
    INT64_MIN,
    METADATA_KEY,
    DocumentRecord,
    MetadataValue,
    SearchFilter,
)
from strongroom.server.store.records import (
    document_id as source_document_id,
)
from strongroom.server.store.vectors import VectorStore

MAX_QUERY_CHARS = 2000


log = logging.getLogger(__name__)


class IndexMismatch(StrongroomError):
    """The index's vectors were made by another model or backend than the configured one."""


def _describe(identity: dict[str, str] | None) -> str:
    if identity is None:
        return "an unknown model"
    return f"{identity['model']} ({identity['backend']} backend)"


EVERYTHING = Access.everything()


class KnowledgeBase:
    """Search, read and list over the index, with the validation every front end shares.

    Built by the composition root (:func:`strongroom.server.app.build_app`) from its parts.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        catalog: Catalog,
        vectors: VectorStore,
        embedder: Embedder,
        retriever: Retriever,
        indexer: Indexer,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.vectors = vectors
        self.embedder = embedder
        self.retriever = retriever
        self.indexer = indexer
        self._sizes: tuple[int, dict[str, int]] | None = None
        #: Each source's freshness: a running server's live view, else what servers published.
        self.freshness: Callable[[], Mapping[str, SourceFreshness]] = lambda: read_published(
            settings.data_dir
        )

    def warm_up(self) -> threading.Event:
        """Load the model and the vector store's client in background threads (a server does it
        once the client has its handshake answer), so the first search waits less; the event is
        set when both are done (or failed: the first search reports it)."""
        done = threading.Event()

        def load() -> None:
            try:
                self.embedder.start_loading()
                with contextlib.suppress(StrongroomError):  # a damaged catalog: the first call reports it
                    self.vectors.preload(self.catalog.index_version())  # meanwhile
                with contextlib.suppress(StrongroomError):
                    self.embedder.model()
            finally:
                done.set()

        threading.Thread(target=load, name="warm-up", daemon=True).start()
        return done

    # -- tools ------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int | None = None,
        sources: Sequence[str] | None = None,
        filters: Mapping[str, Any] | None = None,
        access: Access = EVERYTHING,
    ) -> SearchResult:
        """Hybrid search over what ``access`` may see; InvalidArgument names bad input."""
        query = query.strip()
        if not query:
            raise InvalidArgument("query must not be empty")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidArgument(f"query is too long ({len(query)} characters; at most {MAX_QUERY_CHARS})")
        limits = self.settings.retrieval
        k = limits.default_k if k is None else k
        if not 1 <= k <= limits.max_k:
            raise InvalidArgument(f"k must be between 1 and {limits.max_k}, got {k}")
        # Access is the configuration in force: sources the caller may see now, by their labels
        # in the config (not those stored at sync), and never a source no longer configured.
        where = SearchFilter(
            sources=self._check_sources(sources, access) if sources else tuple(self.visible_sources(access)),
            metadata=_check_filters(filters or {}),
        )
        if not where.sources:
            return SearchResult(query=query, results=[])
        self._require_ready(before=True)
        self.vectors.follow(self.catalog.index_version())  # a sync in another process may have run
        self._check_embedding()
        hits = _within(self.retriever.search(query, k, where), self._call_cap)
        if not hits:
            self._require_ready(before=False)
        return SearchResult(query=query, results=hits)

    def _check_embedding(self) -> None:
        """Refuse to compare query vectors with passage vectors made by another model or backend."""
        made, previous = self.catalog.embedding()
        current = self.embedder.identity
        if previous is not None:
            raise IndexMismatch(
                f"the index is being re-embedded from {_describe(previous)} to {_describe(made)} and holds"
                " vectors of both: run `strongroom sync` (all sources) to finish"
            )
        if made is not None and made != current:
            raise IndexMismatch(
                f"the index was embedded with {_describe(made)} but embedding is configured as"
                f" {_describe(current)}: run `strongroom sync` to re-embed, or change the configuration back"
            )

    def read_document(
        self,
        document_id: str,
        offset: int = 0,
        max_chars: int | None = None,
        access: Access = EVERYTHING,
        *,
        cap: int | None = None,
    ) -> DocumentWindow:
        """A window of a document's text, starting at ``offset``.

        A document ``access`` may not see gets the same answer as one that does not exist.
        """
        cap = cap or self.settings.server.max_read_chars
        max_chars = cap if max_chars is None else max_chars
        if not 1 <= max_chars <= cap:
            raise InvalidArgument(f"max_chars must be between 1 and {cap}, got {max_chars}")
        if offset < 0:
            raise InvalidArgument(f"offset must be 0 or more, got {offset}")
        # Only the window's characters are read: a document may be far larger than any window.
        # An offset past what the store's integers hold is past every document's end all the same.
        window = self.catalog.document_slice(document_id, min(offset, INT64_MAX - 1), max_chars)
        if window is None or window.head.source not in self.visible_sources(access):
            raise NotFound(f"no document with id {document_id!r}; use a document_id from search results")
        doc, total = window.head, window.total_chars
        if offset >= total and not (offset == 0 and total == 0):
            raise InvalidArgument(
                f"offset {offset} is past the end of document {document_id!r} ({total} characters)"
            )
        text = window.part[
            : _window_length(window.part, max_chars, at_end=offset + len(window.part) >= total)
        ]
        end = offset + len(text)
        spans = [
            (cid, min(end, c_end) - max(offset, start), c_end - start)
            for cid, start, c_end in self.catalog.chunk_spans(doc.id, offset, end)
        ]
        return DocumentWindow(
            document_id=doc.id,
            source=doc.source,
            title=doc.title,
            uri=doc.uri,
            offset=offset,
            text=text,
            total_chars=total,
            next_offset=end if end < total else None,
            chunk_ids=[cid for cid, _, _ in spans],
            overlaps=[chars for _, chars, _ in spans],
            sizes=[size for _, _, size in spans],
        )

    def list_sources(self, access: Access = EVERYTHING) -> SourceList:
        """Configured sources ``access`` may see: counts, last sync and error, what is pending."""
        states = {s.name: s for s in self.catalog.source_states()}
        fresh = self.freshness()
        infos = []
        for source in self._visible_sources(access):
            state = states.get(source.name)
            live = fresh.get(source.name, SourceFreshness())
            infos.append(
                SourceInfo(
                    name=source.name,
                    description=source.description,
                    connector=source.connector,
                    documents=state.documents if state else 0,
                    chunks=state.chunks if state else 0,
                    last_synced=state.last_synced if state else None,
                    last_error=state.last_error if state else None,
                    refresh=source.refresh,
                    watching=live.watching,
                    pending_changes=live.pending_changes,
                    next_sync=live.next_sync,
                    syncing=live.syncing,
                )
            )
        return SourceList(sources=infos)

    def record(self, source: str, key: str, access: Access = EVERYTHING) -> DocumentRecord | None:
        """The record of ``source`` whose key is ``key`` (typed ``fields``), None if it has none.

        NotFound names the available sources when ``source`` is not one ``access`` may see.
        """
        known = [s.name for s in self._visible_sources(access)]
        if source not in known:
            raise NotFound(f"unknown source {source!r}; available: {', '.join(known) or 'none'}")
        return self.catalog.record(source, key)

    def sync(
        self,
        sources: Sequence[str] | None = None,
        *,
        full: bool = False,
        progress: SyncProgress | None = None,
        wait_s: float = 0.0,
        stop: threading.Event | None = None,
        paths: Mapping[str, Sequence[str]] | None = None,
    ) -> SyncReport:
        recorder = ProgressRecorder(self.settings.data_dir, progress)
        return self.indexer.sync(sources, full=full, progress=recorder, wait_s=wait_s, stop=stop, paths=paths)

    def last_synced(self) -> dict[str, datetime | None]:
        """When each source was last synced; empty if the catalog cannot be read now (background
        sync then starts at once and reports the problem), so a damaged store never stops serving."""
        try:
            return {s.name: s.last_synced for s in self.catalog.source_states()}
        except StrongroomError as exc:
            log.warning("could not read when sources were last synced: %s", exc)
            return {}

    def close(self) -> None:
        self.catalog.close()

    # -- validation -------------------------------------------------------------------------

    def _require_ready(self, *, before: bool) -> None:
        """NotReady instead of empty results: nothing indexed, or the first sync under way.

        ``before`` a search, only an empty index counts (so the model is not loaded for nothing).
        """
        if before and self.catalog.has_documents():
            return
        message = not_ready_message(self.catalog, self.settings.data_dir)
        if message:
            raise NotReady(message)

    @property
    def _call_cap(self) -> int:
        return self.settings.guard.max_chars_per_call

    def source_sizes(self) -> dict[str, int]:
        """Passages per source (the guard sizes per-source budgets from it on every call).

        Counted again only when the index changed, not on each call.
        """
        version = self.catalog.index_version()
        if self._sizes is None or self._sizes[0] != version:
            self._sizes = (version, {s.name: s.chunks for s in self.catalog.source_states()})
        return self._sizes[1]

    def canary_documents(self) -> set[str]:
        return self.catalog.canary_documents()

    def plant_canaries(self, source: str, canaries: Sequence[Canary]) -> list[str]:
        """Index decoys into ``source`` and register them as canaries; their document ids."""
        self.indexer.plant(source, [c.document for c in canaries])
        planted = []
        for c in canaries:
            planted.append(source_document_id(source, c.document.id))
            self.catalog.add_canary(planted[-1], source, c.document.id, c.token)
        return planted

    def _visible_sources(self, access: Access) -> list[SourceSettings]:
        return [s for s in self.settings.all_sources() if access.can_see(s.labels)]

    def visible_sources(self, access: Access) -> frozenset[str]:
        """Names of the configured sources ``access`` may see, by the labels configured now."""
        return frozenset(s.name for s in self._visible_sources(access))

    def _check_sources(self, sources: Sequence[str], access: Access) -> tuple[str, ...]:
        known = [s.name for s in self._visible_sources(access)]
        for name in sources:
            if name not in known:
                raise InvalidArgument(f"unknown source {name!r}; available: {', '.join(known) or 'none'}")
        return tuple(dict.fromkeys(sources))


def _check_filters(filters: Mapping[str, Any]) -> dict[str, MetadataValue | list[MetadataValue]]:
    """Keys the stores accept (ASCII identifiers), scalar values, integers the stores can hold."""
    out: dict[str, MetadataValue | list[MetadataValue]] = {}
    for key, value in filters.items():
        if not isinstance(key, str) or not METADATA_KEY.match(key):
            raise InvalidArgument(
                f"filter key {key!r} must be a metadata field name: ASCII letters, digits and _, "
                "not starting with a digit, at most 64 characters"
            )
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str | int | float | bool) for v in values):
            raise InvalidArgument(
                f"filter {key!r} must be a string, number, boolean or a non-empty list of them"
            )
        for v in values:
            if isinstance(v, int) and not INT64_MIN <= v <= INT64_MAX:
                raise InvalidArgument(f"filter {key!r}: integers must be between {INT64_MIN} and {INT64_MAX}")
        out[key] = list(values) if isinstance(value, list) else value
    return out


def _within(hits: list[SearchHit], max_chars: int) -> list[SearchHit]:
    """The best hits whose passages fit in one call's character cap (at least one)."""
    kept: list[SearchHit] = []
    total = 0
    for hit in hits:
        total += len(hit.text)
        if kept and total > max_chars:
            break
        kept.append(hit)
    return kept


def _window_length(part: str, max_chars: int, *, at_end: bool) -> int:
    """How much of ``part`` (at most ``max_chars`` of a document from a window's offset) the
    window shows: all of it at the document's end, else up to a paragraph or line break in
    its second half if there is one."""
    if at_end:
        return len(part)
    for sep in ("\n\n", "\n", " "):
        cut = part.rfind(sep, max_chars // 2, len(part))
        if cut != -1:
            return cut + len(sep)
    return len(part)
