"""Acoustic augmentation with numpy/scipy: gain, leading/trailing silence, reverb, coloured noise.

Synthetic speech is clean and perfectly level; real questions are not. Each effect is applied
with its own probability so that a share of clips stays clean, as clean input also occurs.
"""

from __future__ import annotations

import numpy as np

RATE = 16_000


def coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    spectrum /= freqs ** (exponent / 2)
    noise = np.fft.irfft(spectrum, n)
    return (noise / max(float(np.sqrt(np.mean(noise**2))), 1e-9)).astype(np.float32)


def room_impulse(rng: np.random.Generator, rt60: float) -> np.ndarray:
    """An exponentially decaying noise tail with a direct-path spike: a crude but cheap room."""
    n = int(rt60 * RATE)
    t = np.arange(n) / RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    tail[0] = 0.0
    impulse = np.concatenate([[1.0], 0.4 * tail / max(float(np.abs(tail).max()), 1e-9)])
    return (impulse / np.sqrt(np.sum(impulse**2))).astype(np.float32)


def augment(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import fftconvolve

    x = audio.astype(np.float32)
    if rng.random() < 0.35:
        x = fftconvolve(x, room_impulse(rng, float(rng.uniform(0.15, 0.7))))[: len(x) + RATE // 4]
    pad_before, pad_after = (int(rng.uniform(0.0, 0.4) * RATE) for _ in range(2))
    x = np.concatenate([np.zeros(pad_before, np.float32), x, np.zeros(pad_after, np.float32)])
    if rng.random() < 0.6:
        speech_rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) or 1e-3
        snr_db = float(rng.uniform(5.0, 30.0))
        noise = coloured_noise(rng, len(x), float(rng.choice([0.0, 1.0, 2.0])))
        x = x + noise * speech_rms / (10 ** (snr_db / 20))
    else:
        x = x + rng.standard_normal(len(x)).astype(np.float32) * 1e-4  # a realistic noise floor
    peak = float(np.abs(x).max()) or 1.0
    gain = 10 ** (float(rng.uniform(-18.0, -1.0)) / 20) / peak
    return (x * gain).astype(np.float32)
