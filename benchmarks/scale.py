"""Scaling: sync rate, search latency through MCP and serving memory at 1k, 10k and 100k chunks.

Usage: python benchmarks/scale.py [--work DIR] [--sizes 1000,10000,100000] [--rebuild]
       python benchmarks/scale.py --profile 100000   # in-process time of each search stage
       python benchmarks/scale.py --compare 100000 [--base TREE] [--variant LABEL:KEY=VALUE]
           # servers side by side on one index: this tree, the tree TREE (e.g. a `git archive` of
           # an older commit) and this tree with other [retrieval] settings
       python benchmarks/scale.py --budget-quality /work/cache/pydoc-index
           # what the keyword posting budget costs in quality, on the real manual's index

Results are printed as JSON and recorded by hand in benchmarks/RESULTS.md (Scaling).

Indexes are built once into ``--work`` (default ``/work/cache/scale``) and reused:

- ``1000``: real text, the HOWTOs and the FAQ of the Python 3.11 manual (Debian's
  ``python3.11-doc``, about 1,080 passages), synced by Strongroom's own sync with the configured
  (ONNX int8) embedder: the sync rate in chunks/s is the real one, model load excluded.
- ``10000`` and ``100000``: **synthetic** Markdown (documents of 10 sections of about 800
  characters, 4 sources, two of them labelled), written as files and synced by the same
  ``Indexer`` (filesystem connector, chunker, write protocol) with a fast deterministic stub
  embedder: each word gets a fixed random vector, a passage the normalised sum of its words'
  (unit vectors of the model's dimension, recorded as the ONNX model's so the server accepts the
  index). Its words are drawn from the 1k index's passages: each synthetic document follows one
  real page, each section one real passage of it, mixed with the corpus-wide word frequencies
  and rare made-up identifiers, so posting lists and the vocabulary grow like a real corpus's.
  The rate reported for them is the write path's with the stub, not an embedding rate.

Then one ``strongroom serve`` (stdio, the real ONNX embedder for queries) per index runs at the
same time; after a warm-up each of 302 queries (the pydoc and example-corpus questions) is sent
to every server in turn (the order rotating), so every size sees the same load. Search is
``k=10``. The stdio principal ``local`` is declared with the role ``bench``: trusted and with
limits raised so the guard (which still runs: access, budgets, ledger, audit) never refuses.
Peak RSS is the server's VmHWM after the searches.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stdio_peer import StdioPeer

from strongroom.server.app import build_app
from strongroom.server.embedder import Embedder
from strongroom.server.settings import load_settings
from strongroom.server.store.records import SearchFilter

ROOT = Path(__file__).resolve().parent.parent
MANUAL = Path("/usr/share/doc/python3.11/html")
QUESTIONS = ROOT / "benchmarks" / "data" / "pydoc_questions.txt"
ACME = ROOT / "benchmarks" / "data" / "acme_queries.jsonl"
K = 10
SECTIONS_PER_DOCUMENT = 10
SOURCES = {  # name: labels
    "handbook": [],
    "engineering": ["internal"],
    "support": ["internal", "support"],
    "legal": ["legal"],
}
GUARD = """
[server]
watch = false
sync_on_start = false

[guard]
max_chars_per_call = 100000

[[guard.principals]]
name = "local"
labels = ["*"]
role = "bench"

[guard.roles.bench]
trusted = true

[guard.roles.bench.limits]
calls_per_minute = 1000000
burst = 100000
soft_chunks = 100000000
hard_chunks = 100000000
hard_chars = 100000000000
source_share = 1.0
novelty_limit = 1.0

