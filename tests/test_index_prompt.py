"""`asr.index_prompt`: the asr path decodes a second time with the start of the passages that the
first transcript found as Whisper's prompt, when Whisper was unsure of the first transcript. On a
real hnswlib index of examples/docs, with espeak-ng speech and the bundled Whisper tiny.en."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from voicerag_cli.audio.io import read_audio
from voicerag_cli.config import Settings, load_settings
from voicerag_cli.errors import ConfigError
from voicerag_cli.index.chunking import chunk_document
from voicerag_cli.index.hnsw_store import IndexRoot
from voicerag_cli.models.base import Passage, Transcript
from voicerag_cli.pipeline.ask import AskPipeline, index_prompt, merge_rankings, needs_second_decoding
from voicerag_cli.registry import Registry
from vrtest import DemoIndex


def test_on_by_default_and_checked_with_chat_deciding_by_confidence() -> None:
    for settings in (Settings(), load_settings(None, environ={}, profile="zh")):
        assert settings.asr.index_prompt and settings.asr.index_prompt_below == 0.0
        assert settings.chat.index_prompt_below == -0.8
    assert load_settings(None, environ={}, profile="zh").ask.lexical_weight == 0.7
    for key in ("asr.index_prompt_below", "chat.index_prompt_below"):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_settings(None, environ={}, overrides={key: 0.5})


def _passage(chunk_id: int) -> Passage:
    return Passage(chunk_id=chunk_id, source=f"s{chunk_id}", text="", score=0.0)


def test_rankings_merge_by_reciprocal_rank_keeping_the_current_order_on_ties() -> None:
    current = [_passage(i) for i in (1, 2, 3)]
    earlier = [_passage(i) for i in (4, 2, 5)]
    # 2 is in both: first; 1 and 4 tie (rank 0 in one each): current's first
    assert [p.chunk_id for p in merge_rankings(current, earlier)] == [2, 1, 4, 3, 5]
    assert merge_rankings(current, []) == current


def test_only_a_transcript_whisper_is_unsure_of_is_decoded_again() -> None:
    assert needs_second_decoding(Transcript("a", "en", log_prob=-1.2), -0.8)
    assert not needs_second_decoding(Transcript("a", "en", log_prob=-0.3), -0.8)
    assert needs_second_decoding(Transcript("a", "en", log_prob=-0.3), 0.0)  # 0: always
    assert needs_second_decoding(Transcript("a", "en"), -0.8)  # no confidence reported: decode again


def test_the_prompt_is_the_configured_one_then_each_passage_start() -> None:
    passages = [Passage(n, "d.txt", text) for n, text in enumerate(["a" * 100, "b" * 10, "c" * 70, "d" * 5])]
    assert index_prompt("Hi. ", passages) == "Hi. " + "a" * 60 + "b" * 10 + "c" * 60


def test_the_prompt_takes_each_passages_heading_and_prose_not_its_code() -> None:
    """A docs chunk often starts inside an example; the prompt spends Whisper's few tokens on the
    words a question may say: the innermost heading and the prose (stored blocks)."""
    source = ".. code-block:: python\n\n    def _serialize(self, value):\n        return value\n\nTo :meth:`serialize <Schema.dump>` an object, call ``dump``."
    chunk = chunk_document("s.rst", f"Schemas\n=======\n\n{source}", ".rst", 120, 30)[0]
    stored = Passage(0, "s.rst", chunk.text, heading_path=chunk.heading_path, blocks=chunk.blocks)
    assert index_prompt("", [stored], chars_each=60) == "Schemas To serialize an object, call dump."
    inside = Passage(1, "s.rst", "To call dump, pass the object.", heading_path=("Schemas",))
    assert index_prompt("", [inside]) == "Schemas To call dump, pass the object."
    assert index_prompt("", [Passage(0, "f.py", "def f(x): return x")]) == "def f(x): return x"  # no blocks: as it is


def test_the_second_decoding_is_prompted_by_the_passages_the_first_found(
    demo_index: DemoIndex, registry: Registry, speech: Callable[..., Path]
) -> None:
    clip = read_audio(speech("How long is the river Rhine?"))

    def with_asr(**changes: object) -> Registry:  # its own copies of the same small models
        return Registry(
            dataclasses.replace(registry.settings, asr=dataclasses.replace(registry.settings.asr, **changes))
        )

    reader = IndexRoot(demo_index.data_dir / "indexes").open(demo_index.name)
    try:
        pipeline = AskPipeline(with_asr(index_prompt=False), reader, k=3, ef_search=64)
        plain = pipeline.ask_audio(clip, "asr")
        sure = AskPipeline(with_asr(index_prompt_below=-20.0), reader, k=3, ef_search=64).ask_audio(clip, "asr")
        always = AskPipeline(with_asr(index_prompt_below=0.0), reader, k=3, ef_search=64)
        result = always.ask_audio(clip, "asr")
        # chat's limit in place of asr.index_prompt_below: a sure transcript is not decoded again
        chat_turn = always.ask_audio(clip, "asr", prompt_below=-20.0)
        assert plain.transcript is not None and result.transcript is not None
        watch = pipeline.stopwatch()  # the first transcript's passages, as the pipeline retrieves them
        first_found = pipeline.retrieve(pipeline.text_query(plain.transcript, watch), watch)
        second_found = pipeline.retrieve(pipeline.text_query(result.transcript, watch), watch)
    finally:
        reader.close()
    assert plain.first_transcript is None and "asr_round2" not in plain.timings_ms
    # a first transcript above the confidence gate stands: one decoding, as with the setting off
    assert sure.first_transcript is None and "asr_round2" not in sure.timings_ms
    assert sure.transcript == plain.transcript
    first = registry.asr().transcribe(clip.samples, clip.sample_rate)
    assert first.text == plain.transcript and first.log_prob is not None and -20 < first.log_prob < 0
    assert result.first_transcript == plain.transcript
    assert {"asr", "search_prompt", "asr_round2"} <= set(result.timings_ms)
    expected = registry.asr().transcribe(clip.samples, clip.sample_rate, prompt=index_prompt("", first_found))
    assert result.transcript == expected.text and "rhine" in result.transcript.lower()
    assert result.to_json()["first_transcript"] == plain.transcript
    assert any("rhine" in p.source for p in result.sources)
    # the sources: both transcripts' rankings merged
    merged = merge_rankings(second_found, first_found)[:3]
    assert [p.chunk_id for p in result.sources] == [p.chunk_id for p in merged]
    assert chat_turn.first_transcript is None and "asr_round2" not in chat_turn.timings_ms


def test_a_second_decoding_of_the_same_audio_reuses_the_encoder_output(
    registry: Registry, speech: Callable[..., Path]
) -> None:
    from faster_whisper import WhisperModel

    from voicerag_cli.models.whisper_ct2 import ENCODED_WINDOWS, whisper_weights

    asr = registry.asr()
    clip = read_audio(speech("How do I show a progress bar in the terminal?"))
    other = read_audio(speech("Which river flows through Basel?"))
    asr.model.encoded.clear()
    prompts = [None, "click progressbar utils", "echo style secho"]
    cached = [asr.transcribe(clip.samples, clip.sample_rate, prompt=p).text for p in prompts]
    assert len(asr.model.encoded) == 1  # one window encoded, decoded three times
    assert asr.transcribe(other.samples, other.sample_rate).text != cached[0]  # another audio: its own entry
    assert len(asr.model.encoded) == 2
    # the same texts as a plain faster-whisper model that encodes every time
    plain = WhisperModel(whisper_weights(registry.settings).location, device="cpu", compute_type="int8")
    for prompt, text in zip(prompts, cached, strict=True):
        segments, _ = plain.transcribe(
            clip.samples,
            language="en",
            beam_size=asr.beam_size,
            condition_on_previous_text=False,
            vad_filter=False,
            initial_prompt=prompt or asr.initial_prompt,
        )
        assert " ".join(s.text.strip() for s in segments).strip() == text
    rng = np.random.default_rng(0)
    for _ in range(ENCODED_WINDOWS + 2):  # bounded: the oldest windows go
        asr.transcribe((0.01 * rng.standard_normal(16_000)).astype(np.float32), 16_000)
    assert len(asr.model.encoded) == ENCODED_WINDOWS
