"""What the HTML reader's chrome removal and the chunker's short-passage merging are worth.

Usage: python benchmarks/pydoc_ablation.py [--work DIR] [--seed DIR]

Three indexes of the same pages of the Python 3.11 manual (``pydoc_quality``'s "cited" scope),
scored on the same questions by page, as ``pydoc_quality`` scores them:

- **as shipped**: the HTML reader as it is (page chrome dropped, the main content kept) and the
  chunker as it is (a passage under 150 characters joins a neighbour);
- **chrome kept**: the reader with its chrome handling off: Sphinx sidebars, related-links bars,
  breadcrumbs, tables of contents and ARIA navigation stay, and the whole body is read rather
  than the main content (the ``<header>``/``<footer>``/``<nav>`` elements, which are not
  chrome of a manual in particular, are dropped in every variant);
- **no short merge**: the reader as shipped, the chunker with ``min_chars = 0`` (heading-only and
  one-line sections stand alone).

Every page is read by Strongroom's own HTML reader in this process (the switch is a patch of its
module) and written as Markdown with its title, then synced by ``strongroom sync``'s code, so the
variants differ only where stated. Embeddings are cached by text: a passage is embedded once for
every index that holds it, and the cache is seeded from ``--seed``'s index (pydoc_quality's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydoc_corpus
from pydoc_quality import KINDS, TITLES, markdown, pages_of, split_halves, strongroom_pages, table

from strongroom.connectors.filesystem.formats import html
from strongroom.server.app import build_app
from strongroom.server.embedder import Embedder
from strongroom.server.retrieval.candidates import dense_candidates, exact_candidates, keyword_candidates
from strongroom.server.retrieval.fusion import reciprocal_rank_fusion
from strongroom.server.retrieval.pipeline import identifiers
from strongroom.server.settings import load_settings
from strongroom.server.store.records import SearchFilter

POOL = 200
VARIANTS = ("as shipped", "chrome kept", "no short merge")


class CachedEmbedder(Embedder):
    """The configured embedder, remembering every passage's vector by its text."""

    def __init__(self, inner: Embedder, cache: dict[str, list[float]]) -> None:
        self.__dict__.update(inner.__dict__)
        self._cache = cache
        self.encoded = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            self._cache.update(zip(missing, super().embed(missing), strict=True))
            self.encoded += len(missing)
        return [self._cache[t] for t in texts]


@contextmanager
def chrome_kept() -> Iterator[None]:
    """The HTML reader without its chrome handling (see the module docstring)."""
    is_chrome, main = html._is_chrome, html._MAIN
    html._is_chrome, html._MAIN = (lambda tag: False), ()
    try:
        yield
    finally:
        html._is_chrome, html._MAIN = is_chrome, main


def render(pages: Sequence[str], folder: Path) -> None:
    """Each page as Strongroom's reader reads it, written as Markdown under ``folder``."""
    for page in pages:
        parsed = html.parse((pydoc_corpus.MANUAL / page).read_bytes())
        out = folder / (page + ".md")
        out.parent.mkdir(parents=True, exist_ok=True)
        title = (parsed.title or "").replace("\n", " ")
        out.write_text(f"---\ntitle: {title}\n---\n\n{parsed.text}\n", encoding="utf-8")


def seed_cache(seed: Path) -> dict[str, list[float]]:
    """Vectors of ``seed``'s passages by their embedded text (heading path and text)."""
    kb = build_app(load_settings(seed / "strongroom.toml")).knowledge
    cache: dict[str, list[float]] = {}
    with kb.catalog.database.read() as db:
        rows = db.execute("SELECT id, headings, text FROM chunks").fetchall()
    texts = {}
    for r in rows:
        headings = json.loads(r["headings"])
        texts[r["id"]] = " > ".join(headings) + "\n\n" + r["text"] if headings else r["text"]
    ids = list(texts)
    collection = kb.vectors._open()
    for start in range(0, len(ids), 1000):
        got = collection.get(ids=ids[start : start + 1000], include=["embeddings"])
        for cid, vector in zip(got["ids"], got["embeddings"], strict=True):
            cache[texts[cid]] = [float(x) for x in vector]
    kb.close()
    return cache


