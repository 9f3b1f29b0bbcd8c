"""GLM-4-Voice prompt layout, interleave parsing and LM streaming, with a tiny random-weight GLM
and a tokenizer carrying the real special tokens, loaded through the real loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import LogitsProcessorList

from tiny_glm4voice import InterleavePattern, write_interleaved_lm
from voicerag_cli.errors import ModelError
from voicerag_cli.models.base import Passage
from voicerag_cli.models.glm4voice.lm import GenerationParams, InterleavedLM
from voicerag_cli.models.glm4voice.protocol import (
    AudioBlock,
    InterleaveParser,
    TextDelta,
    TokenMap,
    build_prompt,
    encode_prompt,
)

AUDIO = 64
PASSAGES = [
    Passage(1, "bikes.md", "The safety bicycle was introduced in 1885 by John Kemp Starley."),
    Passage(2, "mars.md", "Olympus Mons is the tallest volcano in the solar system."),
]


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_interleaved_lm(tmp_path_factory.mktemp("lm"), AUDIO)


@pytest.fixture(scope="module")
def lm(lm_dir: Path) -> InterleavedLM:
    return InterleavedLM.load(lm_dir, trust_remote_code=False, device="cpu")


@pytest.fixture(scope="module")
def tokens(lm: InterleavedLM) -> TokenMap:
    return TokenMap.from_tokenizer(lm.tokenizer, AUDIO)


def test_prompt_layout_with_spoken_question(lm: InterleavedLM, tokens: TokenMap) -> None:
    prompt = build_prompt(PASSAGES, question_audio=[3, 0, 63], history=[("", "It was 1885 [1].")], layout="grounded")
    system, rest = prompt.split("<|user|>\n", 1)
    assert system.startswith("<|system|>\nUser will provide you with a speech instruction.")
    assert "[1] (bikes.md)\nThe safety bicycle" in system and "[2] (mars.md)\nOlympus Mons" in system
    assert rest.startswith("(spoken question)<|assistant|>streaming_transcription\nIt was 1885 [1].")
    assert prompt.endswith(
        "<|user|>\n<|begin_of_audio|><|audio_3|><|audio_0|><|audio_63|><|end_of_audio|>"
        "<|assistant|>streaming_transcription\n"
    )
    ids = encode_prompt(lm.tokenizer, tokens, prompt)
    convert = lm.tokenizer.convert_tokens_to_ids
    assert ids[:2] == [convert("[gMASK]"), convert("<sop>")]
    begin = ids.index(convert("<|begin_of_audio|>"))
    assert ids[begin + 1 : begin + 4] == [tokens.audio_offset + 3, tokens.audio_offset, tokens.audio_offset + 63]
    assert ids[begin + 4] == convert("<|end_of_audio|>")
    assert lm.tokenizer.decode(ids[2:]) == prompt  # nothing lost or added by encoding


def test_text_question_uses_the_text_instruction() -> None:
    prompt = build_prompt(PASSAGES, question_text="When was the safety bicycle introduced?", layout="grounded")
    assert prompt.startswith("<|system|>\nUser will provide you with a text instruction.")
    assert prompt.endswith("<|user|>\nWhen was the safety bicycle introduced?<|assistant|>streaming_transcription\n")
    with pytest.raises(ValueError):
        build_prompt(PASSAGES)


def test_token_map_finds_offset_and_rejects_mismatched_vocabularies(lm: InterleavedLM, tokens: TokenMap) -> None:
    assert tokens.audio_offset == lm.tokenizer.convert_tokens_to_ids("<|audio_0|>")
    assert tokens.audio_offset + AUDIO == len(lm.tokenizer)  # speech tokens close the vocabulary, as upstream
    assert lm.tokenizer.convert_tokens_to_ids("<|user|>") in tokens.stop_ids
    assert tokens.audio_count == AUDIO  # read from the tokenizer
    # An LM with fewer speech tokens than the codebook is accepted (the released 9B has 16383 for
    # 16384 codes); one with more than the decoder can embed is refused.
    assert TokenMap.from_tokenizer(lm.tokenizer, AUDIO + 1).audio_count == AUDIO
    with pytest.raises(ModelError, match=f"{AUDIO} speech tokens .* more than the {AUDIO - 1} codes"):
        TokenMap.from_tokenizer(lm.tokenizer, AUDIO - 1)


def test_speech_token_count_is_read_from_the_tokenizer(tmp_path: Path) -> None:
    """A tokenizer with one speech token fewer than the codebook (the released 9B's 16383 for
    16384): the count is what the tokenizer holds, `<|audio_{n-1}|>` is speech, nothing past it."""
    from tiny_glm4voice import write_tokenizer

    tokenizer = write_tokenizer(tmp_path / "short", AUDIO - 1)
    tokens = TokenMap.from_tokenizer(tokenizer, AUDIO)
    assert tokens.audio_count == AUDIO - 1
    last = tokenizer.convert_tokens_to_ids(f"<|audio_{AUDIO - 2}|>")
    assert tokens.is_audio(last) and not tokens.is_audio(last + 1)


def interleaved(lm: InterleavedLM, tokens: TokenMap, text: str, runs: int) -> tuple[list[int], list[int]]:
    """An answer in the model's shape: 13 text ids then 26 speech ids, `runs` times, then the
    leftover text; returns (ids, the speech tokens in order)."""
    text_ids = lm.tokenizer.encode(text, add_special_tokens=False)
    ids, speech = [], []
    for run in range(runs):
        ids += text_ids[13 * run : 13 * (run + 1)]
        chunk = [(run * 26 + i) % AUDIO for i in range(26)]
        speech += chunk
        ids += [tokens.audio_offset + t for t in chunk]
    ids += text_ids[13 * runs :]
    return ids, speech


def test_parser_splits_text_and_speech_with_growing_blocks(lm: InterleavedLM, tokens: TokenMap) -> None:
    text = "The safety bicycle was introduced in 1885 by John Kemp Starley [1]. Olympus Mons is the tallest volcano."
    ids, speech = interleaved(lm, tokens, text, runs=6)  # 156 speech tokens
    parser = InterleaveParser(lm.tokenizer, tokens)
    events = [event for token in [*ids, tokens.stop_ids[0], 5] for event in parser.feed(token)]
    blocks = [e for e in events if isinstance(e, AudioBlock)]
    assert [len(b.tokens) for b in blocks] == [25, 50, 81]  # 25, 50, then the rest at <|user|>
    assert [b.final for b in blocks] == [False, False, True]
    assert [t for b in blocks for t in b.tokens] == speech
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text
    assert parser.text == text and parser.done
    # The first block is out as soon as its 25th speech token arrived, before any later text.
    first_block_at = next(i for i, e in enumerate(events) if isinstance(e, AudioBlock))
    texts_before = "".join(e.text for e in events[:first_block_at] if isinstance(e, TextDelta))
    assert texts_before == lm.tokenizer.decode(lm.tokenizer.encode(text, add_special_tokens=False)[:13])


def test_parser_never_emits_half_characters(lm: InterleavedLM, tokens: TokenMap) -> None:
    text = "café ☕ [2]"
    parser = InterleaveParser(lm.tokenizer, tokens)
    deltas = [e.text for t in lm.tokenizer.encode(text, add_special_tokens=False) for e in parser.feed(t)]
    deltas += [e.text for e in parser.finish() if isinstance(e, TextDelta)]
    assert "".join(deltas) == text and not any("\ufffd" in d for d in deltas)
    assert parser.blocks_sent == 0  # no speech: no audio block at all


def pattern(lm: InterleavedLM, tokens: TokenMap, prompt_ids: list[int], total: int) -> LogitsProcessorList:
    text = range(min(tokens.prefix_ids + tokens.stop_ids))  # the special tokens follow the text vocabulary
    audio = range(tokens.audio_offset, tokens.audio_offset + AUDIO)
    return LogitsProcessorList([InterleavePattern(len(prompt_ids), text, audio, tokens.stop_ids[0], total)])


def generate(
    lm: InterleavedLM, tokens: TokenMap, prompt_ids: list[int], params: GenerationParams, total: int
) -> list[int]:
    ids: list[int] = []
    lm.run(prompt_ids, tokens, params, ids.append, pattern(lm, tokens, prompt_ids, total))
    return ids


def test_lm_streams_an_interleaved_answer(lm: InterleavedLM, tokens: TokenMap) -> None:
    prompt_ids = encode_prompt(lm.tokenizer, tokens, build_prompt(PASSAGES, question_audio=[1, 2, 3]))
    params = GenerationParams(temperature=0.8, seed=7)
    ids = generate(lm, tokens, prompt_ids, params, total=80)
    assert len(ids) == 81 and ids[-1] == tokens.stop_ids[0]  # stopped by <|user|>
    assert [tokens.is_audio(t) for t in ids[:39]] == [False] * 13 + [True] * 26
    parser = InterleaveParser(lm.tokenizer, tokens)
    blocks = [e for t in ids for e in parser.feed(t) if isinstance(e, AudioBlock)]
    assert [len(b.tokens) for b in blocks] == [25, 27] and blocks[-1].final  # 80 = 13 + 26 + 13 + 26 + 2
    assert generate(lm, tokens, prompt_ids, params, total=80) == ids  # a fixed seed reproduces the answer


def test_lm_stops_when_the_callback_raises(lm: InterleavedLM, tokens: TokenMap) -> None:
    """Ctrl-C or a failing decoder inside the per-token callback ends generation at once."""
    prompt_ids = encode_prompt(lm.tokenizer, tokens, build_prompt(PASSAGES, question_text="Who?"))
    params = GenerationParams(temperature=0.0, max_new_tokens=500)
    seen: list[int] = []

    def on_token(token: int) -> None:
        seen.append(token)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lm.run(prompt_ids, tokens, params, on_token, pattern(lm, tokens, prompt_ids, total=10_000))
    assert len(seen) == 5


def test_remote_code_needs_opt_in_and_files_are_checked(lm_dir: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    for item in lm_dir.iterdir():
        (remote / item.name).write_bytes(item.read_bytes())
    config = json.loads((remote / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_chatglm.ChatGLMForConditionalGeneration"}
    (remote / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="trust_remote_code' = true"):
        InterleavedLM.load(remote, trust_remote_code=False, device="cpu", runtime="remote")
    # The native runtime never runs the shipped model code, so it needs no opt-in.
    assert InterleavedLM.load(remote, trust_remote_code=False, device="cpu").fast is not None
    with pytest.raises(ModelError, match="folder not found"):
        InterleavedLM.load(tmp_path / "nowhere", trust_remote_code=False, device="cpu")
    for missing in ("config.json", "tokenizer_config.json", "model.safetensors"):
        (remote / missing).unlink()
        with pytest.raises(ModelError, match=r"missing|no \*\.safetensors"):
            InterleavedLM.load(remote, trust_remote_code=True, device="cpu")
        (remote / missing).write_bytes((lm_dir / missing).read_bytes())


def test_reference_layout_keeps_the_official_system_prompt_and_puts_passages_in_the_user_turn() -> None:
    from voicerag_cli.models.glm4voice.protocol import SPEECH_SYSTEM, USER_TEMPLATE, Turn, check_template

    prompt = build_prompt(PASSAGES, question_audio=[3, 0, 63])
    system, user = prompt.split("<|user|>\n", 1)
    assert system == f"<|system|>\n{SPEECH_SYSTEM}"  # nothing added to the trained system prompt
    assert "[1] (bikes.md)\nThe safety bicycle" in user and "[2] (mars.md)\nOlympus Mons" in user
    assert "<|begin_of_audio|><|audio_3|><|audio_0|><|audio_63|><|end_of_audio|>" in user
    assert user.endswith("<|assistant|>streaming_transcription\n")
    custom = build_prompt(PASSAGES, question_text="Who?", template="Q={question} C={context}")
    assert "<|user|>\nQ=Who? C=[1] (bikes.md)" in custom
    # earlier turns: whole when given, else as text
    kept = build_prompt(PASSAGES, question_text="And?", turns=[Turn("Who?", "Starley.<|audio_1|>")])
    assert "<|user|>\nWho?<|assistant|>streaming_transcription\nStarley.<|audio_1|><|user|>\n" in kept
    as_text = build_prompt(PASSAGES, question_text="And?", history=[("Who?", "Starley.")])
    assert "<|user|>\nWho?<|assistant|>streaming_transcription\nStarley.<|user|>\n" in as_text
    check_template(USER_TEMPLATE)
    with pytest.raises(ValueError, match="context"):
        check_template("{question} only")
    with pytest.raises(ValueError, match="layout"):
        build_prompt(PASSAGES, question_text="Who?", layout="other")
