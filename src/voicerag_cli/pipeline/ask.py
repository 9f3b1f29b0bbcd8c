"""The ask pipeline: (audio | text) -> query vector -> top-k passages -> answer -> speech.

The stages are separate methods so that `voicerag eval` times and scores exactly the code
that `voicerag ask` runs.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from voicerag_cli.errors import InputError
from voicerag_cli.index import lexical
from voicerag_cli.models.base import (
    Answer,
    DeepReader,
    EmbeddingSpace,
    Passage,
    Query,
    Transcript,
    embed_queries,
    passage_blocks,
    read_passages,
)
from voicerag_cli.pipeline.question import History, Question
from voicerag_cli.pipeline.release_notes import demote_release_notes
from voicerag_cli.pipeline.timing import Stopwatch

if TYPE_CHECKING:
    from collections.abc import Callable

    from voicerag_cli.audio.io import Audio
    from voicerag_cli.registry import Registry

SCHEMA_VERSION = 1
RAG_MODES = ("asr", "e2e")
# In a conversation, the previous question is blended into the retrieval vector at this weight:
# a follow-up like "and when?" then still finds the topic, while a self-contained new question
# (whose own vector dominates) is not dragged back to the old one.
FOLLOW_UP_WEIGHT = 0.5
_CITATION = re.compile(r"\s*\[\d+(?:,\s*\d+)*\]")


class Searcher(Protocol):
    """A vector index the pipeline can query: the on-disk IndexReader or eval's MemoryIndex."""

    name: str
    space: EmbeddingSpace

    def check_space(self, space: EmbeddingSpace, role: str) -> None: ...

    def search(self, vector: np.ndarray, k: int, ef: int) -> list[Passage]: ...

    def lexical_search(self, text: str, vector: np.ndarray, n: int) -> list[tuple[Passage, float]] | None: ...


@dataclass
class Round:
    passages: list[Passage]
    answer: Answer


@dataclass
class Outcome:
    """What answering one query produced.

    `context` is what the final answer was generated from and cites (round one's top k and the
    deeper passages a DeepReader cited, or the union of that and round two's top k); `ranked` is
    round one's full retrieval, `depth` deep, for scoring."""

    context: list[Passage]
    ranked: list[Passage]
    answer: Answer
    first_round: Round | None


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
    first_round: Round | None = None  # set when two-round retrieval ran
    first_transcript: str | None = None  # set when asr.index_prompt decoded a second time
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The stable `--json` schema (documented in docs/scripting.md). SCHEMA_VERSION changes when a field
        is removed, renamed or changes type; a new field keeps it (readers ignore unknown keys)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "input": self.input,
            "rag": self.rag,
            "index": self.index,
            "audio_seconds": None if self.audio_seconds is None else round(self.audio_seconds, 3),
            "transcript": self.transcript,
            "first_transcript": self.first_transcript,
            "question": self.question,
            "answer": self.answer.text,
            "found": self.answer.found,
            "citations": self.answer.cited,
            "sources": sources_json(self.sources, self.answer.quotes, self.source_rounds()),
            "rounds": 1 if self.first_round is None else 2,
            "first_round": None
            if self.first_round is None
            else {
                "answer": self.first_round.answer.text,
                "sources": sources_json(self.first_round.passages, self.first_round.answer.quotes),
            },
            "timings_ms": {stage: round(ms, 1) for stage, ms in self.timings_ms.items()},
            "models": self.models,
            "answer_audio": self.answer_audio,
        }

    def source_rounds(self) -> list[int]:
        """The retrieval round each source came from: 1, or 2 for those only round two found."""
        if self.first_round is None:
            return [1] * len(self.sources)
        first = {p.chunk_id for p in self.first_round.passages}
        return [1 if p.chunk_id in first else 2 for p in self.sources]


