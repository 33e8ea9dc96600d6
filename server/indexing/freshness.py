"""Keeping the index fresh while serving: watched folders, refresh schedules, one sync at a time.

One task decides what is due and runs the (blocking, incremental, crash-safe) sync in a worker
thread, so searches go on meanwhile; another watches the filesystem sources' folders and notes
the paths that changed. Once a source's files have been quiet for ``debounce_s`` (a burst of
saves is one sync), just those paths are synced. A source is synced whole when its ``refresh``
schedule comes round, once at start for a watched source (catching up on what changed while
nobody watched), when more than ``MAX_PATHS`` changed, and when the watcher may have missed
changes (it failed, or a watched folder itself went or came back). A change arriving during a
sync makes a next one; a sync another process is running is waited out. What each source is
waiting for is published under the data directory for ``strongroom status``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from watchfiles import Change, awatch

from strongroom.connectors.api import ConnectorError
from strongroom.connectors.filesystem.connector import FilesystemConfig
from strongroom.connectors.filesystem.globs import GlobSet
from strongroom.connectors.filesystem.walk import visible
from strongroom.connectors.registry import build_connector
from strongroom.server.indexing.sync import SyncBusy, SyncReport, SyncStopped
from strongroom.server.settings import ServerSettings, Settings, SourceSettings
from strongroom.server.settings.schedule import Schedule
from strongroom.server.store.locks import exclusive_lock

log = logging.getLogger(__name__)
logging.getLogger("watchfiles").setLevel(logging.WARNING)  # "1 change detected" on every save

SyncFn = Callable[[Sequence[str], Mapping[str, Sequence[str]], threading.Event], SyncReport]
"""Syncs the named sources, those in the mapping only at the paths given (relative to the folder)."""
BUSY_RETRY_S = 3.0
FAILURE_RETRY_S = 60.0
MAX_SLEEP_S = 60.0  # re-check the wall clock (a laptop that slept) and the watched folders this often
MAX_PATHS = 500  # more changed paths than this: one walk of the tree costs less than their stats


@dataclass(frozen=True)
class SourceFreshness:
    """How fresh a source is kept, as ``list_sources`` and ``strongroom status`` show it."""

    watching: bool = False
    pending_changes: int = 0
    next_sync: datetime | None = None
    syncing: bool = False


@dataclass
class _Source:
    settings: SourceSettings
    schedule: Schedule | None
    root: Path | None = None  # watched folder
    include: GlobSet | None = None
    exclude: GlobSet | None = None
    pending: set[str] = field(default_factory=set)  # changed paths since the last sync began
    requested: bool = False  # due now, quiet or not
    whole: bool = False  # the next sync covers the whole source, not just the pending paths
    first_change: float | None = None  # monotonic
    last_change: float | None = None
    next_at: datetime | None = None
    syncing: bool = False

    def relevant(self, change: Change, path: str) -> str | None:
        """The path relative to the watched folder if the change may matter to this source."""
        assert self.root is not None and self.include is not None and self.exclude is not None
        try:
            rel = Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return None
        if rel == "." or not visible(rel, self.exclude):
            return None
        if self.include.matches(rel) or change == Change.deleted:
            return rel  # a matching file, or something deleted (a folder goes with its files)
        if change == Change.added and os.path.isdir(path):
            return rel  # a folder moved in: its files are not reported one by one
        return None  # a folder whose entries changed (polling) reports them too

    def lost(self, change: Change, path: str) -> bool:
        """Whether the watched folder itself went or came back (its watch with it)."""
        return change != Change.modified and Path(path) == self.root


@dataclass(frozen=True)
class _Work:
    """What one sync of a source was asked to cover."""

    paths: set[str]
    whole: bool


class Freshness:
    """Background syncs for one server; run it with :meth:`running` in the server's lifespan."""

    def __init__(
        self,
        settings: Settings,
        sync: SyncFn,
        last_synced: Mapping[str, datetime | None],
        on_documents_changed: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``last_synced`` sets each schedule's first sync (a source never synced: now)."""
        self._server: ServerSettings = settings.server
        self._data_dir = settings.data_dir
        self._sync = sync
        self._on_documents_changed = on_documents_changed
        self._stop = threading.Event()
        self._wake = anyio.Event()
        self._not_before = 0.0
        self._sources: dict[str, _Source] = {}
        now = datetime.now(UTC)
        for source in settings.all_sources():
            state = _Source(source, source.schedule())
            if source.watched(settings.server):
                _watch_folder(state, settings)
            if state.schedule is not None:
                last = last_synced.get(source.name)
                state.next_at = state.schedule.next_after(last) if last else now
            state.requested = state.whole = settings.server.sync_on_start or state.root is not None
            self._sources[source.name] = state

    @property
    def active(self) -> bool:
        """Whether there is anything to do in the background."""
        return any(s.root or s.schedule or s.requested for s in self._sources.values())

    def snapshot(self) -> dict[str, SourceFreshness]:
        """Each source's freshness right now (safe to call from any thread)."""
        return {
            name: SourceFreshness(
                watching=s.root is not None,
                pending_changes=len(s.pending) + (1 if s.requested and not s.pending else 0),
                next_sync=s.next_at,
                syncing=s.syncing,
            )
            for name, s in list(self._sources.items())
        }

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Watch and sync in background tasks while the body runs; stop the sync on exit."""
        if not self.active:
            yield
            return
        with exclusive_lock(_published_dir(self._data_dir) / f"{os.getpid()}.lock") as held:
            async with anyio.create_task_group() as tasks:
                if any(s.root for s in self._sources.values()):
                    tasks.start_soon(self._watch_forever)
                tasks.start_soon(self._sync_forever)
                try:
                    yield
                finally:
                    self._stop.set()  # a sync in its worker thread ends at the next document
                    tasks.cancel_scope.cancel()
        if held:
            _unpublish(self._data_dir)

    # -- syncing ------------------------------------------------------------------------------

    async def _sync_forever(self) -> None:
        while True:
            due = self._due()
            if due:
                await self._sync_now(due)
                continue
            self._publish()
            with anyio.move_on_after(self._seconds_to_next()):
                await self._wake.wait()
            self._wake = anyio.Event()

    def _due(self) -> list[str]:
        now, wall = time.monotonic(), datetime.now(UTC)
        if now < self._not_before:
            return []
        debounce = self._server.debounce_s
        return [
            name
            for name, s in self._sources.items()
            if s.requested
            or (s.last_change is not None and now - s.last_change >= debounce)
            or (s.first_change is not None and now - s.first_change >= _max_delay(debounce))
            or (s.next_at is not None and s.next_at <= wall)
        ]

    def _seconds_to_next(self) -> float:
        now, wall = time.monotonic(), datetime.now(UTC)
        debounce = self._server.debounce_s
        waits = [MAX_SLEEP_S, self._not_before - now]
        for s in self._sources.values():
            if s.last_change is not None and s.first_change is not None:
                waits.append(min(s.last_change + debounce, s.first_change + _max_delay(debounce)) - now)
            if s.next_at is not None:
                waits.append((s.next_at - wall).total_seconds())
        positive = [w for w in waits if w > 0]
        return max(0.01, min(positive)) if positive else 0.01

    async def _sync_now(self, names: list[str]) -> None:
        taken = {name: self._take(name) for name in names}
        paths = {name: sorted(work.paths) for name, work in taken.items() if not work.whole}
        self._publish()
        started = datetime.now(UTC).replace(microsecond=0)
        try:
            report = await anyio.to_thread.run_sync(
                self._sync, names, paths, self._stop, abandon_on_cancel=True
            )
        except SyncStopped:
            return
        except SyncBusy:
            log.info("another process is syncing %s; trying again shortly", self._data_dir)
            self._give_back(taken, BUSY_RETRY_S)
            return
        except Exception as exc:  # the store is down, the data folder unwritable, ...
            log.warning("background sync failed (retrying in %.0f s): %s", FAILURE_RETRY_S, exc)
            self._give_back(taken, FAILURE_RETRY_S)
            return
        finally:
            for name in names:
                self._sources[name].syncing = False
        for name in names:
            state = self._sources[name]
            if state.schedule is not None:
                state.next_at = state.schedule.next_after(started)
        log_report(report)
        self._publish()
        if self._on_documents_changed and any(r.added or r.deleted for r in report.sources):
            await self._on_documents_changed()

    def _take(self, name: str) -> _Work:
        state = self._sources[name]
        scheduled = state.next_at is not None and state.next_at <= datetime.now(UTC)
        whole = state.whole or scheduled or not state.pending or len(state.pending) > MAX_PATHS
        work = _Work(state.pending, whole)
        state.pending, state.requested, state.whole, state.syncing = set(), False, False, True
        state.first_change = state.last_change = None
        return work

    def _give_back(self, taken: dict[str, _Work], delay: float) -> None:
        for name, work in taken.items():
            state = self._sources[name]
            state.pending |= work.paths
            state.whole |= work.whole
            state.requested = True
        self._not_before = time.monotonic() + delay

    # -- watching -----------------------------------------------------------------------------

    async def _watch_forever(self) -> None:
        polling = self._server.watch_polling
        started = False
        while True:
            roots = self._roots()
            if not roots:  # the folders do not exist (yet); their syncs say so
                await anyio.sleep(self._recheck_s(roots))
                started = True
                continue
            if started:  # nothing watched these folders for a moment: look at all of them
                self._resync(roots)
            started = True
            try:
                await self._watch(roots, polling)
            except Exception as exc:
                if polling:
                    log.warning("watching files failed (retrying in %.0f s): %s", MAX_SLEEP_S, exc)
                    await anyio.sleep(MAX_SLEEP_S)
                else:
                    log.warning("native file events unavailable (%s); polling for changes instead", exc)
                polling = True

    async def _watch(self, roots: set[Path], polling: bool) -> None:
        """Note changes under ``roots`` until a watched folder goes or one comes back."""
        stop = anyio.Event()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_set_when_cancelled, stop)
            changes = awatch(
                *sorted(roots),
                # Applied by watchfiles in Python to what its watcher found: the polling watcher
                # still stats every file under the folders, excluded and hidden trees included
                # (and native events watch every folder); watchfiles has no way to prune them.
                watch_filter=self._wanted,
                step=200,  # the watcher thread's wake-up period: idle cost, not latency (see debounce)
                rust_timeout=int(self._recheck_s(roots) * 1000),
                yield_on_timeout=True,  # to look for a missing folder
                stop_event=stop,
                force_polling=polling,
                poll_delay_ms=int(self._server.poll_interval_s * 1000),
                ignore_permission_denied=True,
            )
            async with contextlib.aclosing(changes):
                async for batch in changes:
                    if self._note(batch) or self._roots() != roots:
                        break
            tasks.cancel_scope.cancel()

    def _roots(self) -> set[Path]:
        return {s.root for s in self._sources.values() if s.root and s.root.is_dir()}

    def _recheck_s(self, roots: set[Path]) -> float:
        """How often to look whether watched folders came or went: a missing one (an unplugged
        drive, a folder being restored) as often as a poll."""
        missing = any(s.root and s.root not in roots for s in self._sources.values())
        return self._server.poll_interval_s if missing else MAX_SLEEP_S

    def _wanted(self, change: Change, path: str) -> bool:
        """Whether a change may matter to a watched source (its folder itself, or what it indexes)."""
        return any(
            s.root is not None and (s.lost(change, path) or s.relevant(change, path) is not None)
            for s in self._sources.values()
        )

    def _note(self, changes: set[tuple[Change, str]]) -> bool:
        """Note the changed paths; whether a watched folder itself went (or came back)."""
        now = time.monotonic()
        noted = lost = False
        for state in self._sources.values():
            if state.root is None:
                continue
            if any(state.lost(change, path) for change, path in changes):
                state.requested = state.whole = lost = noted = True
            rels = {rel for change, path in changes if (rel := state.relevant(change, path))}
            if rels:
                state.pending |= rels
                state.first_change = state.first_change or now
                state.last_change = now
                noted = True
        if noted:
            self._publish()
            self._wake.set()
        return lost

    def _resync(self, roots: set[Path]) -> None:
        """Sync the sources watching ``roots`` whole: changes there may have gone unseen.

        (watchfiles drops the events by which a native watcher says it lost some: an
        overflowing queue is seen only as many changed paths, more than ``MAX_PATHS``.)"""
        for state in self._sources.values():
            if state.root in roots:
                state.requested = state.whole = True
        self._wake.set()

    # -- publishing ---------------------------------------------------------------------------

    def _publish(self) -> None:
        """Write this server's view for ``strongroom status`` (other processes)."""
        data = {"sources": {n: _to_json(f) for n, f in self.snapshot().items()}}
        target = _published_dir(self._data_dir) / f"{os.getpid()}.json"
        try:
            partial = target.with_suffix(".tmp")
            partial.write_text(json.dumps(data), encoding="utf-8")
            os.replace(partial, target)
        except OSError as exc:
            log.debug("could not publish freshness: %s", exc)


def read_published(data_dir: Path) -> dict[str, SourceFreshness]:
    """What running servers on ``data_dir`` report, merged per source; stale reports are removed."""
    merged: dict[str, SourceFreshness] = {}
    folder = _published_dir(data_dir, create=False)
    for report in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        with exclusive_lock(report.with_suffix(".lock")) as free:
            if free:  # its server is gone
                with contextlib.suppress(OSError):
                    report.unlink()
                continue
        try:
            sources = json.loads(report.read_text(encoding="utf-8"))["sources"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for name, raw in sources.items():
            merged[name] = _merge(merged.get(name), _from_json(raw))
    return merged


def log_report(report: SyncReport) -> None:
    """One line per source: counts and the source error, never document text."""
    for s in report.sources:
        log.info(
            "sync %s%s: added %d, updated %d, unchanged %d, deleted %d, skipped %d%s",
            s.name,
            " (changed paths)" if s.partial else "",
            s.added,
            s.updated,
            s.unchanged,
            s.deleted,
            len(s.skipped),
            f", error: {s.error}" if s.error else "",
        )


def _max_delay(debounce: float) -> float:
    """A folder that never goes quiet (a log being written) is still synced this often."""
    return max(10 * debounce, 10.0)


async def _set_when_cancelled(event: anyio.Event) -> None:
    try:
        await anyio.sleep_forever()
    finally:
        event.set()  # the watcher thread sees it within one step and returns


def _watch_folder(state: _Source, settings: Settings) -> None:
    """Set the folder and patterns to watch from the source's validated filesystem config."""
    try:
        connector = build_connector(
            state.settings.connector, state.settings.connector_options(), settings.base_dir
        )
    except ConnectorError as exc:  # its sync reports the problem
        log.warning("not watching source %s: %s", state.settings.name, exc)
        return
    config = connector.config
    if isinstance(config, FilesystemConfig):
        state.root = config.path.expanduser().resolve()
        state.include, state.exclude = GlobSet(config.include), GlobSet(config.exclude)


def _published_dir(data_dir: Path, create: bool = True) -> Path:
    folder = data_dir / "serving"
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _unpublish(data_dir: Path) -> None:
    for suffix in (".json", ".lock"):
        with contextlib.suppress(OSError):
            (_published_dir(data_dir, create=False) / f"{os.getpid()}{suffix}").unlink()


def _to_json(f: SourceFreshness) -> dict[str, Any]:
    data = asdict(f)
    data["next_sync"] = f.next_sync.isoformat() if f.next_sync else None
    return data


def _from_json(raw: dict[str, Any]) -> SourceFreshness:
    next_sync = raw.get("next_sync")
    return SourceFreshness(
        watching=bool(raw.get("watching")),
        pending_changes=int(raw.get("pending_changes") or 0),
        next_sync=datetime.fromisoformat(next_sync) if isinstance(next_sync, str) else None,
        syncing=bool(raw.get("syncing")),
    )


def _merge(a: SourceFreshness | None, b: SourceFreshness) -> SourceFreshness:
    if a is None:
        return b
    times = [t for t in (a.next_sync, b.next_sync) if t is not None]
    return SourceFreshness(
        watching=a.watching or b.watching,
        pending_changes=max(a.pending_changes, b.pending_changes),
        next_sync=min(times) if times else None,
        syncing=a.syncing or b.syncing,
    )
