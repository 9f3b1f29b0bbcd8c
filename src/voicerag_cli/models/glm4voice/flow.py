"""Token-to-mel half of the GLM-4-Voice decoder: a conditional flow-matching model (CosyVoice's
`MaskedDiffWithXvec` as retrained for GLM-4-Voice), re-implemented from the published
architecture with the checkpoint's parameter names (`flow.pt`):

- `input_embedding`, then a block-causal Conformer encoder (`encoder.embed.out.{0,1}`,
  `encoder.encoders.N.{self_attn.{linear_q,linear_k,linear_v,linear_out,linear_pos,pos_bias_u,
  pos_bias_v}, feed_forward.{w_1,w_2}, norm_mha, norm_ff}`, `encoder.after_norm`) with ESPnet
  relative positions, `encoder_proj` to 80 mel channels;
- `length_regulator.model.*`: nearest-neighbour upsampling from 12.5 tokens/s to 86.13 mel
  frames/s, then convolutions;
- `decoder.estimator.*`: the U-Net velocity estimator (ResNet blocks and transformer blocks),
  integrated with a 10-step Euler solver on a cosine time grid, with classifier-free guidance;
- `spk_embed_affine_layer`: the speaker-vector projection (GLM-4-Voice passes a zero vector).

The batch is always one utterance without padding, so upstream's padding masks are all ones
and are left out."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from voicerag_cli.models.glm4voice.cuda_graph import GraphedCall
from voicerag_cli.models.glm4voice.decoder_config import FlowConfig

NOISE_SEED = 42
NOISE_PAGE = 4096  # frames per deterministic noise page


def relative_positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """ESPnet relative sinusoidal encodings for offsets length-1 ... -(length-1): [1, 2L-1, dim]."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    positive = torch.zeros(length, dim)
    negative = torch.zeros(length, dim)
    positive[:, 0::2], positive[:, 1::2] = torch.sin(position * div), torch.cos(position * div)
    negative[:, 0::2], negative[:, 1::2] = torch.sin(-position * div), torch.cos(-position * div)
    table = torch.cat([positive.flip(0), negative[1:]], dim=0)
    return table.unsqueeze(0).to(device=device, dtype=dtype)


