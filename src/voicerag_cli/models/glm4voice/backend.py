"""The `glm4voice` generator: the spoken question as speech tokens, the retrieved passages in
the prompt, GLM-4-Voice-9B answering in interleaved text and speech tokens, and the speech
decoder turning the speech tokens into 22.05 kHz audio while the model is still generating.

Text deltas and audio chunks go to `listener` as they are produced (the CLI prints and plays
them); the returned `Answer` carries the full text and the full audio."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from voicerag_cli.errors import InputError
from voicerag_cli.models.base import Answer, AnswerListener, Passage, Query, SpokenAudio
from voicerag_cli.models.glm4voice.lm import GenerationParams, InterleavedLM, resolve_sampling
from voicerag_cli.models.glm4voice.protocol import (
    BLOCK_SIZES,
    USER_TEMPLATE,
    AudioBlock,
    InterleaveParser,
    TextDelta,
    TokenMap,
    Turn,
    build_prompt,
    encode_prompt,
    user_input,
)
from voicerag_cli.models.glm4voice.settings import Glm4VoiceConfig
from voicerag_cli.models.glm4voice.speech_decoder import SpeechDecoder
from voicerag_cli.models.glm4voice.speech_tokenizer import SpeechTokenizer

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles

_CITATION = re.compile(r"\[(\d+)\]")


def block_schedule(first_block: int) -> tuple[int, ...]:
    """The first block's size from config, then upstream's growing sizes."""
    return (first_block, *(size for size in BLOCK_SIZES if size > first_block))


@dataclass
class StreamStats:
    """Latency of the last answer, measured from the start of `generate` (after retrieval)."""

    tokenize_ms: float = 0.0
    first_token_ms: float | None = None  # the prompt's prefill ends here
    first_text_ms: float | None = None
    first_block_ms: float | None = None  # the first speech block is complete; its decoding starts
    first_audio_ms: float | None = None
    total_ms: float = 0.0
    generated_tokens: int = 0
    speech_tokens: int = 0
    audio_s: float = 0.0
    chunks: list[tuple[float, int]] = field(default_factory=list)  # (ms since start, samples)

    @property
    def tokens_per_s(self) -> float:
        seconds = (self.total_ms - self.tokenize_ms) / 1000
        return self.generated_tokens / seconds if seconds > 0 else 0.0


class Glm4VoiceGenerator:
    def __init__(
        self,
        tokenizer: SpeechTokenizer,
        lm: InterleavedLM,
        decoder: SpeechDecoder,
        params: GenerationParams,
        first_block: int = 10,
        logits_processors: Callable[[int], Any] | None = None,
        layout: str = "reference",
        template: str = USER_TEMPLATE,
    ) -> None:
        self.tokenizer = tokenizer
        self.lm = lm
        self.decoder = decoder
        self.params = params
        self.blocks = block_schedule(first_block)
        self.tokens = TokenMap.from_tokenizer(lm.tokenizer, decoder.config.flow.vocab_size)
        self.listener: AnswerListener | None = None
        # Tests and benchmarks only: prompt length -> a transformers LogitsProcessorList.
        self.logits_processors = logits_processors
        self.stats = StreamStats()
        self.layout, self.template = layout, template
        # Earlier exchanges kept whole (reference layout), with the answer text they ended in, so
        # that a query's (question, answer) history can be matched to them.
        self.transcript: list[tuple[str, Turn]] = []
        self._current_input = ""

    def _turns(self, history: list[tuple[str, str]]) -> list[Turn]:
        """The kept exchanges behind `history` when they are this generator's last ones (the
        conversation continues), else none (the prompt then carries the history as text)."""
        if self.layout != "reference" or not history or len(history) > len(self.transcript):
            return []
        kept = self.transcript[-len(history) :]
        if [answer for answer, _ in kept] != [answer for _, answer in history]:
            return []
        return [turn for _, turn in kept]

    def prompt_ids(self, query: Query, passages: list[Passage]) -> list[int]:
        if query.audio is not None and len(query.audio):
            speech, text = self.tokenizer.tokenize(query.audio, query.audio_rate), None
        elif query.text:
            speech, text = None, query.text
        else:
            raise InputError("the glm4voice generator needs the question as audio or text")
        self._current_input = user_input(passages, speech, text, self.layout, self.template)
        prompt = build_prompt(
            passages, speech, text, query.history, self.layout, self.template, self._turns(query.history)
        )
        return encode_prompt(self.lm.tokenizer, self.tokens, prompt)

    def generate(self, query: Query, passages: list[Passage]) -> Answer:
        started = time.perf_counter()
        stats = self.stats = StreamStats()

        def elapsed_ms() -> float:
            return (time.perf_counter() - started) * 1000

        prompt = self.prompt_ids(query, passages)
        stats.tokenize_ms = elapsed_ms()
        parser = InterleaveParser(self.lm.tokenizer, self.tokens, self.blocks)
        stream = self.decoder.stream()
        chunks: list[np.ndarray] = []

        def handle(event: TextDelta | AudioBlock) -> None:
            if isinstance(event, TextDelta):
                if stats.first_text_ms is None:
                    stats.first_text_ms = elapsed_ms()
                if self.listener is not None:
                    self.listener.on_text(event.text)
                return
            if stats.first_block_ms is None:
                stats.first_block_ms = elapsed_ms()
            audio = stream.push(event.tokens, final=event.final)
            if len(audio):
                if stats.first_audio_ms is None:
                    stats.first_audio_ms = elapsed_ms()
                stats.chunks.append((elapsed_ms(), len(audio)))
                chunks.append(audio)
                if self.listener is not None:
                    self.listener.on_audio(audio, self.decoder.sample_rate)

        completion: list[int] = []

        def on_token(token: int) -> None:
            if not parser.done and token not in self.tokens.stop_ids:
                completion.append(token)
            stats.generated_tokens += 1
            if stats.generated_tokens == 1:
                stats.first_token_ms = elapsed_ms()
            for event in parser.feed(token):
                handle(event)

        processors = None if self.logits_processors is None else self.logits_processors(len(prompt))
        # Speech blocks are decoded inside the generation loop, as soon as they are complete.
        self.lm.run(prompt, self.tokens, self.params, on_token, processors)
        if not parser.done:  # stopped by max_new_tokens rather than by the model
            for event in parser.finish():
                handle(event)
        stats.speech_tokens = len(parser.audio_ids)
        text = parser.text
        # As upstream's demo keeps an exchange: every generated id before `<|user|>`, decoded with
        # the speech tokens in it.
        decoded = self.lm.tokenizer.decode(completion, spaces_between_special_tokens=False)
        self.transcript = [*self.transcript[-31:], (text, Turn(self._current_input, decoded))]
        stats.total_ms = elapsed_ms()
        cited = sorted({int(n) for n in _CITATION.findall(text) if 1 <= int(n) <= len(passages)})
        if not chunks:  # the model answered in text only: the pipeline's TTS speaks it
            return Answer(text, cited)
        samples = np.concatenate(chunks)
        stats.audio_s = len(samples) / self.decoder.sample_rate
        return Answer(text, cited, speech=SpokenAudio(samples, self.decoder.sample_rate))


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def create(settings: Settings, registry: Roles) -> Glm4VoiceGenerator:
    from voicerag_cli.models.glm4voice.checkpoint import require_dir

    config = settings.section(Glm4VoiceConfig)
    # Check all three folders before loading any of them: a missing one fails in a second.
    require_dir(config.tokenizer_path, "GLM-4-Voice speech tokenizer", "glm4voice.tokenizer_path")
    require_dir(config.lm_path, "GLM-4-Voice LM", "glm4voice.lm_path")
    require_dir(config.decoder_path, "GLM-4-Voice speech decoder", "glm4voice.decoder_path")
    device = resolve_device(config.device)
    params = GenerationParams(
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        seed=None if config.seed < 0 else config.seed,
    )
    compile = config.compile and device.startswith("cuda")
    lm = InterleavedLM.load(
        config.lm_path, config.trust_remote_code, device, runtime=config.lm_runtime, compile=compile
    )
    decoder = SpeechDecoder.load(config.decoder_path, device, allow_pickle=config.allow_pickle)
    # Graphs, compiled kernels and caches are made at load time, so the first answer is as fast
    # as the later ones.
    params = resolve_sampling(params, config.top_k, lm.snapshot_top_k)
    lm.prepare(params)
    decoder.prepare(config.first_block, compile)
    return Glm4VoiceGenerator(
        SpeechTokenizer.load(config.tokenizer_path, device),
        lm,
        decoder,
        params,
        config.first_block,
        layout=config.prompt_layout,
        template=config.user_template or USER_TEMPLATE,
    )
