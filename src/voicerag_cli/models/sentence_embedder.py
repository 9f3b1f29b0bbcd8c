"""`text_embedder` backend `sentence-transformers`: any sentence-transformers folder through
torch (default: the bundled all-MiniLM-L6-v2). The default backend `minilm` computes the same
vectors without torch (numpy_sentence_embedder.py) and falls back to this class for folders
it cannot run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voicerag_cli.errors import ModelError
from voicerag_cli.models._offline import prepare_hf_offline
from voicerag_cli.models.base import EmbeddingSpace
from voicerag_cli.models.bert_weights import COMPACT, FULL, write_full_copy
from voicerag_cli.models.bundled import MINILM
from voicerag_cli.models.pinned import stamps_for, verified_folder
from voicerag_cli.models.weights_info import WeightsInfo, folder_weights

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles

MINILM_SPACE_ID = "sentence-transformers/all-MiniLM-L6-v2"


class SentenceEmbedder:
    def __init__(self, model_dir: Path, space_id: str, why: str = "") -> None:
        """`why`: the reason the numpy path cannot run this folder, when it sent it here."""
        prepare_hf_offline()
        try:
            from sentence_transformers import SentenceTransformer
        except ModuleNotFoundError as exc:  # an extra since torch left the base install
            reason = f" ({why}: it runs only through sentence-transformers)" if why else ""
            raise ModelError(
                f"text embedder folder {model_dir}{reason} needs python package {(exc.name or '').split('.')[0]}, "
                "which is not installed: pip install 'voicerag[sentence-transformers]'"
            ) from exc

        try:
            self.model = _load(SentenceTransformer, model_dir)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load text embedder from {model_dir}: {exc}") from exc
        dim = self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") else None
        dim = dim or self.model.get_sentence_embedding_dimension()
        if dim is None:  # no pooling or dense layer that states it
            raise ModelError(f"cannot load text embedder from {model_dir}: it does not state its embedding dimension")
        self.space = EmbeddingSpace(space_id, int(dim))

    def embed_texts(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.space.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def _load(sentence_transformer: type[SentenceTransformer], model_dir: Path) -> SentenceTransformer:
    """The folder's model on the CPU. A folder with only compact weights (the bundled MiniLM,
    bert_weights.py) loads from a float32 copy written to a temporary folder: transformers reads
    only full weights, and the copy's values are those the numpy path computes with."""
    if (model_dir / FULL).is_file() or not (model_dir / COMPACT).is_file():
        return sentence_transformer(str(model_dir), device="cpu")
    with tempfile.TemporaryDirectory(prefix="voicerag-minilm-", ignore_cleanup_errors=True) as tmp:
        return sentence_transformer(str(write_full_copy(model_dir, Path(tmp) / "model")), device="cpu")


def minilm_weights(settings: Settings) -> WeightsInfo:
    """The weights probe of both text-embedder backends (`minilm`, `sentence-transformers`):
    text_embedder.model_path, else the bundled all-MiniLM-L6-v2 folder (bundled.MINILM)."""
    return folder_weights(settings.text_embedder.model_path, MINILM.module, MINILM.folder)


def model_folder(settings: Settings) -> tuple[Path, str]:
    """The configured sentence-transformers folder and the embedding space its vectors are in.

    Both text-embedder backends resolve it here, so one folder always means one space: an index
    built by one backend is searched by the other."""
    if not settings.text_embedder.model_path:  # the bundled folder: its files match their pins
        verified_folder(MINILM, stamps_for(settings))
    weights = minilm_weights(settings)
    if not weights.present:
        raise ModelError(f"text embedder weights not found at {weights.location} (set text_embedder.model_path)")
    if settings.text_embedder.space_id:
        space_id = settings.text_embedder.space_id
    elif settings.text_embedder.model_path:
        space_id = f"sentence-transformers/{Path(weights.location).name}"
    else:
        space_id = MINILM_SPACE_ID
    return Path(weights.location), space_id


def create(settings: Settings, registry: Roles) -> SentenceEmbedder:
    return SentenceEmbedder(*model_folder(settings))
