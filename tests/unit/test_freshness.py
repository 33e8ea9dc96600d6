"""Refresh schedules, their settings, the filesystem connector's file stamps, and the sync loop's timing."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from watchfiles import Change

from strongroom.connectors.filesystem import FilesystemConnector
from strongroom.connectors.filesystem import walk as walk_module
from strongroom.connectors.filesystem.connector import FilesystemConfig
from strongroom.connectors.testing import collect
from strongroom.server.indexing import freshness as freshness_module
from strongroom.server.indexing.freshness import MAX_PATHS, Freshness, read_published
from strongroom.server.indexing.sync import SourceReport, SyncBusy, SyncReport
from strongroom.server.settings import ConfigError, load_settings
from strongroom.server.settings.schedule import Cron, Every, parse_refresh


@pytest.mark.parametrize(
    ("text", "expected"),
    [("15m", Every(900)), ("1h30m", Every(5400)), ("30 s", Every(30)), ("*/5 * * * *", Cron("*/5 * * * *"))],
)
def test_refresh_values(text: str, expected: object) -> None:
    assert parse_refresh(text) == expected


def test_cron_is_evaluated_forward_in_minutes() -> None:
    moment = datetime(2026, 3, 2, 6, 59, 30, tzinfo=UTC).astimezone()
    nxt = Cron("*/15 * * * *").next_after(moment)
    assert nxt > moment and nxt.minute % 15 == 0 and nxt.second == 0


@pytest.mark.parametrize("bad", ["1s", "every 5", "61 * * * *", "soon", ""])
def test_a_bad_refresh_is_one_line_naming_the_key_and_what_to_write(tmp_path: Path, bad: str) -> None:
    config = tmp_path / "strongroom.toml"
    config.write_text(
        f"[[sources]]\nname = 'orders'\nconnector = 'sql'\nurl = 'sqlite:///o.db'\nquery = 'SELECT 1'\n"
        f"refresh = '{bad}'\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    message = str(info.value)
    assert "\n" not in message and "sources.orders.refresh:" in message and '"15m"' in message, message


def test_watch_is_for_filesystem_sources_and_unknown_keys_stay_errors(tmp_path: Path) -> None:
    config = tmp_path / "strongroom.toml"
    config.write_text("[[sources]]\nname = 'w'\nconnector = 'web'\nurls = ['http://x']\nwatch = true\n")
    with pytest.raises(ConfigError, match="only filesystem sources can be watched"):
        load_settings(config)
    config.write_text("[server]\nwatch_often = true\n")
    with pytest.raises(ConfigError, match=r"server\.watch_often: unknown key"):
        load_settings(config)


def test_the_filesystem_connector_reads_only_the_files_that_changed(tmp_path: Path) -> None:
    for name in ("a.md", "b.md", "c.md"):
        (tmp_path / f"{name}").write_text(f"# {name}\n\nSome text of {name}.")
    old = time.time() - 60
    for p in tmp_path.iterdir():
        os.utime(p, (old, old))
    first = FilesystemConnector(FilesystemConfig(path=tmp_path))
    assert len(collect(first)) == 3
    (tmp_path / "b.md").write_text("# b\n\nNew text.")
    (tmp_path / "c.md").unlink()
    again = FilesystemConnector(FilesystemConfig(path=tmp_path))
    again.state = first.state
    assert [d.id for d in collect(again)] == ["b.md"]
    assert again.kept == {"a.md"}


def test_the_filesystem_connector_reads_just_the_paths_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for rel in ("a.md", "b.md", "sub/c.md", "sub/d.md", "node_modules/x.md", ".hidden/y.md"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_text(f"# {rel}\n\nSome text of {rel}.")
    old = time.time() - 60
    for p in tmp_path.rglob("*"):
        os.utime(p, (old, old))
    config = FilesystemConfig(path=tmp_path, exclude=["node_modules"])
    first = FilesystemConnector(config)
    assert len(collect(first)) == 4
    (tmp_path / "a.md").unlink()
    (tmp_path / "b.md").write_text("# b\n\nNew text.")
    (tmp_path / "sub" / "d.md").unlink()  # changed, but not among the paths: still remembered
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "f.md").write_text("# f\n\nA folder moved in.")
    (tmp_path / "node_modules" / "x.md").write_text("changed, excluded")
    listed: list[str] = []
    scandir = os.scandir

    def counting_scandir(path: Any) -> Any:
        listed.append(Path(path).relative_to(tmp_path).as_posix())
        return scandir(path)

    monkeypatch.setattr(walk_module.os, "scandir", counting_scandir)
    again = FilesystemConnector(config)
    again.state = first.state
    scopes = ["a.md", "b.md", "new", "node_modules/x.md", ".hidden/y.md", "new/f.md", "../a.md"]

    async def run() -> list[str]:
        return [d.id async for d in again.documents_in(scopes)]

    assert asyncio.run(run()) == ["b.md", "new/f.md"]
    assert listed == ["new"]  # only the folder named is listed; files are stat'ed
    assert again.kept == set() and again.skipped == []
    # The stamps: the files read now added, a.md forgotten, those not looked at kept as they were.
    assert sorted(again.state["files"]) == ["b.md", "new/f.md", "sub/c.md", "sub/d.md"]
    assert again.state["files"]["sub/d.md"] == first.state["files"]["sub/d.md"]
    assert again.state["scanned_at"] == first.state["scanned_at"]


def _settings(tmp_path: Path, extra: str = ""):  # type: ignore[no-untyped-def]
    (tmp_path / "docs").mkdir()
    config = tmp_path / "strongroom.toml"
    config.write_text(
        f"[server]\ndebounce_s = 0.3\n{extra}\n[[sources]]\nname = 'n'\nconnector = 'filesystem'\npath = 'docs'\n"
    )
    return load_settings(config)


class _Recorder:
    """Stands in for the indexer: records each sync, optionally busy once or slow."""

    def __init__(self, busy_once: bool = False, seconds: float = 0.0) -> None:
        self.calls: list[float] = []
        self.paths: list[dict[str, Sequence[str]]] = []  # what each sync was limited to
        self.busy_once = busy_once
        self.seconds = seconds

    def __call__(
        self, names: Sequence[str], paths: Mapping[str, Sequence[str]], stop: threading.Event
    ) -> SyncReport:
        if self.busy_once:
            self.busy_once = False
            raise SyncBusy("another sync is running")
        self.calls.append(time.monotonic())
        self.paths.append(dict(paths))
        time.sleep(self.seconds)
        return SyncReport([SourceReport(n, added=1) for n in names])


def _run(freshness: Freshness, body):  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with freshness.running():
            await body()

    anyio.run(main)


@pytest.mark.slow  # real file events and timing: seconds
def test_a_burst_of_saves_is_one_sync_and_status_is_published(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    sync = _Recorder()
    changed: list[bool] = []

    async def on_change() -> None:
        changed.append(True)

    freshness = Freshness(settings, sync, {}, on_change)

    async def body() -> None:
        with anyio.fail_after(10):
            while len(sync.calls) < 1:  # the catch-up sync at start
                await anyio.sleep(0.05)
        await anyio.sleep(0.5)  # let the watcher settle
        for i in range(5):
            (tmp_path / "docs" / f"f{i}.md").write_text("x")
            await anyio.sleep(0.05)
        with anyio.fail_after(10):
            while freshness.snapshot()["n"].pending_changes == 0 and len(sync.calls) < 2:
                await anyio.sleep(0.02)
        published = read_published(settings.data_dir)
        assert published["n"].watching
        with anyio.fail_after(10):
            while len(sync.calls) < 2:
                await anyio.sleep(0.05)
        await anyio.sleep(1.0)  # no second sync for the same burst

    _run(freshness, body)
    assert len(sync.calls) == 2, sync.calls
    assert changed  # documents were added: clients hear of it
    assert read_published(settings.data_dir) == {}  # a stopped server's report is gone


@pytest.mark.slow
def test_a_busy_lock_and_a_change_during_a_sync_each_lead_to_another_sync(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    sync = _Recorder(busy_once=True, seconds=1.0)
    freshness = Freshness(settings, sync, {})

    async def body() -> None:
        with anyio.fail_after(15):
            while len(sync.calls) < 1:  # the busy catch-up is retried
                await anyio.sleep(0.02)
        await anyio.sleep(0.3)
        (tmp_path / "docs" / "during.md").write_text("x")  # while the (slow) sync runs
        with anyio.fail_after(15):
            while len(sync.calls) < 2:
                await anyio.sleep(0.05)

    _run(freshness, body)
    assert len(sync.calls) == 2


async def _until(check: Any, timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.05)


@pytest.mark.slow
def test_a_watched_change_syncs_just_its_paths_and_missed_changes_the_whole_source(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "poll_interval_s = 0.5")
    docs = tmp_path / "docs"
    sync = _Recorder()
    freshness = Freshness(settings, sync, {})

    async def body() -> None:
        await _until(lambda: len(sync.calls) == 1)
        assert sync.paths[0] == {}  # the catch-up at start: the whole source
        await anyio.sleep(0.5)
        (docs / "sub").mkdir()
        (docs / "sub" / "a.md").write_text("x")
        await _until(lambda: len(sync.calls) == 2)
        assert sync.paths[1] in ({"n": ["sub"]}, {"n": ["sub", "sub/a.md"]})  # a new folder: walked

        (docs / "sub" / "a.md").write_text("y")
        (docs / "sub" / "a.md").rename(docs / "b.md")
        await _until(lambda: len(sync.calls) == 3)
        assert sync.paths[2] == {"n": ["b.md", "sub/a.md"]}

        for i in range(MAX_PATHS + 1):  # too many to look at one by one
            (docs / f"many-{i}.md").write_text("x")
        await _until(lambda: len(sync.calls) == 4 and freshness.snapshot()["n"].pending_changes == 0)
        assert sync.paths[3] == {}

        shutil.rmtree(docs)  # the folder itself goes: a whole sync (which reports the folder missing)
        await _until(lambda: len(sync.calls) == 5)
        assert sync.paths[4] == {}
        await anyio.sleep(1.0)
        docs.mkdir()  # ... and comes back (a drive plugged in again): watched again, synced whole
        await _until(lambda: len(sync.calls) == 6)
        assert sync.paths[5] == {}
        (docs / "c.md").write_text("x")
        await _until(lambda: len(sync.calls) == 7)
        assert sync.paths[6] == {"n": ["c.md"]}

    _run(freshness, body)


def test_the_watcher_is_given_the_sources_rules_as_its_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(
        tmp_path,
        "watch_polling = true\n[[sources]]\nname = 'o'\nconnector = 'filesystem'\n"
        "path = 'other'\nexclude = ['node_modules', '*.tmp']\n",
    )
    (tmp_path / "other").mkdir()
    called: list[dict[str, Any]] = []

    async def fake_awatch(*paths: Path, **options: Any) -> AsyncIterator[set[tuple[Change, str]]]:
        called.append({"paths": paths, **options})
        await anyio.sleep_forever()
        yield set()

    monkeypatch.setattr(freshness_module, "awatch", fake_awatch)
    freshness = Freshness(settings, _Recorder(), {})

    async def body() -> None:
        await _until(lambda: bool(called))

    _run(freshness, body)
    docs, other = (tmp_path / "docs").resolve(), (tmp_path / "other").resolve()
    options = called[0]
    assert options["force_polling"] is True and set(options["paths"]) == {docs, other}
    wanted = options["watch_filter"]
    assert wanted(Change.modified, str(docs / "a.md"))
    assert wanted(Change.deleted, str(other))  # a watched folder itself
    assert wanted(Change.added, str(docs / "node_modules" / "a.md"))  # only 'o' excludes it
    for rejected in ("node_modules/a.md", "x/node_modules/b/c.md", "a.tmp", ".git/HEAD", "sub/.a.md"):
        assert not wanted(Change.added, str(other / rejected)), rejected
    assert not wanted(Change.modified, str(docs))  # a folder's own time: its entries say what changed
    assert not wanted(Change.added, str(tmp_path / "elsewhere.md"))
