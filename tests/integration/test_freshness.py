"""An index that stays fresh while `strongroom serve` runs: watched folders, scheduled sources, kills."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import ResourceListChangedNotification

from strongroom.server.app import build_app
from strongroom.server.settings import load_settings
from tests.integration.mcp_helpers import structured
from tests.integration.test_crash_safety import (
    check_invariants,
    chroma_ids,
    committed_chunk_ids,
    ledger,
    release_embedded_chroma,
)
from tests.support import ROOT, clean_env, strongroom_cmd

pytestmark = pytest.mark.model

DEBOUNCE_S = 0.3
VISIBLE_WITHIN_S = 10.0  # debounce + an incremental sync + embedding a file, loaded machine
GUARD = "[guard.limits]\ncalls_per_minute = 100000\nburst = 1000\n\n"  # these tests poll


def _params(config: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "strongroom.server", "serve", "--config", str(config)],
        env=clean_env(PYTHONPATH=str(ROOT)),
    )


async def _until(what: str, check: Callable[[], Any], timeout: float) -> float:
    """Poll the async ``check`` until it returns truthy; the seconds it took."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout}s"
        await anyio.sleep(0.2)
    return time.monotonic() - start


async def _source(client: Client, name: str) -> dict[str, Any]:
    sources = structured(await client.call_tool("list_sources", {}))["sources"]
    return next(s for s in sources if s["name"] == name)


async def _top_documents(client: Client, query: str) -> list[str]:
    hits = structured(await client.call_tool("search", {"query": query, "k": 3}))["results"]
    return [h["document_id"] for h in hits]


async def _top_is(client: Client, query: str, doc: str) -> bool:
    return (await _top_documents(client, query))[:1] == [doc]


async def _synced(client: Client, name: str, documents: int) -> bool:
    """The source holds ``documents``, has synced, and waits for nothing."""
    s = await _source(client, name)
    return bool(
        s["documents"] == documents and s["last_synced"] and not s["pending_changes"] and not s["syncing"]
    )


def _stoves_and_kayaks(docs: Path) -> None:
    docs.mkdir()
    (docs / "kayaks.md").write_text("# Kayak storage\n\nKayaks are stored upside down on padded racks.")
    (docs / "stoves.md").write_text("# Camp stoves\n\nCanister stoves must be tested outdoors before sale.")


