"""The speech bridge at inference, in numpy: mirrors `SpeechBridge` of training/speech/bridge.py.

Encoder states -> stand-ins for word embeddings -> the text embedder's BERT layers (the tuned
copy in the head file when training tuned them, else the installed text embedder's own) -> a
vector in the passages' space. A test checks it against the torch module.
"""

from __future__ import annotations

import numpy as np

from voicerag_cli.models.bert_numpy import NumpyBert, mean_pool_normalised
from voicerag_cli.models.distilled.head import BRIDGE_FORMAT, HeadFile, NumpyBlocks, pool_states

__all__ = ["BRIDGE_FORMAT", "NumpySpeechBridge"]


class NumpySpeechBridge(NumpyBlocks):
    """One utterance at a time: encoder states [T, 384] -> unit vector [384]."""

    def __init__(self, head: HeadFile, bert: NumpyBert) -> None:
        cfg = head.config
        self.pool = int(cfg["pool"])  # type: ignore[call-overload]
        self.squeeze = int(cfg["squeeze"])  # type: ignore[call-overload]
        self.layers = int(cfg["layers"])  # type: ignore[call-overload]
        self.heads = int(cfg["heads"])  # type: ignore[call-overload]
        self.w = {k: v for k, v in head.tensors.items() if not k.startswith("bert.")}
        tuned = {k.removeprefix("bert."): v for k, v in head.tensors.items() if k.startswith("bert.")}
        if tuned:
            bert = NumpyBert.with_tensors(bert, tuned)
        self.bert = bert

    def __call__(self, states: np.ndarray) -> np.ndarray:
        x = self._linear(self._norm(pool_states(states, self.pool), "in_norm"), "proj")
        for i in range(self.layers):
            x = self._block(x, i)
        words = self._linear(pool_states(self._norm(x, "final_norm"), self.squeeze), "to_bert")
        cls_sep = self.w["cls_sep"]
        inputs = np.concatenate([cls_sep[:1], words, cls_sep[1:]])[None].astype(np.float32)
        mask = np.ones(inputs.shape[:2], dtype=np.float32)
        return mean_pool_normalised(self.bert.encode(self.bert.embed_inputs(inputs), mask), mask)[0]
