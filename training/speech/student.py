"""The student: the trainable head (torch), mirrored op for op by the numpy inference in
voicerag_cli/models/distilled/head.py (tests/test_speech_head.py checks they agree).

    encoder states [B, T, 384] --avg-pool xP in time--> LayerNorm -> Linear(384, d)
    -> N pre-norm transformer blocks (d, heads, ff, tanh-GELU; padded frames masked)
    -> LayerNorm -> [attention pooling ; mean pooling] -> Linear(2d, 384) -> L2 normalize

Pooling first is the main cost saver: the Whisper encoder's 50 frames/s are already
contextualized, so the head works at 50/P frames/s.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class HeadConfig:
    in_dim: int = 384
    d: int = 192
    layers: int = 1
    heads: int = 4
    ff: int = 384
    pool: int = 4
    attention_pooling: bool = True
    out_dim: int = 384
    dropout: float = 0.1

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def time_pool(x: torch.Tensor, mask: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average every `factor` frames, counting only real (unpadded) frames."""
    if factor == 1:
        return x, mask
    b, t, c = x.shape
    pad = (-t) % factor
    x = F.pad(x * mask[..., None], (0, 0, 0, pad))
    m = F.pad(mask.to(x.dtype), (0, pad))
    sums = x.view(b, -1, factor, c).sum(2)
    counts = m.view(b, -1, factor).sum(2)
    return sums / counts.clamp(min=1.0)[..., None], counts > 0


class Block(nn.Module):
    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.ln1 = nn.LayerNorm(cfg.d)
        self.qkv = nn.Linear(cfg.d, 3 * cfg.d)
        self.out = nn.Linear(cfg.d, cfg.d)
        self.ln2 = nn.LayerNorm(cfg.d)
        self.ff1 = nn.Linear(cfg.d, cfg.ff)
        self.ff2 = nn.Linear(cfg.ff, cfg.d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        x = x + self.drop(self.out(attn.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.ff2(F.gelu(self.ff1(self.ln2(x)), approximate="tanh")))


class SpeechHead(nn.Module):
    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.in_norm = nn.LayerNorm(cfg.in_dim)
        self.proj = nn.Linear(cfg.in_dim, cfg.d)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.d)
        self.score = nn.Linear(cfg.d, 1) if cfg.attention_pooling else None
        self.out = nn.Linear(2 * cfg.d if cfg.attention_pooling else cfg.d, cfg.out_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pooled: bool = False) -> torch.Tensor:
        """x [B, T, in_dim] float, mask [B, T] bool (True = real frame) -> [B, out_dim] unit vectors.

        `pooled=True`: x was already averaged in time (the featurizer does it once per clip)."""
        if not pooled:
            x, mask = time_pool(x, mask, self.cfg.pool)
        x = self.proj(self.in_norm(x))
        for block in self.blocks:
            x = block(x, mask)
        x = self.final_norm(x)
        weights = mask.to(x.dtype)[..., None]
        mean = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        if self.score is not None:
            scores = self.score(x).masked_fill(~mask[..., None], float("-inf"))
            pooled = torch.cat([(scores.softmax(1) * x).sum(1), mean], dim=-1)
        else:
            pooled = mean
        return F.normalize(self.out(pooled), dim=-1)


def load_plain_head(path: Path) -> SpeechHead:
    """A shipped-format head file (models/distilled/head.py's HEAD_FORMAT) as a torch SpeechHead."""
    from safetensors import safe_open

    from voicerag_cli.models.distilled.head import HEAD_FORMAT

    with safe_open(str(path), framework="pt") as handle:
        meta = dict(handle.metadata() or {})
        state = {name: handle.get_tensor(name).float() for name in handle.keys()}  # noqa: SIM118
    if meta.get("format") != HEAD_FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, not {HEAD_FORMAT}")
    model = SpeechHead(HeadConfig(**json.loads(meta["config"])))
    model.load_state_dict(state)
    return model.to(torch.float32)
