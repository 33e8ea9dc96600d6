"""A full sync's throughput against the raw encode rate of the same passages, in one run.

Usage: python benchmarks/sync_throughput.py [--rounds 3] [--batch-size N] [--json]

On a fixed part of the Python manual (the HOWTOs and the FAQ, Debian's ``python3.11-doc``),
each round runs (a) a full sync into a fresh data folder — the product's own path: the
filesystem connector, the HTML reader in its worker process, the chunker, the embedder,
Chroma and the catalog — and (b) one in-process encoding of exactly the passage texts that
sync embedded, with the same loaded embedder and batch size. The model loads once, before
the first round, and is shared: its load is in neither figure. The two alternate in order
from round to round (the load on a shared machine changes from one minute to the next), and
an unmeasured warm-up sync first records the passages and warms the page cache.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydoc_corpus import MANUAL, ensure_manual

from strongroom.server.app import build_app
from strongroom.server.embedder import Embedder
from strongroom.server.settings import EmbeddingSettings, load_settings

SECTIONS = ["howto/**", "faq/**"]
GOAL = 0.85


def write_config(folder: Path, name: str, batch_size: int) -> Path:
    """A configuration syncing the manual's SECTIONS into ``folder/name``."""
    config = folder / f"{name}.toml"
    config.write_text(
        f'[store]\npath = "{name}"\n\n[embedding]\nbackend = "onnx"\nbatch_size = {batch_size}\n\n'
        f'[[sources]]\nname = "pydoc"\nconnector = "filesystem"\npath = "{MANUAL}"\n'
        f"include = {json.dumps(SECTIONS)}\n"
    )
    return config


def timed_sync(folder: Path, name: str, embedder: Embedder, batch_size: int) -> tuple[float, int, float]:
    """A full sync into a fresh data folder: (seconds, passages, CPU share of the process)."""
    kb = build_app(load_settings(write_config(folder, name, batch_size)), embedder=embedder).knowledge
    cpu, started = time.process_time(), time.perf_counter()
    report = kb.sync()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    kb.close()
    assert report.ok, report
    return seconds, sum(s.chunks for s in report.sources), cpu / seconds


def recording(embedder: Embedder, into: list[str]) -> Callable[[Sequence[str]], list[list[float]]]:
    """``embedder.embed`` that also keeps the texts it is given."""
    embed = embedder.embed

    def record(texts: Sequence[str]) -> list[list[float]]:
        into.extend(texts)
        return embed(texts)

    return record


def run(rounds: int, batch_size: int) -> dict[str, Any]:
    ensure_manual()
    settings = EmbeddingSettings(backend="onnx", batch_size=batch_size)
    embedder = Embedder(settings)
    started = time.perf_counter()
    embedder.model()
    out: dict[str, Any] = {"load_average_before": [round(x, 1) for x in os.getloadavg()]}
    out["model_load_s"] = round(time.perf_counter() - started, 2)
    texts: list[str] = []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        embedder.embed = recording(embedder, texts)  # type: ignore[method-assign]
        _, passages, _ = timed_sync(folder, "warm-up", embedder, batch_size)
        del embedder.embed  # the embedder's own method again
        assert len(texts) == passages, (len(texts), passages)
        for r in range(rounds):
            row: dict[str, float] = {}
            for step in ("sync", "encode") if r % 2 == 0 else ("encode", "sync"):
                if step == "sync":
                    seconds, synced, cpu = timed_sync(folder, f"round-{r}", embedder, batch_size)
                    assert synced == passages
                    row |= {"sync_per_s": passages / seconds, "sync_cpu_cores": cpu}
                else:
                    started = time.perf_counter()
                    embedder.embed(texts)
                    row["encode_per_s"] = passages / (time.perf_counter() - started)
            row["ratio"] = row["sync_per_s"] / row["encode_per_s"]
            rows.append({k: round(v, 2) for k, v in row.items()})
    out |= {
        "sections": SECTIONS,
        "passages": passages,
        "batch_size": settings.batch_size,
        "rounds": rows,
        "median": {k: round(statistics.median(r[k] for r in rows), 2) for k in rows[0]},
        "goal": GOAL,
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
        # This process's peak (syncs and encodes alike); the HTML reader's worker is apart.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--batch-size", type=int, default=EmbeddingSettings().batch_size, help="embedding.batch_size"
    )
    args = parser.parse_args()
    results = run(args.rounds, args.batch_size)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{results['passages']} passages of {', '.join(SECTIONS)}, batch size {results['batch_size']};"
        f" load {results['load_average_before']}"
    )
    print("round  sync/s  encode/s  ratio  sync cores")
    for i, r in enumerate(results["rounds"]):
        print(
            f"{i:5}  {r['sync_per_s']:6.2f}  {r['encode_per_s']:8.2f}  {r['ratio']:5.2f}  {r['sync_cpu_cores']:5.2f}"
        )
    m = results["median"]
    print(
        f"median {m['sync_per_s']:6.2f}  {m['encode_per_s']:8.2f}  {m['ratio']:5.2f}  {m['sync_cpu_cores']:5.2f}"
    )
    print(f"goal {GOAL}; load after {results['load_average_after']}; peak RSS {results['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
