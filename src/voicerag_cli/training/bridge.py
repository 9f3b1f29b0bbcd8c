"""The speech bridge (torch, for training), mirrored by the numpy inference in models/distilled/bridge.py.

    Whisper encoder states [B, T, 384] --avg-pool xP--> LayerNorm -> Linear(384, d)
    -> N pre-norm transformer blocks -> LayerNorm -> avg-pool xS -> Linear(d, 384)
    = stand-ins for word embeddings, between the [CLS] and [SEP] embeddings
    -> the text embedder's own BERT (its embedding LayerNorm and transformer layers)
    -> mean pooling -> L2 normalisation

The old head had to learn sentence meaning from scratch in 1.6 M parameters; the bridge only
turns sounds into something like word embeddings and lets the text embedder's pretrained layers
compose them, the same layers that embedded the passages. Those layers start as the teacher's
and may be fine-tuned on the speech side (`tune_bert`): then they ship in the head file.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from voicerag_cli.training.head import Block, HeadConfig, time_pool


@dataclass(frozen=True)
class BridgeConfig:
    in_dim: int = 384
    d: int = 384
    layers: int = 3
    heads: int = 6
    ff: int = 1536
    pool: int = 4
    squeeze: int = 2
    bert_dim: int = 384
    tune_bert: bool = True
    dropout: float = 0.1

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


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


class SpeechBridge(nn.Module):
    def __init__(self, cfg: BridgeConfig, bert_tensors: dict[str, np.ndarray], bert_config: dict[str, object]) -> None:
        super().__init__()
        self.cfg = cfg
        block_cfg = HeadConfig(
            d=cfg.d, layers=cfg.layers, heads=cfg.heads, ff=cfg.ff, pool=cfg.pool, dropout=cfg.dropout
        )
        self.in_norm = nn.LayerNorm(cfg.in_dim)
        self.proj = nn.Linear(cfg.in_dim, cfg.d)
        self.blocks = nn.ModuleList(Block(block_cfg) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.d)
        self.to_bert = nn.Linear(cfg.d, cfg.bert_dim)
        words = np.asarray(bert_tensors["embeddings.word_embeddings.weight"], np.float32)
        # [CLS] = 101, [SEP] = 102 in BERT's uncased vocabulary: every passage vector has them
        self.register_buffer("cls_sep", torch.from_numpy(words[[101, 102]].copy()))
        self.bert = TorchBert(bert_tensors, bert_config)
        self.bert.requires_grad_(cfg.tune_bert)

    def bridge_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("bert.")]

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pooled: bool = True) -> torch.Tensor:
        """x [B, T, 384] encoder states (already pooled xP when `pooled`), mask [B, T] bool -> [B, 384]."""
        if not pooled:
            x, mask = time_pool(x, mask, self.cfg.pool)
        h = self.proj(self.in_norm(x))
        for block in self.blocks:
            h = block(h, mask)
        h = self.final_norm(h)
        h, mask = time_pool(h, mask, self.cfg.squeeze)
        words = self.to_bert(h)
        b = words.shape[0]
        lengths = mask.sum(1)
        # [CLS] first, [SEP] right after each clip's last stand-in, padding after it
        t = words.shape[1] + 2
        inputs = torch.zeros(b, t, words.shape[2], dtype=words.dtype, device=words.device)
        inputs[:, 0] = self.cls_sep[0]
        inputs[:, 1:-1] = words * mask[..., None]
        inputs[torch.arange(b, device=words.device), lengths + 1] = self.cls_sep[1].to(words.dtype)
        full = torch.arange(t, device=words.device)[None, :] < (lengths + 2)[:, None]
        return self.bert(inputs, full)

    def export_tensors(self) -> dict[str, torch.Tensor]:
        """What the head file holds: the bridge, and the BERT layers when they were tuned."""
        out = {n: p.detach() for n, p in self.named_parameters() if not n.startswith("bert.")}
        out["cls_sep"] = self.cls_sep
        if self.cfg.tune_bert:
            out.update({f"bert.{k}": v for k, v in self.bert.state_tensors().items()})
        return out
