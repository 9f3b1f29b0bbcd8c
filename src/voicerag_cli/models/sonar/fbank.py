"""The speech features SONAR computes before its encoder: Kaldi log-mel filterbanks, standardized.

SONAR's speech pipeline calls fairseq2's `WaveformToFbankConverter(num_mel_bins=80,
waveform_scale=2**15, channel_last=True, standardize=True)` on 16 kHz audio. That converter runs
kaldi-native-fbank with its default options (25 ms povey windows every 10 ms, DC offset removal,
pre-emphasis 0.97, 512-point FFT power spectrum, 80 triangular mel bins from 20 Hz to Nyquist, log
floored at FLT_EPSILON, frames that fit entirely: "snip edges"; the vendored version never applies
dither) and then standardizes every mel channel over time with an unbiased standard deviation.
This is the same computation in numpy.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16_000
WAVEFORM_SCALE = 2.0**15  # SONAR scales [-1, 1] floats to the int16 range
NUM_MEL_BINS = 80
_FRAME_LENGTH = 400  # 25 ms at 16 kHz
_FRAME_SHIFT = 160  # 10 ms
_FFT_SIZE = 512  # the frame length rounded up to a power of two
_PREEMPHASIS = 0.97
_LOW_FREQ = 20.0
_FLT_EPSILON = float(np.finfo(np.float32).eps)


def _mel(freq: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


@lru_cache(maxsize=4)
def mel_banks(num_bins: int = NUM_MEL_BINS, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """[num_bins, FFT/2] triangular weights over FFT bins 0..FFT/2-1 (Kaldi leaves out Nyquist)."""
    num_fft_bins = _FFT_SIZE // 2
    mel_low, mel_high = _mel(_LOW_FREQ), _mel(sample_rate / 2)
    delta = (mel_high - mel_low) / (num_bins + 1)
    fft_mel = _mel(np.arange(num_fft_bins) * (sample_rate / _FFT_SIZE))
    left = mel_low + np.arange(num_bins)[:, None] * delta
    center, right = left + delta, left + 2 * delta
    rising = (fft_mel - left) / (center - left)
    falling = (right - fft_mel) / (right - center)
    weights = np.where(fft_mel <= center, rising, falling)
    return np.where((fft_mel > left) & (fft_mel < right), weights, 0.0)


@lru_cache(maxsize=1)
def _povey_window() -> np.ndarray:
    i = np.arange(_FRAME_LENGTH, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2 * np.pi * i / (_FRAME_LENGTH - 1))) ** 0.85


def num_frames(num_samples: int) -> int:
    return 0 if num_samples < _FRAME_LENGTH else 1 + (num_samples - _FRAME_LENGTH) // _FRAME_SHIFT


def log_mel_fbank(samples: np.ndarray) -> np.ndarray:
    """float32 [frames, 80] log-mel energies of 16 kHz mono samples in [-1, 1]."""
    wave = np.asarray(samples, dtype=np.float64) * WAVEFORM_SCALE
    count = num_frames(wave.size)
    if count == 0:
        return np.zeros((0, NUM_MEL_BINS), dtype=np.float32)
    starts = np.arange(count)[:, None] * _FRAME_SHIFT
    frames = wave[starts + np.arange(_FRAME_LENGTH)]
    frames = frames - frames.mean(axis=1, keepdims=True)
    emphasized = np.empty_like(frames)
    emphasized[:, 1:] = frames[:, 1:] - _PREEMPHASIS * frames[:, :-1]
    emphasized[:, 0] = frames[:, 0] * (1.0 - _PREEMPHASIS)
    spectrum = np.fft.rfft(emphasized * _povey_window(), n=_FFT_SIZE, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    energies = power[:, : _FFT_SIZE // 2] @ mel_banks().T
    return np.log(np.maximum(energies, _FLT_EPSILON)).astype(np.float32)


def standardize(features: np.ndarray) -> np.ndarray:
    """Zero mean, unit (unbiased) standard deviation per channel over time, as SONAR does."""
    mean = features.mean(axis=0, dtype=np.float64)
    std = features.std(axis=0, ddof=1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((features - mean) / std).astype(np.float32)
