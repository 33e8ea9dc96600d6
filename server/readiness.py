"""Is there anything to search yet? An empty index, or a first sync still under way, is said in
one sentence (to the CLI and to MCP clients alike) instead of an empty list of results."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from strongroom.server.errors import StrongroomError
from strongroom.server.indexing.sync import SourceReport, SyncProgress
from strongroom.server.store.locks import exclusive_lock

if TYPE_CHECKING:
    from strongroom.server.store.catalog import Catalog

log = logging.getLogger(__name__)

PROGRESS_FILE = "sync-progress.json"
LOCK_FILE = "sync.lock"


class NotReady(StrongroomError):
    """Nothing is indexed yet, or the first sync has not indexed what was asked for yet."""


def sync_running(data_dir: Path) -> bool:
    """Whether a sync (in this process or another) holds the data folder's lock."""
    lock = data_dir / LOCK_FILE
    if not lock.exists():
        return False
    with exclusive_lock(lock) as held:
        return not held


def progress_of(data_dir: Path) -> tuple[int, int | None]:
    """(documents read, documents expected or None) of the sync under way, as it last recorded."""
    try:
        data = json.loads((data_dir / PROGRESS_FILE).read_text(encoding="utf-8"))
        return int(data["documents"]), (int(data["estimated"]) if data.get("estimated") else None)
    except (OSError, ValueError, KeyError, TypeError):
        return 0, None


def not_ready_message(catalog: Catalog, data_dir: Path) -> str | None:
    """The sentence to give instead of empty results, or None when the index is simply complete."""
    documents, _ = catalog.counts()
    if not sync_running(data_dir):
        return None if documents else "nothing indexed yet: run `strongroom sync`"
    if any(state.last_synced for state in catalog.source_states()):
        return None  # a later sync: what is indexed is a complete earlier state
    done, expected = progress_of(data_dir)
    of = f" of {expected}" if expected else ""
    return f"the first sync is still running: {max(done, documents)}{of} documents indexed; try again shortly"


class ProgressRecorder:
    """A SyncProgress that records the sync's progress in the data folder (for ``search`` and
    ``doctor`` in other threads and processes), passing every event on to ``inner``."""

    def __init__(self, data_dir: Path, inner: SyncProgress | None = None, every_s: float = 0.5) -> None:
        self._path = data_dir / PROGRESS_FILE
        self._inner = inner
        self._every = every_s
        self._written = 0.0
        self._done: dict[str, int] = {}
        self._estimated: dict[str, int | None] = {}

    def model_loading(self, model: str) -> None:
        if self._inner:
            self._inner.model_loading(model)

    def model_loaded(self, seconds: float) -> None:
        if self._inner:
            self._inner.model_loaded(seconds)

    def source_started(self, name: str, estimated_documents: int | None) -> None:
        self._estimated[name] = estimated_documents
        self._done[name] = 0
        self._write(force=True)
        if self._inner:
            self._inner.source_started(name, estimated_documents)

    def documents_done(self, name: str, documents: int, chunks: int) -> None:
        self._done[name] = documents
        self._write()
        if self._inner:
            self._inner.documents_done(name, documents, chunks)

    def source_finished(self, report: SourceReport) -> None:
        self._write(force=True)
        if self._inner:
            self._inner.source_finished(report)

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < self._every:
            return
        self._written = now
        estimates = list(self._estimated.values())
        estimated = sum(e for e in estimates if e) if all(estimates) else None
        record = {"documents": sum(self._done.values()), "estimated": estimated}
        try:
            self._path.write_text(json.dumps(record), encoding="utf-8")
        except OSError as exc:  # progress is a courtesy: never fail a sync over it
            log.debug("could not record sync progress: %s", exc)
