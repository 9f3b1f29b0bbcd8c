"""`text_embedder` backend `minilm` (the default): all-MiniLM-L6-v2 through numpy.

The same vectors as sentence-transformers (tested to 1e-4) with no torch import, so indexing
and every query start in a fraction of a second. Other sentence-transformers models still run
through `sentence_embedder.py` (backend `sentence-transformers`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from voicerag_cli.errors import ModelError
from voicerag_cli.models.base import EmbeddingSpace
from voicerag_cli.models.bert_numpy import NumpyBert, mean_pool_normalised

DEFAULT_MAX_TOKENS = 256  # all-MiniLM-L6-v2's sentence_bert_config.json


class NumpySentenceEmbedder:
    def __init__(self, model_dir: Path, space_id: str) -> None:
        from tokenizers import Tokenizer

        tokenizer_file = model_dir / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise ModelError(f"text embedder tokenizer not found: {tokenizer_file}")
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # tokenizers raises its own untyped Exception subclass
            raise ModelError(f"cannot read the text embedder's tokenizer {tokenizer_file}: {exc}") from exc
        self.max_tokens = _max_seq_length(model_dir)
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.no_padding()
        self.bert = NumpyBert(model_dir)
        self.space = EmbeddingSpace(space_id, self.bert.hidden)

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]

    def embed_texts(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.space.dim), dtype=np.float32)
        ids = self.token_ids(texts)
        out = np.zeros((len(texts), self.space.dim), dtype=np.float32)
        # Batches of similar length: padding is wasted work in every layer.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(ids[i]) for i in chunk)
            batch = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, i in enumerate(chunk):
                batch[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1.0
            x = self.bert.embed_inputs(self.bert.word_embeddings[batch])
            out[chunk] = mean_pool_normalised(self.bert.encode(x, mask), mask)
        return out


def _max_seq_length(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    try:
        return int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length", DEFAULT_MAX_TOKENS))
    except (OSError, ValueError):
        return DEFAULT_MAX_TOKENS
