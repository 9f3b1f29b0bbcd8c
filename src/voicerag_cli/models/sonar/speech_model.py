"""SONAR's speech encoder (`SonarSpeechEncoderModel`): a w2v-BERT 2.0 conformer encoder over
stacked filterbank frames, then attention pooling by a small Transformer decoder.

As built by SONAR's `SonarSpeechEncoderFactory` with fairseq2's w2v-BERT "600m" encoder config:
- front-end: pairs of consecutive 80-d fbank frames are concatenated (160-d), layer-normalized
  and projected to model_dim (`post_extract_layer_norm`, `model_dim_proj`); no position encoder;
- conformer blocks: half-step SiLU FFN, self-attention with Transformer-XL relative positions
  (`sdpa.r_proj`, `u_bias`, `v_bias`), convolution module (pointwise + GLU, depthwise with
  "same" padding, BatchNorm, SiLU, pointwise), half-step FFN, LayerNorm; all pre-norm inside;
- a final LayerNorm (`layer_norm`: fairseq's redundant post-encoder norm that SONAR kept);
- pooling: one BOS token (scaled embedding + sinusoidal position 0) runs through POST-norm
  decoder layers that cross-attend to the encoder output; `projection_out` (no bias) gives the
  sentence embedding.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from voicerag_cli.models.sonar.configs import SpeechEncoderConfig, W2v2EncoderConfig
from voicerag_cli.models.sonar.layers import (
    FeedForward,
    Layers,
    MultiheadAttention,
    PostNormDecoderLayer,
    layer_norm,
    sinusoidal_positions,
)


@lru_cache(maxsize=8)
def relative_positions(seq_len: int, dim: int) -> Tensor:
    """[2S-1, dim] encodings of the relative positions S-1 ... 0 ... -(S-1), with sines in even
    and cosines in odd dimensions (fairseq2's RelativePositionalEncoding), in float32."""
    steps = torch.arange(seq_len - 1, -seq_len, -1, dtype=torch.float32)
    inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -math.log(10000.0) / dim)
    angles = torch.outer(steps, inv_freq)
    table = torch.empty(2 * seq_len - 1, dim)
    table[:, 0::2] = angles.sin()
    table[:, 1::2] = angles.cos()
    return table


class RelativePositionSDPA(nn.Module):
    """Scaled dot-product attention with relative positions (Transformer-XL, Dai et al. 2019)."""

    def __init__(self, model_dim: int, num_heads: int, max_seq_len: int) -> None:
        super().__init__()
        head_dim = model_dim // num_heads
        self.num_heads = num_heads
        self.max_seq_len = max_seq_len
        self.u_bias = nn.Parameter(torch.empty(num_heads, head_dim))
        self.v_bias = nn.Parameter(torch.empty(num_heads, head_dim))
        self.r_proj = nn.Linear(model_dim, model_dim, bias=False)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None) -> Tensor:
        # q, k, v: (N, H, S, K)
        seq_len, head_dim = k.size(2), k.size(3)
        if seq_len > self.max_seq_len:
            raise ValueError(f"sequence of {seq_len} frames exceeds the encoder's {self.max_seq_len}")
        r = self.r_proj(relative_positions(seq_len, self.num_heads * head_dim).to(q.dtype))
        r = r.view(-1, self.num_heads, head_dim).transpose(0, 1)  # (H, 2S-1, K)
        bd = torch.matmul(q + self.v_bias[:, None, :], r.transpose(-1, -2))  # (N, H, S, 2S-1)
        bd = self._shift(bd) * head_dim**-0.5
        scores = torch.matmul(q + self.u_bias[:, None, :], k.transpose(-1, -2)) * head_dim**-0.5 + bd
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, None, :], -torch.inf)
        weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        return torch.matmul(weights, v)

    @staticmethod
    def _shift(bd: Tensor) -> Tensor:
        """(N, H, S, 2S-1) scores per relative position -> (N, H, S, S) scores per key, so that
        entry (i, j) holds position i - j (the usual pad-and-reshape trick)."""
        n, h, s, width = bd.shape
        shifted = F.pad(bd, (1, 0)).view(n, h, width + 1, s)[:, :, 1:, :]
        return shifted.reshape(n, h, s, width)[..., :s]


class ConformerConvolution(nn.Module):
    def __init__(self, model_dim: int, kernel_size: int) -> None:
        super().__init__()
        self.pointwise_conv1 = nn.Conv1d(model_dim, 2 * model_dim, 1, bias=False)
        self.depthwise_conv = nn.Conv1d(model_dim, model_dim, kernel_size, padding="same", groups=model_dim, bias=False)
        self.batch_norm = nn.BatchNorm1d(model_dim)
        self.pointwise_conv2 = nn.Conv1d(model_dim, model_dim, 1, bias=False)

    def forward(self, seqs: Tensor, mask: Tensor | None) -> Tensor:
        if mask is not None:  # padding must not leak into the convolution
            seqs = seqs.masked_fill(~mask[..., None], 0.0)
        x = F.glu(self.pointwise_conv1(seqs.transpose(1, 2)), dim=1)
        x = F.silu(self.batch_norm(self.depthwise_conv(x)))
        return self.pointwise_conv2(x).transpose(1, 2)


