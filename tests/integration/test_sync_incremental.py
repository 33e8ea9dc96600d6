"""Incremental sync on a small generated corpus: adds, no-ops, edits, deletions, failures.

Everything runs in-process against a real embedded Chroma (and once against a real
``chroma run`` server) with the packaged model.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from strongroom.server.app import build_app
from strongroom.server.cli_output import print_sync_summary
from strongroom.server.embedder import Embedder
from strongroom.server.indexing.sync import SourceReport, SyncReport, SyncStopped
from strongroom.server.knowledge import KnowledgeBase
from strongroom.server.models import SearchHit
from strongroom.server.settings import load_settings
from strongroom.server.store.vectors import VectorStoreError
from tests.hostile import docx_bomb, operator_pdf

pytestmark = pytest.mark.model

SOURCE = "notes"

CORPUS = {
    "lighthouse.md": (
        "# Lighthouse maintenance\n\n"
        "The keeper climbs the spiral stair at dawn to polish the Fresnel lens with a chamois cloth. "
        "Salt spray leaves a film on the prisms that scatters the beam, so every pane is wiped twice "
        "and the brass frame is checked for verdigris before the lamp is lit again at dusk.\n\n"
        "Once a month the clockwork rotation mechanism is wound, oiled and timed against the chart: "
        "the light must flash every fifteen seconds so that ships can tell this headland from the "
        "next one along the coast. A slow flash is logged and reported to the harbour master.\n"
    ),
    "sourdough.md": (
        "# Sourdough starter\n\n"
        "A sourdough starter is flour and water colonised by wild yeast and lactobacilli. Feed it "
        "equal weights of rye flour and lukewarm water every twelve hours, discard half before each "
        "feeding, and keep the jar loosely covered so the fermentation gases can escape freely.\n\n"
        "The loaf dough uses seventy-five percent hydration. After the autolyse, fold the dough four "
        "times at half-hour intervals, shape a tight boule, and proof it overnight in the fridge "
        "before baking in a preheated cast-iron pot with the lid on for the first twenty minutes.\n"
    ),
    "beekeeping.md": (
        "# Beekeeping in spring\n\n"
        "Open the hive on a warm still afternoon and look for capped brood, fresh eggs and the "
        "queen. A colony that has eaten through its winter stores needs fondant or a thin sugar "
        "syrup straight away, before the first dandelions and willow catkins provide nectar.\n\n"
        "Varroa mites are counted with a sticky board under the mesh floor for three days. More "
        "than ten mites a day calls for an oxalic acid treatment, applied only when the colony is "
        "broodless, and the count is repeated a fortnight later to confirm that it has worked.\n"
    ),
    "glacier.md": (
        "# Glacier travel\n\n"
        "Rope teams of three cross the glacier with forty metres of dynamic rope between them. "
        "Snow bridges over hidden crevasses are weakest in the afternoon sun, so the party sets "
        "out before first light and probes any sagging surface with an avalanche probe first.\n\n"
        "If a climber falls into a crevasse the others drop into self-arrest with their ice axes, "
        "build a snow anchor from a buried picket, and rig a pulley system to haul the climber "
        "out. The lateral moraine at the edge of the ice is the safest route back to the hut.\n"
    ),
    "chess.md": (
        "# Chess openings\n\n"
        "The Sicilian Defence answers the king pawn with the c-pawn and fights for the centre "
        "from the flank. Black accepts a slightly cramped position in return for an unbalanced "
        "game with chances for both sides, which is why attacking players have favoured it.\n\n"
        "The Najdorf variation delays the development of the queen knight and prepares a queenside "
        "pawn advance. Club players should learn the ideas behind the English Attack and the "
        "poisoned pawn line before memorising long sequences of forcing moves from databases.\n"
    ),
    "volcano.md": (
        "# Volcano monitoring\n\n"
        "Seismometers around the crater record swarms of small earthquakes as magma rises through "
        "the crust. Tiltmeters measure the swelling of the flanks, and gas spectrometers track "
        "the ratio of sulphur dioxide to carbon dioxide in the plume drifting from the summit vent.\n\n"
        "When the alert level is raised, villages in the valley are evacuated because pyroclastic "
        "flows of hot ash and basalt fragments can travel down the gullies faster than a car. Lahars "
        "of mud and meltwater remain a hazard for years after the eruption has ended.\n"
    ),
}

EDITED_LIGHTHOUSE = (
    "# Lighthouse automation\n\n"
    "The station was automated last year: a solar-charged LED beacon replaced the old lamp, and "
    "a telemetry modem reports the battery voltage to the coastguard every hour. Nobody climbs "
    "the tower at dawn any more; a technician visits each quarter to clean the solar panels.\n\n"
    "The foghorn was replaced by a radar transponder that answers ships' radar with a Morse "
    "letter, and the keeper's cottage is now a small museum of maritime signalling equipment "
    "with a xylophone-shaped bell collection donated by a retired marmalade merchant.\n"
)


@pytest.fixture(autouse=True)
def _no_developer_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """STRONGROOM_* variables in the developer's environment would override the test config."""
    import os

    for key in list(os.environ):
        if key.startswith("STRONGROOM_"):
            monkeypatch.delenv(key)


