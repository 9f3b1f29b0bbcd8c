"""The interfaces every backend of a role implements."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from voicerag_cli.structure import ChunkBlock, searchable_text

if TYPE_CHECKING:
    import numpy as np


_PARAGRAPH = re.compile(r"\S(?:.*?\S)?(?=\n\s*\n|\s*$)", re.DOTALL)


@dataclass(frozen=True)
class EmbeddingSpace:
    """Vectors are comparable only inside one space: same model (or a model trained onto it),
    same dimension, same metric."""

    space_id: str
    dim: int
    # "cosine": L2-normalized vectors, compared by direction (every built-in embedder);
    # "l2": raw vectors, compared by Euclidean distance (SONAR under sonar.metric = "l2")
    metric: str = "cosine"


@dataclass
class Passage:
    chunk_id: int
    source: str
    text: str
    score: float = 0.0  # the vector similarity (cosine; minus squared L2 for an l2 space)
    start: int = 0
    end: int = 0
    lexical: float | None = None  # its BM25 score when the terms found it (`index.lexical`)
    spoken: float | None = None  # e2e: the question's similarity to its spoken vector (`index.spoken`)
    heading_path: tuple[str, ...] = ()  # the headings above the chunk in its document, outermost first
    # Its blocks' kinds and spans in `text`, as read at index time (none: read it as paragraphs).
    blocks: tuple[ChunkBlock, ...] = ()


def passage_blocks(passage: Passage) -> tuple[ChunkBlock, ...]:
    """The blocks read at index time; a passage from a store that keeps none (an index written
    before layouts, Milvus) reads as paragraphs of prose."""
    if passage.blocks:
        return passage.blocks
    found = []
    for match in _PARAGRAPH.finditer(passage.text):
        found.append(ChunkBlock("prose", match.start(), match.end(), "", passage.heading_path))
    return tuple(found)


@dataclass
class SpokenAudio:
    """Speech a generator produced itself (speech-out models): float32 mono samples."""

    samples: np.ndarray
    sample_rate: int


@dataclass
class Answer:
    text: str
    cited: list[int] = field(default_factory=list)  # 1-based positions in the passages list
    _: KW_ONLY  # the rest by name: a positional SpokenAudio once landed in `quotes`
    # The sentence quoted from each cited passage (1-based position -> sentence), when known.
    quotes: dict[int, str] = field(default_factory=dict)
    # False when the generator found nothing that answers (the best passage scored too low).
    found: bool = True
    # What the TTS reads when it differs from `text`: an example is announced, not read out.
    spoken: str | None = None
    # Set by generators that speak their answer; the pipeline then uses it instead of the TTS.
    speech: SpokenAudio | None = None


@runtime_checkable
class TextEmbedder(Protocol):
    space: EmbeddingSpace

    def embed_texts(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Return float32 [n, dim], L2-normalized."""
        ...