class ConformerBlock(nn.Module):
    def __init__(self, config: W2v2EncoderConfig) -> None:
        super().__init__()
        dim, heads = config.model_dim, config.num_encoder_attn_heads
        self.ffn1_layer_norm = layer_norm(dim)
        self.ffn1 = FeedForward(dim, config.ffn_inner_dim, nn.SiLU())
        self.self_attn_layer_norm = layer_norm(dim)
        self.self_attn = MultiheadAttention(dim, heads, sdpa=RelativePositionSDPA(dim, heads, config.max_seq_len))
        self.conv_layer_norm = layer_norm(dim)
        self.conv = ConformerConvolution(dim, config.depthwise_conv_kernel_size)
        self.ffn2_layer_norm = layer_norm(dim)
        self.ffn2 = FeedForward(dim, config.ffn_inner_dim, nn.SiLU())
        self.layer_norm = layer_norm(dim)

    def forward(self, seqs: Tensor, mask: Tensor | None) -> Tensor:
        seqs = seqs + 0.5 * self.ffn1(self.ffn1_layer_norm(seqs))
        normed = self.self_attn_layer_norm(seqs)
        seqs = seqs + self.self_attn(normed, normed, mask)
        seqs = seqs + self.conv(self.conv_layer_norm(seqs), mask)
        seqs = seqs + 0.5 * self.ffn2(self.ffn2_layer_norm(seqs))
        return self.layer_norm(seqs)


class W2vBertFrontend(nn.Module):
    def __init__(self, config: W2v2EncoderConfig) -> None:
        super().__init__()
        self.stride = config.fbank_stride
        self.post_extract_layer_norm = layer_norm(config.feature_dim)
        self.model_dim_proj = nn.Linear(config.feature_dim, config.model_dim)

    def forward(self, fbank: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """fbank [N, T, C] -> ([N, T // stride, model_dim], stacked lengths); an odd last frame
        is dropped, as fairseq2's Wav2Vec2FbankFeatureExtractor does."""
        n, frames, channels = fbank.shape
        frames -= frames % self.stride
        stacked = fbank[:, :frames].reshape(n, frames // self.stride, channels * self.stride)
        lengths = torch.clamp(lengths, max=frames) // self.stride
        return self.model_dim_proj(self.post_extract_layer_norm(stacked)), lengths


class AttentionPooler(nn.Module):
    def __init__(self, config: SpeechEncoderConfig) -> None:
        super().__init__()
        dim = config.model_dim
        self.bos_idx = config.bos_idx
        self.decoder_frontend = nn.Module()
        # SONAR sizes this table by the encoder's model_dim; only row bos_idx is ever used.
        self.decoder_frontend.embed = nn.Embedding(config.w2v2_encoder_config.model_dim, dim)
        self.decoder = Layers(
            [
                PostNormDecoderLayer(dim, config.num_decoder_attn_heads, config.ffn_inner_dim)
                for _ in range(config.num_decoder_layers)
            ]
        )
        self.projection_out = nn.Linear(dim, dim, bias=False)

    def forward(self, encoder_output: Tensor, mask: Tensor | None) -> Tensor:
        batch, dim = encoder_output.size(0), encoder_output.size(2)
        token = torch.full((batch, 1), self.bos_idx, dtype=torch.long)
        embed = self.decoder_frontend.embed
        assert isinstance(embed, nn.Embedding)
        seqs = embed(token) * math.sqrt(dim) + sinusoidal_positions(torch.zeros(1), dim)
        for layer in self.decoder.layers:
            seqs = layer(seqs, encoder_output, mask)
        return self.projection_out(seqs).squeeze(1)


class SonarSpeechEncoder(nn.Module):
    def __init__(self, config: SpeechEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder_frontend = W2vBertFrontend(config.w2v2_encoder_config)
        self.encoder = Layers(
            [ConformerBlock(config.w2v2_encoder_config) for _ in range(config.w2v2_encoder_config.num_encoder_layers)]
        )
        self.layer_norm = layer_norm(config.model_dim)
        self.encoder_pooler = AttentionPooler(config)

    def forward(self, fbank: Tensor, lengths: Tensor) -> Tensor:
        """Standardized fbank [N, T, 80] with frame counts [N] -> sentence embeddings [N, model_dim]."""
        seqs, lengths = self.encoder_frontend(fbank, lengths)
        mask = torch.arange(seqs.size(1))[None, :] < lengths[:, None]
        key_mask = mask if bool((~mask).any()) else None
        for layer in self.encoder.layers:
            seqs = layer(seqs, key_mask)
        return self.encoder_pooler(self.layer_norm(seqs), key_mask)