[guard.collective]
share = 1.0
"""

# -- building -------------------------------------------------------------------------------------


def real_config(directory: Path) -> Path:
    config = directory / "strongroom.toml"
    config.write_text(
        '[store]\npath = "index"\n\n[embedding]\nbackend = "onnx"\n'
        + GUARD
        + f'\n[[sources]]\nname = "pydoc"\nconnector = "filesystem"\npath = "{MANUAL}"\n'
        'include = ["howto/**", "faq/**"]\n'
    )
    return config


def synthetic_config(directory: Path) -> Path:
    config = directory / "strongroom.toml"
    sources = "".join(
        f'\n[[sources]]\nname = "{name}"\nconnector = "filesystem"\npath = "docs/{name}"\nlabels = {json.dumps(labels)}\n'
        for name, labels in SOURCES.items()
    )
    config.write_text(
        '[store]\npath = "index"\n\n[embedding]\nbackend = "onnx"\nbatch_size = 256\n' + GUARD + sources
    )
    return config


def build_real(directory: Path) -> dict[str, Any]:
    """The 1k index: real pages, Strongroom's sync, the real embedder."""
    if not MANUAL.exists():
        sys.exit(f"{MANUAL} is missing: apt-get install python3.11-doc")
    directory.mkdir(parents=True, exist_ok=True)
    app = build_app(load_settings(real_config(directory)))
    app.embedder.model()  # the model load is not part of the sync rate
    started = time.perf_counter()
    report = app.knowledge.sync()
    seconds = time.perf_counter() - started
    chunks = sum(s.chunks for s in report.sources)
    app.close()
    return {
        "build": "real text (Python manual: howto, faq), Strongroom sync, ONNX int8 embedder",
        "sync_s": round(seconds, 1),
        "chunks_per_s": round(chunks / seconds, 1),
    }


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")


class StubEncoder:
    """Deterministic unit vectors: the normalised sum of a fixed random vector per word."""

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self._vectors: dict[str, np.ndarray[Any, Any]] = {}

    def _vector(self, word: str) -> np.ndarray[Any, Any]:
        v = self._vectors.get(word)
        if v is None:
            v = np.random.default_rng(zlib.crc32(word.encode())).standard_normal(self.dim).astype(np.float32)
            self._vectors[word] = v
        return v

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray[Any, Any]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = _WORD.findall(text.lower()) or ["empty"]
            out[i] = np.sum([self._vector(w) for w in words], axis=0)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


class StubEmbedder(Embedder):
    """The configured embedder's identity with :class:`StubEncoder`'s vectors (synthetic indexes)."""

    def _load(self) -> None:
        self._model = StubEncoder()  # type: ignore[assignment]
        self._loaded.set()


