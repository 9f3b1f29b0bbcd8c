"""Speak a text with espeak-ng into 16 kHz float32 samples (in memory, no temp files)."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np

from voicerag_cli.errors import ModelError
from voicerag_cli.training.voices import Voice


def espeak_executable() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ModelError("espeak-ng not found on PATH (apt-get install espeak-ng)")
    return exe


def speak(text: str, voice: Voice, exe: str | None = None) -> np.ndarray:
    import soundfile as sf

    from voicerag_cli.audio.io import TARGET_RATE, resample

    command = [
        exe or espeak_executable(),
        "-v", voice.name,
        "-s", str(voice.rate),
        "-p", str(voice.pitch),
        "-g", str(voice.word_gap),
        "--stdout",
    ]  # fmt: skip
    # Text on stdin: a leading '-' or quotes are never read as options.
    result = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise ModelError(f"espeak-ng failed for voice {voice.name}: {result.stderr.decode(errors='replace').strip()}")
    # espeak-ng streams a WAV whose header sizes are unset; soundfile reads it from memory.
    samples, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    return resample(samples, rate, TARGET_RATE)
