"""A sync killed with SIGKILL anywhere in the write protocol leaves a consistent index.

The protocol (see ``strongroom.server.indexing.sync``): 1 note pending vector ids in the
catalog's ledger, 2 upsert the vectors, 3 swap the document's rows in one transaction,
4 delete the replaced vectors and forget them. A child process (``kill_harness.py``) runs
``strongroom sync`` and kills itself at a chosen call; the test then checks the invariants
in-process, runs a normal sync and checks it finished the work exactly.

The corpus: eight files synced once, then three edited (b, d, f), two deleted (c, g) and
three added (i, j, k), with ``batch_size = 2`` so the second sync writes in four batches:
W1 = b + d (one chunk each), W2 = f (three chunks), W3 = i + j (one chunk each),
W4 = k (two chunks), then deletes c and g, in that order.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from strongroom.server.app import build_app
from strongroom.server.embedder import Embedder
from strongroom.server.knowledge import KnowledgeBase
from strongroom.server.settings import load_settings
from tests.support import clean_env

pytestmark = pytest.mark.model

HARNESS = Path(__file__).with_name("kill_harness.py")
SOURCE = "notes"

_FILLER = [
    "harbour",
    "ledger",
    "copper",
    "meadow",
    "lantern",
    "granite",
    "willow",
    "compass",
    "orchard",
    "saddle",
    "timber",
    "quarry",
    "beacon",
    "furnace",
    "pasture",
    "kettle",
    "barley",
    "anchor",
    "thistle",
    "chimney",
    "parcel",
    "ferry",
    "mill",
    "hedge",
    "cellar",
]


def _paragraph(keyword: str, number: int, chars: int) -> str:
    rng = random.Random(f"{keyword}-{number}")
    words = [keyword.capitalize(), "section", str(number)]
    while len(" ".join(words)) < chars:
        words.append(rng.choice(_FILLER))
    return " ".join(words) + "."


def _doc(title: str, keyword: str, paragraphs: int) -> str:
    """One paragraph of ~200 characters is one chunk; each paragraph of ~300 is its own chunk."""
    size = 200 if paragraphs == 1 else 300
    body = "\n\n".join(_paragraph(keyword, n, size) for n in range(1, paragraphs + 1))
    return f"# {title}\n\n{body}\n"


OLD = {
    "a.md": _doc("Alpha", "alphaword", 1),
    "b.md": _doc("Bravo", "bravoold", 1),
    "c.md": _doc("Charlie", "charlieword", 2),
    "d.md": _doc("Delta", "deltaold", 1),
    "e.md": _doc("Echo", "echoword", 2),
    "f.md": _doc("Foxtrot", "foxtrotold", 3),
    "g.md": _doc("Golf", "golfword", 1),
    "h.md": _doc("Hotel", "hotelword", 1),
}
NEW = {
    "a.md": OLD["a.md"],
    "b.md": _doc("Bravo", "bravonew", 1),
    "d.md": _doc("Delta", "deltanew", 1),
    "e.md": OLD["e.md"],
    "f.md": _doc("Foxtrot", "foxtrotnew", 3),
    "h.md": OLD["h.md"],
    "i.md": _doc("India", "indiaword", 1),
    "j.md": _doc("Juliett", "juliettword", 1),
    "k.md": _doc("Kilo", "kiloword", 2),
}
CHUNKS = {"b.md": 1, "d.md": 1, "f.md": 3, "i.md": 1, "j.md": 1, "k.md": 2}
"""Chunks per written document in the second sync: the batch arithmetic above relies on it."""
QUERIES = [
    "bravoold bravonew",
    "deltaold deltanew",
    "foxtrotold foxtrotnew section",
    "charlieword golfword",
    "indiaword juliettword kiloword",
    "alphaword echoword hotelword",
]


@dataclass(frozen=True)
class Kill:
    target: str
    call: int
    when: str
    new: frozenset[str]
    """Files whose new version is committed when the process dies."""
    gone: frozenset[str] = frozenset()
    """Deleted files already removed from the catalog."""

    def __str__(self) -> str:
        return f"{self.target.split('.')[1]}#{self.call}-{self.when}"


KILLS = [
    # step 1: b's and d's ids noted, d's just now; no vector written yet
    Kill("Catalog.note_pending_vectors", 2, "after", frozenset()),
    # step 2: W1 done; f's new vectors are in Chroma but f is not committed
    Kill("VectorStore.upsert", 2, "after", frozenset({"b.md", "d.md"})),
    # step 3: between two commits of one batch: i committed, j's vectors written but not j
    Kill("Catalog.commit_document", 4, "after", frozenset({"b.md", "d.md", "f.md", "i.md"})),
    # step 4: f committed, its replaced vectors not yet deleted
    Kill("VectorStore.delete", 2, "before", frozenset({"b.md", "d.md", "f.md"})),
    # step 4: b's and d's replaced vectors deleted, the ledger not yet told
    Kill("Catalog.forget_vectors", 1, "before", frozenset({"b.md", "d.md"})),
    # deletion: c gone from the catalog, its vectors still in Chroma
    Kill(
        "Catalog.delete_document",
        1,
        "after",
        frozenset({"b.md", "d.md", "f.md", "i.md", "j.md", "k.md"}),
        frozenset({"c.md"}),
    ),
    # deletion: g's vectors deleted, the ledger not yet told (the very last write)
    Kill(
        "VectorStore.delete",
        4,
        "after",
        frozenset({"b.md", "d.md", "f.md", "i.md", "j.md", "k.md"}),
        frozenset({"c.md", "g.md"}),
    ),
]


def doc_id(name: str) -> str:
    return f"{SOURCE}/{name}"


@dataclass(frozen=True)
class Snapshot:
    """What the catalog had committed for one document."""

    content_hash: str
    text: str
    chunks: tuple[tuple[int, int, str], ...]


def release_embedded_chroma(path: Path) -> None:
    """Drop this process's cached Chroma system for ``path``.

    Chroma keeps one system per persist directory per process, with the HNSW index in
    memory; it would not see what the child process wrote. Releasing it makes the next
    ``PersistentClient`` read the directory afresh, as a new process would.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    key = str(path)
    system = SharedSystemClient._identifier_to_system.pop(key, None)
    SharedSystemClient._identifier_to_refcount.pop(key, None)
    if system is not None:
        system.stop()


