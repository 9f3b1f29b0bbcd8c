"""`text_embedder` backend `minilm` (the default): all-MiniLM-L6-v2 through numpy.

The same vectors as sentence-transformers (tested to 1e-4) with no torch import, so indexing
and every query start in a fraction of a second, at about the same batch throughput. A
`text_embedder.model_path` folder that is not a plain mean-pooled BERT (another architecture,
a Dense layer, prompts, only PyTorch weights) runs through `sentence_embedder.py` instead, which
backend `sentence-transformers` always uses.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voicerag_cli.errors import ModelError
from voicerag_cli.models.base import EmbeddingSpace
from voicerag_cli.models.bert_numpy import NumpyBert, mean_pool_normalised
from voicerag_cli.models.bert_weights import COMPACT, FULL, weights_file

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles, TextEmbedder

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
        self.workers = _cpu_count()

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]

    def embed_texts(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.space.dim), dtype=np.float32)
        ids = self.token_ids(texts)
        out = np.zeros((len(texts), self.space.dim), dtype=np.float32)
        # Batches of similar length (padding is wasted work in every layer), at least one per
        # worker: a few dozen sentences still use every core.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        size = max(1, min(batch_size, -(-len(order) // self.workers)))
        batches = [order[start : start + size] for start in range(0, len(order), size)]

        def run(batch: list[int]) -> None:
            out[batch] = self._encode([ids[i] for i in batch])

        if len(batches) == 1 or self.workers == 1:
            for batch in batches:
                run(batch)
        else:
            # Batches in parallel threads (numpy releases the GIL in its kernels), each product
            # on one BLAS thread (the CLI sets that): a thread descheduled by other work on a
            # small machine delays only its own batch, where a multi-threaded product waits for
            # its slowest worker at every one of thousands of small products.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.workers) as pool:
                list(pool.map(run, batches))
        return out

    def _encode(self, rows: list[list[int]]) -> np.ndarray:
        width = max(len(row) for row in rows)
        batch = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.float32)
        for n, row in enumerate(rows):
            batch[n, : len(row)] = row
            mask[n, : len(row)] = 1.0
        x = self.bert.embed_inputs(self.bert.word_embeddings[batch])
        return mean_pool_normalised(self.bert.encode(x, mask), mask)


def unsupported_reason(model_dir: Path) -> str | None:
    """Why this folder's sentence-transformers pipeline is not what the numpy path computes
    (token embeddings of a BERT -> mean pooling -> L2 normalisation), or None when it is."""
    for name in ("tokenizer.json", "config.json"):
        if not (model_dir / name).is_file():
            return f"no {name}"
    if weights_file(model_dir) is None:
        return f"no {FULL} (or {COMPACT})"
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        modules = _read_json(model_dir / "modules.json", [])
        st_config = _read_json(model_dir / "config_sentence_transformers.json", {})
        bert_config = _read_json(model_dir / "sentence_bert_config.json", {})
    except (OSError, ValueError) as exc:
        return f"unreadable configuration: {exc}"
    if config.get("model_type") != "bert":
        return f"model type {config.get('model_type')!r} is not bert"
    if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        return "not GELU with absolute positions"
    kinds = [str(module.get("type", "")).rsplit(".", 1)[-1] for module in modules]
    if kinds and kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return f"modules {kinds} are not Transformer, Pooling[, Normalize]"
    if kinds:
        pooling = _read_json(model_dir / modules[1].get("path", "") / "config.json", {})
        modes = sorted(key for key, value in pooling.items() if key.startswith("pooling_mode") and value)
        if modes != ["pooling_mode_mean_tokens"]:
            return f"pooling {modes} is not mean pooling"
    if st_config.get("default_prompt_name") or st_config.get("prompts"):
        return "the model uses prompts"
    if bert_config.get("do_lower_case"):
        return "do_lower_case is set"
    return None


def _read_json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def create(settings: Settings, registry: Roles) -> TextEmbedder:
    from voicerag_cli.models.sentence_embedder import SentenceEmbedder, model_folder

    model_dir, space_id = model_folder(settings)
    reason = unsupported_reason(model_dir)
    if reason is not None:
        return SentenceEmbedder(model_dir, space_id, reason)  # same space, through torch
    return NumpySentenceEmbedder(model_dir, space_id)


def _cpu_count() -> int:
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:  # not on Linux
        return max(1, min(os.cpu_count() or 1, 8))


def _max_seq_length(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    try:
        return int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length", DEFAULT_MAX_TOKENS))
    except (OSError, ValueError):
        return DEFAULT_MAX_TOKENS