def write_corpus(root: Path, *, chroma_url: str | None = None) -> Path:
    """The corpus and its strongroom.toml under ``root``; returns the config path."""
    docs = root / "docs"
    docs.mkdir(parents=True)
    for name, text in CORPUS.items():
        (docs / name).write_text(text, encoding="utf-8")
    store = '[store]\npath = ".strongroom"\n'
    if chroma_url:
        store += f'chroma_url = "{chroma_url}"\n'
    config = root / "strongroom.toml"
    config.write_text(
        store + "\n[chunking]\nmax_chars = 400\n\n"
        f'[[sources]]\nname = "{SOURCE}"\nconnector = "filesystem"\npath = "docs"\n',
        encoding="utf-8",
    )
    return config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_corpus(tmp_path)


@pytest.fixture
def kb(config: Path, embedder: Embedder) -> Iterator[KnowledgeBase]:
    knowledge = build_app(load_settings(config), embedder=embedder).knowledge
    yield knowledge
    knowledge.close()


class EmbedCounter:
    """Counts the passages embedded through the shared embedder (queries excluded)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> None:
        self.calls = 0
        self.texts = 0
        original: Callable[[Sequence[str]], list[list[float]]] = embedder.embed

        def embed(texts: Sequence[str]) -> list[list[float]]:
            self.calls += 1
            self.texts += len(texts)
            return original(texts)

        monkeypatch.setattr(embedder, "embed", embed)
        # A query goes through embed([query]) too; count only indexing.
        monkeypatch.setattr(embedder, "embed_query", lambda text: original([text])[0])

    def reset(self) -> None:
        self.calls = self.texts = 0


def doc_id(name: str) -> str:
    return f"{SOURCE}/{name}"


def catalog_chunk_ids(kb: KnowledgeBase) -> set[str]:
    return {cid for doc in kb.catalog.documents() for cid in kb.catalog.chunk_ids(doc.id)}


def chroma_ids(kb: KnowledgeBase, ids: Sequence[str] | None = None) -> set[str]:
    collection = kb.vectors._open()
    got = collection.get(ids=list(ids), include=[]) if ids is not None else collection.get(include=[])
    return set(got["ids"])


def assert_consistent(kb: KnowledgeBase) -> None:
    """Catalog and vector store hold exactly the same chunks, nothing in flight."""
    chunks = catalog_chunk_ids(kb)
    assert chroma_ids(kb) == chunks
    assert kb.vectors.count() == len(chunks) == kb.catalog.counts()[1]
    assert kb.catalog.orphaned_vectors() == []
    ledger = kb.catalog._row("SELECT COUNT(*) FROM vector_ledger")[0]
    assert ledger == 0


def hits(kb: KnowledgeBase, query: str, k: int = 10) -> list[SearchHit]:
    return kb.search(query, k=k).results


def only(report: SyncReport) -> SourceReport:
    assert len(report.sources) == 1
    return report.sources[0]


def test_first_sync_adds_everything_and_second_changes_nothing(
    kb: KnowledgeBase,
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counter = EmbedCounter(monkeypatch, embedder)
    first = only(kb.sync())
    assert (first.added, first.updated, first.unchanged, first.deleted) == (6, 0, 0, 0)
    assert first.skipped == [] and first.error is None
    assert first.chunks >= 12  # every file is two paragraphs of ~300 characters
    assert counter.texts == first.chunks
    assert kb.catalog.counts() == (6, first.chunks)
    assert_consistent(kb)
    ids_before = catalog_chunk_ids(kb)
    hashes_before = kb.catalog.document_hashes(SOURCE)

    counter.reset()
    second = only(kb.sync())
    assert (second.added, second.updated, second.unchanged, second.deleted) == (0, 0, 6, 0)
    assert second.chunks == 0 and second.skipped == [] and second.error is None
    assert counter.calls == 0 and counter.texts == 0
    assert catalog_chunk_ids(kb) == ids_before
    assert kb.catalog.document_hashes(SOURCE) == hashes_before
    assert kb.vectors.count() == len(ids_before)
    assert_consistent(kb)

    top = hits(kb, "how do I feed a sourdough starter?", k=3)
    assert top[0].document_id == doc_id("sourdough.md")


def test_editing_a_file_replaces_only_its_chunks(
    kb: KnowledgeBase,
    config: Path,
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only(kb.sync())
    old_ids = kb.catalog.chunk_ids(doc_id("lighthouse.md"))
    others = catalog_chunk_ids(kb) - set(old_ids)
    assert old_ids and chroma_ids(kb, old_ids) == set(old_ids)
    assert any("Fresnel" in h.text for h in hits(kb, "Fresnel lens polishing"))

    (config.parent / "docs" / "lighthouse.md").write_text(EDITED_LIGHTHOUSE, encoding="utf-8")
    counter = EmbedCounter(monkeypatch, embedder)
    report = only(kb.sync())
    assert (report.added, report.updated, report.unchanged, report.deleted) == (0, 1, 5, 0)
    new_ids = kb.catalog.chunk_ids(doc_id("lighthouse.md"))
    assert counter.texts == len(new_ids) == report.chunks  # only the edited file was embedded

    assert not set(old_ids) & set(new_ids)
    assert kb.catalog.chunks(old_ids) == {}
    assert chroma_ids(kb, old_ids) == set()
    assert chroma_ids(kb, new_ids) == set(new_ids)
    assert catalog_chunk_ids(kb) - set(new_ids) == others  # the other documents were not touched
    assert_consistent(kb)

    document = kb.catalog.document(doc_id("lighthouse.md"))
    assert document is not None and "telemetry modem" in document.text and "Fresnel" not in document.text
    found = hits(kb, "solar-charged LED beacon telemetry modem", k=3)
    assert found[0].document_id == doc_id("lighthouse.md")
    assert "telemetry modem" in found[0].text
    assert not any("Fresnel" in h.text for h in hits(kb, "Fresnel lens polishing chamois"))


def test_deleting_a_file_removes_it_from_search(kb: KnowledgeBase, config: Path) -> None:
    only(kb.sync())
    chess_ids = kb.catalog.chunk_ids(doc_id("chess.md"))
    assert hits(kb, "Sicilian Defence Najdorf", k=3)[0].document_id == doc_id("chess.md")

    (config.parent / "docs" / "chess.md").unlink()
    report = only(kb.sync())
    assert (report.added, report.updated, report.unchanged, report.deleted) == (0, 0, 5, 1)
    assert kb.catalog.document(doc_id("chess.md")) is None
    assert kb.catalog.chunks(chess_ids) == {}
    assert chroma_ids(kb, chess_ids) == set()
    assert kb.catalog.counts()[0] == 5
    assert_consistent(kb)
    assert all(h.document_id != doc_id("chess.md") for h in hits(kb, "Sicilian Defence Najdorf", k=20))


def test_a_sync_of_changed_paths_reads_just_those_and_deletes_only_within_them(
    kb: KnowledgeBase,
    config: Path,
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = config.parent / "docs"
    changed = {SOURCE: ["lighthouse.md", "chess.md", "extra"]}
    first = only(kb.sync(paths=changed))  # nothing synced before: the whole source
    assert not first.partial and first.added == 6

    (docs / "lighthouse.md").write_text(EDITED_LIGHTHOUSE, encoding="utf-8")
    (docs / "chess.md").unlink()
    (docs / "extra").mkdir()
    (docs / "extra" / "bells.md").write_text("# Bells\n\n" + EDITED_LIGHTHOUSE, encoding="utf-8")
    (docs / "volcano.md").unlink()  # not among the paths: left for a later sync
    counter = EmbedCounter(monkeypatch, embedder)
    report = only(kb.sync(paths=changed))
    assert report.partial and report.error is None
    assert (report.added, report.updated, report.unchanged, report.deleted) == (1, 1, 0, 1)
    assert counter.texts == report.chunks
    assert kb.catalog.document(doc_id("chess.md")) is None
    assert kb.catalog.document(doc_id("volcano.md")) is not None
    assert hits(kb, "solar-charged LED beacon telemetry modem", k=3)[0].document_id in {
        doc_id("lighthouse.md"),
        doc_id("extra/bells.md"),
    }
    assert_consistent(kb)
    # The connector's memory: the files read now, and those not looked at, as they were.
    stamps = kb.catalog.connector_state(SOURCE)["data"]["files"]
    assert sorted(stamps) == sorted(
        ["beekeeping.md", "extra/bells.md", "glacier.md", "lighthouse.md", "sourdough.md", "volcano.md"]
    )

    counter.reset()
    whole = only(kb.sync())
    assert not whole.partial and whole.deleted == 1 and whole.added == whole.updated == 0
    assert counter.texts == 0
    assert_consistent(kb)


def test_full_sync_reembeds_everything_without_duplicates(
    kb: KnowledgeBase,
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = only(kb.sync())
    ids_before = catalog_chunk_ids(kb)
    counts_before = kb.catalog.counts()

    counter = EmbedCounter(monkeypatch, embedder)
    full = only(kb.sync(full=True))
    assert (full.added, full.updated, full.unchanged, full.deleted) == (0, 6, 0, 0)
    assert full.chunks == first.chunks
    assert counter.texts == first.chunks  # every chunk embedded again
    assert kb.catalog.counts() == counts_before
    assert catalog_chunk_ids(kb) == ids_before  # same content, same ids: upserted in place
    assert kb.vectors.count() == len(ids_before)
    assert_consistent(kb)

    counter.reset()
    again = only(kb.sync())
    assert again.unchanged == 6 and counter.texts == 0


def test_a_corrupt_pdf_fails_alone(kb: KnowledgeBase, config: Path) -> None:
    (config.parent / "docs" / "x.pdf").write_bytes(random.Random(7).randbytes(4096))
    report = only(kb.sync())
    assert report.error is None
    assert report.added == 6
    assert [f.id for f in report.skipped] == ["x.pdf"]
    reason = report.skipped[0].reason
    assert reason and "pdf" in reason.lower()
    assert kb.catalog.document(doc_id("x.pdf")) is None
    assert kb.catalog.counts()[0] == 6
    assert_consistent(kb)

    # Still reported on the next sync, and it neither deletes nor re-embeds the others.
    again = only(kb.sync())
    assert [f.id for f in again.skipped] == ["x.pdf"]
    assert (again.added, again.updated, again.unchanged, again.deleted) == (0, 0, 6, 0)


def test_hostile_files_are_skipped_within_limits_and_the_summary_says_why(
    config: Path, embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = config.parent / "docs"
    docx_bomb(docs / "bomb.docx", 3 * 1024 * 1024)
    operator_pdf(docs / "slow.pdf", 400_000)
    (docs / "huge.txt").write_text("many words " * 2000, encoding="utf-8")
    with config.open("a", encoding="utf-8") as toml:
        toml.write("parse_timeout = 1\nmax_unpacked_bytes = 1048576\nmax_text_chars = 10000\n")
    knowledge = build_app(load_settings(config), embedder=embedder).knowledge
    try:
        started = time.perf_counter()
        report = only(knowledge.sync())
        assert time.perf_counter() - started < 30
        assert report.error is None and report.added == 6
        reasons = {f.id: f.reason for f in report.skipped}
        assert reasons.keys() == {"bomb.docx", "slow.pdf", "huge.txt"}
        assert "(max_unpacked_bytes)" in reasons["bomb.docx"]
        assert reasons["slow.pdf"] == "extraction took longer than the 1 s limit (parse_timeout)"
        assert "(max_text_chars)" in reasons["huge.txt"]
        print_sync_summary(SyncReport([report]))
        out = capsys.readouterr().out
        assert "3 skipped" in out
        assert "  skipped slow.pdf: extraction took longer than the 1 s limit (parse_timeout)" in out
    finally:
        knowledge.close()


def test_a_missing_source_folder_is_an_error_and_deletes_nothing(kb: KnowledgeBase, config: Path) -> None:
    only(kb.sync())
    counts = kb.catalog.counts()
    ids = catalog_chunk_ids(kb)

    docs = config.parent / "docs"
    docs.rename(config.parent / "docs-moved")
    report = kb.sync()
    assert not report.ok
    source = only(report)
    assert source.error is not None and str(docs) in source.error, source.error
    assert source.deleted == 0
    assert kb.catalog.counts() == counts
    assert catalog_chunk_ids(kb) == ids
    assert_consistent(kb)
    state = {s.name: s for s in kb.catalog.source_states()}[SOURCE]
    assert state.last_error == source.error
    assert hits(kb, "varroa mites oxalic acid", k=3)[0].document_id == doc_id("beekeeping.md")

    # Once the folder is back, nothing needs doing and the error is cleared.
    (config.parent / "docs-moved").rename(docs)
    back = only(kb.sync())
    assert back.error is None and back.unchanged == 6 and back.deleted == 0
    assert {s.name: s for s in kb.catalog.source_states()}[SOURCE].last_error is None


def test_incremental_sync_against_a_chroma_server(
    tmp_path: Path,
    chroma_server: str,
    embedder: Embedder,
) -> None:
    config = write_corpus(tmp_path / "corpus", chroma_url=chroma_server)
    kb = build_app(load_settings(config), embedder=embedder).knowledge
    try:
        assert kb.vectors.location == chroma_server
        first = only(kb.sync())
        assert first.added == 6 and first.error is None
        assert_consistent(kb)
        assert not (config.parent / ".strongroom" / "chroma").exists()  # vectors live on the server

        old_ids = kb.catalog.chunk_ids(doc_id("lighthouse.md"))
        (config.parent / "docs" / "lighthouse.md").write_text(EDITED_LIGHTHOUSE, encoding="utf-8")
        report = only(kb.sync())
        assert (report.added, report.updated, report.unchanged, report.deleted) == (0, 1, 5, 0)
        assert chroma_ids(kb, old_ids) == set()
        assert_consistent(kb)

        found = hits(kb, "solar-charged LED beacon telemetry modem", k=3)
        assert found[0].document_id == doc_id("lighthouse.md") and "telemetry modem" in found[0].text
        assert not any("Fresnel" in h.text for h in hits(kb, "Fresnel lens polishing chamois"))
        assert hits(kb, "crevasse rescue pulley", k=3)[0].document_id == doc_id("glacier.md")
    finally:
        kb.close()


def add_second_source(config: Path) -> None:
    """A second source, "more", with two files of its own."""
    more = config.parent / "more"
    more.mkdir()
    (more / "kites.md").write_text(
        "# Kite flying\n\nA delta kite flies in light wind; a sled kite needs a steady breeze.\n",
        encoding="utf-8",
    )
    (more / "tides.md").write_text(
        "# Tide tables\n\nSpring tides follow the full and new moon; neap tides the quarter moons.\n",
        encoding="utf-8",
    )
    with config.open("a", encoding="utf-8") as f:
        f.write('\n[[sources]]\nname = "more"\nconnector = "filesystem"\npath = "more"\n')


def failing_for(kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch, method: str, source: str) -> None:
    """Make the vector store refuse writes that touch ``source`` (as a server that went away)."""
    original = getattr(kb.vectors, method)

    def refuse(ids: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        if any(i.startswith(f"{source}/") for i in ids):
            raise VectorStoreError(f"vector store at {kb.vectors.location} failed: connection refused")
        return original(ids, *args, **kwargs)

    monkeypatch.setattr(kb.vectors, method, refuse)


def test_a_vector_store_failure_fails_only_its_source(
    config: Path,
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_second_source(config)
    kb = build_app(load_settings(config), embedder=embedder).knowledge
    try:
        with monkeypatch.context() as patch:
            failing_for(kb, patch, "upsert", SOURCE)
            report = kb.sync()
        notes, more = report.sources
        assert notes.error is not None and "connection refused" in notes.error
        assert more.error is None and more.added == 2
        assert kb.catalog.documents(SOURCE) == []  # nothing half-written became searchable
        states = {s.name: s for s in kb.catalog.source_states()}
        assert states[SOURCE].last_error == notes.error and states["more"].last_error is None

        healed = kb.sync()
        assert healed.ok
        assert healed.sources[0].added == 6 and healed.sources[1].unchanged == 2
        assert_consistent(kb)
    finally:
        kb.close()


def test_a_failed_deletion_is_finished_by_the_next_sync(
    config: Path,
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_second_source(config)
    kb = build_app(load_settings(config), embedder=embedder).knowledge
    try:
        assert kb.sync().ok
        chess_ids = kb.catalog.chunk_ids(doc_id("chess.md"))
        (config.parent / "docs" / "chess.md").unlink()
        with monkeypatch.context() as patch:
            failing_for(kb, patch, "delete", SOURCE)
            report = kb.sync()
        notes, more = report.sources
        assert notes.error is not None and "connection refused" in notes.error
        assert more.error is None and more.unchanged == 2
        # The document left search at once; its vectors wait in the ledger for the next sync.
        assert kb.catalog.document(doc_id("chess.md")) is None
        assert chroma_ids(kb, chess_ids) == set(chess_ids)
        assert set(chess_ids) <= set(kb.catalog.orphaned_vectors())
        assert all(h.document_id != doc_id("chess.md") for h in hits(kb, "Sicilian Defence Najdorf", k=20))

        healed = kb.sync()
        assert healed.ok and healed.sources[0].unchanged == 5
        assert chroma_ids(kb, chess_ids) == set()
        assert_consistent(kb)
    finally:
        kb.close()


def _notes(tmp_path: Path, count: int, window: int) -> Path:
    """``count`` one-passage notes of 40 to 380 characters (sorting reorders them) and a
    config encoding them 4 at a time in windows of ``window``."""
    rng = random.Random(7)
    docs = tmp_path / "docs"
    docs.mkdir()
    words = " ".join(CORPUS.values()).split()
    for i in range(count):
        text = " ".join(rng.sample(words, 60))[: rng.randrange(40, 380)]
        (docs / f"note{i:02}.md").write_text(f"note {i} {text}\n", encoding="utf-8")
    config = tmp_path / "strongroom.toml"
    config.write_text(
        f'[store]\npath = ".strongroom"\n\n[embedding]\nbatch_size = 4\nsort_window = {window}\n\n'
        f'[[sources]]\nname = "{SOURCE}"\nconnector = "filesystem"\npath = "docs"\n',
        encoding="utf-8",
    )
    return config


def test_passages_are_encoded_in_length_sorted_windows_and_each_keeps_its_own_vector(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _notes(tmp_path, 24, 10)
    calls: list[list[int]] = []  # each encoder batch's passage lengths, in call order
    encode = embedder.embed
    monkeypatch.setattr(
        embedder, "embed", lambda texts: calls.append([len(t) for t in texts]) or encode(texts)
    )
    knowledge = build_app(load_settings(config), embedder=embedder).knowledge
    try:
        assert only(knowledge.sync()).added == 24
        assert all(len(batch) <= 4 for batch in calls), calls
        lengths = [n for batch in calls for n in batch]
        assert len(lengths) == 24
        for window in (lengths[:10], lengths[10:20], lengths[20:]):  # one-passage notes: 10, 10, 4
            assert window == sorted(window), calls  # sorted across the window, not per batch
        stored = knowledge.vectors._open().get(include=["embeddings"])
        texts = {i: c.text for i, c in knowledge.catalog.chunks(stored["ids"]).items()}  # no headings
        for chunk, vector in zip(stored["ids"], stored["embeddings"], strict=True):
            alone = embedder.encode([texts[chunk]])[0]  # encoded on its own, unpadded
            assert float(alone @ vector) > 0.999, texts[chunk][:40]
    finally:
        knowledge.close()


def test_a_stopped_sync_does_not_wait_to_encode_its_window_and_the_next_sync_finishes(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _notes(tmp_path, 24, 24)  # one window of 6 batches
    stop = threading.Event()
    calls: list[int] = []
    encode = embedder.embed

    def embed_then_stop(texts: Sequence[str]) -> list[list[float]]:
        calls.append(len(texts))
        stop.set()  # the server shuts down while the first batch is being encoded
        return encode(texts)

    monkeypatch.setattr(embedder, "embed", embed_then_stop)
    knowledge = build_app(load_settings(config), embedder=embedder).knowledge
    try:
        with pytest.raises(SyncStopped):
            knowledge.sync(stop=stop)
        assert calls == [4]  # not the other 5 batches of the window
        assert knowledge.catalog.counts() == (0, 0)  # nothing half-written
        monkeypatch.setattr(embedder, "embed", encode)
        assert only(knowledge.sync()).added == 24
        assert knowledge.catalog.counts() == (24, 24)
    finally:
        knowledge.close()
