"""Speed and memory of the everyday paths, on the example corpus.

Usage: python benchmarks/speed.py [--json] [--startup-only] [--rounds N] [--baseline DIR]

- sync: a fresh full sync, then a no-change re-sync (documents/s, chunks/s)
- search: warm in-process latency over the labelled queries (p50/p95)
- start-up, interleaved with a bare MCPServer hello-world over ``--rounds`` rounds: each
  spawned ``strongroom serve`` (stdio, the example's config and rules file) is timed to the
  ``initialize`` answer, to tools/list and to the first search result, with its peak RSS;
  ``--baseline DIR`` adds a second Strongroom to the same rounds, run from the ``strongroom``
  package in DIR (a copy of an older tree: DIR/strongroom/server, DIR/strongroom/connectors)
- encoders: ONNX int8 against torch fp32 (skipped with ``--startup-only``)

A sync's throughput against the raw encode rate is ``benchmarks/sync_throughput.py``.
Results are recorded by hand in benchmarks/RESULTS.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import compileall
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


def bench_stdio(config: Path, pythonpath: str | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    peer = StdioPeer.strongroom(config, pythonpath)

    def timed(method: str, params: dict[str, Any] | None = None) -> float:
        peer.request(method, params)
        return time.perf_counter() - started

    init = timed("initialize", INITIALIZE_PARAMS)
    peer.notify("notifications/initialized")
    tools = timed("tools/list")
    answer = peer.request(
        "tools/call", {"name": "search", "arguments": {"query": "restocking fee for tents"}}
    )
    first = time.perf_counter() - started
    assert not answer["result"].get("isError") and "refund-policy" in json.dumps(answer), answer
    peak = peer.peak_rss_mb()
    peer.close()
    return {
        "initialize_s": round(init, 3),
        "tools_list_s": round(tools, 3),
        "first_search_s": round(first, 3),
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
    return {"initialize_s": round(elapsed, 3)}


def bench_startup(workdir: Path, rounds: int, baseline: Path | None) -> dict[str, Any]:
    """Strongroom's start-up against the hello-world's (and ``baseline``'s), interleaved: the
    order turns from round to round, and each round's ratio compares neighbours in time."""
    config = workdir / "strongroom.toml"
    runs: dict[str, Any] = {
        "hello": lambda: bench_hello_world(workdir),
        "strongroom": lambda: bench_stdio(config),
    }
    if baseline is not None:
        runs["baseline"] = lambda: bench_stdio(config, str(baseline.resolve()))
    _compile_bytecode(baseline)
    names = list(runs)
    rows: list[dict[str, dict[str, Any]]] = []
    for r in range(rounds):
        turn = names[r % len(names) :] + names[: r % len(names)]
        rows.append({name: runs[name]() for name in turn})
    out: dict[str, Any] = {"rounds": rounds}
    for name in names:
        out[name] = {k: statistics.median(row[name][k] for row in rows) for k in rows[0][name]}
    for name in names[1:]:
        out[f"{name}_initialize_over_hello"] = _median_ratio(rows, name, "hello", "initialize_s")
    if baseline is not None:
        for key in ("initialize_s", "first_search_s"):
            out[f"strongroom_over_baseline_{key}"] = _median_ratio(rows, "strongroom", "baseline", key)
    return out


def _compile_bytecode(baseline: Path | None) -> None:
    """Write both trees' bytecode first, as an installed package has it: with
    PYTHONDONTWRITEBYTECODE set (or a read-only tree) every spawn would compile the sources."""
    import strongroom.connectors
    import strongroom.server

    trees = [Path(strongroom.server.__file__).parent, Path(strongroom.connectors.__file__).parent]
    for tree in [*trees, *([baseline] if baseline is not None else [])]:
        compileall.compile_dir(tree, quiet=1)


def _median_ratio(rows: list[dict[str, dict[str, Any]]], a: str, b: str, key: str) -> float:
    return round(
        statistics.median(row[a][key] / row[b]["initialize_s" if b == "hello" else key] for row in rows), 2
    )


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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--startup-only", action="store_true", help="Only the start-up rounds.")
    parser.add_argument("--rounds", type=int, default=5, help="Start-up rounds (default 5).")
    parser.add_argument("--baseline", type=Path, help="A folder with an older strongroom package.")
    args = parser.parse_args()
    results: dict[str, Any] = {"load_average_before": [round(x, 1) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(
            ROOT / "examples" / "acme", work, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".strongroom")
        )
        results["in_process"] = bench_sync_and_search(work)  # the start-up rounds search this index
        results["startup"] = bench_startup(work, args.rounds, args.baseline)
        if not args.startup_only:
            texts = [p.read_text()[:1200] for p in sorted((ROOT / "examples" / "acme").rglob("*.md"))] * 4
            results["encoders"] = bench_encoders(texts)
    results["load_average"] = [round(x, 1) for x in os.getloadavg()]
    results["bench_process_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
