"""Speed and memory of the everyday paths, on the example corpus.

Usage: python benchmarks/speed.py [--json]

- sync: a fresh full sync, then a no-change re-sync (documents/s, chunks/s)
- search: warm in-process latency over the labelled queries (p50/p95)
- stdio server: time to the initialize answer, to tools/list, and to the first search result
  (which waits for the model), and the server's peak RSS
Results are recorded by hand in benchmarks/RESULTS.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from strongroom.server.knowledge import KnowledgeBase
from strongroom.server.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ROOT / "benchmarks" / "data" / "acme_queries.jsonl"


def bench_sync_and_search(workdir: Path) -> dict[str, Any]:
    kb = KnowledgeBase(load_settings(workdir / "strongroom.toml"))
    started = time.perf_counter()
    kb.embedder.model()
    model_load = time.perf_counter() - started
    started = time.perf_counter()
    reports = kb.sync().sources
    full = time.perf_counter() - started
    documents = sum(r.added for r in reports)
    chunks = sum(r.chunks for r in reports)
    started = time.perf_counter()
    kb.sync()
    resync = time.perf_counter() - started
    queries = [json.loads(line)["query"] for line in QUERIES.read_text().splitlines() if line.strip()]
    kb.search(queries[0])  # warm-up (opens Chroma)
    latencies = []
    for q in queries * 3:
        t = time.perf_counter()
        kb.search(q, 5)
        latencies.append((time.perf_counter() - t) * 1000)
    latencies.sort()
    return {
        "model_load_s": round(model_load, 2),
        "documents": documents,
        "chunks": chunks,
        "full_sync_s": round(full, 2),
        "chunks_per_s": round(chunks / full, 1),
        "resync_unchanged_s": round(resync, 3),
        "search_p50_ms": round(statistics.median(latencies), 1),
        "search_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 1),
        "search_queries": len(latencies),
    }


def bench_stdio(config: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "strongroom.server", "serve", "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert proc.stdin and proc.stdout

    def ask(message: dict[str, Any]) -> float:
        assert proc.stdin and proc.stdout
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()
        if "id" in message:
            proc.stdout.readline()
        return time.perf_counter() - started

    init = ask(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        }
    )
    ask({"jsonrpc": "2.0", "method": "notifications/initialized"})
    tools = ask({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    first = ask(
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "search", "arguments": {"query": "restocking fee for tents"}},
        }
    )
    with open(f"/proc/{proc.pid}/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    proc.stdin.close()
    proc.wait(30)
    return {
        "initialize_s": round(init, 2),
        "tools_list_s": round(tools, 2),
        "first_search_s": round(first, 2),
        "server_peak_rss_mb": round(peak_kb / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(
            ROOT / "examples" / "acme", work, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".strongroom")
        )
        results = {"in_process": bench_sync_and_search(work), "stdio": bench_stdio(work / "strongroom.toml")}
    results["bench_process_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
