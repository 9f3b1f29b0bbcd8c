"""Mel-to-waveform half of the GLM-4-Voice decoder: HiFT (CosyVoice's `HiFTGenerator`), a
neural-source-filter vocoder with an iSTFT output, re-implemented from the published
architecture with the checkpoint's parameter names (`hift.pt`): `f0_predictor.{condnet.{0,2,4,6,8},
classifier}`, `m_source.l_linear`, `conv_pre`, `ups.N`, `source_downs.N`, `source_resblocks.N`,
`resblocks.N.{convs1,convs2,activations1,activations2}`, `conv_post`.

Upstream wraps its convolutions in weight normalisation (`weight_g`/`weight_v`); the loader folds
those pairs into plain weights, which is exactly what the normalised layer computes.

For streaming, the harmonic source is generated from an explicit running phase and noise fixed
per absolute sample, so vocoding a window of frames reproduces exactly what vocoding the whole
utterance produces there (see `stream.py`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from voicerag_cli.models.glm4voice.decoder_config import HiftConfig

SOURCE_SEED = 1986
NOISE_PAGE = 1 << 18  # samples per deterministic noise page


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class Snake(nn.Module):
    """x + sin^2(alpha x) / alpha, per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        return x + (1.0 / (alpha + 1e-9)) * torch.sin(x * alpha).pow(2)


class ResBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, 1, dilation=d, padding=_padding(kernel, d)) for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, 1, padding=_padding(kernel)) for _ in dilations
        )
        self.activations1 = nn.ModuleList(Snake(channels) for _ in dilations)
        self.activations2 = nn.ModuleList(Snake(channels) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2, act1, act2 in zip(
            self.convs1, self.convs2, self.activations1, self.activations2, strict=True
        ):
            x = x + conv2(act2(conv1(act1(x))))
        return x


class F0Predictor(nn.Module):
    """Five convolutions (kernel 3) and a linear layer: |F0| in Hz per mel frame."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(5):
            layers += [nn.Conv1d(in_channels if i == 0 else channels, channels, 3, padding=1), nn.ELU()]
        self.condnet = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, 1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.condnet(mel).transpose(1, 2)).squeeze(-1).abs()


class SourceModule(nn.Module):
    def __init__(self, harmonics: int) -> None:
        super().__init__()
        self.l_linear = nn.Linear(harmonics + 1, 1)


@dataclass
class SourceState:
    """Where the harmonic oscillators stand at the next sample to generate."""

    sample: int  # absolute sample index
    phase: torch.Tensor  # [harmonics + 1] float64 phase in cycles (mod 1)


class HiFTGenerator(nn.Module):
    window: torch.Tensor  # a buffer (register_buffer below)

    def __init__(self, config: HiftConfig) -> None:
        super().__init__()
        self.config = config
        base = config.base_channels
        self.f0_predictor = F0Predictor(config.in_channels, config.f0_cond_channels)
        self.m_source = SourceModule(config.nb_harmonics)
        self.conv_pre = nn.Conv1d(config.in_channels, base, 7, 1, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(base // 2**i, base // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True))
        )
        self.source_downs = nn.ModuleList()
        self.source_resblocks = nn.ModuleList()
        rates = [1, *config.upsample_rates[::-1][:-1]]
        cumulative = [math.prod(rates[: i + 1]) for i in range(len(rates))][::-1]
        stft_channels = config.n_fft + 2
        for i, (u, k, d) in enumerate(
            zip(cumulative, config.source_resblock_kernel_sizes, config.source_resblock_dilation_sizes, strict=True)
        ):
            out = base // 2 ** (i + 1)
            if u == 1:
                self.source_downs.append(nn.Conv1d(stft_channels, out, 1, 1))
            else:
                self.source_downs.append(nn.Conv1d(stft_channels, out, u * 2, u, padding=u // 2))
            self.source_resblocks.append(ResBlock(out, k, d))
        self.resblocks = nn.ModuleList()
        for i in range(len(self.ups)):
            channels = base // 2 ** (i + 1)
            for k, d in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True):
                self.resblocks.append(ResBlock(channels, k, d))
        self.conv_post = nn.Conv1d(base // 2 ** len(self.ups), stft_channels, 7, 1, padding=3)
        self.register_buffer("window", torch.hann_window(config.n_fft, periodic=True), persistent=False)
        self._noise: list[torch.Tensor] = []
        self._initial_phase = torch.rand(
            config.nb_harmonics + 1, generator=torch.Generator().manual_seed(SOURCE_SEED), dtype=torch.float64
        )
        self._initial_phase[0] = 0.0  # the fundamental starts at phase 0, the overtones anywhere

    def start(self) -> SourceState:
        return SourceState(0, self._initial_phase.clone())

    def _noise_at(self, start: int, end: int) -> torch.Tensor:
        rows = self.config.nb_harmonics + 1
        while len(self._noise) * NOISE_PAGE < end:
            generator = torch.Generator().manual_seed(SOURCE_SEED + 1 + len(self._noise))
            self._noise.append(torch.randn(rows, NOISE_PAGE, generator=generator))
        first = start // NOISE_PAGE
        pages = torch.cat(self._noise[first : (end - 1) // NOISE_PAGE + 1], dim=1)
        return pages[:, start - first * NOISE_PAGE : end - first * NOISE_PAGE]

    def source(
        self, f0: torch.Tensor, state: SourceState, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, SourceState]:
        """Harmonic-plus-noise excitation [1, 1, samples] for per-frame F0 [frames], continuing
        from `state`; returns the state after it. As upstream's SineGen, a sample's phase includes
        its own step (inclusive cumulative sum); `noise` [harmonics + 1, samples] replaces the
        fixed noise (tests: parity with upstream given its random draws)."""
        config = self.config
        if f0.numel() == 0:
            return torch.zeros(1, 1, 0, device=self.m_source.l_linear.weight.device), state
        per_sample = f0.double().repeat_interleave(config.samples_per_frame).cpu()
        harmonics = torch.arange(1, config.nb_harmonics + 2, dtype=torch.float64)[:, None]
        steps = per_sample[None, :] * harmonics / config.sample_rate  # cycles per sample
        phase = (state.phase[:, None] + torch.cumsum(steps, dim=1)) % 1.0
        end_phase = phase[:, -1] if steps.shape[1] else state.phase
        voiced = (per_sample > config.nsf_voiced_threshold).double()[None, :]
        amplitude = voiced * config.nsf_sigma + (1 - voiced) * config.nsf_alpha / 3
        if noise is None:
            noise = self._noise_at(state.sample, state.sample + per_sample.shape[0])
        noise = noise.double().cpu()
        waves = config.nsf_alpha * torch.sin(2 * math.pi * phase) * voiced + amplitude * noise
        weight = self.m_source.l_linear.weight
        merged = torch.tanh(self.m_source.l_linear(waves.T.to(device=weight.device, dtype=weight.dtype)))
        return merged.T.unsqueeze(0), SourceState(state.sample + per_sample.shape[0], end_phase)

    def vocode(self, mel: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Waveform [1, frames * samples_per_frame] from mel [1, 80, frames] and its source."""
        config = self.config
        spec = torch.stft(
            source.squeeze(1), config.n_fft, config.hop_len, config.n_fft, window=self.window, return_complex=True
        )
        s_stft = torch.cat([spec.real, spec.imag], dim=1)
        x = self.conv_pre(mel)
        kernels = len(config.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, config.lrelu_slope))
            if i == len(self.ups) - 1:
                x = F.pad(x, (1, 0), mode="reflect")
            x = x + self.source_resblocks[i](self.source_downs[i](s_stft))
            x = sum(self.resblocks[i * kernels + j](x) for j in range(kernels)) / kernels
        x = self.conv_post(F.leaky_relu(x))
        bins = config.n_fft // 2 + 1
        magnitude = torch.exp(x[:, :bins]).clamp(max=1e2)
        phase = torch.sin(x[:, bins:])  # upstream's parameterisation of the phase
        audio = torch.istft(
            torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase)),
            config.n_fft,
            config.hop_len,
            config.n_fft,
            window=self.window,
        )
        return audio.clamp(-config.audio_limit, config.audio_limit)

    @torch.inference_mode()
    def inference(self, mel: torch.Tensor) -> torch.Tensor:
        """Whole-utterance vocoding: waveform [1, samples]."""
        source, _ = self.source(self.f0_predictor(mel)[0], self.start())
        return self.vocode(mel, source)


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace weight-normalised pairs (`X.weight_g`, `X.weight_v`, or the parametrizations API's
    `X.parametrizations.weight.original0/1`) by `X.weight` = g * v / ||v|| (norm over all dims but 0)."""
    folded: dict[str, torch.Tensor] = {}
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in state.items():
        for g_suffix, v_suffix in (
            (".weight_g", ".weight_v"),
            (".parametrizations.weight.original0", ".parametrizations.weight.original1"),
        ):
            if name.endswith(g_suffix):
                pairs.setdefault(name[: -len(g_suffix)], {})["g"] = tensor
                break
            if name.endswith(v_suffix):
                pairs.setdefault(name[: -len(v_suffix)], {})["v"] = tensor
                break
        else:
            folded[name] = tensor
    for base, pair in pairs.items():
        if set(pair) != {"g", "v"}:
            folded[base + (".weight_g" if "g" in pair else ".weight_v")] = next(iter(pair.values()))
            continue
        v = pair["v"].float()
        norm = v.reshape(v.shape[0], -1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))
        folded[base + ".weight"] = (pair["g"].float() * v / norm).to(pair["v"].dtype)
    return folded
