"""The speech bridge (torch, for training), mirrored by the numpy inference in
voicerag_cli/models/distilled/bridge.py. Tried on the GPU and not shipped (MODEL_CARD.md).

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

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from training.speech.student import Block, HeadConfig, time_pool
from training.speech.teacher import TorchBert


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
