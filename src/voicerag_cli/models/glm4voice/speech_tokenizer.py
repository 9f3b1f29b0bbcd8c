"""GLM-4-Voice speech tokenizer: a Whisper encoder with an average-pooling and vector-quantization
bottleneck that turns 16 kHz speech into 12.5 discrete tokens per second.

Re-implemented from the published architecture (THUDM/GLM-4-Voice `speech_tokenizer/`) so that the
public `glm-4-voice-tokenizer` safetensors load strictly under their own parameter names:
`conv1`, `conv2` (causal, left-padded), `embed_positions`, `layers.N.{self_attn.{q,k,v,out}_proj,
self_attn_layer_norm, fc1, fc2, final_layer_norm}`, `codebook`, `embed_positions2`. Both layouts
that circulate load: the full `WhisperVQForConditionalGeneration` (keys under `model.encoder.`, as
the public `glm-4-voice-tokenizer` and upstream's `load_quantize_encoder`) and a bare
`WhisperVQEncoder` save (unprefixed keys, what the demo's `WhisperVQEncoder.from_pretrained` reads).
Only the layers up to the quantizer run: token ids come out there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from voicerag_cli.errors import ModelError
from voicerag_cli.models.glm4voice.checkpoint import load_strict, read_json, read_safetensors, require_dir

WHAT = "GLM-4-Voice speech tokenizer"
SAMPLE_RATE = 16_000
SEGMENT_SECONDS = 30  # Whisper's window: longer audio is tokenized in 30 s pieces, as upstream does
CHECKPOINT_PREFIX = "model.encoder."
# Key prefixes of the layouts that circulate, most specific first: the whole seq2seq model, its
# `model` (WhisperVQModel) part, and a bare encoder.
CHECKPOINT_PREFIXES = (CHECKPOINT_PREFIX, "encoder.", "")


@dataclass(frozen=True)
class SpeechTokenizerConfig:
    """The subset of the checkpoint's config.json (a WhisperConfig plus VQ fields) the encoder uses."""

    d_model: int = 1280
    encoder_layers: int = 32
    encoder_attention_heads: int = 20
    encoder_ffn_dim: int = 5120
    num_mel_bins: int = 128
    max_source_positions: int = 1500
    pooling_kernel_size: int = 4
    pooling_type: str = "avg"
    pooling_position: int = 16
    quantize_vocab_size: int = 16384
    quantize_position: int = 16
    quantize_causal_block_size: int | None = 200
    encoder_causal_convolution: bool = True
    encoder_causal_attention: bool = False
    quantize_causal_encoder: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeechTokenizerConfig:
        known = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in data.items() if k in known})
        if not config.pooling_kernel_size or not config.quantize_vocab_size:
            raise ModelError(f"{WHAT}: config.json has no pooling_kernel_size/quantize_vocab_size (not a VQ tokenizer)")
        if config.pooling_type not in ("avg", "max"):
            raise ModelError(f"{WHAT}: unsupported pooling_type {config.pooling_type!r}")
        if not 0 < config.pooling_position <= config.quantize_position <= config.encoder_layers:
            raise ModelError(f"{WHAT}: need 0 < pooling_position <= quantize_position <= encoder_layers")
        return config

    @property
    def frames_per_token(self) -> int:
        """Mel frames (10 ms) per token: conv2's stride 2 times the pooling kernel."""
        return 2 * self.pooling_kernel_size


