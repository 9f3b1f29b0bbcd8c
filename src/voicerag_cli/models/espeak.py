"""Text-to-speech through the espeak-ng program (Debian package `espeak-ng`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from voicerag_cli.errors import BackendError, ModelError
from voicerag_cli.models.weights_info import WeightsInfo

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles


class EspeakSynthesizer:
    def __init__(self, executable: str, voice: str, rate: int, pitch: int) -> None:
        self.executable = executable
        self.voice = voice
        self.rate = rate
        self.pitch = pitch

    def synthesize(
        self,
        text: str,
        out_path: Path,
        voice: str | None = None,
        rate: int | None = None,
        pitch: int | None = None,
    ) -> Path:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(out_path.name + ".part")
        command = [
            self.executable,
            "-v", voice or self.voice,
            "-s", str(rate or self.rate),
            "-p", str(self.pitch if pitch is None else pitch),
            "-w", str(tmp),
            "--stdin",
        ]  # fmt: skip
        # Text goes through stdin so that a leading '-' or quotes are never read as options.
        result = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, check=False)
        if result.returncode != 0 or not tmp.exists():
            tmp.unlink(missing_ok=True)
            raise BackendError(
                f"espeak-ng failed: {result.stderr.decode(errors='replace').strip() or result.returncode}"
            )
        tmp.replace(out_path)
        return out_path


def espeak_weights(settings: Settings) -> WeightsInfo:
    exe = shutil.which("espeak-ng")
    return WeightsInfo(exe or "espeak-ng (not on PATH: apt-get install espeak-ng)", exe is not None)


def create(settings: Settings, registry: Roles) -> EspeakSynthesizer:
    executable = shutil.which("espeak-ng")
    if executable is None:
        raise ModelError("espeak-ng not found on PATH (install it: apt-get install espeak-ng)")
    return EspeakSynthesizer(executable, settings.tts.voice, settings.tts.rate, settings.tts.pitch)
