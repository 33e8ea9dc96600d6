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
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stdio_peer import INITIALIZE_PARAMS, StdioPeer

from strongroom.server.app import build_app
from strongroom.server.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ROOT / "benchmarks" / "data" / "acme_queries.jsonl"


def bench_sync_and_search(workdir: Path) -> dict[str, Any]:
    kb = build_app(load_settings(workdir / "strongroom.toml")).knowledge
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
    started = time.perf_counter()
    peer = StdioPeer.strongroom(config)

    def timed(method: str, params: dict[str, Any] | None = None) -> float:
        peer.request(method, params)
        return time.perf_counter() - started

    init = timed("initialize", INITIALIZE_PARAMS)
    peer.notify("notifications/initialized")
    tools = timed("tools/list")
    first = timed("tools/call", {"name": "search", "arguments": {"query": "restocking fee for tents"}})
    peak = peer.peak_rss_mb()
    peer.close()
    return {
        "initialize_s": round(init, 2),
        "tools_list_s": round(tools, 2),
        "first_search_s": round(first, 2),
        "server_peak_rss_mb": peak,
    }


HELLO = """
from mcp.server import MCPServer

server = MCPServer("hello")


@server.tool()
def hello(name: str) -> str:
    return "hello " + name


server.run()
"""


def bench_hello_world(workdir: Path) -> dict[str, Any]:
    """A bare MCPServer's time to answer initialize: the floor Strongroom is compared with."""
    script = workdir / "hello_mcp.py"
    script.write_text(HELLO)
    started = time.perf_counter()
    peer = StdioPeer([sys.executable, str(script)])
    peer.request("initialize", INITIALIZE_PARAMS)
    elapsed = time.perf_counter() - started
    peer.close()
    return {"initialize_s": round(elapsed, 2)}


def bench_encoders(texts: list[str], rounds: int = 3) -> dict[str, Any]:
    """ONNX int8 against torch fp32, interleaved in one run: load time, chunks/s, agreement."""
    import numpy as np

    from strongroom.server.embedder import Embedder
    from strongroom.server.settings import EmbeddingSettings

    out: dict[str, Any] = {}
    encoders = {}
    for backend in ("onnx", "torch"):
        started = time.perf_counter()
        encoders[backend] = Embedder(EmbeddingSettings(backend=backend))  # type: ignore[arg-type]
        encoders[backend].model()
        out[f"{backend}_load_s"] = round(time.perf_counter() - started, 2)
    rates: dict[str, list[float]] = {"onnx": [], "torch": []}
    for _ in range(rounds):
        for backend, e in encoders.items():
            started = time.perf_counter()
            e.encode(texts)
            rates[backend].append(len(texts) / (time.perf_counter() - started))
    a, b = encoders["onnx"].encode(texts), encoders["torch"].encode(texts)
    out.update(
        {f"{k}_chunks_per_s": round(statistics.median(v), 1) for k, v in rates.items()}
        | {
            "onnx_over_torch": round(statistics.median(rates["onnx"]) / statistics.median(rates["torch"]), 2),
            "cosine_mean": round(float(np.mean((a * b).sum(axis=1))), 5),
            "cosine_min": round(float(np.min((a * b).sum(axis=1))), 5),
            "texts": len(texts),
        }
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(
            ROOT / "examples" / "acme", work, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".strongroom")
        )
        results: dict[str, Any] = {"in_process": bench_sync_and_search(work)}
        stdio, hello = [], []
        for _ in range(3):  # interleaved: the load changes from one second to the next
            stdio.append(bench_stdio(work / "strongroom.toml"))
            hello.append(bench_hello_world(work))
        results["stdio"] = {k: statistics.median(r[k] for r in stdio) for k in stdio[0]}
        results["hello_world_initialize_s"] = statistics.median(h["initialize_s"] for h in hello)
        results["initialize_over_hello_world"] = round(
            results["stdio"]["initialize_s"] / results["hello_world_initialize_s"], 2
        )
        texts = [p.read_text()[:1200] for p in sorted((ROOT / "examples" / "acme").rglob("*.md"))] * 4
        results["encoders"] = bench_encoders(texts)
    results["load_average"] = [round(x, 1) for x in os.getloadavg()]
    results["bench_process_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
