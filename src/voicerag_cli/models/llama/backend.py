"""The `llama` generator: llama.cpp in-process through xllamacpp, on any GGUF.

The answer streams: text deltas go to `listener.on_text` as the model writes them, and when the
listener wants audio each finished sentence is synthesized and handed to `listener.on_audio`.
The stream and the returned `Answer` agree: both stop at three sentences plus one example,
both drop citations of passages the prompt did not hold, and a "not found" reply is held back
and becomes the project's NO_ANSWER."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicerag_cli.errors import BackendError, InputError, ModelError
from voicerag_cli.markup import answer_text
from voicerag_cli.models.base import Answer, AnswerListener, Passage, Query, SpeechSynthesizer
from voicerag_cli.models.extractive import NO_ANSWER
from voicerag_cli.models.llama.prompt import build_prompt
from voicerag_cli.models.llama.reply import (
    allowed_length,
    attribute,
    citations,
    could_become_no_answer,
    drop_foreign_citations,
    is_no_answer,
)
from voicerag_cli.models.llama.settings import LlamaConfig
from voicerag_cli.models.llama.speech import SentenceSpeaker

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import PassageReader, Roles


@dataclass
class LlamaStats:
    """The last answer's timings, from the start of `generate`."""

    first_token_ms: float | None = None
    total_ms: float = 0.0
    prompt_tokens: int = 0  # as llama.cpp counted them, chat template included
    prompt_chars: int = 0
    generated_tokens: int = 0


class _Stream:
    """One answer being streamed: what the model wrote, what the listener has been given."""

    def __init__(self, listener: AnswerListener | None, speaker: SentenceSpeaker | None, passages: int) -> None:
        self.listener, self.speaker, self.passages = listener, speaker, passages
        self.raw = ""
        self.sent = 0
        self.done = False

    def add(self, delta: str) -> bool:
        """Take a delta; True when the answer is complete and generation should stop."""
        self.raw += delta
        if could_become_no_answer(self.raw):
            if is_no_answer(self.raw):
                self.done = True
            return self.done
        allowed, self.done = allowed_length(self.raw)
        ready = self.raw[:allowed]
        if not self.done:
            ready = ready[: self._unclosed_citation(ready)]
        self._emit(ready)
        return self.done

    def close(self) -> None:
        if not is_no_answer(self.raw):
            self._emit(self.raw[: allowed_length(self.raw)[0]])
        if self.speaker is not None:
            self.speaker.finish()

    def _unclosed_citation(self, text: str) -> int:
        """Where a "[" that may still become a citation starts (held back), else the end."""
        opening = text.rfind("[", self.sent)
        if opening < 0 or "]" in text[opening:]:
            return len(text)
        # with the spaces before it, which go if the citation does
        return max(self.sent, len(text[:opening].rstrip()))

    def _emit(self, ready: str) -> None:
        if len(ready) <= self.sent:
            return
        piece = drop_foreign_citations(ready[self.sent :], self.passages)
        self.sent = len(ready)
        if self.listener is not None and piece:
            self.listener.on_text(piece)
        if self.speaker is not None and piece:
            self.speaker.feed(piece)


class LlamaGenerator:
    def __init__(
        self,
        server: Any,
        config: LlamaConfig,
        model_path: Path,
        synthesizer: Callable[[], SpeechSynthesizer],
        reader: PassageReader | None = None,
    ) -> None:
        self.server = server  # an xllamacpp.Server holding the loaded model
        self.config = config
        self.model_path = model_path
        self.synthesizer = synthesizer
        self.reader = reader  # picks each passage's best sentences for the bounded prompt
        self.listener: AnswerListener | None = None
        self.stats = LlamaStats()

    def generate(self, query: Query, passages: list[Passage]) -> Answer:
        if not query.text:
            raise InputError("the llama generator needs the question as text (use --rag asr or --text)")
        started = time.perf_counter()
        stats = self.stats = LlamaStats()
        shown = passages[: self.config.passages]
        if not shown:
            return Answer(NO_ANSWER, [], found=False)
        prompt = build_prompt(query.text, shown, self.config.prompt_tokens, self.reader)
        stats.prompt_chars = prompt.chars
        wants_audio = self.listener is not None and bool(getattr(self.listener, "wants_audio", False))
        speaker = SentenceSpeaker(self.listener, self.synthesizer) if wants_audio and self.listener else None
        stream = _Stream(self.listener, speaker, prompt.passages)
        errors: list[str] = []

        def on_chunk(chunk: dict[str, Any]) -> bool:
            # Exceptions raised here would be swallowed by the binding: keep them for after.
            try:
                if "choices" not in chunk:
                    error = chunk.get("error", chunk)
                    message = error.get("message", error) if isinstance(error, dict) else error
                    errors.append(" ".join(str(message).split())[:300])
                    return True
                timings = chunk.get("timings")
                if timings:
                    stats.prompt_tokens = int(timings.get("prompt_n", 0))
                    stats.generated_tokens = int(timings.get("predicted_n", 0))
                delta = (chunk["choices"][0].get("delta") or {}).get("content") or ""
                if not delta:
                    return False
                if stats.first_token_ms is None:
                    stats.first_token_ms = (time.perf_counter() - started) * 1000
                return stream.add(delta)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return True

        request = {
            "messages": prompt.messages,
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
            "stream": True,
        }
        self.server.handle_chat_completions(request, on_chunk)
        stream.close()
        stats.total_ms = (time.perf_counter() - started) * 1000
        if errors:
            raise BackendError(f"llama.cpp failed on {self.model_path.name}: {errors[0]}")
        raw = stream.raw[: allowed_length(stream.raw)[0]]
        if not raw.strip() or is_no_answer(raw):
            return Answer(NO_ANSWER, [], found=False)
        text = attribute(drop_foreign_citations(answer_text(raw), prompt.passages), prompt.texts)
        return Answer(text, citations(text))


def _import_xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError as exc:
        raise ModelError("the llama generator needs python package xllamacpp (pip install 'voicerag[llama]')") from exc
    return xllamacpp


def model_path(settings: Settings) -> Path:
    """The configured GGUF, else the packaged one (joined into the cache on first use)."""
    config = settings.section(LlamaConfig)
    if config.model_path:
        path = Path(config.model_path).expanduser()
        if not path.is_file():
            raise ModelError(f"llama model not found: {path} (set llama.model_path to a GGUF file)")
        return path
    from voicerag_cli.models.llama.packaged import packaged_model
    from voicerag_cli.paths import cache_dir

    return packaged_model(cache_dir(settings.paths.cache_dir))


def load_server(path: Path, config: LlamaConfig) -> Any:
    xllamacpp = _import_xllamacpp()
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.verbosity = -1  # llama.cpp's own log lines would interleave with the answer
    params.no_host = True  # in-process only: no HTTP listener
    params.n_ctx = config.context
    params.n_predict = config.max_tokens
    params.n_parallel = 1
    params.warmup = False
    params.cpuparams.n_threads = config.threads
    params.cpuparams_batch.n_threads = config.threads
    try:
        return xllamacpp.Server(params)
    except RuntimeError as exc:
        raise ModelError(f"llama.cpp cannot load {path}: not a GGUF model it can run ({exc})") from exc


def create(settings: Settings, registry: Roles) -> LlamaGenerator:
    _import_xllamacpp()  # before joining a 1.1 GB model that could not be run
    path = model_path(settings)
    config = settings.section(LlamaConfig)
    return LlamaGenerator(load_server(path, config), config, path, registry.tts, registry.reader())
