"""Retrieval quality on a real generated manual: the Python 3.11 documentation.

Usage: python benchmarks/pydoc_quality.py [--scope full|cited] [--cache DIR] [--no-mcp] [--tune]

Builds (once, into ``--cache``) an index of the manual with Strongroom's own sync, then
scores 250+ hand-written questions (benchmarks/data/pydoc_questions.txt) by page:
baselines on the same chunks (BM25 alone, dense alone, RRF k=60 of the two; a page ranks at
its best chunk), Strongroom's pipeline with each mechanism switched off in turn, and
Strongroom through the MCP ``search`` tool (k=10) of a spawned ``strongroom serve``.
Questions are split in two halves (alternately within each kind): settings were chosen on
the ``tune`` half; both halves are reported.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydoc_corpus import build_index, load_questions
from stdio_peer import StdioPeer

from strongroom.server.app import build_app
from strongroom.server.knowledge import KnowledgeBase
from strongroom.server.retrieval import pipeline
from strongroom.server.retrieval.candidates import dense_candidates, exact_candidates, keyword_candidates
from strongroom.server.retrieval.fusion import Ranking, best_per_group, reciprocal_rank_fusion
from strongroom.server.retrieval.pipeline import candidate_documents, fuse, identifiers
from strongroom.server.settings import RetrievalSettings
from strongroom.server.store.records import SearchFilter, document_of_chunk

K = 10
POOL = 200
TOP = 10
TITLES: dict[str, str] = {}
"""Every document's title (filled once the index is open)."""
KINDS = ("paraphrase", "identifier", "howto", "twopage")


def page_of(chunk: str) -> str:
    return document_of_chunk(chunk).removeprefix("pydoc/")


def pages_of(ranking: Ranking) -> list[str]:
    """Pages in order of their best chunk."""
    return [doc.removeprefix("pydoc/") for doc, _ in best_per_group(ranking, document_of_chunk)][:K]


def scores(ranked: Sequence[str], relevant: Sequence[str]) -> dict[str, float]:
    """nDCG@10, hits@5, Recall@10 and MRR@10 of a page ranking (binary relevance)."""
    ranked = list(ranked)[:K]
    rel = set(relevant)
    dcg = sum(1 / math.log2(i + 2) for i, p in enumerate(ranked) if p in rel)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(rel), K)))
    first = next((i + 1 for i, p in enumerate(ranked) if p in rel), None)
    return {
        "ndcg@10": dcg / ideal,
        "hits@5": float(first is not None and first <= 5),
        "recall@10": len(rel & set(ranked)) / len(rel),
        "mrr@10": 1 / first if first else 0.0,
    }


def split_halves(questions: Sequence[dict[str, Any]]) -> dict[str, list[int]]:
    """Question indexes in two halves, ``tune`` and ``held-out``, alternating within each kind."""
    halves: dict[str, list[int]] = {"tune": [], "held-out": []}
    seen: dict[str, int] = {}
    for i, q in enumerate(questions):
        n = seen[str(q["kind"])] = seen.get(str(q["kind"]), -1) + 1
        halves["tune" if n % 2 == 0 else "held-out"].append(i)
    return halves


def candidates(kb: KnowledgeBase, questions: list[dict[str, Any]], cache: Path) -> list[dict[str, Ranking]]:
    """Each question's dense, keyword and identifier candidates (POOL each), cached on disk."""
    path = cache / f"candidates-{kb.embedder.backend}.json"
    key = [kb.catalog.index_version(), [[q["question"], identifiers(str(q["question"]))] for q in questions]]
    if path.exists():
        stored = json.loads(path.read_text())
        if stored["key"] == key:
            return stored["rows"]  # type: ignore[no-any-return]
    where = SearchFilter(sources=("pydoc",))
    out = []
    for q in questions:
        text = str(q["question"])
        names = identifiers(text)
        out.append(
            {
                "q": text,
                "dense": dense_candidates(kb.vectors, kb.embedder, text, POOL, where),
                "keyword": keyword_candidates(kb.catalog, text, POOL, where),
                "exact": exact_candidates(kb.catalog, names, POOL, where) if names else [],
            }
        )
    path.write_text(json.dumps({"key": key, "rows": out}))
    return out