def write_files(docs: Path, files: dict[str, str]) -> None:
    docs.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (docs / name).write_text(text, encoding="utf-8")


def make_config(root: Path) -> Path:
    config = root / "strongroom.toml"
    config.write_text(
        '[store]\npath = ".strongroom"\n\n'
        "[embedding]\nbatch_size = 2\nsort_window = 2\n\n"
        "[chunking]\nmax_chars = 400\n\n"
        f'[[sources]]\nname = "{SOURCE}"\nconnector = "filesystem"\npath = "docs"\n',
        encoding="utf-8",
    )
    return config


def snapshot(kb: KnowledgeBase) -> dict[str, Snapshot]:
    out = {}
    for doc in kb.catalog.documents(SOURCE):
        chunks = kb.catalog.chunks(kb.catalog.chunk_ids(doc.id))
        rows = tuple(sorted((c.start, c.end, c.text) for c in chunks.values()))
        out[doc.source_id] = Snapshot(doc.content_hash, doc.text, rows)
    return out


def ledger(kb: KnowledgeBase) -> set[str]:
    return {r[0] for r in kb.catalog._rows("SELECT chunk_id FROM vector_ledger")}


def committed_chunk_ids(kb: KnowledgeBase) -> set[str]:
    return {cid for doc in kb.catalog.documents() for cid in kb.catalog.chunk_ids(doc.id)}


def chroma_ids(kb: KnowledgeBase) -> set[str]:
    return set(kb.vectors._open().get(include=[])["ids"])


