"""Transformer building blocks shared by the SONAR encoders.

Attribute names follow fairseq2 (`q_proj`, `output_proj`, `inner_proj`, `self_attn_layer_norm`,
...) because they become the state-dict keys that official checkpoints are loaded by. Masks are
boolean [batch, keys] tensors, True for real (non-padding) positions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

LAYER_NORM_EPS = 1e-5  # fairseq2's StandardLayerNorm default


def layer_norm(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=LAYER_NORM_EPS)


def sinusoidal_positions(steps: Tensor, dim: int) -> Tensor:
    """fairseq2's SinusoidalPositionEncoder table rows for `steps`: sines in the first half of
    the dimensions, cosines in the second (tensor2tensor layout), computed in float32."""
    half = dim // 2
    inv_freq = torch.exp(torch.arange(half, dtype=torch.float32) * -math.log(10000.0) / (half - 1))
    angles = torch.outer(steps.to(torch.float32), inv_freq)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class FeedForward(nn.Module):
    def __init__(self, model_dim: int, inner_dim: int, activation: nn.Module) -> None:
        super().__init__()
        self.inner_proj = nn.Linear(model_dim, inner_dim)
        self.inner_activation = activation
        self.output_proj = nn.Linear(inner_dim, model_dim)

    def forward(self, seqs: Tensor) -> Tensor:
        return self.output_proj(self.inner_activation(self.inner_proj(seqs)))


class MultiheadAttention(nn.Module):
    """Standard multi-head attention; `sdpa`, when given, replaces the plain scaled dot product
    (the speech encoder's relative-position attention lives there, as in fairseq2)."""

    def __init__(
        self, model_dim: int, num_heads: int, kv_dim: int | None = None, sdpa: nn.Module | None = None
    ) -> None:
        super().__init__()
        kv_dim = kv_dim or model_dim
        self.num_heads = num_heads
        self.q_proj = nn.Linear(model_dim, model_dim)
        self.k_proj = nn.Linear(kv_dim, model_dim)
        self.v_proj = nn.Linear(kv_dim, model_dim)
        self.sdpa = sdpa
        self.output_proj = nn.Linear(model_dim, model_dim)

    def _heads(self, x: Tensor) -> Tensor:
        # (N, S, M) -> (N, H, S, M / H)
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(self, seqs: Tensor, keys: Tensor, key_mask: Tensor | None) -> Tensor:
        q, k, v = self._heads(self.q_proj(seqs)), self._heads(self.k_proj(keys)), self._heads(self.v_proj(keys))
        if self.sdpa is not None:
            attn = self.sdpa(q, k, v, key_mask)
        else:
            mask = None if key_mask is None else key_mask[:, None, None, :]
            attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.output_proj(attn.transpose(1, 2).flatten(2))


class PreNormEncoderLayer(nn.Module):
    """fairseq2 StandardTransformerEncoderLayer with PRE norm order (SONAR's text encoder)."""

    def __init__(self, model_dim: int, num_heads: int, ffn_inner_dim: int, activation: nn.Module) -> None:
        super().__init__()
        self.self_attn_layer_norm = layer_norm(model_dim)
        self.self_attn = MultiheadAttention(model_dim, num_heads)
        self.ffn_layer_norm = layer_norm(model_dim)
        self.ffn = FeedForward(model_dim, ffn_inner_dim, activation)

    def forward(self, seqs: Tensor, mask: Tensor | None) -> Tensor:
        normed = self.self_attn_layer_norm(seqs)
        seqs = seqs + self.self_attn(normed, normed, mask)
        return seqs + self.ffn(self.ffn_layer_norm(seqs))


class PostNormDecoderLayer(nn.Module):
    """fairseq2 StandardTransformerDecoderLayer with POST norm order (SONAR's speech pooler)."""

    def __init__(self, model_dim: int, num_heads: int, ffn_inner_dim: int) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(model_dim, num_heads)
        self.self_attn_layer_norm = layer_norm(model_dim)
        self.encoder_decoder_attn = MultiheadAttention(model_dim, num_heads)
        self.encoder_decoder_attn_layer_norm = layer_norm(model_dim)
        self.ffn = FeedForward(model_dim, ffn_inner_dim, nn.ReLU())
        self.ffn_layer_norm = layer_norm(model_dim)

    def forward(self, seqs: Tensor, encoder_output: Tensor, encoder_mask: Tensor | None) -> Tensor:
        seqs = self.self_attn_layer_norm(seqs + self.self_attn(seqs, seqs, None))
        seqs = self.encoder_decoder_attn_layer_norm(
            seqs + self.encoder_decoder_attn(seqs, encoder_output, encoder_mask)
        )
        return self.ffn_layer_norm(seqs + self.ffn(seqs))


class Layers(nn.Module):
    """A holder whose only child is `layers`, so that keys read `encoder.layers.N...`."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
