"""espeak-ng speech two ways: `speak` runs the espeak-ng program (tests, benchmarks, this
machine); `EspeakLibrary` drives its C library through ctypes, thousands of clips a second with
no subprocesses, where no program is installed (the GPU machine: the `espeakng-loader` wheel
ships `libespeak-ng.so` and its data folder; one instance per process).
"""

from __future__ import annotations

import ctypes
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
from training.speech.voices import Voice

_AUDIO_OUTPUT_RETRIEVAL = 1
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _PITCH, _WORDGAP = 1, 3, 7
# The espeak-ng program resolves language names; the library's SetVoiceByName wants a voice
# file name, and British English's file is plain "en".
_VOICE_FILES = {"en-gb": "en"}
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakLibrary:
    def __init__(self, library: Path, data_dir: Path) -> None:
        self.lib = ctypes.CDLL(str(library))
        # espeak_Initialize wants the folder that *contains* espeak-ng-data
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_RETRIEVAL, 0, str(data_dir.parent).encode(), 0)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({rate}) with data in {data_dir}")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []

        def collect(wav: ctypes.POINTER(ctypes.c_short), count: int, events: ctypes.c_void_p) -> int:  # type: ignore[valid-type]
            if count > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            return 0

        self._callback = _CALLBACK(collect)  # kept referenced: the library calls it later
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip

    def speak(self, text: str, voice: str, rate: int, pitch: int, word_gap: int = 0) -> np.ndarray:
        """int16 samples at `sample_rate` (22,050 Hz)."""
        accent, plus, variant = voice.partition("+")
        name = _VOICE_FILES.get(accent.lower(), accent) + plus + variant
        if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        for parameter, value in ((_RATE, rate), (_PITCH, pitch), (_WORDGAP, word_gap)):
            self.lib.espeak_SetParameter(parameter, value, 0)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


def espeak_executable() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError("espeak-ng not found on PATH (apt-get install espeak-ng)")
    return exe


def speak(text: str, voice: Voice, exe: str | None = None) -> np.ndarray:
    """`text` spoken by the espeak-ng program: 16 kHz float32 samples, in memory."""
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
        raise RuntimeError(f"espeak-ng failed for voice {voice.name}: {result.stderr.decode(errors='replace').strip()}")
    # espeak-ng streams a WAV whose header sizes are unset; soundfile reads it from memory.
    samples, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    return resample(samples, rate, TARGET_RATE)
