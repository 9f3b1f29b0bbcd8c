"""The ask pipeline: (audio | text) -> query vector -> top-k passages -> answer -> speech."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicerag_cli.errors import InputError
from voicerag_cli.models.base import Answer, Passage, Query
from voicerag_cli.pipeline.timing import Stopwatch

if TYPE_CHECKING:
    from voicerag_cli.audio.io import Audio
    from voicerag_cli.index.store import IndexReader
    from voicerag_cli.registry import Registry

SCHEMA_VERSION = 1
_CITATION = re.compile(r"\s*\[\d+(?:,\s*\d+)*\]")
RAG_MODES = ("asr", "e2e")


@dataclass
class AskResult:
    input: str
    rag: str  # "asr", "e2e" or "text"
    index: str
    transcript: str | None
    question: str | None
    answer: Answer
    sources: list[Passage]
    timings_ms: dict[str, float]
    models: dict[str, str]
    audio_seconds: float | None = None
    answer_audio: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The stable `--json` schema (documented in README; bump SCHEMA_VERSION on change)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "input": self.input,
            "rag": self.rag,
            "index": self.index,
            "audio_seconds": None if self.audio_seconds is None else round(self.audio_seconds, 3),
            "transcript": self.transcript,
            "question": self.question,
            "answer": self.answer.text,
            "citations": self.answer.cited,
            "sources": [
                {
                    "rank": rank,
                    "score": round(p.score, 4),
                    "source": p.source,
                    "start": p.start,
                    "end": p.end,
                    "chunk_id": p.chunk_id,
                    "text": p.text,
                }
                for rank, p in enumerate(self.sources, start=1)
            ],
            "timings_ms": {stage: round(ms, 1) for stage, ms in self.timings_ms.items()},
            "models": self.models,
            "answer_audio": self.answer_audio,
        }


def spoken_form(text: str) -> str:
    """The answer as it should be read aloud: without [n] citation markers."""
    return " ".join(_CITATION.sub("", text).split())


class AskPipeline:
    def __init__(self, registry: Registry, reader: IndexReader, k: int, ef_search: int) -> None:
        self.registry = registry
        self.reader = reader
        self.k = k
        self.ef_search = ef_search

    def models_used(self, rag: str) -> dict[str, str]:
        roles = ["text_embedder", "generator"] + (
            ["asr"] if rag == "asr" else ["speech_embedder"] if rag == "e2e" else []
        )
        return {role: self.registry.backend_name(role) for role in roles}

    def ask_audio(self, audio: Audio, rag: str) -> AskResult:
        watch = Stopwatch()
        if rag == "asr":
            with watch.stage("asr"):
                transcript = self.registry.asr().transcribe(audio.samples, audio.sample_rate).text
            if not transcript:
                raise InputError(f"no speech recognized in {audio.source}")
            result = self._answer_text(transcript, watch, rag="asr")
            result.transcript = transcript
        elif rag == "e2e":
            embedder = self.registry.speech_embedder()
            self.reader.check_space(embedder.space, "speech embedder")
            with watch.stage("embed_speech"):
                vector = embedder.embed_speech(audio.samples, audio.sample_rate)
            with watch.stage("search"):
                passages = self.reader.search(vector, self.k, self.ef_search)
            with watch.stage("generate"):
                answer = self.registry.generator().generate(Query(text=None, vector=vector), passages)
            result = self._result(None, answer, passages, watch, rag="e2e")
        else:
            raise InputError(f"unknown --rag mode {rag!r}; choose from {', '.join(RAG_MODES)}")
        result.input = audio.source
        result.audio_seconds = audio.duration_s
        return result

    def ask_text(self, question: str) -> AskResult:
        if not question.strip():
            raise InputError("the question text is empty")
        result = self._answer_text(question.strip(), Stopwatch(), rag="text")
        result.input = "text"
        return result

    def _answer_text(self, question: str, watch: Stopwatch, rag: str) -> AskResult:
        embedder = self.registry.text_embedder()
        self.reader.check_space(embedder.space, "text embedder")
        with watch.stage("embed_text"):
            vector = embedder.embed_texts([question])[0]
        with watch.stage("search"):
            passages = self.reader.search(vector, self.k, self.ef_search)
        with watch.stage("generate"):
            answer = self.registry.generator().generate(Query(text=question, vector=vector), passages)
        return self._result(question, answer, passages, watch, rag)

    def _result(
        self, question: str | None, answer: Answer, passages: list[Passage], watch: Stopwatch, rag: str
    ) -> AskResult:
        return AskResult(
            input="",
            rag=rag,
            index=self.reader.manifest.name,
            transcript=None,
            question=question,
            answer=answer,
            sources=passages,
            timings_ms=watch.ms,
            models=self.models_used(rag),
        )

    def speak(self, result: AskResult, out_path: Path) -> Path:
        watch = Stopwatch()
        with watch.stage("tts"):
            path = self.registry.tts().synthesize(spoken_form(result.answer.text), out_path)
        result.timings_ms.update(watch.ms)
        result.answer_audio = str(path)
        result.models["tts"] = self.registry.backend_name("tts")
        return path
