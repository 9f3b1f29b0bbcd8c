"""The distilled head at inference: numpy only, so `--rag e2e` never imports torch.

Mirrors `SpeechHead` of training/speech/student.py op for op (a test checks they agree). Weights and
metadata come from one safetensors file whose metadata says which embedding space the head was
trained onto and which front-end it expects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicerag_cli.errors import ModelError

HEAD_FORMAT = "voicerag-speech-head/1"
BRIDGE_FORMAT = "voicerag-speech-bridge/1"  # bridge.py: the head feeds the text embedder's BERT
KNOWN_FORMATS = (HEAD_FORMAT, BRIDGE_FORMAT)
_REQUIRED_META = ("format", "target_space_id", "target_dim", "frontend", "config", "training")


@dataclass(frozen=True)
class HeadFile:
    tensors: dict[str, np.ndarray]
    metadata: dict[str, str]

    @property
    def config(self) -> dict[str, object]:
        return json.loads(self.metadata["config"])


def read_head_file(path: Path) -> HeadFile:
    """Load tensors (as float32) and metadata, with a ModelError for anything unusable."""
    if not path.is_file():
        raise ModelError(f"speech-embedder head weights not found: {path}")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name).astype(np.float32) for name in handle.keys()}  # noqa: SIM118
    except (OSError, SafetensorError) as exc:
        raise ModelError(f"cannot read speech-embedder head {path}: {exc}") from exc
    missing = [key for key in _REQUIRED_META if key not in metadata]
    if missing:
        raise ModelError(f"speech-embedder head {path} lacks metadata {', '.join(missing)}")
    if metadata["format"] not in KNOWN_FORMATS:
        raise ModelError(
            f"speech-embedder head {path} has format {metadata['format']!r}; expected one of {', '.join(KNOWN_FORMATS)}"
        )
    return HeadFile(tensors, metadata)


def pool_states(states: np.ndarray, factor: int) -> np.ndarray:
    """Average every `factor` frames of one unpadded clip [T, C] (the last group may be shorter),
    in float32: the head's arithmetic stays float32 only if every operand is (an integer count or a
    numpy float64 scalar would promote the rest of the head to float64, about 3x slower)."""
    states = np.asarray(states, dtype=np.float32)
    if factor == 1:
        return states
    t, c = states.shape
    pad = (-t) % factor
    sums = np.pad(states, ((0, pad), (0, 0))).reshape(-1, factor, c).sum(1)
    counts = np.minimum(factor, t - np.arange(0, t, factor)).astype(np.float32)[:, None]
    return sums / counts


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    # x * x * x, not x**3: numpy computes a float32 cube through pow, about 200x slower here
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * (x * x * x))))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class NumpyBlocks:
    """Weights by name and the pre-norm transformer blocks shared by the head and the bridge."""

    w: dict[str, np.ndarray]
    heads: int

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return _layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def _block(self, x: np.ndarray, i: int) -> np.ndarray:
        p = f"blocks.{i}"
        t, d = x.shape
        hd = d // self.heads
        qkv = self._linear(self._norm(x, f"{p}.ln1"), f"{p}.qkv").reshape(t, 3, self.heads, hd).transpose(1, 2, 0, 3)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [heads, t, hd]
        # hd**-0.5 is a Python float: np.sqrt(hd), a float64 scalar, would promote to float64
        attn = _softmax(q @ k.transpose(0, 2, 1) * hd**-0.5, axis=-1) @ v
        x = x + self._linear(attn.transpose(1, 0, 2).reshape(t, d), f"{p}.out")
        return x + self._linear(_gelu_tanh(self._linear(self._norm(x, f"{p}.ln2"), f"{p}.ff1")), f"{p}.ff2")


class NumpySpeechHead(NumpyBlocks):
    """One utterance at a time: encoder states [T, 384] -> unit vector [out_dim]."""

    def __init__(self, head: HeadFile) -> None:
        self.w = head.tensors
        cfg = head.config
        self.pool = int(cfg["pool"])  # type: ignore[call-overload]
        self.layers = int(cfg["layers"])  # type: ignore[call-overload]
        self.heads = int(cfg["heads"])  # type: ignore[call-overload]
        self.attention_pooling = bool(cfg["attention_pooling"])

    def __call__(self, states: np.ndarray) -> np.ndarray:
        x = pool_states(states, self.pool)
        x = self._linear(self._norm(x, "in_norm"), "proj")
        for i in range(self.layers):
            x = self._block(x, i)
        x = self._norm(x, "final_norm")
        pooled = x.mean(0)
        if self.attention_pooling:
            weights = _softmax(self._linear(x, "score")[:, 0], axis=0)
            pooled = np.concatenate([weights @ x, pooled])
        out = self._linear(pooled, "out")
        return (out / max(float(np.linalg.norm(out)), 1e-12)).astype(np.float32)
