"""The GLM-4-Voice chat protocol: prompt layout, special tokens, and the streaming parser that
splits the model's interleaved output into text and speech-token blocks.

Facts from the published demo (THUDM/GLM-4-Voice `web_demo.py`, `model_server.py`): the prompt is
`[gMASK]<sop>` + `<|system|>\\n{system}<|user|>\\n{input}<|assistant|>streaming_transcription\\n`;
spoken input is `<|begin_of_audio|>` + `<|audio_N|>`... + `<|end_of_audio|>`; the model answers
with runs of about 13 text tokens and 26 speech tokens; every id from `<|audio_0|>` on is speech
token (id - offset); `<|user|>` ends the answer. This module only uses token strings, never
hard-coded ids, so any tokenizer with the same special tokens works (the tests use a tiny one)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from voicerag_cli.errors import ModelError
from voicerag_cli.models.base import Passage

PREFIX_TOKENS = ("[gMASK]", "<sop>")
SYSTEM, USER, ASSISTANT, OBSERVATION = "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"
BEGIN_AUDIO, END_AUDIO = "<|begin_of_audio|>", "<|end_of_audio|>"
END_OF_TEXT = "<|endoftext|>"
ASSISTANT_MODE = "streaming_transcription"
SPECIAL_TOKENS = (*PREFIX_TOKENS, END_OF_TEXT, SYSTEM, USER, ASSISTANT, OBSERVATION, BEGIN_AUDIO, END_AUDIO)

# The upstream demo's system prompts, byte for byte (the speech one ends in a space there): the
# model was trained on them, they select the interleaved 13-text/26-speech answer format, and
# upstream reports that other wordings break it.
SPEECH_SYSTEM = (
    "User will provide you with a speech instruction. Do it step by step. First, think about the "
    "instruction and respond in a interleaved manner, with 13 text token followed by 26 audio tokens. "
)
TEXT_SYSTEM = SPEECH_SYSTEM.replace("a speech instruction", "a text instruction").rstrip(" ")
SPEECH_INSTRUCTION, TEXT_INSTRUCTION = SPEECH_SYSTEM.rstrip(" "), TEXT_SYSTEM
GROUNDING = (
    "Answer the question using only the numbered passages below, briefly, citing the passages you "
    "used as [n]. If they do not contain the answer, say that you do not know."
)
# Prompt layouts (`glm4voice.prompt_layout`):
# - reference: the system turn is upstream's fixed prompt and the retrieved passages go into the
#   user turn with the question (speech tokens or text), the layout of RAG on GLM-4-Voice built
#   the usual way (a RAG template in the human turn); earlier turns are kept whole, speech
#   tokens included, as upstream's demo keeps them.
# - grounded: this tool's earlier layout: passages and a grounding instruction appended to the
#   system turn; earlier turns as text only.
LAYOUTS = ("reference", "grounded")
# The user turn of the reference layout ({context}: the numbered passages, {question}: the
# question); `glm4voice.user_template` replaces it.
USER_TEMPLATE = (
    "Use the numbered passages below to answer the question, citing them as [n]; if they do not "
    "contain the answer, say that you do not know. Keep it short.\n"
    "Question: {question}\nPassages:\n{context}\nAnswer:"
)
# Audio blocks handed to the decoder grow as the answer goes on (as upstream): a small first
# block starts playback early, larger later ones keep the decoder efficient.
BLOCK_SIZES = (25, 50, 100, 150, 200)


def audio_span(tokens: Sequence[int]) -> str:
    return BEGIN_AUDIO + "".join(f"<|audio_{t}|>" for t in tokens) + END_AUDIO


def numbered_passages(passages: list[Passage]) -> str:
    return "\n\n".join(f"[{i}] ({p.source})\n{p.text.strip()}" for i, p in enumerate(passages, start=1))


def system_prompt(passages: list[Passage], spoken: bool) -> str:
    """The grounded layout's system turn."""
    instruction = SPEECH_INSTRUCTION if spoken else TEXT_INSTRUCTION
    return f"{instruction}\n{GROUNDING}\n\nPassages:\n{numbered_passages(passages)}"


