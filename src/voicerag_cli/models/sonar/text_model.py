"""SONAR's text encoder (`SonarTextTransformerEncoderModel`): an NLLB-style Transformer encoder
whose outputs are layer-normalized and mean-pooled into one sentence vector.

Forward pass, as built by SONAR's `SonarTextEncoderFactory`: token embeddings scaled by
sqrt(model_dim), plus sinusoidal positions that start at pad_idx + 1 (fairseq's convention);
PRE-norm encoder layers (attention and ReLU FFN); a final LayerNorm; mean over the real tokens
(language token and </s> included), divided by (length + 1e-7) as SONAR does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from voicerag_cli.models.sonar.configs import TextEncoderConfig
from voicerag_cli.models.sonar.layers import Layers, PreNormEncoderLayer, layer_norm, sinusoidal_positions


class TextFrontend(nn.Module):
    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(config.vocab_info.size, config.model_dim)
        self.scale = 1.0 if config.no_scale_embedding else math.sqrt(config.model_dim)
        # fairseq numbers positions from pad_idx + 1 (legacy offset kept by fairseq2 for these models)
        self.first_step = config.vocab_info.pad_idx + 1 if config.from_fairseq else 0
        self.max_positions = config.max_positions

    def forward(self, tokens: Tensor) -> Tensor:
        if tokens.size(1) > self.max_positions:
            raise ValueError(f"token sequences longer than {self.max_positions} must be truncated first")
        steps = torch.arange(self.first_step, self.first_step + tokens.size(1))
        positions = sinusoidal_positions(steps, self.embed.embedding_dim)
        return self.embed(tokens) * self.scale + positions


class SonarTextEncoder(nn.Module):
    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        self.config = config
        activation = getattr(nn, config.activation_fn)
        self.encoder_frontend = TextFrontend(config)
        self.encoder = Layers(
            [
                PreNormEncoderLayer(config.model_dim, config.num_encoder_attn_heads, config.ffn_inner_dim, activation())
                for _ in range(config.num_encoder_layers)
            ]
        )
        self.layer_norm = layer_norm(config.model_dim)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """tokens [N, S] (padded with anything), lengths [N] -> sentence embeddings [N, model_dim]."""
        mask = torch.arange(tokens.size(1))[None, :] < lengths[:, None]
        padded = bool((~mask).any())
        seqs = self.encoder_frontend(tokens)
        for layer in self.encoder.layers:
            seqs = layer(seqs, mask if padded else None)
        seqs = self.layer_norm(seqs)
        return self._pool(seqs, mask, lengths)

    def _pool(self, seqs: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
        pooling = self.config.pooling
        if pooling == "mean":
            summed = seqs.masked_fill(~mask[..., None], 0.0).sum(dim=1)
            return summed * (1.0 / (lengths.to(seqs.dtype) + 1e-7))[:, None]
        if pooling == "max":
            return seqs.masked_fill(~mask[..., None], -torch.inf).max(dim=1).values
        return seqs[torch.arange(seqs.size(0)), (lengths - 1).clamp(min=0)]  # "last"
