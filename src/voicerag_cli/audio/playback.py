"""Play a WAV on the default output device (sounddevice / PortAudio)."""

from __future__ import annotations

from pathlib import Path

from voicerag_cli.errors import BackendError


def check_output_device() -> None:
    """Fail before any work when --play has nowhere to play: no PortAudio, or no output device."""
    try:
        import sounddevice as sd
    except OSError as exc:
        raise BackendError(
            f"--play needs audio output, but PortAudio is missing: {exc} (install libportaudio2)"
        ) from exc
    try:
        sd.query_devices(None, "output")
    except (ValueError, sd.PortAudioError) as exc:
        raise BackendError(
            "--play needs an audio output device and none is available (use --out DIR to save the answer instead)"
        ) from exc


def play_wav(path: Path) -> None:
    import soundfile as sf

    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        raise BackendError(f"cannot play audio: {exc} (install libportaudio2)") from exc
    samples, rate = sf.read(str(path), dtype="float32")
    try:
        sd.play(samples, rate)
        sd.wait()
    except sd.PortAudioError as exc:
        raise BackendError(f"cannot play audio: {exc} (answer saved at {path})") from exc
