"""Spoken-passage vectors for the index (`index.spoken`): a chunk's first words spoken by espeak-ng
and embedded by the configured speech embedder, the same way an e2e question is embedded.

Made at index time when `index.spoken_passages` is on; the TTS and the speech embedder load on
the first chunk, so an index run with nothing new to speak loads neither.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from voicerag_cli.registry import Registry

RECIPE_FORMAT = "first-words/1"
WORDS = 30  # about 11 s of speech: the measured sweet spot (30 and 60 words scored alike)
VOICE, RATE = "en-us", 165
MAX_S = 30.0  # the speech embedders' window


class SpokenPassages:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.recipe: dict[str, object] = {
            "format": RECIPE_FORMAT,
            "words": WORDS,
            "tts": f"espeak-ng:{VOICE}:{RATE}",
            "speech_embedder": speech_embedder_identity(registry),
        }

    def embed_spoken(self, texts: list[str]) -> np.ndarray:
        import shutil

        from voicerag_cli.audio.io import read_audio, resample
        from voicerag_cli.errors import ModelError
        from voicerag_cli.models.espeak import EspeakSynthesizer

        # espeak-ng whatever models.tts says: the recipe's voice, the one the head was trained on
        executable = shutil.which("espeak-ng")
        if executable is None:
            raise ModelError("index.spoken_passages needs espeak-ng on PATH (apt-get install espeak-ng)")
        tts = EspeakSynthesizer(executable, VOICE, RATE, 50)
        head = self.registry.speech_embedder()
        vectors = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, text in enumerate(texts):
                words = " ".join(text.split()[:WORDS]) or "."
                clip = read_audio(tts.synthesize(words, Path(tmp) / f"{i}.wav"))
                samples = resample(clip.samples, clip.sample_rate, 16_000)[: int(MAX_S * 16_000) - 1]
                vectors.append(np.asarray(head.embed_speech(samples, 16_000), dtype=np.float32))
        return np.stack(vectors)


def speech_embedder_identity(registry: Registry) -> str:
    """Which speech embedder made the vectors, without loading it: its backend, and what its
    row's identity hook adds (the distilled head: its weights file)."""
    from voicerag_cli.backends import load

    spec = registry.spec("speech_embedder")
    return f"{spec.name}:{load(spec.identity)(registry.settings)}" if spec.identity else spec.name
