"""The vector store: the only module that imports chromadb.

Embedded ``PersistentClient`` by default, ``HttpClient`` against ``chroma run`` when
``store.chroma_url`` is set; everything else is the same code path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlparse

from strongroom.server.errors import StoreUnavailable
from strongroom.server.lazy_imports import import_numpy_first, import_without
from strongroom.server.store.records import SearchFilter

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

log = logging.getLogger(__name__)

Metadata = Mapping[str, str | int | float | bool]
Where = dict[str, Any]
T = TypeVar("T")

#: Opening and dropping embedded clients touches chromadb's process-wide system cache, which is
#: not thread-safe: concurrent first opens fail ("Could not connect to tenant default_tenant").
_OPEN_LOCK = threading.Lock()
_UNAVAILABLE = (
    "the vector store {}; try again later (if it persists, check the data directory or the Chroma server)"
)


class VectorStoreError(StoreUnavailable):
    """The vector store cannot be reached or refused an operation (details for the operator only)."""


@dataclass(frozen=True)
class VectorMatch:
    id: str
    distance: float


class VectorSettings(Protocol):
    """Where the vectors live (the store settings satisfy it)."""

    @property
    def chroma_url(self) -> str | None: ...

    @property
    def collection(self) -> str: ...


class VectorStore:
    """Chunk vectors with the metadata that filters need (source, document, labels)."""

    def __init__(self, settings: VectorSettings, data_dir: Path) -> None:
        self._settings = settings
        self._data_dir = data_dir
        self._collection: Collection | None = None
        #: The catalog's index version this client's view of the vectors is known to match.
        self.index_version: int | None = None
        #: True while this process's own sync writes (it holds the sync lock): nobody else writes,
        #: and this client sees its own writes, so a search must not reload mid-sync.
        self.writing = False

    def follow(self, index_version: int) -> None:
        """Reload if the index changed since this client last matched it (see :meth:`reopen`).

        Concurrent callers that see the same new version reload once.
        """
        with _OPEN_LOCK:
            if self.writing:
                return
            if self.index_version is not None and index_version != self.index_version:
                self._drop()
            self.index_version = index_version

    def reopen(self) -> None:
        """See vectors written by another process (a `strongroom sync` beside a running server).

        Embedded Chroma keeps one in-memory instance per data directory and process, which
        does not notice another process's writes; dropping it makes the next call reload
        from disk. A Chroma server needs nothing.
        """
        with _OPEN_LOCK:
            self._drop()

    def _drop(self) -> None:
        if self._settings.chroma_url:
            return
        self._collection = None
        from chromadb.api.shared_system_client import SharedSystemClient

        systems = getattr(SharedSystemClient, "_identifier_to_system", None)
        if isinstance(systems, dict):
            systems.pop(str(self._data_dir / "chroma"), None)
        else:  # a chromadb without the per-path cache: clear all of it
            SharedSystemClient.clear_system_cache()

    def preload(self, index_version: int) -> None:
        """Import Chroma's client and open the collection ahead of the first search or write
        (about half a second). ``index_version`` is the catalog's, read before: what the vectors
        opened now are at least as new as, so another process's later writes are reloaded."""
        self.follow(index_version)
        try:
            self._open()
        except Exception as exc:  # the first real call reports it
            log.warning("could not open the vector index: %s", exc)

    @property
    def location(self) -> str:
        return self._settings.chroma_url or str(self._data_dir / "chroma")

    def _open(self) -> Collection:
        collection = self._collection
        if collection is not None:
            return collection
        with _OPEN_LOCK:
            if self._collection is None:
                self._collection = self._connect()
            return self._collection

    def _connect(self) -> Collection:
        import_numpy_first()
        import_without("httpx", "httpx._main")  # Chroma imports httpx; its CLI is 50 ms more
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        try:
            if self._settings.chroma_url:
                url = urlparse(self._settings.chroma_url)
                client = chromadb.HttpClient(
                    host=url.hostname or "127.0.0.1",
                    port=url.port or (443 if url.scheme == "https" else 8000),
                    ssl=url.scheme == "https",
                    settings=chroma_settings,
                )
            else:
                path = self._data_dir / "chroma"
                path.mkdir(parents=True, exist_ok=True)
                client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
            return client.get_or_create_collection(
                self._settings.collection,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
            )
        except Exception as exc:  # chromadb raises many types; the user needs one message
            raise VectorStoreError(_UNAVAILABLE.format("is unavailable"), f"{self.location}: {exc}") from exc

    def upsert(
        self, ids: Sequence[str], embeddings: Sequence[Sequence[float]], metadatas: Sequence[Metadata]
    ) -> None:
        if not ids:
            return
        self._call(
            lambda c: c.upsert(
                ids=list(ids),
                embeddings=[list(e) for e in embeddings],  # type: ignore[arg-type]
                metadatas=[dict(m) for m in metadatas],
            )
        )

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._call(lambda c: c.delete(ids=list(ids)))

    def query(self, embedding: Sequence[float], n: int, where: Where | None) -> list[VectorMatch]:
        """The ``n`` nearest chunks that satisfy ``where`` (applied inside the index query)."""

        def run(c: Collection) -> list[VectorMatch]:
            result = c.query(
                query_embeddings=[list(embedding)],  # type: ignore[arg-type]
                n_results=n,
                where=where or None,
                include=["distances"],
            )
            distances = (result.get("distances") or [[]])[0]
            return [VectorMatch(i, float(d)) for i, d in zip(result["ids"][0], distances, strict=True)]

        return self._call(run)

    def count(self) -> int:
        return self._call(lambda c: c.count())

    def _call(self, op: Callable[[Collection], T]) -> T:
        collection = self._open()
        try:
            return op(collection)
        except Exception as exc:
            raise VectorStoreError(_UNAVAILABLE.format("failed"), f"{self.location}: {exc}") from exc


METADATA_PREFIX = "meta_"


def chunk_metadata(
    source: str, document_id: str, labels: Sequence[str], metadata: Mapping[str, Any]
) -> dict[str, str | int | float | bool]:
    """What a chunk's vector carries for filtering: source, document, labels and scalar metadata."""
    out: dict[str, str | int | float | bool] = {
        "source": source,
        "document_id": document_id,
        "labelled": bool(labels),
    }
    for label in labels:
        out[f"label_{label}"] = True
    for key, value in metadata.items():
        if isinstance(value, str | int | float | bool):
            out[METADATA_PREFIX + key] = value
    return out


def chroma_where(filter_: SearchFilter) -> Where | None:
    """Translate a SearchFilter into a Chroma ``where`` clause."""
    clauses: list[Where] = []
    if filter_.sources is not None:
        clauses.append({"source": {"$in": list(filter_.sources) or ["\x00none"]}})
    for key, value in filter_.metadata.items():
        field = METADATA_PREFIX + key
        clauses.append({field: {"$in": value}} if isinstance(value, list) else {field: value})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
