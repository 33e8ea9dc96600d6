"""Retrieval quality on the labelled example queries: dense, keyword and fused rankings.

Usage: python benchmarks/retrieval_quality.py [--json]
Syncs examples/acme into a temporary data directory, then reports hit@1, hit@3 and MRR
(by document) for each ranker: dense, keyword, RRF, ``hybrid`` (the fusion of those two alone)
and ``search`` (the whole pipeline, identifiers and titles included, k=10). Results are recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from strongroom.server.app import build_app
from strongroom.server.knowledge import KnowledgeBase
from strongroom.server.retrieval.candidates import dense_candidates, keyword_candidates
from strongroom.server.retrieval.fusion import reciprocal_rank_fusion
from strongroom.server.retrieval.pipeline import fuse
from strongroom.server.settings import load_settings
from strongroom.server.store.records import SearchFilter

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ROOT / "benchmarks" / "data" / "acme_queries.jsonl"


def document_ranking(kb: KnowledgeBase, chunk_ids: list[str]) -> list[str]:
    chunks = kb.catalog.chunks(chunk_ids)
    return list(dict.fromkeys(chunks[c].document_id for c in chunk_ids if c in chunks))


def evaluate(kb: KnowledgeBase, queries: list[dict[str, str]]) -> dict[str, dict[str, float]]:
    n = kb.settings.retrieval.candidates
    where = SearchFilter()
    scores: dict[str, list[int | None]] = {"dense": [], "keyword": [], "rrf": [], "hybrid": [], "search": []}
    for q in queries:
        expected = f"handbook/{q['expected']}"
        dense = dense_candidates(kb.vectors, kb.embedder, q["query"], n, where)
        keyword = keyword_candidates(kb.catalog, q["query"], n, where)
        rrf = reciprocal_rank_fusion([dense, keyword], k=kb.settings.retrieval.rrf_k)
        hybrid = fuse(kb.settings.retrieval, dense, keyword, q["query"])
        for name, ranking in (("dense", dense), ("keyword", keyword), ("rrf", rrf), ("hybrid", hybrid)):
            docs = document_ranking(kb, [cid for cid, _ in ranking])
            scores[name].append(docs.index(expected) + 1 if expected in docs else None)
        served = [h.document_id for h in kb.search(q["query"], k=10).results]  # the whole pipeline
        scores["search"].append(served.index(expected) + 1 if expected in served else None)
    return {
        name: {
            "hit@1": sum(1 for r in ranks if r == 1) / len(ranks),
            "hit@3": sum(1 for r in ranks if r is not None and r <= 3) / len(ranks),
            "mrr": sum(1 / r for r in ranks if r) / len(ranks),
        }
        for name, ranks in scores.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    queries = [json.loads(line) for line in QUERIES.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(
            ROOT / "examples" / "acme", tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".strongroom")
        )
        kb = build_app(load_settings(Path(tmp) / "strongroom.toml")).knowledge
        kb.sync()
        results = evaluate(kb, queries)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{len(queries)} queries, document-level ranks")
    print(f"{'ranker':8} {'hit@1':>6} {'hit@3':>6} {'MRR':>6}")
    for name, r in results.items():
        print(f"{name:8} {r['hit@1']:6.2f} {r['hit@3']:6.2f} {r['mrr']:6.3f}")


if __name__ == "__main__":
    main()