def check_template(template: str) -> None:
    for field_name in ("{question}", "{context}"):
        if field_name not in template:
            raise ValueError(f"the user template needs {field_name}")


@dataclass(frozen=True)
class Turn:
    """One earlier exchange as upstream's demo keeps it: the user turn's input and the model's
    whole completion (`decode` of every generated id before `<|user|>`, speech tokens included)."""

    user_input: str
    completion: str


def user_input(
    passages: list[Passage],
    question_audio: Sequence[int] | None,
    question_text: str | None,
    layout: str,
    template: str = USER_TEMPLATE,
) -> str:
    """The text of the user turn: the question (speech tokens when there are any, else text), in
    the reference layout framed with the passages by `template`."""
    if question_audio:
        question = audio_span(question_audio)
    elif question_text:
        question = question_text
    else:
        raise ValueError("the prompt needs the question as speech tokens or text")
    if layout == "grounded":
        return question
    return template.replace("{context}", numbered_passages(passages)).replace("{question}", question)


def assemble(system: str, turns: Sequence[Turn], current: str) -> str:
    """Upstream's multi-turn rule (web_demo.py): the previous prompt plus the previous
    completion, stripped, the system turn only once, then the new user turn."""
    inputs = ""
    completion = ""
    for turn in [*turns, Turn(current, "")]:
        inputs = (inputs + completion).strip()
        if SYSTEM not in inputs:
            inputs += f"{SYSTEM}\n{system}"
        inputs += f"{USER}\n{turn.user_input}{ASSISTANT}{ASSISTANT_MODE}\n"
        completion = turn.completion
    return inputs


def build_prompt(
    passages: list[Passage],
    question_audio: Sequence[int] | None = None,
    question_text: str | None = None,
    history: Sequence[tuple[str, str]] = (),
    layout: str = "reference",
    template: str = USER_TEMPLATE,
    turns: Sequence[Turn] = (),
) -> str:
    """The prompt text after the `[gMASK]<sop>` prefix (which `encode_prompt` adds as ids).
    `turns` (reference layout): earlier exchanges kept whole; without them `history` gives the
    earlier turns as text (question, answer)."""
    spoken = bool(question_audio)
    current = user_input(passages, question_audio, question_text, layout, template)
    if layout == "grounded":
        parts = [f"{SYSTEM}\n{system_prompt(passages, spoken=spoken)}"]
        for asked, answered in history:
            parts.append(f"{USER}\n{asked or '(spoken question)'}{ASSISTANT}{ASSISTANT_MODE}\n{answered}")
        parts.append(f"{USER}\n{current}{ASSISTANT}{ASSISTANT_MODE}\n")
        return "".join(parts)
    if layout != "reference":
        raise ValueError(f"unknown prompt layout {layout!r}")
    if not turns:
        turns = [Turn(asked or "(spoken question)", answered) for asked, answered in history]
    return assemble(SPEECH_SYSTEM if spoken else TEXT_SYSTEM, turns, current)


@dataclass(frozen=True)
class TokenMap:
    """Where the protocol's special tokens sit in one tokenizer's vocabulary."""

    prefix_ids: tuple[int, ...]
    audio_offset: int
    audio_count: int
    stop_ids: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, codebook_size: int | None = None) -> TokenMap:
        """Find the special tokens; the number of speech tokens is read from the tokenizer (the
        contiguous run `<|audio_0|>`, `<|audio_1|>`... ), not assumed: the released 9B's
        tokenizer is reported to hold 16383 of them for the speech tokenizer's 16384 codes.
        `codebook_size` (the speech decoder's vocabulary) bounds it: a larger LM vocabulary
        could emit ids the decoder has no embedding for."""

        def token_id(token: str) -> int:
            found = tokenizer.convert_tokens_to_ids(token)
            if not isinstance(found, int) or found == tokenizer.unk_token_id or found < 0:
                raise ModelError(f"GLM-4-Voice LM: its tokenizer has no {token} token")
            return found

        for token in SPECIAL_TOKENS:
            token_id(token)
        offset = token_id("<|audio_0|>")
        count = audio_token_count(tokenizer, offset)
        if codebook_size is not None and count > codebook_size:
            raise ModelError(
                f"GLM-4-Voice LM: its tokenizer has {count} speech tokens (<|audio_0|>..<|audio_{count - 1}|>), "
                f"more than the {codebook_size} codes of the speech tokenizer/decoder (they do not belong together)"
            )
        stops = (token_id(USER), token_id(END_OF_TEXT), token_id(OBSERVATION))
        return cls(tuple(token_id(t) for t in PREFIX_TOKENS), offset, count, stops)

    def is_audio(self, token: int) -> bool:
        return self.audio_offset <= token < self.audio_offset + self.audio_count