class TextModel:
    """Words drawn like the real passages': per page, per passage and corpus-wide frequencies."""

    def __init__(self, pages: Sequence[tuple[str, Sequence[str]]], documents: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        vocabulary: dict[str, int] = {}
        self.titles = [title for title, _ in pages]
        self.passages: list[list[np.ndarray[Any, Any]]] = []
        for _, chunks in pages:
            self.passages.append(
                [
                    np.array([vocabulary.setdefault(w, len(vocabulary)) for w in _WORD.findall(c)] or [0])
                    for c in chunks
                ]
            )
        self.words = np.array(list(vocabulary), dtype=object)
        self.pages = [np.concatenate(p) for p in self.passages]
        self.corpus = np.concatenate(self.pages)
        self.rare = 20 * documents  # made-up identifiers: the vocabulary grows with the corpus

    def _draw(self, n: int, passage: np.ndarray[Any, Any], page: np.ndarray[Any, Any]) -> list[str]:
        pick = self.rng.random(n)
        ids = np.where(
            pick < 0.4,
            passage[self.rng.integers(0, len(passage), n)],
            np.where(
                pick < 0.7,
                page[self.rng.integers(0, len(page), n)],
                self.corpus[self.rng.integers(0, len(self.corpus), n)],
            ),
        )
        return list(self.words[ids])

    def _rare(self) -> str:
        n = int(min(self.rng.zipf(1.3), self.rare))
        return f"x{(n * 2654435761) % 36**6:06x}"

    def document(self) -> str:
        p = int(self.rng.integers(0, len(self.pages)))
        page = self.pages[p]
        title = " ".join(self._draw(4, page, page)).capitalize()
        parts = [f"# {self.titles[p]}: {title}\n"]
        for _ in range(SECTIONS_PER_DOCUMENT):
            passage = self.passages[p][int(self.rng.integers(0, len(self.passages[p])))]
            parts.append(
                f"## {' '.join(self._draw(int(self.rng.integers(2, 6)), passage, page)).capitalize()}\n"
            )
            chars, paragraph, paragraphs = 0, [], []
            while chars < 760:
                words = self._draw(int(self.rng.integers(8, 19)), passage, page)
                if self.rng.random() < 0.3:
                    words.insert(int(self.rng.integers(0, len(words))), self._rare())
                sentence = " ".join(words).capitalize() + "."
                paragraph.append(sentence)
                chars += len(sentence) + 1
                if len(paragraph) == 3:
                    paragraphs.append(" ".join(paragraph))
                    paragraph = []
            if paragraph:
                paragraphs.append(" ".join(paragraph))
            parts.append("\n\n".join(paragraphs) + "\n")
        return "\n".join(parts)


def real_pages(real: Path) -> list[tuple[str, list[str]]]:
    app = build_app(load_settings(real / "strongroom.toml"))
    pages = [(d.title, [c.text for c in app.catalog.document_chunks(d.id)]) for d in app.catalog.documents()]
    app.close()
    return [(t, c) for t, c in pages if c]


def build_synthetic(directory: Path, chunks: int, real: Path) -> dict[str, Any]:
    """A synthetic index of about ``chunks`` passages, written by the Indexer with the stub embedder."""
    documents = chunks // SECTIONS_PER_DOCUMENT
    model = TextModel(real_pages(real), documents, seed=chunks)
    names = list(SOURCES)
    started = time.perf_counter()
    for i in range(documents):
        source = names[i % len(names)]
        path = directory / "docs" / source / f"d{i // 100:04d}" / f"doc-{i:06d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(model.document())
    generated = time.perf_counter() - started
    settings = load_settings(synthetic_config(directory))
    app = build_app(settings, embedder=StubEmbedder(settings.embedding, settings.base_dir))
    started = time.perf_counter()
    report = app.knowledge.sync()
    seconds = time.perf_counter() - started
    written = sum(s.chunks for s in report.sources)
    app.close()
    return {
        "build": "synthetic text, Strongroom sync (Indexer) with a stub embedder",
        "generate_s": round(generated, 1),
        "sync_s": round(seconds, 1),
        "stub_chunks_per_s": round(written / seconds, 1),
    }


def ensure_index(work: Path, size: int, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    directory = work / f"{size // 1000}k"
    marker = directory / "build.json"
    if marker.exists() and not rebuild:
        return directory, json.loads(marker.read_text())
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    print(f"building the {size} index in {directory} ...", file=sys.stderr, flush=True)
    if size == 1000:
        info = build_real(directory)
    else:
        real, _ = ensure_index(work, 1000, False)
        info = build_synthetic(directory, size, real)
    app = build_app(load_settings(directory / "strongroom.toml"))
    info["documents"], info["chunks"] = app.catalog.counts()
    app.close()
    info["built"] = time.strftime("%Y-%m-%d %H:%M")
    marker.write_text(json.dumps(info, indent=2))
    return directory, info


# -- measuring ------------------------------------------------------------------------------------


def queries() -> list[str]:
    pydoc = [
        line.split("|")[1].strip()
        for line in QUESTIONS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    acme = [json.loads(line)["query"] for line in ACME.read_text().splitlines() if line.strip()]
    return pydoc + acme


WARM_UP = [
    "how do I sort a list of dictionaries by a key",
    "logging configuration for a library",
    "what is the refund policy",
    "argparse subcommands",
    "unicode normalisation of strings",
    "regular expression lookahead",
    "socket timeout",
    "descriptor protocol __get__",
    "frequently asked questions about performance",
    "curses windows",
]


def search(peer: StdioPeer, query: str) -> tuple[float, int]:
    started = time.perf_counter()
    answer = peer.request("tools/call", {"name": "search", "arguments": {"query": query, "k": K}})
    elapsed = (time.perf_counter() - started) * 1000
    result = answer.get("result") or {}
    if "error" in answer or result.get("isError"):
        raise RuntimeError(f"search {query!r} failed: {json.dumps(answer)[:500]}")
    hits = (result.get("structuredContent") or {}).get("results", [])
    return elapsed, len(hits)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def rss_mb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        return round(next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024)


def serve(config: Path, code: Path | None = None) -> StdioPeer:
    """``strongroom serve`` on ``config``; with ``code``, a source tree's server (its ``typings``
    links on PYTHONPATH come before the installed package) instead of this one."""
    if code is None:
        return StdioPeer.strongroom(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env["PYTHONPATH"] = str(code / "typings")
    command = [sys.executable, "-m", "strongroom.server", "serve", "--config", str(config)]
    return StdioPeer(command, env)


def measure(servers: dict[Any, tuple[Path, Path | None]]) -> dict[Any, dict[str, Any]]:
    """Every server started at once; after a warm-up, each query goes to each server in turn
    (the order rotating), so they share the machine's load query by query."""
    peers = {label: serve(config, code) for label, (config, code) in servers.items()}
    try:
        for peer in peers.values():
            peer.initialize()
        for query in WARM_UP:
            for peer in peers.values():
                search(peer, query)  # the first waits for the model
        latencies: dict[Any, list[float]] = {label: [] for label in peers}
        empty: dict[Any, int] = dict.fromkeys(peers, 0)
        order = list(peers)
        for i, query in enumerate(queries()):
            for label in order[i % len(order) :] + order[: i % len(order)]:
                ms, hits = search(peers[label], query)
                latencies[label].append(ms)
                empty[label] += hits == 0
        return {
            label: {
                "queries": len(latencies[label]),
                "no_hits": empty[label],
                "p50_ms": round(statistics.median(latencies[label]), 1),
                "p95_ms": round(percentile(latencies[label], 0.95), 1),
                "max_ms": round(max(latencies[label]), 1),
                "peak_rss_mb": rss_mb(peers[label].proc.pid, "VmHWM"),
                "rss_mb": rss_mb(peers[label].proc.pid, "VmRSS"),
            }
            for label in peers
        }
    finally:
        for peer in peers.values():
            peer.close()


def variant_config(config: Path, label: str, retrieval: str) -> Path:
    """``config`` with ``retrieval`` (TOML lines) as its ``[retrieval]`` section."""
    variant = config.with_name(f"strongroom-{label.replace(' ', '-')}.toml")
    variant.write_text(config.read_text() + f"\n[retrieval]\n{retrieval}\n")
    return variant


def compare(
    directory: Path, base: Path | None, variants: Sequence[str], labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """This tree's server against ``base``'s (the code before a change) and against settings
    variants (``label:key=value``), interleaved on one index; with ``labels``, the principal
    sees only those labels (and unlabelled sources) instead of everything."""
    config = directory / "strongroom.toml"
    if labels is not None:
        restricted = directory / "strongroom-restricted.toml"
        restricted.write_text(
            config.read_text().replace('labels = ["*"]', f"labels = {json.dumps(list(labels))}")
        )
        config = restricted
    servers: dict[str, tuple[Path, Path | None]] = {"this tree": (config, None)}
    if base is not None:
        servers[f"base tree {base}"] = (config, base)
    for variant in variants:
        label, _, setting = variant.partition(":")
        servers[label] = (variant_config(config, label, setting.replace(",", "\n")), None)
    return measure(servers)


def profile(directory: Path, rounds: int) -> dict[str, Any]:
    """Each stage of a search in process, on ``directory``'s index with the real embedder."""
    from strongroom.server.knowledge import EVERYTHING
    from strongroom.server.retrieval.candidates import exact_candidates, keyword_candidates
    from strongroom.server.retrieval.pipeline import fuse, identifiers
    from strongroom.server.retrieval.shaping import shape_hits
    from strongroom.server.store.vectors import chroma_where

    app = build_app(load_settings(directory / "strongroom.toml"))
    kb, s = app.knowledge, app.settings.retrieval
    where = SearchFilter(sources=tuple(sorted(kb.visible_sources(EVERYTHING))))
    n = max(s.candidates, K)
    for q in WARM_UP:
        kb.search(q, K)
    times: dict[str, list[float]] = {}

    def timed(stage: str, fn: Any, *args: Any) -> Any:
        started = time.perf_counter()
        out = fn(*args)
        times.setdefault(stage, []).append((time.perf_counter() - started) * 1000)
        return out

    for _ in range(rounds):
        for q in queries():
            narrowed, factor = timed("index filter", app.retriever.index_filter, where)
            vector = timed("encode query", app.embedder.embed_query, q)
            matches = timed("chroma query", app.vectors.query, vector, n * factor, chroma_where(narrowed))
            dense = [(m.id, 1.0 - m.distance) for m in matches]
            keyword = timed(
                "fts5 keyword", keyword_candidates, app.catalog, q, n, narrowed, s.keyword_postings
            )
            names = identifiers(q)
            exact = timed("fts5 exact", exact_candidates, app.catalog, names, n, narrowed) if names else []
            fused = timed("fusion", fuse, s, dense, keyword, q, exact)
            timed(
                "shaping",
                lambda f: shape_hits(app.catalog, f, K, s.per_document, sources=where.sources),
                fused,
            )
            timed("knowledge.search", kb.search, q, K)
    app.close()
    return {
        stage: {"p50_ms": round(statistics.median(v), 2), "p95_ms": round(percentile(v, 0.95), 2)}
        for stage, v in times.items()
    }


def budget_quality(cache: Path, budgets: Sequence[int]) -> dict[str, Any]:
    """nDCG@10 by page on the Python manual's index (``benchmarks/pydoc_quality.py --cache``) with
    the keyword query's posting budget scaled to this index: a budget ``B`` at 100k chunks leaves
    out the words that cover as large a share of the index as ``B * N / 100k`` does here."""
    from pydoc_corpus import load_questions
    from pydoc_quality import pages_of, scores, strongroom_pages

    from strongroom.server.retrieval.candidates import keyword_candidates

    app = build_app(load_settings(cache / "strongroom.toml"))
    rows = {r["q"]: r for r in json.loads((cache / "candidates-onnx.json").read_text())["rows"]}
    pages = {d.source_id for d in app.catalog.documents()}
    questions = [q for q in load_questions() if all(p in pages for p in q["pages"])]
    total = app.catalog.counts()[1]
    settings = app.settings.retrieval
    where = SearchFilter(sources=("pydoc",))
    out: dict[str, Any] = {"questions": len(questions), "chunks": total}
    for budget in [None, *budgets]:
        scaled = None if budget is None else max(1, round(budget * total / 100_000))
        kinds: dict[str, list[float]] = {}
        alone: list[float] = []
        for q in questions:
            c = dict(rows[str(q["question"])])
            c["keyword"] = keyword_candidates(app.catalog, str(q["question"]), 200, where, scaled)
            kinds.setdefault("all", []).append(scores(strongroom_pages(settings, c), q["pages"])["ndcg@10"])
            kinds.setdefault(str(q["kind"]), []).append(kinds["all"][-1])
            alone.append(scores(pages_of(c["keyword"]), q["pages"])["ndcg@10"])
        out["none" if budget is None else f"{budget} at 100k ({scaled} here)"] = {
            "ndcg@10": {k: round(statistics.mean(v), 4) for k, v in kinds.items()},
            "bm25_alone_ndcg@10": round(statistics.mean(alone), 4),
        }
    app.close()
    return out


def machine() -> dict[str, Any]:
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "uptime": uptime,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("/work/cache/scale"))
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rebuild", action="store_true", help="build the indexes again")
    parser.add_argument("--profile", type=int, metavar="SIZE", help="time each search stage in process")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the queries (--profile)")
    parser.add_argument("--compare", type=int, metavar="SIZE", help="servers side by side on one index")
    parser.add_argument("--base", type=Path, help="--compare: a source tree of the code before a change")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL:KEY=VALUE[,KEY=VALUE]",
        help="--compare: this tree with these [retrieval] settings",
    )
    parser.add_argument(
        "--principal-labels",
        metavar="L1,L2",
        help="--compare: the principal sees only these labels (and unlabelled sources)",
    )
    parser.add_argument(
        "--budget-quality",
        type=Path,
        metavar="PYDOC_CACHE",
        help="nDCG@10 on the Python manual's index with the keyword posting budget scaled to it",
    )
    args = parser.parse_args()
    before = machine()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.profile:
        directory, _ = ensure_index(args.work, args.profile, False)
        out: dict[str, Any] = {"profile": profile(directory, args.rounds)}
    elif args.budget_quality:
        out = {"budget_quality": budget_quality(args.budget_quality, [5000, 10000, 20000])}
    elif args.compare:
        directory, info = ensure_index(args.work, args.compare, False)
        labels = args.principal_labels.split(",") if args.principal_labels else None
        out = {"index": info, "compare": compare(directory, args.base, args.variant, labels)}
    else:
        built = {size: ensure_index(args.work, size, args.rebuild) for size in sizes}
        results = measure({size: (d / "strongroom.toml", None) for size, (d, _) in built.items()})
        out = {"results": {size: {**built[size][1], **results[size]} for size in sizes}}
    out["before"], out["after"] = before, machine()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