def check_invariants(kb: KnowledgeBase) -> None:
    """What must hold at any instant, however the last sync ended."""
    committed = committed_chunk_ids(kb)
    in_chroma = chroma_ids(kb)
    # (a) every committed chunk is searchable by vector, with its own document's metadata
    assert committed - in_chroma == set(), "committed chunks without a vector"
    if committed:
        got = kb.vectors._open().get(ids=sorted(committed), include=["metadatas"])
        metadatas = got["metadatas"]
        assert metadatas is not None
        for cid, meta in zip(got["ids"], metadatas, strict=True):
            assert meta["document_id"] == cid.split("#")[0] and meta["source"] == SOURCE
    # (b) every other vector is tracked by the ledger, so the next sync can delete it
    assert in_chroma - committed <= ledger(kb), "untracked vectors in Chroma"
    # (c) each document's chunks belong to its current version and cut its text exactly
    for doc in kb.catalog.documents():
        ids = kb.catalog.chunk_ids(doc.id)
        assert ids, f"{doc.id} has no chunks"
        chunks = kb.catalog.chunks(ids)
        assert set(chunks) == set(ids)
        for index, cid in enumerate(ids):
            chunk = chunks[cid]
            assert cid.startswith(f"{doc.id}#{doc.content_hash[:10]}-"), (cid, doc.content_hash)
            assert chunk.document_id == doc.id and chunk.index == index
            assert doc.text[chunk.start : chunk.end] == chunk.text
    # (e) search returns committed chunks only, with their committed text
    chunks = kb.catalog.chunks(sorted(committed))
    for query in QUERIES:
        for hit in kb.search(query, k=20).results:
            assert hit.id in committed, f"search returned uncommitted chunk {hit.id}"
            assert hit.text == chunks[hit.id].text