@runtime_checkable
class SpeechEmbedder(Protocol):
    space: EmbeddingSpace

    def embed_speech(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Return float32 [dim], L2-normalized, in `space`."""
        ...


@dataclass
class Transcript:
    text: str
    language: str
    # Whisper's mean token log-probability over the clip (its own confidence; None when a
    # recognizer does not say): `asr.index_prompt_below` decides from it whether to decode again.
    log_prob: float | None = None


@runtime_checkable
class SpeechRecognizer(Protocol):
    def transcribe(self, audio: np.ndarray, sample_rate: int, prompt: str | None = None) -> Transcript:
        """`prompt`: decoder context for this clip in place of the configured one."""
        ...


@dataclass
class Query:
    """What the user asked, in every form the pipeline has: generators use what they can.
    In e2e mode there is no transcript (`text` is None) but `vector` is the spoken question's
    embedding in the index's space."""

    text: str | None
    vector: np.ndarray | None = None
    # True for a typed question (ask --text, chat --text): its retrieval scores are what the
    # "found nothing" threshold was calibrated on; transcripts with ASR errors score lower.
    typed: bool = False
    # Earlier (question, answer) turns of a conversation, oldest first; the question is "" when
    # it was spoken in e2e mode and never transcribed.
    history: list[tuple[str, str]] = field(default_factory=list)
    # The ranking that the first decoding's transcript retrieved, when asr.index_prompt decoded a
    # second time: retrieval merges it with this query's own (`pipeline.ask.merge_rankings`).
    earlier_ranking: list[Passage] = field(default_factory=list)
    # The spoken question itself (mono float32), for generators that listen (speech-in models).
    audio: np.ndarray | None = None
    audio_rate: int = 16_000


@runtime_checkable
class Generator(Protocol):
    def generate(self, query: Query, passages: list[Passage]) -> Answer: ...


@runtime_checkable
class DeepReader(Protocol):
    """A generator that reads more passages than the sources show (`generator.read_passages`):
    the extractive answerer, whose answer often sits in the 6th-10th best chunk. The pipeline
    shows the top k and the passages it cites beyond them, and has it renumber its citations."""

    def renumbered(self, answer: Answer, numbers: dict[int, int]) -> Answer:
        """`answer` citing passage `numbers[n]` wherever it cited passage n."""
        ...


class AnswerListener(Protocol):
    """Receives an answer while it is being generated."""

    def on_text(self, delta: str) -> None: ...

    def on_audio(self, samples: np.ndarray, sample_rate: int) -> None: ...


@runtime_checkable
class StreamingGenerator(Protocol):
    """A generator that can hand out its answer's text and speech as they are produced: set
    `listener` before `generate` (None: nothing is streamed)."""

    listener: AnswerListener | None

    def generate(self, query: Query, passages: list[Passage]) -> Answer: ...


class Reading(Protocol):
    """What a reader made of one passage for one question."""

    @property
    def relevance(self) -> float:
        """How well the passage answers the question: a logit (0: even odds)."""
        ...

    def span_score(self, start: int, end: int) -> float:
        """How much the characters `start:end` of the passage's text are the answer."""
        ...


@runtime_checkable
class PassageReader(Protocol):
    """A model that reads (question, passage) pairs: reranks passages and finds the answering
    span inside each (the answerers' and the reranking stage's shared reader)."""

    def read(self, question: str, passages: list[str]) -> list[Reading]: ...


def read_passages(reader: PassageReader, question: str, passages: Sequence[Passage]) -> list[Reading]:
    """The reader's readings of passages as it was trained to see them: each chunk's innermost
    headings, then its text (a span of `text` starts that many characters later)."""
    return reader.read(question, [searchable_text(p.text, p.heading_path) for p in passages])


@runtime_checkable
class SpeechSynthesizer(Protocol):
    def synthesize(
        self, text: str, out_path: Path, voice: str | None = None, rate: int | None = None, pitch: int | None = None
    ) -> Path:
        """Write a WAV of `text` to `out_path` and return it; None keeps the configured voice/rate/pitch."""
        ...


def embed_queries(embedder: TextEmbedder, texts: list[str]) -> np.ndarray:
    """Questions through the embedder's query side where it has one (e5's "query: " prefix)."""
    method = getattr(embedder, "embed_queries", None)
    return method(texts) if method is not None else embedder.embed_texts(texts)


class Roles(Protocol):
    """What a backend's factory may ask for besides its settings: the other roles' instances
    (the registry, registry.Registry, is one). The extractive generator scores sentences with
    the text embedder this way."""

    def text_embedder(self) -> TextEmbedder: ...

    def speech_embedder(self) -> SpeechEmbedder: ...

    def asr(self) -> SpeechRecognizer: ...

    def generator(self) -> Generator: ...

    def tts(self) -> SpeechSynthesizer: ...

    def reader(self) -> PassageReader | None: ...
