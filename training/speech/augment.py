"""Acoustic augmentation of a batch of clips in torch (GPU or CPU): speed, room reverb, leading
and trailing silence, coloured noise, gain.

Rendered speech is clean and perfectly level, and a recorded corpus has one microphone and
room; real questions have neither. Each effect has its own probability per clip, so a share of
clips stays clean, as clean input also occurs.
"""

from __future__ import annotations

import math

import torch

SAMPLE_RATE = 16_000


class Augmenter:
    def __init__(self, device: str, seed: int) -> None:
        self.device = device
        self.gen = torch.Generator(device=device).manual_seed(seed)

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.gen, device=self.device)

    def perturb_speed(
        self, audio: torch.Tensor, lengths: torch.Tensor, share: float = 0.5, spread: float = 0.12
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Speed perturbation (Ko et al., 2015) for `share` of the clips: resampled by 1 ± spread,
        which moves tempo, pitch and formants together, as a longer or shorter vocal tract would
        (espeak varies rate and pitch but keeps each voice's formants)."""
        b, n = audio.shape
        factor = torch.where(
            self._rand(b) < share, 1 - spread + 2 * spread * self._rand(b), torch.ones(b, device=self.device)
        )
        new_lengths = (lengths.float() / factor).long().clamp(min=1)
        width = int(new_lengths.max())
        # output sample j reads input position j * factor (linear interpolation)
        pos = torch.arange(width, device=self.device)[None].float() * factor[:, None]
        left = pos.floor().long().clamp(max=n - 1)
        right = (left + 1).clamp(max=n - 1)
        w = pos - left
        out = torch.gather(audio, 1, left) * (1 - w) + torch.gather(audio, 1, right) * w
        return out * (torch.arange(width, device=self.device)[None] < new_lengths[:, None]), new_lengths

    def __call__(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio [B, S] zero-padded float, lengths [B] -> augmented audio and lengths. Per clip:
        speed (50 %), reverb (35 %, RT60 0.15-0.7 s), 0-0.4 s of silence before and after,
        white/pink/brown noise at 5-30 dB SNR (60 %, else a faint floor), gain -18..-1 dBFS."""
        audio, lengths = self.perturb_speed(audio, lengths)
        b, n = audio.shape
        rate = SAMPLE_RATE
        # room reverb: an exponentially decaying noise tail after a direct spike
        rt60 = 0.15 + 0.55 * self._rand(b)
        k = int(0.7 * rate)
        t = torch.arange(k, device=self.device) / rate
        tail = torch.randn(b, k, generator=self.gen, device=self.device) * torch.exp(-6.9 * t[None] / rt60[:, None])
        tail[:, 0] = 0
        tail = 0.4 * tail / tail.abs().amax(1, keepdim=True).clamp(min=1e-9)
        rir = torch.cat([torch.ones(b, 1, device=self.device), tail], 1)
        rir = rir / rir.norm(dim=1, keepdim=True)
        size = 1 << math.ceil(math.log2(n + k + 1))
        wet = torch.fft.irfft(torch.fft.rfft(audio, size) * torch.fft.rfft(rir, size), size)[:, : n + rate // 4]
        use_reverb = self._rand(b) < 0.35
        dry = torch.nn.functional.pad(audio, (0, rate // 4))
        x = torch.where(use_reverb[:, None], wet, dry)
        lengths = torch.where(use_reverb, lengths + rate // 4, lengths).clamp(max=x.shape[1])
        x = x * (torch.arange(x.shape[1], device=self.device)[None] < lengths[:, None])
        # silence before and after
        before = (self._rand(b) * 0.4 * rate).long()
        after = (self._rand(b) * 0.4 * rate).long()
        width = x.shape[1] + int(0.8 * rate)
        idx = torch.arange(width, device=self.device)[None] - before[:, None]
        valid = (idx >= 0) & (idx < lengths[:, None])
        x = torch.gather(torch.nn.functional.pad(x, (0, int(0.8 * rate))), 1, idx.clamp(min=0)) * valid
        lengths = lengths + before + after
        inside = torch.arange(width, device=self.device)[None] < lengths[:, None]
        # coloured noise, shaped in the frequency domain
        spec = torch.randn(b, width // 2 + 1, 2, generator=self.gen, device=self.device)
        freqs = torch.fft.rfftfreq(width, device=self.device)
        freqs[0] = freqs[1]
        exponent = torch.randint(0, 3, (b,), generator=self.gen, device=self.device).float()
        noise = torch.fft.irfft(torch.view_as_complex(spec) / freqs[None] ** (exponent[:, None] / 2), width)
        noise = noise / noise.pow(2).mean(1, keepdim=True).sqrt().clamp(min=1e-9)
        speech_rms = (audio.pow(2).sum(1) / lengths.clamp(min=1)).sqrt().clamp(min=1e-3)
        snr_db = 5 + 25 * self._rand(b)
        level = torch.where(self._rand(b) < 0.6, speech_rms / 10 ** (snr_db / 20), torch.full_like(snr_db, 1e-4))
        x = (x + noise * level[:, None]) * inside
        peak = x.abs().amax(1).clamp(min=1e-6)
        gain = 10 ** ((-18 + 17 * self._rand(b)) / 20) / peak
        return x * gain[:, None], lengths