def build(folder: Path, pages: Sequence[str], variant: str, embedder: CachedEmbedder) -> dict[str, Any]:
    """Render and sync one variant's index into ``folder`` (reused when it is there)."""
    done = folder / "sync.json"
    if done.exists():
        return json.loads(done.read_text())  # type: ignore[no-any-return]
    corpus = folder / "pages"
    if variant == "chrome kept":
        with chrome_kept():
            render(pages, corpus)
    else:
        render(pages, corpus)
    chunking = "[chunking]\nmin_chars = 0\n\n" if variant == "no short merge" else ""
    (folder / "strongroom.toml").write_text(
        f'[store]\npath = "index"\n\n{chunking}'
        + pydoc_corpus.GUARD
        + f'[[sources]]\nname = "pydoc"\nconnector = "filesystem"\npath = "{corpus}"\ninclude = ["**/*.md"]\n'
    )
    kb = build_app(load_settings(folder / "strongroom.toml"), embedder=embedder).knowledge
    before, started = embedder.encoded, time.perf_counter()
    kb.sync()
    counts = kb.catalog.counts()
    stats = {
        "chunks": counts[1],
        "embedded": embedder.encoded - before,
        "s": round(time.perf_counter() - started),
    }
    kb.close()
    done.write_text(json.dumps(stats))
    return stats


def candidates(folder: Path, questions: Sequence[dict[str, Any]], embedder: Embedder) -> list[dict[str, Any]]:
    """Each question's candidates on one variant's index, its pages named as in the manual."""
    kb = build_app(load_settings(folder / "strongroom.toml"), embedder=embedder).knowledge
    where = SearchFilter(sources=("pydoc",))

    def renamed(ranking: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
        return [(cid.replace(".html.md#", ".html#"), score) for cid, score in ranking]

    out = []
    for q in questions:
        text, names = str(q["question"]), identifiers(str(q["question"]))
        out.append(
            {
                "q": text,
                "dense": renamed(dense_candidates(kb.vectors, kb.embedder, text, POOL, where)),
                "keyword": renamed(keyword_candidates(kb.catalog, text, POOL, where)),
                "exact": renamed(exact_candidates(kb.catalog, names, POOL, where)) if names else [],
            }
        )
    heads = kb.catalog.document_heads([f"pydoc/{p}.md" for p in pydoc_corpus.indexed_pages()])
    TITLES.update({doc.removesuffix(".md"): head.title for doc, head in heads.items()})
    kb.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("/work/cache/pydoc-ablation"))
    parser.add_argument("--seed", type=Path, default=Path("/work/cache/pydoc-index"))
    args = parser.parse_args()
    pydoc_corpus.ensure_manual()
    pages = [p for p in pydoc_corpus.indexed_pages() if (pydoc_corpus.MANUAL / p).is_file()]
    pages += [
        str(p.relative_to(pydoc_corpus.MANUAL))
        for s in ("howto", "faq")
        for p in (pydoc_corpus.MANUAL / s).glob("*.html")
    ]
    pages = sorted(set(pages))
    questions = [q for q in pydoc_corpus.load_questions() if all(p in pages for p in q["pages"])]  # type: ignore[attr-defined]
    seed = args.seed if (args.seed / "strongroom.toml").exists() else None
    base = build_app(load_settings(pydoc_corpus.write_config(args.work / "model"))).embedder
    embedder = CachedEmbedder(base, seed_cache(seed) if seed else {})
    builds, rankings = {}, {}
    for variant in VARIANTS:
        folder = args.work / variant.replace(" ", "-")
        builds[variant] = build(folder, pages, variant, embedder)
        rankings[variant] = candidates(folder, questions, embedder)
    load = os.getloadavg()
    print(
        f"Run {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()} {os.cpu_count()} CPUs, load {load[0]:.1f}"
    )
    print(f"{len(pages)} pages, {len(questions)} questions; indexes: {json.dumps(builds)}")
    settings = load_settings(args.work / "as-shipped" / "strongroom.toml").retrieval
    rankers: dict[str, Callable[[int], list[str]]] = {}
    for variant, cands in rankings.items():
        rankers[f"{variant}: BM25 alone"] = lambda i, c=cands: pages_of(c[i]["keyword"])
        rankers[f"{variant}: dense alone"] = lambda i, c=cands: pages_of(c[i]["dense"])
        rankers[f"{variant}: RRF k=60"] = lambda i, c=cands: pages_of(
            reciprocal_rank_fusion([c[i]["dense"], c[i]["keyword"]], k=60)
        )
        rankers[f"{variant}: strongroom (defaults)"] = lambda i, c=cands: strongroom_pages(settings, c[i])
    halves = split_halves(questions)
    for half, subset in (*halves.items(), ("all questions", list(range(len(questions))))):
        print()
        print(markdown(f"{half} ({len(subset)} questions)", table(rankers, questions, subset)))
    print(f"\nkinds: {', '.join(KINDS)}")


if __name__ == "__main__":
    main()