def test_search_follows_edits_adds_renames_and_deletes_under_a_running_server(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _stoves_and_kayaks(docs)
    config = tmp_path / "strongroom.toml"
    config.write_text(
        f"[server]\ndebounce_s = {DEBOUNCE_S}\n\n{GUARD}"
        "[[sources]]\nname = 'n'\nconnector = 'filesystem'\npath = 'docs'\n"
    )
    heard: list[ResourceListChangedNotification] = []
    latencies: dict[str, float] = {}

    async def on_message(message: object) -> None:
        if isinstance(message, ResourceListChangedNotification):
            heard.append(message)

    async def session() -> None:
        async with Client(
            _params(config), read_timeout_seconds=120, mode="legacy", message_handler=on_message
        ) as client:  # type: ignore[arg-type]
            caps = client.session.initialize_result.capabilities  # type: ignore[union-attr]
            assert caps.resources is not None and caps.resources.list_changed

            await _until("catch-up sync at start", lambda: _synced(client, "n", 2), 180)
            assert (await _source(client, "n"))["watching"]
            heard.clear()

            def top_is(query: str, doc: str) -> Any:
                return _top_is(client, query, doc)

            # Edit: a burst of saves is one sync, and the last version is what is found.
            for n in range(3):
                (docs / "stoves.md").write_text(
                    f"# Camp stoves\n\nDraft {n}: stoves are stored in the zebracorn cabinet."
                )
                await anyio.sleep(0.05)
            latencies["edit"] = await _until(
                "edited file", lambda: top_is("zebracorn cabinet", "n/stoves.md"), VISIBLE_WITHIN_S
            )
            window = structured(await client.call_tool("read_document", {"document_id": "n/stoves.md"}))
            assert "Draft 2" in window["text"]

            # Add.
            (docs / "bikes.md").write_text(
                "# Bicycles\n\nEvery rental bicycle gets a quokkaline chain check."
            )
            latencies["add"] = await _until(
                "added file", lambda: top_is("quokkaline chain check", "n/bikes.md"), VISIBLE_WITHIN_S
            )

            # Rename (a move within the folder): the new id is found, the old one is gone.
            (docs / "sub").mkdir()
            (docs / "bikes.md").rename(docs / "sub" / "cycles.md")

            async def renamed() -> bool:
                found = await _top_documents(client, "quokkaline chain check")
                return found[:1] == ["n/sub/cycles.md"] and "n/bikes.md" not in found

            latencies["rename"] = await _until("renamed file", renamed, VISIBLE_WITHIN_S)

            # Delete.
            (docs / "kayaks.md").unlink()

            async def deleted() -> bool:
                return "n/kayaks.md" not in await _top_documents(client, "kayak storage racks")

            latencies["delete"] = await _until("deleted file", deleted, VISIBLE_WITHIN_S)
            s = await _source(client, "n")
            assert s["documents"] == 2 and not s["last_error"], s
            await _until("resources/list_changed", lambda: _true(bool(heard)), 5)

    anyio.run(session)
    print("change-to-visible seconds:", json.dumps({k: round(v, 2) for k, v in latencies.items()}))


async def _true(value: bool) -> bool:
    return value


def _orders_db(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE orders (order_id TEXT PRIMARY KEY, note TEXT, updated TEXT)")
    db.executemany(
        "INSERT INTO orders VALUES (?, ?, ?)",
        [("A-1", "two kayaks, delivered", "2026-01-01T10:00:00"), ("A-2", "one tent", "2026-01-02T10:00:00")],
    )
    db.commit()
    db.close()


def test_a_scheduled_sql_source_picks_up_inserted_and_deleted_rows(tmp_path: Path) -> None:
    _orders_db(tmp_path / "orders.db")
    config = tmp_path / "strongroom.toml"
    config.write_text(
        f"{GUARD}[[sources]]\nname = 'orders'\nconnector = 'sql'\nurl = 'sqlite:///orders.db'\n"
        "query = 'SELECT * FROM orders'\nkey = 'order_id'\nupdated_column = 'updated'\n"
        "refresh = '5s'\n"
    )

    async def session() -> None:
        async with Client(_params(config), read_timeout_seconds=120) as client:

            async def rows(n: int) -> bool:
                s = await _source(client, "orders")
                return bool(s["documents"] == n and s["last_synced"])

            await _until("first scheduled sync", lambda: rows(2), 180)
            s = await _source(client, "orders")
            assert s["refresh"] == "5s" and s["next_sync"] and not s["watching"], s

            # Another process sees the schedule too.
            out = subprocess.run(
                [*strongroom_cmd("status", "--json", "--config", str(config))],
                capture_output=True,
                text=True,
                env=clean_env(),
                timeout=120,
            )
            listed = json.loads(out.stdout)["sources"][0]
            assert listed["refresh"] == "5s" and listed["next_sync"], listed

            db = sqlite3.connect(tmp_path / "orders.db")
            db.execute("INSERT INTO orders VALUES ('A-3', 'a wombatite paddle', '2026-02-01T10:00:00')")
            db.execute("DELETE FROM orders WHERE order_id = 'A-1'")
            db.commit()
            db.close()

            async def followed() -> bool:
                if not await rows(2):
                    return False
                found = await _top_documents(client, "wombatite paddle")
                return found[:1] == ["orders/A-3"] and "orders/A-1" not in found

            await _until("inserted and deleted rows", followed, 30)

    anyio.run(session)


def _write_corpus(docs: Path, n: int) -> None:
    docs.mkdir()
    for i in range(n):
        body = "\n\n".join(f"Paragraph {p} of note {i} about harbour tides and ropes." for p in range(6))
        (docs / f"note-{i:03}.md").write_text(f"# Note {i}\n\n{body}\n")


def _committed_documents(data: Path) -> int:
    catalog = data / "catalog.sqlite3"
    if not catalog.exists():
        return 0
    with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=5) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0


def _last_synced(data: Path, source: str) -> bool:
    with sqlite3.connect(f"file:{data / 'catalog.sqlite3'}?mode=ro", uri=True, timeout=5) as db:
        row = db.execute("SELECT last_synced FROM sources WHERE name = ?", (source,)).fetchone()
    return bool(row and row[0])


def _serve(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        strongroom_cmd("serve", "--config", str(config)),
        stdin=subprocess.PIPE,  # stdio transport: it serves until stdin closes
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env(PYTHONPATH=str(ROOT)),
    )


def test_a_sigkill_during_a_background_sync_leaves_the_index_consistent(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    total = 120
    _write_corpus(tmp_path / "docs", total)
    config = tmp_path / "strongroom.toml"
    config.write_text(
        "[embedding]\nbatch_size = 4\nsort_window = 4\n\n"
        "[[sources]]\nname = 'notes'\nconnector = 'filesystem'\npath = 'docs'\n"
    )
    data = tmp_path / ".strongroom"

    server = _serve(config)
    try:
        deadline = time.monotonic() + 300
        while _committed_documents(data) < 5:
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the background sync did not start"
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL if os.name != "nt" else signal.SIGTERM)
        server.wait(30)
    finally:
        if server.poll() is None:
            server.kill()
    killed_at = _committed_documents(data)
    assert 0 < killed_at < total, killed_at

    kb = build_app(load_settings(config), embedder=embedder).knowledge
    check_invariants(kb)  # consistent as it was left
    kb.close()

    server = _serve(config)  # the next cycle (the catch-up sync at start) completes the work
    try:
        deadline = time.monotonic() + 300
        while True:
            if _committed_documents(data) == total and _last_synced(data, "notes"):
                break
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the next sync did not complete the index"
            time.sleep(0.5)
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(60)

    release_embedded_chroma(data / "chroma")
    kb = build_app(load_settings(config), embedder=embedder).knowledge
    check_invariants(kb)
    assert chroma_ids(kb) == committed_chunk_ids(kb) and not ledger(kb)
    kb.close()


def test_polling_sees_edits_and_adds_and_syncs_just_the_changed_files(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _stoves_and_kayaks(docs)
    config = tmp_path / "strongroom.toml"
    config.write_text(
        f"[server]\ndebounce_s = {DEBOUNCE_S}\nwatch_polling = true\npoll_interval_s = 0.5\n\n{GUARD}"
        "[[sources]]\nname = 'n'\nconnector = 'filesystem'\npath = 'docs'\n"
    )
    log = tmp_path / "serve.log"

    async def session() -> None:
        with log.open("w") as errlog:
            async with Client(
                stdio_client(_params(config), errlog=errlog), read_timeout_seconds=120
            ) as client:
                await _until("catch-up sync at start", lambda: _synced(client, "n", 2), 180)
                (docs / "stoves.md").write_text("# Camp stoves\n\nStoves are kept in the zebracorn cabinet.")
                await _until(
                    "edited file",
                    lambda: _top_is(client, "zebracorn cabinet", "n/stoves.md"),
                    VISIBLE_WITHIN_S,
                )
                (docs / "bikes.md").write_text("# Bicycles\n\nEvery bicycle gets a quokkaline chain check.")
                await _until(
                    "added file",
                    lambda: _top_is(client, "quokkaline chain check", "n/bikes.md"),
                    VISIBLE_WITHIN_S,
                )

    anyio.run(session)
    syncs = re.findall(
        r"sync n( \(changed paths\))?: added (\d+), updated (\d+), unchanged (\d+)", log.read_text()
    )
    assert syncs[0] == ("", "2", "0", "0"), syncs  # the catch-up at start: the whole folder
    assert all(s[0] for s in syncs[1:]), syncs  # then only what changed
    assert (" (changed paths)", "0", "1", "0") in syncs, syncs  # the edit
    assert (" (changed paths)", "1", "0", "0") in syncs, syncs  # the new file


_VERSION = re.compile(r"version (\d+):")


def _harbour_notes(docs: Path, version: int, n: int) -> None:
    for i in range(n):
        paragraphs = (
            f"Note {i} version {version}: the harbour tide table for pier {p} lists the spring tides, "
            "the neap tides and the mooring ropes checked at dawn."
            for p in range(3)
        )
        (docs / f"note-{i:02}.md").write_text(f"# Note {i}\n\n" + "\n\n".join(paragraphs))


def test_searches_during_a_background_sync_never_see_a_half_written_document(tmp_path: Path) -> None:
    notes = 30  # three passages each, written a few at a time (batch_size) while searches run
    docs = tmp_path / "docs"
    docs.mkdir()
    _harbour_notes(docs, 1, notes)
    config = tmp_path / "strongroom.toml"
    config.write_text(
        f"[server]\ndebounce_s = {DEBOUNCE_S}\n\n{GUARD}[embedding]\nbatch_size = 4\nsort_window = 4\n\n"
        "[chunking]\nmax_chars = 200\nmin_chars = 0\n\n[retrieval]\nper_document = 3\n\n"
        "[[sources]]\nname = 'n'\nconnector = 'filesystem'\npath = 'docs'\n"
    )
    searches = errors = mixed_documents = during = 0

    async def session() -> None:
        nonlocal searches, errors, mixed_documents, during
        async with Client(_params(config), read_timeout_seconds=120) as client:
            await _until("catch-up sync at start", lambda: _synced(client, "n", notes), 180)
            _harbour_notes(docs, 2, notes)  # every document rewritten: one background sync
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                query = {"query": "harbour tide table spring neap mooring ropes", "k": 20}
                result = await client.call_tool("search", query)
                searches += 1
                if result.is_error:
                    errors += 1
                    continue
                versions: dict[str, set[str]] = {}
                for hit in structured(result)["results"]:
                    versions.setdefault(hit["document_id"], set()).update(_VERSION.findall(hit["text"]))
                mixed_documents += sum(len(v) > 1 for v in versions.values())
                seen = set().union(*versions.values())
                during += seen == {"1", "2"}  # some documents already new, others not yet
                if seen == {"2"} and await _synced(client, "n", notes):
                    break
            else:
                raise AssertionError("the background sync did not finish")

    anyio.run(session)
    print(f"{searches} searches, {during} during the sync")
    assert errors == 0 and mixed_documents == 0
    assert during > 0, "no search ran while the sync was half done"


def test_a_source_whose_folder_goes_keeps_its_index_and_reports_it_while_another_syncs(
    tmp_path: Path,
) -> None:
    for name in ("a", "b"):
        _stoves_and_kayaks(tmp_path / name)
    config = tmp_path / "strongroom.toml"
    sources = "".join(f"[[sources]]\nname = '{n}'\nconnector = 'filesystem'\npath = '{n}'\n\n" for n in "ab")
    config.write_text(f"[server]\ndebounce_s = {DEBOUNCE_S}\npoll_interval_s = 0.5\n\n{GUARD}{sources}")

    async def session() -> None:
        async with Client(_params(config), read_timeout_seconds=120) as client:
            for name in "ab":
                await _until(f"catch-up sync of {name}", lambda n=name: _synced(client, n, 2), 180)

            (tmp_path / "a").rename(tmp_path / "a-away")  # an unplugged drive, a folder moved

            async def failed() -> bool:
                return "folder not found" in ((await _source(client, "a"))["last_error"] or "")

            await _until("the missing folder reported", failed, VISIBLE_WITHIN_S)
            assert (await _source(client, "a"))["documents"] == 2  # its last good index is kept
            hits = structured(await client.call_tool("search", {"query": "kayaks padded racks", "k": 5}))
            assert "a/kayaks.md" in [h["document_id"] for h in hits["results"]]

            (tmp_path / "b" / "stoves.md").write_text(
                "# Camp stoves\n\nStoves are kept in the zebracorn cabinet."
            )
            await _until(
                "the other source's edit",
                lambda: _top_is(client, "zebracorn cabinet", "b/stoves.md"),
                VISIBLE_WITHIN_S,
            )
            assert not (await _source(client, "b"))["last_error"]

            (tmp_path / "a-away" / "kayaks.md").write_text(
                "# Kayaks\n\nKayaks hang from the wombatite hooks."
            )
            (tmp_path / "a-away").rename(tmp_path / "a")  # back, changed while away

            async def recovered() -> bool:
                return not (await _source(client, "a"))["last_error"] and await _top_is(
                    client, "wombatite hooks", "a/kayaks.md"
                )

            await _until("the folder back, watched and synced", recovered, VISIBLE_WITHIN_S)
            (tmp_path / "a" / "bikes.md").write_text(
                "# Bicycles\n\nEvery bicycle gets a quokkaline chain check."
            )
            await _until(
                "a change in it",
                lambda: _top_is(client, "quokkaline chain check", "a/bikes.md"),
                VISIBLE_WITHIN_S,
            )

    anyio.run(session)
