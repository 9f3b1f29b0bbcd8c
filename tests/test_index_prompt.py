"""`asr.index_prompt`: the asr path decodes a second time with the start of the passages that the
first transcript found as Whisper's prompt. On a real hnswlib index of examples/docs, with
espeak-ng speech and the bundled Whisper tiny.en."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from voicerag_cli.audio.io import read_audio
from voicerag_cli.config import Settings, load_settings
from voicerag_cli.index.hnsw_store import IndexRoot
from voicerag_cli.pipeline.ask import AskPipeline, index_prompt
from voicerag_cli.registry import Registry
from vrtest import DemoIndex


def test_off_by_default_and_in_the_zh_profile_whose_lexical_fusion_replaces_it() -> None:
    zh = load_settings(None, environ={}, profile="zh")
    assert not zh.asr.index_prompt and not Settings().asr.index_prompt
    assert zh.ask.lexical_weight == 0.7 and Settings().ask.lexical_weight == 0.5


def test_the_prompt_is_the_configured_one_then_each_passage_start() -> None:
    passages = ["a" * 100, "b" * 10, "c" * 70, "d" * 5]
    assert index_prompt("Hi. ", passages) == "Hi. " + "a" * 60 + "b" * 10 + "c" * 60


def test_the_second_decoding_is_prompted_by_the_passages_the_first_found(
    demo_index: DemoIndex, registry: Registry, speech: Callable[..., Path]
) -> None:
    clip = read_audio(speech("How long is the river Rhine?"))
    settings = dataclasses.replace(registry.settings, asr=dataclasses.replace(registry.settings.asr, index_prompt=True))
    prompted = Registry(settings)  # loads its own copies of the same small models
    reader = IndexRoot(demo_index.data_dir / "indexes").open(demo_index.name)
    try:
        pipeline = AskPipeline(registry, reader, k=3, ef_search=64)
        plain = pipeline.ask_audio(clip, "asr")
        result = AskPipeline(prompted, reader, k=3, ef_search=64).ask_audio(clip, "asr")
        assert plain.transcript is not None
        watch = pipeline.stopwatch()  # the first transcript's passages, as the pipeline retrieves them
        first_found = pipeline.retrieve(pipeline.text_query(plain.transcript, watch), watch)
    finally:
        reader.close()
    assert plain.first_transcript is None and "asr_round2" not in plain.timings_ms
    assert result.first_transcript == plain.transcript
    assert {"asr", "search_prompt", "asr_round2"} <= set(result.timings_ms)
    expected = registry.asr().transcribe(
        clip.samples, clip.sample_rate, prompt=index_prompt("", [p.text for p in first_found])
    )
    assert result.transcript == expected.text and "rhine" in result.transcript.lower()
    assert result.to_json()["first_transcript"] == plain.transcript
    assert any("rhine" in p.source for p in result.sources)