def block_causal(length: int, block: int, device: torch.device) -> torch.Tensor:
    """True where a query may attend: every earlier position plus its whole block."""
    position = torch.arange(length, device=device)
    return (position[None, :] <= position[:, None]) | (position[None, :] // block == position[:, None] // block)


class RelPositionAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)
        self.linear_pos = nn.Linear(dim, dim, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(heads, self.head_dim))
        self.pos_bias_v = nn.Parameter(torch.zeros(heads, self.head_dim))

    @staticmethod
    def rel_shift(scores: torch.Tensor) -> torch.Tensor:
        """[b, h, T, 2T-1] scores by relative offset -> [b, h, T, T] scores by key position."""
        b, h, t, width = scores.shape
        padded = torch.cat([scores.new_zeros(b, h, t, 1), scores], dim=-1).view(b, h, width + 1, t)
        return padded[:, :, 1:].view(b, h, t, width)[:, :, :, : width // 2 + 1]

    def forward(self, x: torch.Tensor, positions: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(t.shape[0], -1, self.heads, self.head_dim)

        q = heads(self.linear_q(x))
        k = heads(self.linear_k(x)).transpose(1, 2)
        v = heads(self.linear_v(x)).transpose(1, 2)
        p = heads(self.linear_pos(positions)).transpose(1, 2)
        content = (q + self.pos_bias_u).transpose(1, 2) @ k.transpose(-2, -1)
        position = self.rel_shift((q + self.pos_bias_v).transpose(1, 2) @ p.transpose(-2, -1))
        scores = (content + position) / math.sqrt(self.head_dim)
        weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(batch, length, dim)
        return self.linear_out(out)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(dim, hidden)
        self.w_2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(F.silu(self.w_1(x)))


class ConformerLayer(nn.Module):
    """Pre-norm attention + feed-forward (the checkpoint has no macaron or convolution module)."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.self_attn = RelPositionAttention(dim, heads)
        self.feed_forward = FeedForward(dim, hidden)
        self.norm_mha = nn.LayerNorm(dim, eps=1e-5)
        self.norm_ff = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.norm_mha(x), positions, allowed)
        return x + self.feed_forward(self.norm_ff(x))


class InputLayer(nn.Module):
    def __init__(self, dim_in: int, dim: int) -> None:
        super().__init__()
        self.out = nn.Sequential(nn.Linear(dim_in, dim), nn.LayerNorm(dim, eps=1e-5))


class BlockConformerEncoder(nn.Module):
    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = InputLayer(config.input_size, config.encoder_size)
        self.encoders = nn.ModuleList(
            ConformerLayer(config.encoder_size, config.encoder_heads, config.encoder_ffn)
            for _ in range(config.encoder_layers)
        )
        self.after_norm = nn.LayerNorm(config.encoder_size, eps=1e-5)
        # Position tables by length, kept on the device: built on the CPU, each costs a copy and
        # a synchronisation that every streamed block would otherwise repeat.
        self._positions: dict[tuple[int, torch.device, torch.dtype], torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed.out(x) * math.sqrt(self.config.encoder_size)
        key = (x.shape[1], x.device, x.dtype)
        if key not in self._positions:
            if len(self._positions) >= 64:  # answers vary in length: keep the table bounded
                self._positions.clear()
            self._positions[key] = relative_positions(x.shape[1], self.config.encoder_size, x.device, x.dtype)
        positions = self._positions[key]
        allowed = block_causal(x.shape[1], self.config.encoder_block, x.device)
        for layer in self.encoders:
            x = layer(x, positions, allowed)
        return self.after_norm(x)


class LengthRegulator(nn.Module):
    def __init__(self, channels: int, convs: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(convs):
            layers += [nn.Conv1d(channels, channels, 3, 1, 1), nn.GroupNorm(1, channels), nn.Mish()]
        layers.append(nn.Conv1d(channels, channels, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """x [b, tokens, c] -> [b, frames, c]."""
        x = F.interpolate(x.transpose(1, 2), size=frames, mode="nearest")
        return self.model(x).transpose(1, 2)


# --- the U-Net velocity estimator ------------------------------------------------------------


def timestep_features(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * -(math.log(10000) / (half - 1)))
    angles = scale * t.reshape(-1, 1).float() * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class TimestepMLP(nn.Module):
    def __init__(self, dim_in: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(dim_in, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(t)))


class ConvBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int, groups: int = 8) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv1d(dim, dim_out, 3, padding=1), nn.GroupNorm(groups, dim_out), nn.Mish())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int, time_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Mish(), nn.Linear(time_dim, dim_out))
        self.block1 = ConvBlock(dim, dim_out)
        self.block2 = ConvBlock(dim_out, dim_out)
        self.res_conv = nn.Conv1d(dim, dim_out, 1)

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        h = self.block1(x) + self.mlp(time).unsqueeze(-1)
        return self.block2(h) + self.res_conv(x)


class SelfAttention(nn.Module):
    """diffusers-style attention: bias-free q/k/v, `to_out.0` projection."""

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(0.0)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, -1).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.to_q(x)), split(self.to_k(x)), split(self.to_v(x)))
        return self.to_out[0](out.transpose(1, 2).reshape(b, t, -1))


class GeluProjection(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x))


class GeluFeedForward(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.ModuleList([GeluProjection(dim, 4 * dim), nn.Dropout(0.0), nn.Linear(4 * dim, dim)])


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = SelfAttention(dim, heads, head_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = GeluFeedForward(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x))
        h = self.norm3(x)
        for module in self.ff.net:
            h = module(h)
        return x + h


class Upsample(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose1d(dim, dim, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Downsample(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _transformers(config: FlowConfig, dim: int) -> nn.ModuleList:
    return nn.ModuleList(
        TransformerBlock(dim, config.estimator_heads, config.estimator_head_dim) for _ in range(config.estimator_blocks)
    )


# A U-Net stage is a ModuleList (the checkpoint's key names: down_blocks.N.0, .1, .2) of a ResNet
# block, its transformer blocks and a down/up-sampler (none in the middle); torch types a
# ModuleList's items only as Module.
_Stage = tuple[nn.Module, nn.ModuleList, nn.Module]
_MidStage = tuple[nn.Module, nn.ModuleList]


def _run(blocks: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    x = x.transpose(1, 2)
    for block in blocks:
        x = block(x)
    return x.transpose(1, 2)


class Estimator(nn.Module):
    """Predicts the flow's velocity from (x, mu, speaker, prompt condition) and the time t."""

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        mel = config.output_size
        channels = config.estimator_channels
        self.in_channels = 4 * mel  # x, mu, speaker vector, prompt condition
        time_dim = channels[0] * 4
        self.time_mlp = TimestepMLP(self.in_channels, time_dim)
        self.down_blocks = nn.ModuleList()
        width = self.in_channels
        for i, out in enumerate(channels):
            last = i == len(channels) - 1
            down: nn.Module = nn.Conv1d(out, out, 3, padding=1) if last else Downsample(out)
            self.down_blocks.append(
                nn.ModuleList([ResnetBlock(width, out, time_dim), _transformers(config, out), down])
            )
            width = out
        self.mid_blocks = nn.ModuleList(
            nn.ModuleList([ResnetBlock(width, width, time_dim), _transformers(config, width)])
            for _ in range(config.estimator_mid)
        )
        widths = (*channels[::-1], channels[0])
        self.up_blocks = nn.ModuleList()
        for i in range(len(widths) - 1):
            last = i == len(widths) - 2
            out = widths[i + 1]
            up: nn.Module = nn.Conv1d(out, out, 3, padding=1) if last else Upsample(out)
            self.up_blocks.append(
                nn.ModuleList([ResnetBlock(widths[i] * 2, out, time_dim), _transformers(config, out), up])
            )
        self.final_block = ConvBlock(widths[-1], widths[-1])
        self.final_proj = nn.Conv1d(widths[-1], mel, 1)

    def forward(
        self, x: torch.Tensor, mu: torch.Tensor, t: torch.Tensor, speaker: torch.Tensor, cond: torch.Tensor
    ) -> torch.Tensor:
        time = self.time_mlp(timestep_features(t, self.in_channels).to(x.dtype))
        h = torch.cat([x, mu, speaker.unsqueeze(-1).expand(-1, -1, x.shape[-1]), cond], dim=1)
        skips = []
        for resnet, blocks, down in cast("Iterable[_Stage]", self.down_blocks):
            h = _run(blocks, resnet(h, time))
            skips.append(h)
            h = down(h)
        for resnet, blocks in cast("Iterable[_MidStage]", self.mid_blocks):
            h = _run(blocks, resnet(h, time))
        for resnet, blocks, up in cast("Iterable[_Stage]", self.up_blocks):
            skip = skips.pop()
            h = torch.cat([h[:, :, : skip.shape[-1]], skip], dim=1)
            h = up(_run(blocks, resnet(h, time)))
        return self.final_proj(self.final_block(h))


class ConditionalCFM(nn.Module):
    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.config = config
        self.estimator = Estimator(config)
        self.graphs: dict[tuple[int, ...], GraphedCall] = {}  # by noise shape (CUDA only)

    def capture(self, frames: int, speaker: torch.Tensor, compile: bool = False) -> None:
        """Record the whole solve for `frames` mel frames as one CUDA graph: the shape of the
        first streamed block, whose decoding the listener waits for. With `compile` the estimator
        inside it is compiled for that shape first (fewer, fused kernels: each of the 10 steps
        runs the whole U-Net twice over, and replay time is mostly per-kernel)."""
        mel = torch.zeros(1, self.config.output_size, frames, device=speaker.device, dtype=speaker.dtype)
        estimator = torch.compile(self.estimator, dynamic=False) if compile else self.estimator

        def solve(noise: torch.Tensor, mu: torch.Tensor, speaker: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
            return self._solve(noise, mu, speaker, cond, estimator)

        if compile:
            solve(mel, mel, speaker, mel)  # compile on the default stream, outside the capture
        self.graphs[tuple(mel.shape)] = GraphedCall(solve, mel, mel, speaker, mel)

    def solve(self, noise: torch.Tensor, mu: torch.Tensor, speaker: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        graphed = self.graphs.get(tuple(noise.shape))
        if graphed is not None:
            return graphed(noise, mu, speaker, cond)
        return self._solve(noise, mu, speaker, cond)

    def _solve(
        self,
        noise: torch.Tensor,
        mu: torch.Tensor,
        speaker: torch.Tensor,
        cond: torch.Tensor,
        estimator: Callable[..., torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Euler integration from noise (t=0) to mel (t=1) on the cosine grid; the conditional and
        unconditional (guidance) velocities are evaluated as one batch of two."""
        estimator = self.estimator if estimator is None else estimator
        steps = self.config.timesteps
        grid = 1 - torch.cos(torch.linspace(0, 1, steps + 1, device=mu.device) * 0.5 * torch.pi)
        x = noise
        rate = self.config.cfg_rate
        mus = torch.cat([mu, torch.zeros_like(mu)])
        speakers = torch.cat([speaker, torch.zeros_like(speaker)])
        conds = torch.cat([cond, torch.zeros_like(cond)])
        for step in range(steps):
            t, dt = grid[step], grid[step + 1] - grid[step]
            both = estimator(torch.cat([x, x]), mus, t.expand(2), speakers, conds)
            velocity = (1.0 + rate) * both[:1] - rate * both[1:]
            x = x + dt * velocity
        return x


class FlowDecoder(nn.Module):
    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.config = config
        self.input_embedding = nn.Embedding(config.vocab_size, config.input_size)
        self.spk_embed_affine_layer = nn.Linear(config.spk_embed_dim, config.output_size)
        self.encoder = BlockConformerEncoder(config)
        self.encoder_proj = nn.Linear(config.encoder_size, config.output_size)
        self.length_regulator = LengthRegulator(config.output_size, config.regulator_convs)
        self.decoder = ConditionalCFM(config)
        self._noise: list[torch.Tensor] = []

    def noise(self, start: int, end: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Initial noise for mel frames [start, end): fixed per absolute frame, so a frame that is
        generated twice while streaming starts from the same point both times."""
        while len(self._noise) * NOISE_PAGE < end:
            generator = torch.Generator().manual_seed(NOISE_SEED + len(self._noise))
            self._noise.append(torch.randn(self.config.output_size, NOISE_PAGE, generator=generator))
        pages = torch.cat(self._noise[start // NOISE_PAGE : (end - 1) // NOISE_PAGE + 1], dim=1)
        offset = (start // NOISE_PAGE) * NOISE_PAGE
        return pages[:, start - offset : end - offset].unsqueeze(0).to(device=device, dtype=dtype)

    def speaker(self) -> torch.Tensor:
        """GLM-4-Voice's speaker condition: the projection of a zero speaker vector."""
        weight = self.input_embedding.weight
        zero = torch.zeros(1, self.config.spk_embed_dim, device=weight.device, dtype=weight.dtype)
        return self.spk_embed_affine_layer(zero)

    @torch.inference_mode()
    def capture_first_block(self, tokens: int, compile: bool = False) -> None:
        """On CUDA, graph the solve for an answer's first `tokens` speech tokens (no prompt mel)."""
        if self.input_embedding.weight.device.type == "cuda":
            self.decoder.capture(self.config.frames(tokens), self.speaker(), compile)

    @torch.inference_mode()
    def inference(
        self, tokens: torch.Tensor, prompt_mel: torch.Tensor | None = None, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mel [1, 80, frames] for `tokens` [1, n] (all tokens of the answer so far). With
        `prompt_mel` [1, 80, p] (the already decided mel of the first tokens) only the frames after
        it are returned, generated in its context: upstream's streaming scheme. `noise` [1, 80,
        frames] replaces the fixed initial noise (tests: parity with upstream given its draw)."""
        config = self.config
        speaker = self.speaker()
        h = self.encoder_proj(self.encoder(self.input_embedding(tokens)))
        frames = config.frames(tokens.shape[1])
        mu = self.length_regulator(h, frames).transpose(1, 2)
        cond = torch.zeros_like(mu)
        prompt = 0 if prompt_mel is None else prompt_mel.shape[-1]
        if prompt:
            assert prompt_mel is not None
            cond[:, :, :prompt] = prompt_mel
        start = self.noise(0, frames, mu.device, mu.dtype) if noise is None else noise.to(mu.device, mu.dtype)
        mel = self.decoder.solve(start, mu, speaker, cond)
        return mel[:, :, prompt:]