class CausalConv1d(nn.Conv1d):
    """A Conv1d padded on the left only, so an output frame never sees later input."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)
        self.left_padding = kernel_size - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left_padding, 0)))


class EncoderAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim, bias=False)  # Whisper's key projection has no bias
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
        batch, length, dim = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, dim // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)), attn_mask=mask, is_causal=causal
        )
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, dim))


class EncoderLayer(nn.Module):
    """Pre-norm Whisper encoder block."""

    def __init__(self, config: SpeechTokenizerConfig, causal: bool) -> None:
        super().__init__()
        self.causal = causal
        self.self_attn = EncoderAttention(config.d_model, config.encoder_attention_heads)
        self.self_attn_layer_norm = nn.LayerNorm(config.d_model)
        self.fc1 = nn.Linear(config.d_model, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, config.d_model)
        self.final_layer_norm = nn.LayerNorm(config.d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # A fully causal layer ignores the padding mask, as upstream does (padding only trails).
        x = x + self.self_attn(self.self_attn_layer_norm(x), None if self.causal else mask, self.causal)
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


def attention_mask(valid: torch.Tensor, block: int | None) -> torch.Tensor:
    """Boolean [batch, 1, query, key] mask: keys must be real frames; with `block`, a query sees
    every earlier frame plus its own block (block-causal), which bounds the look-ahead."""
    length = valid.shape[1]
    allowed = valid[:, None, None, :].clone()
    if block is not None:
        position = torch.arange(length, device=valid.device)
        earlier = position[None, :] <= position[:, None]
        same_block = (position[None, :] // block) == (position[:, None] // block)
        allowed = allowed & (earlier | same_block)
    return allowed


class WhisperVQEncoder(nn.Module):
    """The encoder up to its quantizer; `forward` returns token ids and their validity mask."""

    def __init__(self, config: SpeechTokenizerConfig) -> None:
        super().__init__()
        self.config = config
        self.conv1: nn.Conv1d
        self.conv2: nn.Conv1d
        if config.encoder_causal_convolution:
            self.conv1 = CausalConv1d(config.num_mel_bins, config.d_model, kernel_size=3)
            self.conv2 = CausalConv1d(config.d_model, config.d_model, kernel_size=3, stride=2)
        else:
            self.conv1 = nn.Conv1d(config.num_mel_bins, config.d_model, kernel_size=3, padding=1)
            self.conv2 = nn.Conv1d(config.d_model, config.d_model, kernel_size=3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(config.max_source_positions, config.d_model)
        causal = config.encoder_causal_attention or config.quantize_causal_encoder
        self.layers = nn.ModuleList(EncoderLayer(config, causal) for _ in range(config.quantize_position))
        self.codebook = nn.Embedding(config.quantize_vocab_size, config.d_model)
        # Positions re-added after quantization (used by upstream's later layers; kept so the
        # checkpoint loads strictly and the quantized embeddings are available to callers).
        pooled_positions = math.ceil(config.max_source_positions / config.pooling_kernel_size)
        self.embed_positions2 = nn.Embedding(pooled_positions, config.d_model)

    def _pool(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kernel = self.config.pooling_kernel_size
        x = x.transpose(1, 2)
        if x.shape[-1] % kernel:
            x = F.pad(x, (0, kernel - x.shape[-1] % kernel))  # zeros join the last average, as upstream
        pool = F.avg_pool1d if self.config.pooling_type == "avg" else F.max_pool1d
        return pool(x, kernel).transpose(1, 2), valid[:, ::kernel]

    def forward(self, features: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features [batch, mel, frames] (frames a multiple of `frames_per_token`), frame_mask [batch, frames]."""
        config = self.config
        x = F.gelu(self.conv2(F.gelu(self.conv1(features)))).transpose(1, 2)
        if x.shape[1] > config.max_source_positions:
            raise ValueError(f"at most {config.max_source_positions} encoder frames, got {x.shape[1]}")
        x = x + self.embed_positions.weight[: x.shape[1]]
        valid = frame_mask[:, ::2].bool()
        block = config.quantize_causal_block_size
        mask = attention_mask(valid, block)
        for index, layer in enumerate(self.layers, start=1):
            x = layer(x, mask)
            if index == config.pooling_position:
                x, valid = self._pool(x, valid)
                mask = attention_mask(valid, None if block is None else block // config.pooling_kernel_size)
        return self.quantize(x), valid

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest codebook entry (squared Euclidean distance) for every frame."""
        flat = x.reshape(-1, x.shape[-1]).float()
        codebook = self.codebook.weight.float()
        distances = flat.square().sum(1, keepdim=True) - 2 * flat @ codebook.t() + codebook.square().sum(1)
        return distances.argmin(dim=1).reshape(x.shape[:2])


def checkpoint_prefix(names: set[str]) -> str:
    """The layout of a checkpoint, told by where its first convolution sits."""
    for prefix in CHECKPOINT_PREFIXES:
        if f"{prefix}conv1.weight" in names:
            return prefix
    raise ModelError(
        f"{WHAT}: the checkpoint has no encoder conv1.weight (under model.encoder., encoder. or unprefixed): "
        "not a GLM-4-Voice speech tokenizer"
    )


def checkpoint_name(name: str, config: SpeechTokenizerConfig, prefix: str = CHECKPOINT_PREFIX) -> str | None:
    """Map a checkpoint key to the encoder's; None for weights the tokenizer never runs: the
    Whisper decoder and output projection, the final layer norm, and layers after the quantizer."""
    if not name.startswith(prefix):
        return None
    local = name[len(prefix) :]
    if not prefix and local.split(".", 1)[0] in ("model", "encoder", "decoder", "proj_out"):
        return None  # a bare encoder has none of these; skip rather than misread them
    if local.startswith("layer_norm."):
        return None
    if local.startswith("layers.") and int(local.split(".")[1]) >= config.quantize_position:
        return None
    return local


class SpeechTokenizer:
    """Audio in, GLM-4-Voice speech token ids out (12.5 per second for the public checkpoint)."""

    def __init__(self, encoder: WhisperVQEncoder, extractor: Any, device: str = "cpu") -> None:
        self.encoder = encoder.eval().to(device)
        self.extractor = extractor
        self.device = device

    @classmethod
    def load(
        cls, folder: str | Path, device: str = "cpu", config_key: str = "glm4voice.tokenizer_path"
    ) -> SpeechTokenizer:
        from voicerag_cli.models.glm4voice.features import load_feature_extractor

        root = require_dir(folder, WHAT, config_key)
        config = SpeechTokenizerConfig.from_dict(read_json(root, "config.json", WHAT))
        extractor = load_feature_extractor(root, config.num_mel_bins, WHAT)
        encoder = WhisperVQEncoder(config)
        tensors = read_safetensors(root, WHAT)
        prefix = checkpoint_prefix(set(tensors))
        state = {}
        for name, tensor in tensors.items():
            local = checkpoint_name(name, config, prefix)
            if local is not None:
                state[local] = tensor
        load_strict(encoder, state, WHAT)
        return cls(encoder, extractor, device)

    @property
    def samples_per_token(self) -> int:
        return self.encoder.config.frames_per_token * self.extractor.hop_length

    @property
    def tokens_per_second(self) -> float:
        return SAMPLE_RATE / self.samples_per_token

    @torch.inference_mode()
    def tokenize(self, samples: np.ndarray, sample_rate: int) -> list[int]:
        from voicerag_cli.models.glm4voice.features import log_mel

        audio = np.asarray(samples, dtype=np.float32).reshape(-1)
        if sample_rate != SAMPLE_RATE:
            import soxr

            audio = soxr.resample(audio, sample_rate, SAMPLE_RATE).astype(np.float32)
        step = SEGMENT_SECONDS * SAMPLE_RATE
        tokens: list[int] = []
        for start in range(0, len(audio), step):
            features, frame_mask = log_mel(self.extractor, audio[start : start + step], self.samples_per_token)
            ids, valid = self.encoder(features.to(self.device), frame_mask.to(self.device))
            tokens.extend(ids[0][valid[0]].tolist())
        return tokens