def sources_json(
    passages: list[Passage], quotes: dict[int, str] | None = None, rounds: list[int] | None = None
) -> list[dict[str, Any]]:
    return [
        {
            "rank": rank,
            "score": round(p.score, 4),
            "lexical": None if p.lexical is None else round(p.lexical, 4),
            "spoken": None if p.spoken is None else round(p.spoken, 4),
            "source": p.source,
            "start": p.start,
            "end": p.end,
            "chunk_id": p.chunk_id,
            "text": p.text,
            "quote": (quotes or {}).get(rank),  # the sentence the answer cites from it, or null
            "round": rounds[rank - 1] if rounds else 1,
        }
        for rank, p in enumerate(passages, start=1)
    ]


def spoken_form(text: str) -> str:
    """The answer as it should be read aloud: without [n] citation markers or markup, with
    code made sayable ("verify=False" -> "verify equals False")."""
    from voicerag_cli.markup import spoken

    return spoken(_CITATION.sub("", text))


def _normalized(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def index_prompt(base: str, passages: list[Passage], passages_used: int = 3, chars_each: int = 60) -> str:
    """Whisper's prompt for a second decoding: the configured prompt, then the start of the top
    passages' innermost heading and prose (Whisper keeps only a prompt's last ~220 tokens, so
    each passage is cut short; code would spend those tokens on no word a question says)."""
    starts = []
    for passage in passages[:passages_used]:
        blocks = passage_blocks(passage)
        words = [passage.text[b.start : b.end] for b in blocks if b.kind != "code"]
        # a chunk that starts inside a section: the section's heading first
        heading = [] if blocks and blocks[0].kind == "heading" else list(passage.heading_path[-1:])
        prose = " ".join(" ".join([*heading, *words]).split()) or passage.text
        starts.append(prose[:chars_each])
    return base + "".join(starts)


def needs_second_decoding(transcript: Transcript, below: float) -> bool:
    """Decode again when Whisper's mean token log-probability is under `below` (0: always; a
    recognizer that reports no confidence is always decoded again)."""
    return below >= 0 or transcript.log_prob is None or transcript.log_prob < below


# Reranking: a reader's relevance logit loses this much per rank of the search, so that its
# near-ties keep the search's order.
RANK_PRIOR = 0.05
RANK_OFFSET = 10  # reciprocal-rank merging: 1 / (RANK_OFFSET + rank), rank 0 the best


def merge_rankings(current: list[Passage], earlier: list[Passage]) -> list[Passage]:
    """Both transcripts' rankings in one, by summed reciprocal rank: a second decoding that
    copied a passage's words into the question cannot push out what the first one found
    (RGB-en and HotpotQA pooled: as good as the better of the two on each). Ties keep `current`'s order."""
    scores: dict[int, float] = {}
    passages: dict[int, Passage] = {}
    for ranking in (current, earlier):
        for rank, passage in enumerate(ranking):
            scores[passage.chunk_id] = scores.get(passage.chunk_id, 0.0) + 1.0 / (RANK_OFFSET + rank)
            passages.setdefault(passage.chunk_id, passage)
    return sorted(passages.values(), key=lambda p: -scores[p.chunk_id])


def merge_rounds(first: list[Passage], second: list[Passage]) -> list[Passage]:
    """Union of two retrievals, first-round order first, without duplicates."""
    seen = {p.chunk_id for p in first}
    return first + [p for p in second if p.chunk_id not in seen]


class AskPipeline:
    def __init__(
        self,
        registry: Registry,
        searcher: Searcher,
        k: int,
        ef_search: int,
        rounds: int = 1,
        depth: int = 0,
        read: int = 0,
    ) -> None:
        """`k` passages go to the generator and are shown as sources; a DeepReader generator reads
        `read` (`generator.read_passages`) and the sources add those it cites; `depth` (>= both)
        are retrieved, for scoring deeper ranks in eval."""
        if rounds not in (1, 2):
            raise InputError(f"--rounds must be 1 or 2, got {rounds}")
        self.registry = registry
        self.searcher = searcher
        self.k = k
        self.read = max(k, read)
        self.depth = max(k, depth, read)
        self.ef_search = ef_search
        self.rounds = rounds
        self.on_stage: Callable[[str], None] | None = None  # told each stage as it starts (a status line)

    def stopwatch(self) -> Stopwatch:
        return Stopwatch(self.on_stage)

    def models_used(self, rag: str) -> dict[str, str]:
        extra = {"asr": ["asr"], "e2e": ["speech_embedder"]}.get(rag, [])
        return {role: self.registry.backend_name(role) for role in ["text_embedder", "generator", *extra]}

    # --- stages -----------------------------------------------------------------------
    def transcribe(self, audio: Audio, watch: Stopwatch, prompt: str | None = None, stage: str = "asr") -> Transcript:
        recognizer = self.registry.asr()  # loaded outside the stage: timings exclude model loading
        with watch.stage(stage):
            transcript = recognizer.transcribe(audio.samples, audio.sample_rate, prompt=prompt)
        if not transcript.text:
            raise InputError(f"no speech recognized in {audio.source}")
        return transcript

    def transcribed_query(
        self, audio: Audio, watch: Stopwatch, history: History = (), prompt_below: float | None = None
    ) -> tuple[Query, str | None]:
        """The asr path's query, and the first transcript when `asr.index_prompt` decoded again:
        prompted with the start of the passages the first transcript found, so that names and
        terms come out spelled as the index spells them. The second transcript's query is used,
        carrying the first one's ranking to be merged with its own (a passage prompt also tempts
        Whisper to copy the passages' words into the question). `asr.index_prompt_below` can
        limit the second decoding to first transcripts that Whisper is unsure of (`prompt_below`
        in its place: chat's own limit)."""
        settings = self.registry.settings.asr
        below = settings.index_prompt_below if prompt_below is None else prompt_below
        transcript = self.transcribe(audio, watch)
        query = self.text_query(transcript.text, watch, history)
        if not settings.index_prompt or not needs_second_decoding(transcript, below):
            return query, None
        found = self.retrieve(query, watch, stage="search_prompt")
        prompt = index_prompt(settings.initial_prompt, found)
        try:
            second = self.transcribe(audio, watch, prompt=prompt, stage="asr_round2")
        except InputError:  # nothing decoded under the prompt: the first transcript stands
            return query, transcript.text
        second_query = self.text_query(second.text, watch, history)
        second_query.earlier_ranking = found
        return second_query, transcript.text

    def text_query(self, text: str, watch: Stopwatch, history: History = ()) -> Query:
        """`history`: the conversation's earlier (question, answer) turns, oldest first."""
        embedder = self.registry.text_embedder()
        self.searcher.check_space(embedder.space, "text embedder")
        previous = next((q for q, _ in reversed(history) if q), "")
        with watch.stage("embed_text"):
            if previous:
                current, before = embed_queries(embedder, [text, previous])
                vector = _normalized(current + FOLLOW_UP_WEIGHT * before)
            else:
                vector = embed_queries(embedder, [text])[0]
        return Query(text=text, vector=vector, history=list(history))

    def speech_query(self, audio: Audio, watch: Stopwatch, history: History = ()) -> Query:
        embedder = self.registry.speech_embedder()
        self.searcher.check_space(embedder.space, "speech embedder")
        with watch.stage("embed_speech"):
            vector = embedder.embed_speech(audio.samples, audio.sample_rate)
        return Query(text=None, vector=np.asarray(vector, dtype=np.float32), history=list(history))

    def retrieve(self, query: Query, watch: Stopwatch, stage: str = "search") -> list[Passage]:
        """The `depth` best passages: by the vector, fused with the lexical terms' ranking for a
        question with text at `ask.lexical_weight` (`index.lexical.hybrid_search`); a spoken
        question (e2e) with the chunks' spoken vectors where the index has them (`speech_ranked`).
        Release notes come after the other pages unless the question names a version."""
        assert query.vector is not None
        weight = self.registry.settings.ask.lexical_weight
        with watch.stage(stage):
            if query.text is None:
                return demote_release_notes(self.speech_ranked(query.vector), None)
            ranked = lexical.hybrid_search(self.searcher, query.vector, query.text, self.depth, self.ef_search, weight)
            if query.earlier_ranking:
                ranked = merge_rankings(ranked, query.earlier_ranking)[: self.depth]
            return demote_release_notes(ranked, query.text)

    def speech_ranked(self, vector: np.ndarray) -> list[Passage]:
        """e2e: the text vectors' top `spoken.POOL` rescored with the question's similarity to
        their spoken vectors at `ask.spoken_weight`, when the index has spoken vectors made the
        way this speech embedder makes them (else, and for weight 0, the text vectors alone)."""
        from voicerag_cli.index import spoken

        weight = self.registry.settings.ask.spoken_weight
        searcher = self.searcher
        if weight <= 0 or not isinstance(searcher, spoken.SpokenSearcher) or searcher.spoken_recipe is None:
            return self.searcher.search(vector, self.depth, self.ef_search)
        from voicerag_cli.pipeline.spoken_passages import SpokenPassages

        if searcher.spoken_recipe != SpokenPassages(self.registry).recipe:  # another head or voice made them
            return self.searcher.search(vector, self.depth, self.ef_search)
        pool = self.searcher.search(vector, max(self.depth, spoken.POOL), self.ef_search)
        similar = {i: float(v @ vector) for i, v in searcher.spoken_vectors([p.chunk_id for p in pool]).items()}
        by_id = {p.chunk_id: p for p in pool}
        order = spoken.rescore({p.chunk_id: p.score for p in pool}, similar, weight)
        return [dataclasses.replace(by_id[i], spoken=similar.get(i)) for i in order[: self.depth]]

    def generate(self, query: Query, passages: list[Passage], watch: Stopwatch, stage: str = "generate") -> Answer:
        generator = self.registry.generator()
        with watch.stage(stage):
            return generator.generate(query, passages)

    def rerank(self, query: Query, ranked: list[Passage], watch: Stopwatch) -> list[Passage]:
        """The passages the answer reads (`read`, at least k), reordered by the reader where one
        is configured and the question has words: its relevance, with the search rank breaking
        near-ties, release notes still after the rest. The others keep their place after them."""
        reader = self.registry.reader()
        if reader is None or not query.text or len(ranked) < 2:
            return ranked
        head, rest = ranked[: self.read], ranked[self.read :]
        with watch.stage("rerank"):
            readings = read_passages(reader, query.text, head)
        scores = [r.relevance - RANK_PRIOR * rank for rank, r in enumerate(readings)]
        order = sorted(range(len(head)), key=lambda i: -scores[i])
        return demote_release_notes([head[i] for i in order], query.text) + rest

    def second_query(self, query: Query, first_answer: Answer, watch: Stopwatch) -> Query:
        """Round two searches with the question plus the first answer (the seed's strategy).
        Without a transcript (e2e) the answer's text embedding is added to the speech vector."""
        embedder = self.registry.text_embedder()
        with watch.stage("embed_round2"):
            if query.text:
                vector = embedder.embed_texts([f"{query.text} {spoken_form(first_answer.text)}"])[0]
            else:
                assert query.vector is not None
                vector = _normalized(query.vector + embedder.embed_texts([spoken_form(first_answer.text)])[0])
        return dataclasses.replace(query, vector=vector, earlier_ranking=[])

    def read_and_generate(self, query: Query, ranked: list[Passage], watch: Stopwatch) -> tuple[list[Passage], Answer]:
        """The answer from the top k of `ranked`, or from the top `read` for a DeepReader given
        the question's text, and the sources to show with it: the top k, then the deeper passages
        it cites (renumbered k+1...). e2e has no words to tell a deep passage that answers from
        one on the topic, only the speech vector: it reads the top k (click, Flask and Jinja2
        trials: 12 useful of 36 reading 5, 10 reading 10)."""
        generator = self.registry.generator()
        if self.registry.settings.ask.rerank:
            ranked = self.rerank(query, ranked, watch)
        if not isinstance(generator, DeepReader) or self.read <= self.k or not query.text:
            context = ranked[: self.k]
            return context, self.generate(query, context, watch)
        read = ranked[: self.read]
        answer = self.generate(query, read, watch)
        shown = list(range(min(self.k, len(read)))) + sorted({n - 1 for n in answer.cited if self.k < n <= len(read)})
        numbers = {old + 1: new + 1 for new, old in enumerate(shown)}
        return [read[i] for i in shown], generator.renumbered(answer, numbers)

    def answer_query(self, query: Query, watch: Stopwatch) -> Outcome:
        """Retrieve and generate, in one or two rounds (see `Outcome`)."""
        ranked = self.retrieve(query, watch)
        context, answer = self.read_and_generate(query, ranked, watch)
        if self.rounds == 1:
            return Outcome(context, ranked, answer, None)
        first = Round(context, answer)
        second = self.retrieve(self.second_query(query, answer, watch), watch, stage="search_round2")
        context = merge_rounds(context, second[: self.k])
        final = self.generate(query, context, watch, stage="generate_round2")
        return Outcome(context, ranked, final, first)

    # --- whole questions ----------------------------------------------------------------
    def ask(self, question: Question, rag: str, speak_to: Path | None = None) -> AskResult:
        """One question of `voicerag ask`, answered (and spoken to `speak_to`): its timings start
        with reading the audio and end with their total; models loaded for it are noted in
        `extra["model_load_s"]` (their load time is in no stage)."""
        loaded_before = set(self.registry.load_seconds)
        if question.clip is not None:
            result = self.ask_audio(question.clip, rag, read_ms=question.read_ms)
        else:
            assert question.text is not None
            result = self.ask_text(question.text)
        if speak_to is not None:
            self.speak(result, speak_to)
        result.timings_ms["total"] = sum(result.timings_ms.values())
        result.extra["model_load_s"] = {
            role: round(s, 3) for role, s in self.registry.load_seconds.items() if role not in loaded_before
        }
        return result

    def ask_audio(
        self,
        audio: Audio,
        rag: str,
        history: History = (),
        read_ms: float | None = None,
        prompt_below: float | None = None,
    ) -> AskResult:
        """`read_ms`: how long reading `audio` took, reported as the first stage; `prompt_below`:
        in place of `asr.index_prompt_below` (see `transcribed_query`)."""
        watch = self.stopwatch()
        if read_ms is not None:
            watch.ms["read_audio"] = read_ms
        first_transcript = None
        if rag == "asr":
            query, first_transcript = self.transcribed_query(audio, watch, history, prompt_below)
            transcript: str | None = query.text
        elif rag == "e2e":
            transcript = None
            query = self.speech_query(audio, watch, history)
        else:
            raise InputError(f"unknown --rag mode {rag!r}; choose from {', '.join(RAG_MODES)}")
        query.audio, query.audio_rate = audio.samples, audio.sample_rate  # for speech-in generators
        result = self._result(query, watch, rag)
        result.transcript = transcript
        result.first_transcript = first_transcript
        result.input = audio.source
        result.audio_seconds = audio.duration_s
        return result

    def ask_text(self, question: str, history: History = ()) -> AskResult:
        if not question.strip():
            raise InputError("the question text is empty")
        watch = self.stopwatch()
        query = self.text_query(question.strip(), watch, history)
        query.typed = True
        result = self._result(query, watch, rag="text")
        result.input = "text"
        return result

    def _result(self, query: Query, watch: Stopwatch, rag: str) -> AskResult:
        outcome = self.answer_query(query, watch)
        return AskResult(
            input="",
            rag=rag,
            index=self.searcher.name,
            transcript=None,
            question=query.text,
            answer=outcome.answer,
            sources=outcome.context,
            timings_ms=watch.ms,
            models=self.models_used(rag),
            first_round=outcome.first_round,
        )

    def speak(self, result: AskResult, out_path: Path) -> Path:
        if result.answer.speech is not None:  # a speech-out generator already spoke the answer
            import soundfile as sf

            out_path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(out_path), result.answer.speech.samples, result.answer.speech.sample_rate)
            result.answer_audio = str(out_path)
            result.models["tts"] = self.registry.backend_name("generator")
            return out_path
        watch = self.stopwatch()
        synthesizer = self.registry.tts()
        with watch.stage("tts"):
            path = synthesizer.synthesize(spoken_form(result.answer.spoken or result.answer.text), out_path)
        result.timings_ms.update(watch.ms)
        result.answer_audio = str(path)
        result.models["tts"] = self.registry.backend_name("tts")
        return path
