"""Decode any audio soundfile can read into 16 kHz mono float32, with clear errors."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from voicerag_cli.errors import InputError

TARGET_RATE = 16_000
# Below this peak amplitude (about -60 dBFS) a recording carries no usable speech.
SILENCE_PEAK = 1e-3
MIN_SECONDS = 0.1


@dataclass
class Audio:
    samples: np.ndarray  # float32 mono at `sample_rate`
    sample_rate: int
    source: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def read_audio(source: str | Path, stdin: BinaryIO | None = None) -> Audio:
    """Read a file path, or '-' for bytes on stdin, and return checked 16 kHz mono audio."""
    import soundfile as sf

    name = str(source)
    if name == "-":
        data = (stdin or sys.stdin.buffer).read()
        if not data:
            raise InputError("no audio on stdin (got 0 bytes)")
        handle: str | BinaryIO = io.BytesIO(data)
        name = "<stdin>"
    else:
        path = Path(source)
        if not path.exists():
            raise InputError(f"audio file not found: {path}")
        if path.is_dir():
            raise InputError(f"expected an audio file, got a directory: {path}")
        if path.stat().st_size == 0:
            raise InputError(f"audio file is empty (0 bytes): {path}")
        handle = str(path)
    try:
        samples, rate = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InputError(f"cannot decode audio from {name}: not a supported audio file ({exc})") from exc
    except OSError as exc:
        raise InputError(f"cannot read audio file {name}: {exc.strerror or exc}") from exc
    return prepare(samples, rate, name)


def prepare(samples: np.ndarray, rate: int, name: str) -> Audio:
    """Mix down to mono, resample to 16 kHz, and reject empty or silent input."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    if mono.size == 0:
        raise InputError(f"audio from {name} has no samples")
    if mono.size / rate < MIN_SECONDS:
        raise InputError(f"audio from {name} is too short ({mono.size / rate:.3f} s; need at least {MIN_SECONDS} s)")
    if not np.isfinite(mono).all():
        raise InputError(f"audio from {name} contains NaN or infinite samples")
    if float(np.max(np.abs(mono))) < SILENCE_PEAK:
        raise InputError(f"audio from {name} is silent (peak below -60 dBFS): nothing to transcribe")
    return Audio(resample(mono, rate, TARGET_RATE), TARGET_RATE, name)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return samples.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(samples.astype(np.float32, copy=False), rate, target, quality="HQ").astype(np.float32)