def strongroom_pages(settings: RetrievalSettings, c: dict[str, Any], titled: bool = True) -> list[str]:
    """The pages of the k=10 hits the pipeline returns (shaping's per-document cap included)."""
    n = settings.candidates
    dense, keyword = c["dense"][:n], c["keyword"][:n]
    exact = c["exact"][:n] if settings.identifiers else []
    titles = None
    if titled and settings.identifiers and identifiers(c["q"]):  # as Retriever.search: the candidates' titles
        titles = {doc: TITLES[doc] for doc in candidate_documents(dense, keyword, exact) if doc in TITLES}
    fused = fuse(settings, dense, keyword, c["q"], exact, titles)
    taken: dict[str, int] = {}
    hits: list[str] = []
    for cid, _ in fused:
        doc = document_of_chunk(cid)
        if taken.get(doc, 0) < settings.per_document:
            taken[doc] = taken.get(doc, 0) + 1
            hits.append(page_of(cid))
        if len(hits) == K:
            break
    return list(dict.fromkeys(hits))


def without_floors(settings: RetrievalSettings, c: dict[str, Any]) -> list[str]:
    """:func:`strongroom_pages` with every ranking min-max normalised, the weakest match as 0."""
    floors = pipeline._floors
    pipeline._floors = lambda count: [None] * count
    try:
        return strongroom_pages(settings, c)
    finally:
        pipeline._floors = floors


def table(
    rankers: dict[str, Callable[[int], list[str]]], questions: list[dict[str, Any]], subset: Sequence[int]
) -> dict[str, dict[str, dict[str, float]]]:
    """``ranker -> kind (and "all") -> metric -> mean`` over the questions in ``subset``."""
    result: dict[str, dict[str, dict[str, float]]] = {}
    for name, rank in rankers.items():
        per: dict[str, list[dict[str, float]]] = {"all": []}
        for i in subset:
            s = scores(rank(i), questions[i]["pages"])
            per["all"].append(s)
            per.setdefault(str(questions[i]["kind"]), []).append(s)
        result[name] = {kind: {m: sum(x[m] for x in xs) / len(xs) for m in xs[0]} for kind, xs in per.items()}
    return result


def mcp_pages(config: Path, questions: list[dict[str, Any]]) -> tuple[list[list[str]], list[float]]:
    """Ask a spawned ``strongroom serve`` (stdio) every question through the ``search`` tool."""
    peer = StdioPeer.strongroom(config, log=config.parent / "serve.log")
    peer.initialize()
    pages, latencies = [], []
    for q in questions:
        started = time.perf_counter()
        answer = peer.request("tools/call", {"name": "search", "arguments": {"query": q["question"], "k": K}})
        latencies.append(time.perf_counter() - started)
        hits = answer["result"]["structuredContent"]["results"]
        pages.append(list(dict.fromkeys(h["document_id"].removeprefix("pydoc/") for h in hits)))
    print(f"server exited {peer.close():.1f} s after its stdin closed")
    return pages, latencies


def markdown(title: str, results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        f"#### {title}",
        "",
        "| ranker | nDCG@10 | hits@5 | Recall@10 | MRR@10 | " + " | ".join(f"nDCG {k}" for k in KINDS) + " |",
    ]
    lines.append("|---" * (5 + len(KINDS)) + "|")
    for name, r in results.items():
        a = r["all"]
        kinds = " | ".join(f"{r[k]['ndcg@10']:.3f}" if k in r else "-" for k in KINDS)
        lines.append(
            f"| {name} | {a['ndcg@10']:.3f} | {a['hits@5']:.3f} | {a['recall@10']:.3f} | {a['mrr@10']:.3f} | {kinds} |"
        )
    return "\n".join(lines)


