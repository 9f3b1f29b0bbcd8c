"""A BERT sentence encoder in numpy: the bundled all-MiniLM-L6-v2 without torch.

Importing torch and sentence-transformers costs several seconds before the first question is
embedded; this forward pass needs only numpy, `tokenizers` and `safetensors`, and gives the same
vectors as sentence-transformers (mean pooling over the attention mask, L2 normalised; a test
checks them to 1e-4). It also accepts input embeddings directly, which the distilled speech
embedder feeds in place of token embeddings (`models/distilled/`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from voicerag_cli.errors import ModelError
from voicerag_cli.models.bert_weights import COMPACT, FULL, read_float32, weights_file

_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_ERF_P = 0.3275911


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7): numpy has no vectorised erf and scipy is not a
    # base dependency; BERT's exact GELU needs it.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + _ERF_P * a)
    poly = t * (_ERF_A[0] + t * (_ERF_A[1] + t * (_ERF_A[2] + t * (_ERF_A[3] + t * _ERF_A[4]))))
    return sign * (1.0 - poly * np.exp(-a * a))


def gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))).astype(np.float32, copy=False)


_GELU_ROWS = 32  # rows per block: a block's temporaries stay in the CPU cache
_ERF_A32 = tuple(np.float32(a) for a in _ERF_A)


def gelu_inplace(x: np.ndarray) -> np.ndarray:
    """`gelu` on a 2-D float32 array, overwriting it: the same formula, evaluated in blocks of
    rows with preallocated scratch. A dozen passes over a whole [tokens, 1536] activation are
    memory-bound; over a cache-sized block they are 4-5x faster."""
    rows, width = x.shape
    size = min(rows, _GELU_ROWS)
    a_buf, t_buf, p_buf = (np.empty((size, width), np.float32) for _ in range(3))
    a0, a1, a2, a3, a4 = _ERF_A32
    for start in range(0, rows, size):
        xb = x[start : start + size]
        n = len(xb)
        a, t, p = a_buf[:n], t_buf[:n], p_buf[:n]
        np.abs(xb, out=a)  # |x|; erf's argument is |x| / sqrt(2)
        np.multiply(a, np.float32(_ERF_P * 0.7071067811865476), out=t)
        t += 1
        np.reciprocal(t, out=t)
        np.multiply(t, a4, out=p)
        for coefficient in (a3, a2, a1, a0):
            p += coefficient
            p *= t
        np.multiply(a, a, out=t)
        t *= np.float32(-0.5)
        np.exp(t, out=t)
        p *= t  # erf(|x| / sqrt 2) = 1 - p
        # 0.5 x (1 + sign(x) (1 - p)) = 0.5 (x + |x| (1 - p))
        np.subtract(1, p, out=p)
        p *= a
        p += xb
        p *= np.float32(0.5)
        xb[...] = p
    return x


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    return centred / np.sqrt(var + np.float32(eps)) * weight + bias


class NumpyBert:
    """BERT encoder weights (safetensors, HF layout, full or compact: bert_weights.py) and its
    forward pass, float32."""

    def __init__(self, model_dir: Path) -> None:
        config_file = model_dir / "config.json"
        if weights_file(model_dir) is None or not config_file.is_file():
            raise ModelError(f"no BERT model ({FULL} or {COMPACT}, and config.json) in {model_dir}")
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
            tensors = read_float32(model_dir)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read BERT weights in {model_dir}: {exc}") from exc
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""
        self.w: dict[str, np.ndarray] = {}
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.hidden = int(config["hidden_size"])
        if (
            config.get("hidden_act", "gelu") != "gelu"
            or config.get("position_embedding_type", "absolute") != "absolute"
        ):
            raise ModelError(f"{model_dir}: only BERT with GELU and absolute positions runs without torch")
        self._load({k.removeprefix(prefix): v for k, v in tensors.items()})

    def _load(self, tensors: dict[str, np.ndarray]) -> None:
        self.w.update({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()})
        # Weights transposed once: x @ W.T per call would copy W every time.
        for key in list(self.w):
            if key.endswith(".weight") and self.w[key].ndim == 2 and key.startswith("encoder."):
                self.w[key + ".T"] = np.ascontiguousarray(self.w.pop(key).T)
        for i in range(self.layers):
            p = f"encoder.layer.{i}.attention.self."
            if p + "query.weight.T" not in self.w:
                continue
            self.w[f"encoder.layer.{i}.qkv.T"] = np.concatenate(
                [self.w.pop(p + name + ".weight.T") for name in ("query", "key", "value")], axis=1
            )
            self.w[f"encoder.layer.{i}.qkv.bias"] = np.concatenate(
                [self.w.pop(p + name + ".bias") for name in ("query", "key", "value")]
            )

    @classmethod
    def with_tensors(cls, base: NumpyBert, tensors: dict[str, np.ndarray]) -> NumpyBert:
        """A copy of `base` whose named tensors (HF names, e.g. tuned encoder layers) are replaced."""
        clone = cls.__new__(cls)
        clone.__dict__.update(base.__dict__)
        clone.w = dict(base.w)
        clone._load(tensors)
        return clone

    @property
    def word_embeddings(self) -> np.ndarray:
        return self.w["embeddings.word_embeddings.weight"]

    def _dense(self, x: np.ndarray, name: str, bias: str | None = None) -> np.ndarray:
        return x @ self.w[f"{name}.T"] + self.w[bias or name.removesuffix(".weight") + ".bias"]

    def embed_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Input vectors [B, T, H] (token embeddings or stand-ins) -> BERT's embedding-layer output."""
        t = inputs.shape[1]
        x = (
            inputs
            + self.w["embeddings.position_embeddings.weight"][:t]
            + self.w["embeddings.token_type_embeddings.weight"][0]
        )
        return layer_norm(x, self.w["embeddings.LayerNorm.weight"], self.w["embeddings.LayerNorm.bias"], self.eps)

    def encode(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Embedding-layer output [B, T, H] and mask [B, T] (1 = token) -> last hidden states."""
        b, t, h = x.shape
        hd = h // self.heads
        bias = np.where(mask[:, None, :] > 0, np.float32(0.0), np.float32(-1e9)).astype(np.float32)  # [B, 1, T]
        scale = np.float32(hd**-0.5)
        # Dense layers run on [B*T, H]: one large matrix product each instead of B small ones.
        x = np.ascontiguousarray(x, dtype=np.float32).reshape(b * t, h)
        context = np.empty((b, t, self.heads, hd), np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            qkv = (x @ self.w[p + "qkv.T"] + self.w[p + "qkv.bias"]).reshape(b, t, 3, self.heads, hd)
            # Attention one sequence at a time: its [heads, T, T] scores stay small and cached.
            for j in range(b):
                q = qkv[j, :, 0].transpose(1, 0, 2) * scale  # [heads, T, hd]
                scores = q @ qkv[j, :, 1].transpose(1, 2, 0)  # [heads, T, T]
                scores += bias[j]
                scores -= scores.max(-1, keepdims=True)
                np.exp(scores, out=scores)
                scores /= scores.sum(-1, keepdims=True)
                context[j] = (scores @ qkv[j, :, 2].transpose(1, 0, 2)).transpose(1, 0, 2)
            attn = self._dense(context.reshape(b * t, h), p + "attention.output.dense.weight")
            attn += x
            x = layer_norm(
                attn,
                self.w[p + "attention.output.LayerNorm.weight"],
                self.w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            ff = gelu_inplace(self._dense(x, p + "intermediate.dense.weight"))
            ff = self._dense(ff, p + "output.dense.weight")
            ff += x
            x = layer_norm(ff, self.w[p + "output.LayerNorm.weight"], self.w[p + "output.LayerNorm.bias"], self.eps)
        return x.reshape(b, t, h)


def mean_pool_normalised(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling over the mask, then L2 normalisation."""
    m = mask[..., None].astype(np.float32)
    pooled = (states * m).sum(1) / np.maximum(m.sum(1), np.float32(1e-9))
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
