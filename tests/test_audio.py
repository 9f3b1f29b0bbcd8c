"""Audio input: decoding wav/flac/ogg/mp3, stereo mixdown, soxr resampling to 16 kHz, and the
checks that reject unusable input before any model is loaded."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicerag_cli.audio.io import MIN_SECONDS, TARGET_RATE, prepare, read_audio
from voicerag_cli.errors import InputError


def tone(seconds: float, rate: int, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


FORMATS = [("wav", "WAV", "PCM_16", 1e-3), ("flac", "FLAC", "PCM_16", 1e-3), ("ogg", "OGG", "VORBIS", None)]
if "MP3" in sf.available_formats():
    FORMATS.append(("mp3", "MP3", "MPEG_LAYER_III", None))


@pytest.mark.parametrize(("suffix", "container", "subtype", "tolerance"), FORMATS)
def test_read_formats(tmp_path: Path, suffix: str, container: str, subtype: str, tolerance: float | None) -> None:
    original = tone(1.5, TARGET_RATE)
    path = tmp_path / f"tone.{suffix}"
    sf.write(str(path), original, TARGET_RATE, format=container, subtype=subtype)
    audio = read_audio(path)
    assert audio.sample_rate == TARGET_RATE and audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.source == str(path)
    assert audio.duration_s == pytest.approx(1.5, abs=0.06)  # lossy codecs may pad a frame
    assert dominant_hz(audio.samples, TARGET_RATE) == pytest.approx(440, abs=5)
    if tolerance is not None:  # lossless: the very same samples, up to 16-bit quantization
        assert np.max(np.abs(audio.samples - original)) < tolerance


def test_stereo_is_mixed_down(tmp_path: Path) -> None:
    left = tone(1.0, TARGET_RATE, amplitude=0.6)
    right = np.zeros_like(left)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, right], axis=1), TARGET_RATE, subtype="FLOAT")
    audio = read_audio(path)
    assert audio.samples.shape == (TARGET_RATE,)
    np.testing.assert_allclose(audio.samples, left / 2, atol=1e-6)


def test_resampling_keeps_duration_and_pitch(tmp_path: Path) -> None:
    path = tmp_path / "cd.wav"
    sf.write(str(path), tone(2.0, 22_050, freq=1000.0), 22_050, subtype="FLOAT")
    audio = read_audio(path)
    assert audio.sample_rate == TARGET_RATE
    assert abs(len(audio.samples) - 2 * TARGET_RATE) <= 1
    assert dominant_hz(audio.samples, TARGET_RATE) == pytest.approx(1000, abs=2)
    # soxr HQ: the steady middle of the tone keeps its amplitude
    middle = audio.samples[TARGET_RATE // 2 : -TARGET_RATE // 2]
    assert float(np.max(np.abs(middle))) == pytest.approx(0.5, abs=0.01)


def test_stdin_bytes(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    sf.write(buffer, tone(1.0, 44_100), 44_100, format="FLAC")
    audio = read_audio("-", stdin=io.BytesIO(buffer.getvalue()))
    assert audio.source == "<stdin>"
    assert audio.duration_s == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(InputError, match="no audio on stdin"):
        read_audio("-", stdin=io.BytesIO(b""))
    with pytest.raises(InputError, match="<stdin> holds text, not audio"):
        read_audio("-", stdin=io.BytesIO(b"definitely not audio" * 10))
    with pytest.raises(InputError, match="cannot decode audio from <stdin>"):
        read_audio("-", stdin=io.BytesIO(bytes(range(256)) * 4))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_rejected(bad: float) -> None:
    samples = tone(1.0, TARGET_RATE)
    samples[500] = bad
    with pytest.raises(InputError, match="NaN or infinite"):
        prepare(samples, TARGET_RATE, "test")


def test_float_samples_past_full_scale_are_scaled_to_it() -> None:
    samples = tone(1.0, TARGET_RATE, amplitude=4.0)
    audio = prepare(samples, TARGET_RATE, "loud")
    assert np.max(np.abs(audio.samples)) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(audio.samples, samples / 4.0, atol=1e-6)  # the same waveform, quieter
    quiet = tone(1.0, TARGET_RATE, amplitude=0.5)
    np.testing.assert_array_equal(prepare(quiet, TARGET_RATE, "ok").samples, quiet)  # in range: untouched


def test_silence_short_and_empty_are_rejected() -> None:
    with pytest.raises(InputError, match="silent"):
        prepare(np.full(TARGET_RATE, 5e-4, dtype=np.float32), TARGET_RATE, "quiet")  # about -66 dBFS
    with pytest.raises(InputError, match="too short"):
        prepare(tone(MIN_SECONDS * 0.9, TARGET_RATE), TARGET_RATE, "blip")
    with pytest.raises(InputError, match="no samples"):
        prepare(np.zeros((0, 2), dtype=np.float32), TARGET_RATE, "nothing")
    # just above the thresholds passes
    assert prepare(tone(MIN_SECONDS, TARGET_RATE, amplitude=0.002), TARGET_RATE, "ok").duration_s == pytest.approx(0.1)
