"""The teacher: all-MiniLM-L6-v2, the text embedder whose space the student is distilled onto.

`pack_minilm` writes the bundled MiniLM for the carry (the matrices int8 with a scale per row,
as the bundled file stores them already, and only the word embeddings the carried texts use;
tests/test_speech_training.py checks its vectors against the text embedder's); `teacher_vectors`
embeds texts with it in torch, on the GPU when there is one (`TorchBert`: BERT's embedding LayerNorm and encoder layers under Hugging
Face weight names, mean pooling, L2 normalisation).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
MINILM_FILES = ("minilm.safetensors", "minilm_tokenizer.json", "minilm_config.json")


class TorchBert(nn.Module):
    """BERT's embedding LayerNorm + encoder layers (HF weight names), run on input vectors."""

    def __init__(self, tensors: dict[str, np.ndarray], config: dict[str, object]) -> None:
        super().__init__()
        self.layers = int(config["num_hidden_layers"])  # type: ignore[call-overload]
        self.heads = int(config["num_attention_heads"])  # type: ignore[call-overload]
        self.eps = float(config.get("layer_norm_eps", 1e-12))  # type: ignore[arg-type]
        keep = {
            k: v
            for k, v in tensors.items()
            if k.startswith("encoder.layer.")
            or k.startswith("embeddings.LayerNorm")
            or k in ("embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight")
        }
        self.params = nn.ParameterDict(
            {
                k.replace(".", "__"): nn.Parameter(torch.from_numpy(np.asarray(v, np.float32).copy()))
                for k, v in keep.items()
            }
        )

    def p(self, name: str) -> torch.Tensor:
        return self.params[name.replace(".", "__")]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {k.replace("__", "."): v.detach() for k, v in self.params.items()}

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """inputs [B, T, H], mask [B, T] bool -> mean-pooled, L2-normalised [B, H]."""
        b, t, h = inputs.shape
        x = (
            inputs
            + self.p("embeddings.position_embeddings.weight")[:t]
            + self.p("embeddings.token_type_embeddings.weight")[0]
        )
        x = F.layer_norm(x, (h,), self.p("embeddings.LayerNorm.weight"), self.p("embeddings.LayerNorm.bias"), self.eps)
        hd = h // self.heads
        bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill(~mask, -1e9)[:, None, None, :]
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def dense(z: torch.Tensor, name: str, prefix: str = p) -> torch.Tensor:
                return F.linear(z, self.p(prefix + name + ".weight"), self.p(prefix + name + ".bias"))

            q, k, v = (
                dense(x, f"attention.self.{n}").view(b, t, self.heads, hd).transpose(1, 2)
                for n in ("query", "key", "value")
            )
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0 / math.sqrt(hd))
            attn = dense(ctx.transpose(1, 2).reshape(b, t, h), "attention.output.dense")
            x = F.layer_norm(
                attn + x,
                (h,),
                self.p(p + "attention.output.LayerNorm.weight"),
                self.p(p + "attention.output.LayerNorm.bias"),
                self.eps,
            )
            ff = dense(F.gelu(dense(x, "intermediate.dense")), "output.dense")
            x = F.layer_norm(
                ff + x, (h,), self.p(p + "output.LayerNorm.weight"), self.p(p + "output.LayerNorm.bias"), self.eps
            )
        m = mask[..., None].to(x.dtype)
        return F.normalize((x * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)


def pack_minilm(texts: list[str], out: Path) -> None:
    """The bundled MiniLM into `out` (MINILM_FILES), for the texts that will be embedded."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer

    from voicerag_cli.config import Settings
    from voicerag_cli.models.bert_weights import read_float32
    from voicerag_cli.models.sentence_embedder import minilm_weights

    minilm = Path(minilm_weights(Settings()).location)
    tokenizer = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    used_ids = {i for e in tokenizer.encode_batch(texts) for i in e.ids} | set(range(1000))
    word_rows = np.array(sorted(used_ids), dtype=np.int32)
    tensors: dict[str, np.ndarray] = {}
    for key, value in read_float32(minilm).items():
        if key == WORD_EMBEDDINGS:
            tensors[key + ".rows"] = word_rows
            tensors[key + ".height"] = np.array([value.shape[0]], dtype=np.int32)
            value = value[word_rows]
        if value.ndim == 2 and value.size >= 65_536:
            scale = np.abs(value).max(1, keepdims=True) / 127.0
            tensors[key + ".int8"] = np.round(value / scale).astype(np.int8)
            tensors[key + ".scale"] = scale.astype(np.float32)
        elif key.startswith("pooler.") or key.endswith("position_ids"):
            continue
        else:
            tensors[key] = value.astype(np.float16)
    save_file(tensors, str(out / MINILM_FILES[0]))
    for name in ("tokenizer.json", "config.json"):
        (out / f"minilm_{name}").write_bytes((minilm / name).read_bytes())


def load_minilm(carry: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The packed MiniLM's tensors (float32, word embeddings at full height) and config."""
    from safetensors.numpy import load_file

    raw = load_file(str(carry / MINILM_FILES[0]))
    extras = (".int8", ".scale", ".rows", ".height")
    tensors = {k: v.astype(np.float32) for k, v in raw.items() if not k.endswith(extras)}
    for key in (k.removesuffix(".int8") for k in raw if k.endswith(".int8")):
        tensors[key] = raw[key + ".int8"].astype(np.float32) * raw[key + ".scale"]
    if WORD_EMBEDDINGS + ".rows" in raw:  # the carried rows back in their places; the rest zero
        carried = tensors[WORD_EMBEDDINGS]
        full = np.zeros((int(raw[WORD_EMBEDDINGS + ".height"][0]), carried.shape[1]), np.float32)
        full[raw[WORD_EMBEDDINGS + ".rows"]] = carried
        tensors[WORD_EMBEDDINGS] = full
    return tensors, json.loads((carry / MINILM_FILES[2]).read_text())


def teacher_vectors(texts: list[str], carry: Path, device: str) -> np.ndarray:
    """Unit vectors [len(texts), 384] of the packed MiniLM."""
    from tokenizers import Tokenizer

    tensors, config = load_minilm(carry)
    tokenizer = Tokenizer.from_file(str(carry / MINILM_FILES[1]))
    tokenizer.enable_truncation(256)
    tokenizer.no_padding()
    bert = TorchBert(tensors, config).to(device).eval()
    words = torch.from_numpy(tensors[WORD_EMBEDDINGS]).to(device)
    ids = [e.ids for e in tokenizer.encode_batch(texts)]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(texts), words.shape[1]), np.float32)
    with torch.no_grad():
        for start in range(0, len(order), 2048):
            chunk = order[start : start + 2048]
            width = max(len(ids[i]) for i in chunk)
            batch = torch.zeros(len(chunk), width, dtype=torch.long)
            mask = torch.zeros(len(chunk), width, dtype=torch.bool)
            for row, i in enumerate(chunk):
                batch[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = True
            out[chunk] = bert(words[batch.to(device)], mask.to(device)).float().cpu().numpy()
    return out
