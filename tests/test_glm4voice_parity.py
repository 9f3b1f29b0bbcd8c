"""GLM-4-Voice parity with the official code, on every run.

tests/fixtures/parity/ holds tiny random-weight checkpoints in the official layouts and what the
official implementations computed from them (written by scripts/make_parity_fixtures.py, which
runs THUDM/GLM-4-Voice's `speech_tokenizer` and its vendored CosyVoice flow/HiFT with Matcha-TTS
from their sources). Here they go through voicerag's real loaders and must give the same results:
token ids identical; mel, F0 and waveforms within float32 rounding; the prompt byte for byte.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from voicerag_cli.models.glm4voice.hift import SourceState
from voicerag_cli.models.glm4voice.speech_decoder import SpeechDecoder
from voicerag_cli.models.glm4voice.speech_tokenizer import SpeechTokenizer

FIXTURES = Path(__file__).parent / "fixtures" / "parity"

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return json.loads((FIXTURES / "glm4voice_reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cases() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "speech_decoder_cases.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def decoder() -> SpeechDecoder:
    return SpeechDecoder.load(FIXTURES / "speech_decoder")


def test_speech_tokens_equal_the_official_extract_speech_token(reference: dict[str, Any]) -> None:
    """The official `WhisperVQEncoder.save_pretrained` folder (bare keys, all encoder layers and
    the final norm, as the demo's `from_pretrained` reads it) loads; every id equals
    `extract_speech_token`'s, including a clip that is not whole tokens long and one split into
    two 30 s windows."""
    expected = reference["speech_tokenizer"]["tokens"]
    tokenizer = SpeechTokenizer.load(FIXTURES / "speech_tokenizer")
    with np.load(FIXTURES / "speech_tokenizer_inputs.npz") as data:
        clips = dict(data)
    seconds = reference["speech_tokenizer"]["long_seconds"]
    source = clips[reference["speech_tokenizer"]["long_from"]]
    clips["long"] = np.tile(source, math.ceil(seconds * 16_000 / len(source)))[: int(seconds * 16_000)]
    for name, audio in clips.items():
        ids = tokenizer.tokenize(audio, 16_000)
        assert ids == expected[name], name
        assert len(set(ids)) > 5, name  # the codebook is really searched
    assert len(expected["long"]) == 375 + math.ceil((seconds - 30) * 12.5)


def test_flow_mel_equals_the_official_flow_given_the_same_noise(
    decoder: SpeechDecoder, cases: dict[str, np.ndarray]
) -> None:
    tokens = torch.from_numpy(cases["flow_tokens"])
    mel = decoder.flow.inference(tokens, noise=torch.from_numpy(cases["flow_noise"]))
    expected = torch.from_numpy(cases["flow_mel"])
    assert mel.shape == expected.shape
    assert expected.abs().max() > 0.5  # not a near-zero output that any code would match
    assert (mel - expected).abs().max() < 1e-5


def test_flow_streaming_step_equals_the_official_prompted_call(
    decoder: SpeechDecoder, cases: dict[str, np.ndarray]
) -> None:
    """web_demo.py's block call: earlier tokens and their mel as the flow's prompt; only the new
    frames come back."""
    tokens = torch.from_numpy(cases["flow_tokens"])
    prompt = torch.from_numpy(cases["flow_prompt_mel"])
    out = decoder.flow.inference(tokens, prompt_mel=prompt, noise=torch.from_numpy(cases["flow_prompt_noise"]))
    expected = torch.from_numpy(cases["flow_prompt_out"])
    assert out.shape == expected.shape and out.shape[-1] == cases["flow_mel"].shape[-1] - prompt.shape[-1]
    assert (out - expected).abs().max() < 1e-5


def test_hift_f0_and_waveform_equal_the_official_given_the_same_excitation(
    decoder: SpeechDecoder, cases: dict[str, np.ndarray]
) -> None:
    mel = torch.from_numpy(cases["hift_mel"])
    with torch.inference_mode():
        f0 = decoder.hift.f0_predictor(mel)
        speech = decoder.hift.vocode(mel, torch.from_numpy(cases["hift_excitation"]))
    assert torch.allclose(f0, torch.from_numpy(cases["hift_f0"]), atol=1e-5, rtol=1e-5)
    expected = torch.from_numpy(cases["hift_speech"])
    assert speech.shape == expected.shape and expected.abs().max() > 1e-3
    assert (speech - expected).abs().max() < 1e-6


def test_hift_source_equals_the_officials_given_its_random_draws(
    decoder: SpeechDecoder, cases: dict[str, np.ndarray]
) -> None:
    """The harmonic-plus-noise excitation for an F0 track with unvoiced, rising and steady parts,
    from upstream's own initial phases and noise. Upstream accumulates the phase in float32
    (voicerag in float64), so agreement is to float32 phase rounding, not bit for bit."""
    f0 = torch.from_numpy(cases["source_f0"])[0]
    phase = torch.from_numpy(cases["source_phase"]).double()[0, :, 0] / (2 * math.pi) % 1.0
    noise = torch.from_numpy(cases["source_noise"])[0]
    with torch.inference_mode():
        source, state = decoder.hift.source(f0, SourceState(0, phase), noise=noise)
    expected = torch.from_numpy(cases["source_out"])
    assert source.shape == expected.shape and state.sample == expected.shape[-1]
    assert (source.double() - expected.double()).abs().max() < 1e-4


def test_prompt_framing_equals_the_official_demo_byte_for_byte(reference: dict[str, Any]) -> None:
    """The reference layout with the bare question as the user turn reproduces web_demo.py's
    prompts exactly (its statements were executed by the fixture script): the speech and text
    system prompts (the speech one ends in a space), and a second turn that keeps the first turn's
    input and whole completion, speech tokens included, with the system turn only once."""
    from voicerag_cli.models.glm4voice.protocol import Turn, build_prompt, user_input

    official = reference["prompt"]
    audio = official["question_audio"]
    first = build_prompt([], question_audio=audio, template="{question}{context}")
    assert first == official["first_turn"]
    earlier = Turn(user_input([], audio, None, "reference", "{question}{context}"), official["completion"])
    second = build_prompt([], question_audio=audio, template="{question}{context}", turns=[earlier])
    assert second == official["second_turn"]
    assert second.count("<|system|>") == 1 and official["completion"] in second
    text = build_prompt([], question_text=official["text_question"], template="{question}{context}")
    assert text == official["text_turn"]


def test_first_block_25_is_the_official_streaming_schedule(reference: dict[str, Any]) -> None:
    """web_demo.py decodes blocks of 25, 50, 100, 150, 200 speech tokens; `glm4voice.first_block
    = 25` gives exactly that schedule (the default 10 only adds a smaller first block)."""
    from voicerag_cli.models.glm4voice.backend import block_schedule

    official = tuple(reference["prompt"]["stream_blocks"])
    assert block_schedule(25) == official
    assert block_schedule(10) == (10, *official)


@pytest.fixture(scope="module")
def stream_case() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "speech_decoder_stream.npz") as data:
        return dict(data)


def test_whole_answer_equals_the_official_offline_decoding(
    decoder: SpeechDecoder, stream_case: dict[str, np.ndarray]
) -> None:
    """flow_inference.py's `offline_inference` (flow, then HiFT, through `token2wav`) on a 90-token
    answer, its random draws replaced by voicerag's fixed ones: the same mel and waveform."""
    tokens = stream_case["tokens"][0].tolist()
    with torch.inference_mode():
        mel = decoder.decode_mel(tokens)
    expected_mel = torch.from_numpy(stream_case["whole_mel"])
    assert mel.shape == expected_mel.shape and (mel - expected_mel).abs().max() < 1e-5
    audio, expected = decoder.decode(tokens), stream_case["whole"]
    assert audio.shape == expected.shape and np.abs(expected).max() > 0.05
    assert np.abs(audio - expected).max() < 1e-5


def test_streaming_is_closer_to_whole_decoding_than_the_official_streamed_answer(
    decoder: SpeechDecoder, stream_case: dict[str, np.ndarray], reference: dict[str, Any]
) -> None:
    """Upstream's streamed answer (web_demo.py's blocks 25, 50, then the rest, through
    `token2wav` with its mel overlap fade and 1-frame vocoder cache; the same draws) against its
    whole-utterance decoding, and voicerag's streaming (default first block 10, and upstream's
    schedule) against the same: voicerag's keeps the whole length and stays closer."""
    from tiny_glm4voice import stream_in_blocks

    tokens = stream_case["tokens"][0].tolist()
    whole, official = stream_case["whole"], stream_case["streamed"].astype(np.float32)
    assert reference["stream"]["blocks"] == [25, 50, 15]
    assert len(official) == sum(reference["stream"]["chunk_samples"]) < len(whole)  # upstream drops a frame
    n = len(official)
    official_error = float(np.linalg.norm(official - whole[:n]) / np.linalg.norm(whole[:n]))
    assert official_error > 0.01  # its streaming scheme really changes the audio
    for first in (10, 25):
        chunks, _ = stream_in_blocks(decoder, tokens, first)
        audio = np.concatenate(chunks)
        assert len(audio) == len(whole)
        error = float(np.linalg.norm(audio - whole) / np.linalg.norm(whole))
        assert error < official_error / 2, (first, error, official_error)