def variants(best: RetrievalSettings) -> dict[str, RetrievalSettings]:
    """The chosen settings and each mechanism switched off (or changed) alone."""
    return {
        "strongroom (defaults)": best,
        "- chunk-level fusion instead of by page": best.model_copy(update={"fusion_level": "chunk"}),
        "- a page scored by its best passage alone": best.model_copy(update={"document_evidence": 0.0}),
        "- 40 candidates instead of 150": best.model_copy(update={"candidates": 40}),
        "- no per-document cap": best.model_copy(update={"per_document": K}),
        "- per-document cap 1": best.model_copy(update={"per_document": 1}),
        "- per-document cap 3": best.model_copy(update={"per_document": 3}),
        "- no identifier handling": best.model_copy(update={"identifiers": False}),
        "- fixed weights (no confidence gain)": best.model_copy(update={"confidence_gain": 0.0}),
        "- RRF fusion by page": best.model_copy(update={"fusion": "rrf"}),
        "- old defaults (chunk, 40, 0.75, no cap)": best.model_copy(
            update={
                "fusion_level": "chunk",
                "candidates": 40,
                "dense_weight": 0.75,
                "per_document": K,
                "confidence_gain": 0.0,
            }
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, help="index folder (default /work/cache/pydoc-SCOPE)")
    parser.add_argument(
        "--scope",
        choices=["full", "cited"],
        default="full",
        help="full: every page of the manual; cited: the HOWTOs, FAQ and the cited pages only",
    )
    parser.add_argument(
        "--backend",
        choices=["onnx", "torch"],
        default="onnx",
        help="embedding backend of the index in --cache",
    )
    parser.add_argument("--no-mcp", action="store_true", help="skip the spawned server (in-process only)")
    parser.add_argument(
        "--tune", action="store_true", help="grid-search the fusion settings on the tune half"
    )
    args = parser.parse_args()
    args.cache = args.cache or Path(f"/work/cache/pydoc-{args.scope}")
    settings, sync = build_index(args.cache, args.backend, args.scope)
    kb = build_app(settings).knowledge
    indexed = set(kb.catalog.document_hashes("pydoc"))  # source ids: paths in the manual
    written = load_questions()
    questions = [q for q in written if all(p in indexed for p in q["pages"])]  # type: ignore[attr-defined]
    skipped = len(written) - len(questions)
    cands = candidates(kb, questions, args.cache)
    TITLES.update(
        {
            doc: h.title
            for doc, h in kb.catalog.document_heads(sorted(f"pydoc/{page}" for page in indexed)).items()
        }
    )
    halves = split_halves(questions)
    best = settings.retrieval
    if args.tune:
        _tune(best, cands, questions, halves["tune"])
        return
    rankers: dict[str, Callable[[int], list[str]]] = {
        "BM25 alone": lambda i: pages_of(cands[i]["keyword"]),
        "dense alone": lambda i: pages_of(cands[i]["dense"]),
        "RRF k=60 (chunks, ranked by page)": lambda i: pages_of(
            reciprocal_rank_fusion([cands[i]["dense"], cands[i]["keyword"]], k=60)
        ),
    }
    for name, s in variants(best).items():
        rankers[name] = lambda i, s=s: strongroom_pages(s, cands[i])
    rankers["- identifiers, but no page titled by the name"] = lambda i: strongroom_pages(
        best, cands[i], False
    )
    rankers["- keyword-side scores min-max normalised (no 0 floor)"] = lambda i: without_floors(
        best, cands[i]
    )
    latencies: list[float] = []
    if not args.no_mcp:
        served, latencies = mcp_pages(args.cache / "strongroom.toml", questions)
        rankers["Strongroom via MCP search (k=10)"] = lambda i: served[i]
    load = os.getloadavg()
    print(
        f"Run {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(f"{len(written)} questions written; {skipped} cite a page outside this index and are left out")
    print(
        f"Index: {sync}; {len(questions)} questions, "
        + ", ".join(f"{k} {sum(1 for q in questions if q['kind'] == k)}" for k in KINDS)
    )
    if latencies:
        ordered = sorted(latencies)
        print(
            f"MCP search latency: p50 {1000 * ordered[len(ordered) // 2]:.0f} ms, p95 {1000 * ordered[int(len(ordered) * 0.95)]:.0f} ms"
        )
    for half, subset in (*halves.items(), ("all questions", list(range(len(questions))))):
        print()
        print(markdown(f"{half} ({len(subset)} questions)", table(rankers, questions, subset)))


def _tune(
    best: RetrievalSettings, cands: Sequence[Any], questions: list[dict[str, Any]], subset: Sequence[int]
) -> None:
    """Grid-search the fusion settings on ``subset``; print the ten best."""
    grid = []
    for evidence, fusion, w, iw, g, cap, ident in itertools.product(
        (0.0, 0.3, 0.5, 0.7),
        ("relative", "rrf"),
        (0.3, 0.4, 0.5, 0.6, 0.75),
        (0.2, 0.3, 0.5, 0.75),
        (0.0, 1.0, 3.0),
        (1, 2),
        (True, False),
    ):
        update = {"document_evidence": evidence, "fusion": fusion, "dense_weight": w}
        update |= {"identifier_dense_weight": iw}
        update |= {"confidence_gain": g, "per_document": cap, "identifiers": ident}
        s = best.model_copy(update=update)
        r = table({"x": lambda i, s=s: strongroom_pages(s, cands[i])}, questions, subset)
        grid.append((round(r["x"]["all"]["ndcg@10"], 4), evidence, fusion, w, iw, g, cap, ident))
    for row in sorted(grid, reverse=True)[:TOP]:
        print(
            "nDCG {} document_evidence {} fusion {} dense_weight {} identifier_dense_weight {} gain {}"
            " per_document {} identifiers {}".format(*row)
        )


if __name__ == "__main__":
    main()
