"""Speaking a streamed answer sentence by sentence: each sentence goes to the speech synthesizer
as soon as it is complete, and its audio to the listener (the CLI plays it while the model
writes on), so speech starts long before the answer is finished."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from voicerag_cli.markup import answer_text, spoken
from voicerag_cli.models.base import AnswerListener, SpeechSynthesizer
from voicerag_cli.sentences import split_sentences

_CITATION = re.compile(r"\s*\[\d+\]")


def speakable(text: str) -> str:
    """A piece of the answer as it is read aloud: no citations, no markup, code made sayable."""
    return spoken(answer_text(_CITATION.sub("", text)).replace("\n\n", " "))


class SentenceSpeaker:
    """Feeds complete sentences of streamed text to a synthesizer and their audio to `listener`."""

    def __init__(self, listener: AnswerListener, synthesizer: Callable[[], SpeechSynthesizer]) -> None:
        self.listener = listener
        self.synthesizer = synthesizer  # called on the first sentence: the TTS loads only if audio is wanted
        self.pending = ""
        self.spoken = 0
        self.folder: tempfile.TemporaryDirectory[str] | None = None

    def feed(self, delta: str) -> None:
        self.pending += delta
        sentences = split_sentences(self.pending)
        if len(sentences) < 2:  # the last one may still grow
            return
        cut = sentences[-1].start
        self._speak(self.pending[:cut])
        self.pending = self.pending[cut:]

    def finish(self) -> None:
        self._speak(self.pending)
        self.pending = ""
        if self.folder is not None:
            self.folder.cleanup()
            self.folder = None

    def _speak(self, text: str) -> None:
        words = speakable(text)
        if not words.strip():
            return
        import soundfile as sf

        if self.folder is None:
            self.folder = tempfile.TemporaryDirectory(prefix="voicerag-llama-")
        self.spoken += 1
        path = self.synthesizer().synthesize(words, Path(self.folder.name) / f"{self.spoken:03d}.wav")
        samples, rate = sf.read(str(path), dtype="float32", always_2d=False)
        if samples.ndim > 1:
            samples = samples.mean(axis=1)
        self.listener.on_audio(samples, rate)
