"""Decode any audio soundfile can read into 16 kHz mono float32, with clear errors."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from voicerag_cli.errors import InputError

TARGET_RATE = 16_000
# Below this peak amplitude (about -60 dBFS) a recording carries no usable speech.
SILENCE_PEAK = 1e-3
MIN_SECONDS = 0.1
# Below this no recording holds speech (telephone audio is 8 kHz); a header claiming 1 Hz is damage.
MIN_RATE = 4_000


@dataclass
class Audio:
    samples: np.ndarray  # float32 mono at `sample_rate`
    sample_rate: int
    source: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def read_audio(source: str | Path, stdin: BinaryIO | None = None, max_seconds: float | None = None) -> Audio:
    """Read a file path, or '-' for bytes on stdin, and return checked 16 kHz mono audio.

    The header is checked before anything is decoded: a sample rate no recording has, or a
    length over `max_seconds`, is refused without reading the samples."""
    samples, rate, name = decode_audio(source, stdin, max_seconds)
    return prepare(samples, rate, name)


# No question or recorded conversation comes near this; /dev/zero-like inputs are refused anyway.
MAX_AUDIO_BYTES = 1 << 30


def decode_audio(
    source: str | Path, stdin: BinaryIO | None = None, max_seconds: float | None = None
) -> tuple[np.ndarray, int, str]:
    """The samples (frames x channels, float32), the rate and the name to show of an audio file
    or '-' (stdin). A path must be a readable regular file under MAX_AUDIO_BYTES: a FIFO or a
    device is refused without being opened for a blocking read."""
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
        data = _check_audio_path(path)
        handle = str(path)
    try:
        with quiet_stderr():  # libsndfile's mpg123 prints decoder warnings straight to fd 2
            info = sf.info(handle)
            _check_header(info.samplerate, info.frames, name, max_seconds)
            if isinstance(handle, io.BytesIO):
                handle.seek(0)
            samples, rate = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        if _looks_like_text(data):
            raise InputError(f"{name} holds text, not audio (ask a typed question with --text)") from exc
        reason = str(exc).rsplit(": ", 1)[-1].strip() or type(exc).__name__  # drop libsndfile's object repr
        raise InputError(f"cannot decode audio from {name}: not a supported audio file ({reason})") from exc
    except OSError as exc:
        raise InputError(f"cannot read audio file {name}: {exc.strerror or exc}") from exc
    return samples, rate, name


def _check_audio_path(path: Path) -> bytes:
    """Refuse a missing, non-regular, empty, oversized or unreadable audio file; return its
    first 512 bytes (to tell text from audio)."""
    import os
    import stat

    from voicerag_cli.safe_io import file_kind, open_regular

    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"audio file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read audio file {path}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"expected an audio file, got a directory: {path}")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"expected an audio file, got {file_kind(info.st_mode)}: {path}")
    if info.st_size == 0:
        raise InputError(f"audio file is empty (0 bytes): {path}")
    if info.st_size > MAX_AUDIO_BYTES:
        raise InputError(f"audio file {path} is {info.st_size} bytes: larger than {MAX_AUDIO_BYTES} bytes")
    try:
        fd, opened = open_regular(path)
        try:
            if not stat.S_ISREG(opened.st_mode):  # replaced since the stat
                raise InputError(f"expected an audio file, got {file_kind(opened.st_mode)}: {path}")
            return os.read(fd, 512)
        finally:
            os.close(fd)
    except OSError as exc:
        raise InputError(f"cannot read audio file {path}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while C libraries decode (unless VOICERAG_DEBUG)."""
    import os

    if os.environ.get("VOICERAG_DEBUG", "") not in {"", "0"}:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to protect
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _check_header(rate: int, frames: int, name: str, max_seconds: float | None) -> None:
    if rate < MIN_RATE:
        raise InputError(
            f"audio from {name} claims a sample rate of {rate} Hz: not a recording (need >= {MIN_RATE} Hz)"
        )
    seconds = frames / rate
    if max_seconds is not None and seconds > max_seconds:
        raise InputError(
            f"audio from {name} is {seconds:.1f} s long; questions may be at most {max_seconds:g} s (ask.max_audio_s)"
        )


def _looks_like_text(head: bytes) -> bool:
    """Printable UTF-8 (what `echo hello |` sends) rather than binary audio."""
    sample = head[:512]
    if not sample:
        return False
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\n\r\t" for ch in text)


def prepare(samples: np.ndarray, rate: int, name: str) -> Audio:
    """Mix down to mono, scale past-full-scale floats into [-1, 1], resample to 16 kHz, and reject
    empty or silent input."""
    return Audio(resample(checked_mono(samples, rate, name), rate, TARGET_RATE), TARGET_RATE, name)


def checked_mono(samples: np.ndarray, rate: int, name: str) -> np.ndarray:
    """`prepare` without the resampling: mono, in [-1, 1], refused when empty, too short, NaN or
    silent (shared by `ask` and `chat --input`, so both refuse the same audio the same way)."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    if mono.size == 0:
        raise InputError(f"audio from {name} has no samples")
    if mono.size / rate < MIN_SECONDS:
        raise InputError(f"audio from {name} is too short ({mono.size / rate:.3f} s; need at least {MIN_SECONDS} s)")
    if not np.isfinite(mono).all():
        raise InputError(f"audio from {name} contains NaN or infinite samples")
    peak = float(np.max(np.abs(mono)))
    if peak < SILENCE_PEAK:
        raise InputError(f"audio from {name} is silent (peak below -60 dBFS): no question in it")
    if peak > 1.0:
        # Float WAVs may go past full scale; the recognizer's features and the e2e head expect
        # [-1, 1], and a damaged file's 1e38 samples overflowed their float32 arithmetic to NaN.
        mono = (mono / peak).astype(np.float32)
    return mono


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return samples.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(samples.astype(np.float32, copy=False), rate, target, quality="HQ").astype(np.float32)
