"""Spoken questions for evaluation: the dataset's own audio when it has some, otherwise
speech synthesized by espeak-ng or Kokoro and cached by (text, voice, rate, pitch).

A voice names its engine by its form, as the tts rows of the backend table declare (`voices`):
Kokoro styles are `xx_name` (jm_kumo) or blends of them (jf_alpha:0.5+jm_kumo:0.5); anything
else goes to the default tts backend, espeak-ng (en-us, en-gb). So one run can mix
both engines, and each question's row records which one spoke it."""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicerag_cli.eval.datasets import EvalItem
    from voicerag_cli.models.base import SpeechSynthesizer
    from voicerag_cli.registry import Registry

# Debian's espeak-ng cannot read Chinese characters, so Chinese questions are spoken by Kokoro's two
# most intelligible styles for Chinese (benchmarks/kokoro_zh_voices.py: Whisper CER on its answers).
DEFAULT_VOICES = {"en": ["en-us", "en-gb"], "zh": ["jm_kumo", "jf_gongitsune"]}
DEFAULT_RATES = [150, 175]
DEFAULT_PITCH = 50


def engine_of(voice: str) -> str:
    """The tts backend whose row's `voices` pattern every term of `voice` matches; a voice no
    row claims goes to the role's default backend."""
    from voicerag_cli.backends import current_table, default_backend

    terms = [term.strip() for term in voice.split("+")]
    for spec in current_table():
        if spec.role == "tts" and spec.voices and all(re.fullmatch(spec.voices, term) for term in terms):
            return spec.name
    return default_backend("tts")


@dataclass(frozen=True)
class Voice:
    name: str
    rate: int
    pitch: int = DEFAULT_PITCH

    @property
    def engine(self) -> str:
        return engine_of(self.name)

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "engine": self.engine}


def voice_plan(qids: list[str], voices: list[str], rates: list[int], seed: int) -> dict[str, Voice]:
    """Deterministically give each question one (voice, rate), cycling through every
    combination in a seeded order so that all are used about equally."""
    combos = [Voice(v, r) for v in voices for r in rates]
    random.Random(seed).shuffle(combos)
    return {qid: combos[i % len(combos)] for i, qid in enumerate(qids)}


class QuestionAudio:
    """Renders a question with its voice's engine; engines load on first use, so a run whose
    questions all carry audio (or that has no spoken mode) loads none."""

    def __init__(self, registry: Registry, cache_dir: Path) -> None:
        self.registry = registry
        self.cache_dir = cache_dir
        self._engines: dict[str, SpeechSynthesizer] = {}

    def synthesizer(self, engine: str) -> SpeechSynthesizer:
        if engine not in self._engines:
            if self.registry.backend_name("tts") == engine:
                self._engines[engine] = self.registry.tts()
            else:  # the other engine than the configured one: built from the same settings
                from voicerag_cli.backends import find_spec, load

                factory: Any = load(find_spec("tts", engine).factory)
                self._engines[engine] = factory(self.registry.settings, self.registry)
        return self._engines[engine]

    def path_for(self, item: EvalItem, voice: Voice) -> Path:
        if item.audio is not None:
            return item.audio
        key = hashlib.sha1(f"{item.question}\0{voice.name}\0{voice.rate}\0{voice.pitch}".encode()).hexdigest()
        path = self.cache_dir / key[:2] / f"{key}.wav"
        if not path.exists():  # synthesize() writes atomically, so a cached file is complete
            tts = self.synthesizer(voice.engine)
            tts.synthesize(item.question, path, voice=voice.name, rate=voice.rate, pitch=voice.pitch)
        return path
