"""The PostgreSQL keyword path against SQLite FTS5: retrieval quality and latency, one run.

Usage: python benchmarks/pg_keyword.py [--cache DIR] [--rounds N]

Starts a throwaway PostgreSQL (``initdb`` into a temporary folder, listening on 127.0.0.1 only,
run as the ``postgres`` user when started as root; stopped and deleted at the end), copies the
cached index's catalog (``--cache``, built by ``benchmarks/pydoc_quality.py``: the Python 3.11
manual) into it through the Catalog API — ``commit_document`` per document, so the PostgreSQL
keyword index is built by :class:`TextSearchIndex` exactly as a sync would build it — and asks
both catalogs the questions of ``pydoc_quality.py`` (both halves, split the same way):

- quality: nDCG@10, hits@5, Recall@10 and MRR@10 by page of (a) the keyword index alone
  (``Catalog.keyword_search``, top 200 chunks, pages ranked by their best chunk) and (b)
  Strongroom's whole hybrid search (``KnowledgeBase.search``, k=10) on the same Chroma vectors,
  the only difference being the catalog;
- latency: ``keyword_search`` (at the pipeline's candidate count) and the whole search, p50 and
  p95 per backend, measured in one run with the backends alternating question by question
  (which one goes first alternates too), ``--rounds`` passes over the questions.

Goals (the issue): nDCG@10 within 0.01 of the SQLite path, search p50 within 2x.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydoc_corpus import build_index, load_questions
from pydoc_quality import KINDS, POOL, K, markdown, pages_of, split_halves, table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' throwaway server
from strongroom.server.app import App, build_app
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.postgres import PostgresDatabase
from strongroom.server.store.records import SearchFilter
from tests.integration.postgres import PostgresUnavailable, running_postgres

APP_USER = "strongroom_bench"
DATABASE = "catalog"
WHERE = SearchFilter(sources=("pydoc",))


def copy_catalog(source: Catalog, target: Catalog) -> tuple[int, int, float]:
    """Every document of ``source`` committed into ``target``; ``(documents, chunks, seconds)``."""
    started = time.perf_counter()
    for state in source.source_states():
        target.register_source(state.name, state.connector, state.description)
    made, previous = source.embedding()
    if made is not None:
        target.set_embedding(made, previous)
    documents = chunks = 0
    for document in source.documents():
        rows = source.document_chunks(document.id)
        target.commit_document(document, rows)
        documents, chunks = documents + 1, chunks + len(rows)
    for state in source.source_states():
        target.mark_synced(state.name, None)
    return documents, chunks, time.perf_counter() - started


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache", type=Path, default=Path("/work/cache/pydoc-index"))
    parser.add_argument(
        "--backend", choices=["onnx", "torch"], default="onnx", help="embedding backend of --cache"
    )
    parser.add_argument("--rounds", type=int, default=2, help="timed passes over the questions")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run still stops its server
    settings, sync = build_index(args.cache, args.backend)
    sqlite_app = build_app(settings)
    indexed = set(sqlite_app.catalog.document_hashes("pydoc"))
    written = load_questions()
    questions = [q for q in written if all(p in indexed for p in q["pages"])]  # type: ignore[attr-defined]
    halves = split_halves(questions)
    n = settings.retrieval.candidates
    with ExitStack() as stack:
        try:
            server = stack.enter_context(running_postgres(APP_USER, DATABASE))
        except PostgresUnavailable as exc:
            raise SystemExit(str(exc)) from None
        import psycopg

        database = PostgresDatabase(server.url(""), server.password)
        pg_app = build_app(settings, embedder=sqlite_app.embedder)  # its own VectorStore, same Chroma
        pg_app.database = database
        pg_app.catalog = Catalog(database)
        documents, chunks, copy_s = copy_catalog(sqlite_app.catalog, pg_app.catalog)
        # What autovacuum would do after a sync.
        with psycopg.connect(server.admin_conninfo, autocommit=True) as c:
            c.execute("VACUUM ANALYZE")
        apps: dict[str, App] = {"SQLite FTS5": sqlite_app, "PostgreSQL": pg_app}
        with database.read() as db:
            server_version = db.execute("SHOW server_version").fetchone()[0]
        runs = _measure(apps, questions, args.rounds, n)
        pg_app.close()
    sqlite_app.close()

    rankers: dict[str, Callable[[int], list[str]]] = {}
    for name in apps:
        rankers[f"keyword alone — {name}"] = lambda i, name=name: runs.keyword[name][i]
    for name in apps:
        rankers[f"Strongroom search — {name}"] = lambda i, name=name: runs.full[name][i]

    load = os.getloadavg()
    print(
        f"Run {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()} {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, PostgreSQL {server_version}, "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(
        f"Index: {sync}; copied {documents} documents, {chunks} chunks into PostgreSQL in {copy_s:.1f} s; "
        f"{len(questions)} questions, "
        + ", ".join(f"{k} {sum(1 for q in questions if q['kind'] == k)}" for k in KINDS)
    )
    _print_quality(rankers, questions, {"all questions": list(range(len(questions))), **halves})
    _print_latency(runs, len(questions) * args.rounds, n)


@dataclass
class _Runs:
    """Per backend: the pages each question found (keyword alone, whole search) and call times."""

    keyword: dict[str, list[list[str]]]
    full: dict[str, list[list[str]]]
    keyword_s: dict[str, list[float]]
    full_s: dict[str, list[float]]

    @staticmethod
    def empty(names: list[str]) -> _Runs:
        return _Runs(
            {n: [] for n in names}, {n: [] for n in names}, {n: [] for n in names}, {n: [] for n in names}
        )


def _measure(apps: dict[str, App], questions: Sequence[Any], rounds: int, n: int) -> _Runs:
    """Warm both backends up, rank every question, then time ``rounds`` interleaved passes."""
    for app in apps.values():  # warm up: the model, Chroma, both databases' caches
        for q in questions[:10]:
            app.knowledge.search(str(q["question"]), k=K)
            app.catalog.keyword_search(str(q["question"]), POOL, WHERE)

    runs = _Runs.empty(list(apps))
    for q in questions:
        for name, app in apps.items():
            found = app.catalog.keyword_search(str(q["question"]), POOL, WHERE)
            runs.keyword[name].append(pages_of([(m.id, m.score) for m in found]))
    order = list(apps.items())
    step = 0
    for round_ in range(rounds):
        for q in questions:
            text = str(q["question"])
            pair = order if step % 2 == 0 else order[::-1]
            step += 1
            for name, app in pair:
                started = time.perf_counter()
                app.catalog.keyword_search(text, n, WHERE)
                runs.keyword_s[name].append(time.perf_counter() - started)
            for name, app in pair:
                started = time.perf_counter()
                result = app.knowledge.search(text, k=K)
                runs.full_s[name].append(time.perf_counter() - started)
                if round_ == 0:
                    hits = (h.document_id.removeprefix("pydoc/") for h in result.results)
                    runs.full[name].append(list(dict.fromkeys(hits)))
    return runs


def _print_quality(
    rankers: dict[str, Callable[[int], list[str]]], questions: Sequence[Any], everything: dict[str, list[int]]
) -> None:
    results = {half: table(rankers, questions, subset) for half, subset in everything.items()}
    for half, subset in everything.items():
        print()
        print(markdown(f"{half} ({len(subset)} questions)", results[half]))
    print()
    print("#### PostgreSQL minus SQLite, nDCG@10")
    print()
    print("| ranker | " + " | ".join(everything) + " |")
    print("|---" * (1 + len(everything)) + "|")
    for what in ("keyword alone", "Strongroom search"):
        deltas = [
            results[h][f"{what} — PostgreSQL"]["all"]["ndcg@10"]
            - results[h][f"{what} — SQLite FTS5"]["all"]["ndcg@10"]
            for h in everything
        ]
        print(f"| {what} | " + " | ".join(f"{d:+.3f}" for d in deltas) + " |")
    print()


def _print_latency(runs: _Runs, samples: int, n: int) -> None:
    print(f"#### Latency ({samples} queries per backend, interleaved; keyword_search n={n}, search k={K})")
    print()
    print(
        "| call | SQLite p50 | SQLite p95 | PostgreSQL p50 | PostgreSQL p95 | PG/SQLite p50 | PG/SQLite p95 |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, samples_s in (("keyword_search", runs.keyword_s), ("search (whole pipeline)", runs.full_s)):
        sq, pg = samples_s["SQLite FTS5"], samples_s["PostgreSQL"]
        cells = [1000 * percentile(xs, p) for xs in (sq, pg) for p in (0.5, 0.95)]
        print(
            f"| {label} | {cells[0]:.1f} ms | {cells[1]:.1f} ms | {cells[2]:.1f} ms | {cells[3]:.1f} ms | "
            f"{percentile(pg, 0.5) / percentile(sq, 0.5):.2f} | {percentile(pg, 0.95) / percentile(sq, 0.95):.2f} |"
        )


if __name__ == "__main__":
    main()