def run_killed_sync(config: Path, kill: Kill) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HARNESS), kill.target, str(kill.call), kill.when, str(config)],
        env=clean_env(),
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(autouse=True)
def _no_developer_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("STRONGROOM_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> dict[str, Snapshot]:
    """The new corpus indexed from scratch by one uninterrupted sync."""
    root = tmp_path_factory.mktemp("reference")
    write_files(root / "docs", NEW)
    settings = load_settings(make_config(root))
    kb = build_app(settings, embedder=embedder).knowledge
    try:
        report = kb.sync()
        assert report.ok and report.sources[0].added == len(NEW)
        counts = {name: len(snap.chunks) for name, snap in snapshot(kb).items()}
        assert {name: counts[name] for name in CHUNKS} == CHUNKS
        return snapshot(kb)
    finally:
        kb.close()
        release_embedded_chroma(settings.data_dir / "chroma")


class Corpus:
    """A corpus synced once at the old version, then changed on disk to the new one."""

    def __init__(self, root: Path, embedder: Embedder) -> None:
        self.config = make_config(root)
        self.docs = root / "docs"
        self.settings = load_settings(self.config)
        self._embedder = embedder
        write_files(self.docs, OLD)
        kb = self.open()
        report = kb.sync().sources[0]
        assert report.added == len(OLD) and report.error is None
        self.old = snapshot(kb)
        self.close(kb)
        for name in set(OLD) - set(NEW):
            (self.docs / name).unlink()
        write_files(self.docs, {n: t for n, t in NEW.items() if OLD.get(n) != t})

    def open(self) -> KnowledgeBase:
        return build_app(self.settings, embedder=self._embedder).knowledge

    def close(self, kb: KnowledgeBase) -> None:
        """Close and forget the embedded Chroma, so a child process can own the directory."""
        kb.close()
        release_embedded_chroma(self.settings.data_dir / "chroma")


@pytest.fixture
def corpus(tmp_path: Path, embedder: Embedder) -> Iterator[Corpus]:
    c = Corpus(tmp_path, embedder)
    yield c
    release_embedded_chroma(c.settings.data_dir / "chroma")


def kill_sync(corpus: Corpus, kill: Kill) -> dict[str, Snapshot]:
    """Run a sync killed at ``kill``; check the invariants; return what is committed."""
    proc = run_killed_sync(corpus.config, kill)
    assert proc.returncode == -signal.SIGKILL, f"not killed (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    kb = corpus.open()
    try:
        check_invariants(kb)
        return snapshot(kb)
    finally:
        corpus.close(kb)


def check_versions(
    crashed: dict[str, Snapshot], old: dict[str, Snapshot], reference: dict[str, Snapshot]
) -> None:
    """(d) Each committed document is wholly its old or its new version; nothing is lost."""
    for name, snap in crashed.items():
        versions = [v for v in (old.get(name), reference.get(name)) if v is not None]
        assert any((snap.text, snap.chunks) == (v.text, v.chunks) for v in versions), f"{name} is a mix"
    for name in set(OLD) & set(NEW):  # unchanged and edited files never disappear
        assert name in crashed, f"{name} lost"


def finish_and_check(corpus: Corpus, crashed: dict[str, Snapshot], reference: dict[str, Snapshot]) -> None:
    """An ordinary sync completes the work; the index then is exactly the corpus on disk."""
    kb = corpus.open()
    try:
        report = kb.sync()
        assert report.ok
        source = report.sources[0]
        assert source.skipped == []
        # Work finished before the kill is not redone.
        expected_unchanged = {n for n in NEW if n in crashed and crashed[n].text == reference[n].text}
        # (the content hash of a committed new version is the one this sync computes)
        assert source.unchanged == len(expected_unchanged)
        assert source.added == len(set(NEW) - set(crashed))
        assert source.updated == len(set(NEW) & set(crashed)) - len(expected_unchanged)
        assert source.deleted == len(set(crashed) - set(NEW))

        final = snapshot(kb)
        assert set(final) == set(NEW) == {p.name for p in corpus.docs.iterdir()}
        for name, snap in final.items():
            assert (snap.text, snap.chunks) == (reference[name].text, reference[name].chunks), name
        assert chroma_ids(kb) == committed_chunk_ids(kb)
        assert kb.vectors.count() == kb.catalog.counts()[1] == sum(len(s.chunks) for s in final.values())
        assert ledger(kb) == set() and kb.catalog.orphaned_vectors() == []
        check_invariants(kb)

        for keyword, name in [("kiloword", "k.md"), ("foxtrotnew", "f.md"), ("bravonew", "b.md")]:
            hits = kb.search(keyword, k=5).results
            assert hits[0].document_id == doc_id(name) and keyword.capitalize() in hits[0].text
        for stale in ("foxtrotold", "charlieword", "golfword", "bravoold"):
            assert all(stale not in h.text.lower() for h in kb.search(stale, k=20).results)

        again = kb.sync().sources[0]
        assert again.unchanged == len(NEW) and again.chunks == 0
    finally:
        corpus.close(kb)


@pytest.mark.parametrize("kill", KILLS, ids=str)
def test_a_killed_sync_leaves_a_consistent_index(
    corpus: Corpus, kill: Kill, reference: dict[str, Snapshot]
) -> None:
    crashed = kill_sync(corpus, kill)
    check_versions(crashed, corpus.old, reference)
    new = {n for n, s in crashed.items() if n in NEW and OLD.get(n) != NEW[n] and s.text == reference[n].text}
    assert new == kill.new
    assert set(OLD) - set(NEW) - set(crashed) == kill.gone
    finish_and_check(corpus, crashed, reference)


def test_a_sync_killed_while_recovering_from_a_kill(corpus: Corpus, reference: dict[str, Snapshot]) -> None:
    """The next sync's recovery is itself crash-safe: kill it after it deleted the orphans."""
    first = kill_sync(corpus, Kill("VectorStore.upsert", 2, "after", frozenset({"b.md", "d.md"})))
    kb = corpus.open()
    orphans = set(kb.catalog.orphaned_vectors())
    assert orphans and orphans <= chroma_ids(kb)  # f's new vectors, written but never committed
    corpus.close(kb)

    # The first delete of the next sync is recovery's: the orphans go, the ledger still lists them.
    second = kill_sync(corpus, Kill("VectorStore.delete", 1, "after", frozenset()))
    assert second == first
    kb = corpus.open()
    assert not orphans & chroma_ids(kb)
    assert orphans <= ledger(kb)
    corpus.close(kb)

    check_versions(second, corpus.old, reference)
    finish_and_check(corpus, second, reference)
