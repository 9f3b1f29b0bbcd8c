"""Spoken questions for evaluation: the dataset's own audio when it has some, otherwise
speech synthesized with the TTS backend and cached by (text, voice, rate, pitch)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicerag_cli.eval.datasets import EvalItem
    from voicerag_cli.models.base import SpeechSynthesizer

DEFAULT_VOICES = {"en": ["en-us", "en-gb"], "zh": ["cmn"]}
DEFAULT_RATES = [150, 175]
DEFAULT_PITCH = 50


@dataclass(frozen=True)
class Voice:
    name: str
    rate: int
    pitch: int = DEFAULT_PITCH

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def voice_plan(qids: list[str], voices: list[str], rates: list[int], seed: int) -> dict[str, Voice]:
    """Deterministically give each question one (voice, rate), cycling through every
    combination in a seeded order so that all are used about equally."""
    combos = [Voice(v, r) for v in voices for r in rates]
    random.Random(seed).shuffle(combos)
    return {qid: combos[i % len(combos)] for i, qid in enumerate(qids)}


class QuestionAudio:
    def __init__(self, tts: SpeechSynthesizer, cache_dir: Path) -> None:
        self.tts = tts
        self.cache_dir = cache_dir

    def path_for(self, item: EvalItem, voice: Voice) -> Path:
        if item.audio is not None:
            return item.audio
        key = hashlib.sha1(f"{item.question}\0{voice.name}\0{voice.rate}\0{voice.pitch}".encode()).hexdigest()
        path = self.cache_dir / key[:2] / f"{key}.wav"
        if not path.exists():  # synthesize() writes atomically, so a cached file is complete
            self.tts.synthesize(item.question, path, voice=voice.name, rate=voice.rate, pitch=voice.pitch)
        return path