def audio_token_count(tokenizer: Any, offset: int) -> int:
    """How many `<|audio_N|>` tokens follow `<|audio_0|>` (at `offset`) contiguously."""
    vocab = tokenizer.get_vocab()
    count = 0
    while vocab.get(f"<|audio_{count}|>") == offset + count:
        count += 1
    return count


def encode_prompt(tokenizer: Any, tokens: TokenMap, prompt: str) -> list[int]:
    """`[gMASK]<sop>` then the prompt, encoded without the tokenizer's own additions, so the ids
    are the same whether or not a tokenizer would add the prefix by itself."""
    return [*tokens.prefix_ids, *tokenizer.encode(prompt, add_special_tokens=False)]


@dataclass
class TextDelta:
    text: str


@dataclass
class AudioBlock:
    tokens: list[int]  # speech token ids (0-based, without the vocabulary offset)
    final: bool


@dataclass
class InterleaveParser:
    """Feed generated ids one at a time; get text deltas as soon as they decode to whole
    characters and speech-token blocks as soon as a block is full; `finish()` flushes the rest."""

    tokenizer: Any
    tokens: TokenMap
    block_sizes: Sequence[int] = BLOCK_SIZES
    text_ids: list[int] = field(default_factory=list)
    audio_ids: list[int] = field(default_factory=list)  # all speech tokens so far
    pending: list[int] = field(default_factory=list)  # speech tokens not yet in a block
    emitted_text: str = ""
    blocks_sent: int = 0
    done: bool = False

    def next_block_size(self) -> int:
        return self.block_sizes[min(self.blocks_sent, len(self.block_sizes) - 1)]

    def feed(self, token: int) -> Iterator[TextDelta | AudioBlock]:
        if self.done:
            return
        if token in self.tokens.stop_ids:
            self.done = True
            yield from self.finish()
        elif self.tokens.is_audio(token):
            speech = token - self.tokens.audio_offset
            self.audio_ids.append(speech)
            self.pending.append(speech)
            if len(self.pending) >= self.next_block_size():
                yield self._block(final=False)
        else:
            self.text_ids.append(token)
            delta = self._text_delta(final=False)
            if delta:
                yield TextDelta(delta)

    def finish(self) -> Iterator[TextDelta | AudioBlock]:
        """End of generation: the remaining text and a final (possibly empty) audio block."""
        self.done = True
        delta = self._text_delta(final=True)
        if delta:
            yield TextDelta(delta)
        if self.pending or self.blocks_sent:
            yield self._block(final=True)

    @property
    def text(self) -> str:
        return self.emitted_text.strip()

    def _block(self, final: bool) -> AudioBlock:
        block = AudioBlock(self.pending, final)
        self.pending = []
        self.blocks_sent += 1
        return block

    def _text_delta(self, final: bool) -> str:
        decoded = self.tokenizer.decode(self.text_ids, skip_special_tokens=True)
        # A multi-byte character split over tokens decodes to U+FFFD until its last byte arrives.
        if not final and decoded.endswith("\ufffd"):
            return ""
        if not decoded.startswith(self.emitted_text):  # decoding is not prefix-stable: resync
            self.emitted_text = decoded
            return ""
        delta = decoded[len(self.emitted_text) :]
        self.emitted_text = decoded
        return delta
